"""scripts/nextgqa_full.sh runs end to end on CPU on a tiny world in the official layout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_nextgqa import write_tiny_nextgqa

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "nextgqa_full.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_full_run_script_trains_predicts_and_evaluates_on_cpu(tmp_path):
    root = write_tiny_nextgqa(tmp_path / "world")
    sets = [
        "data.annotations=nextgqa",
        "data.features=features",
        "model.feature_dim=16",
        "model.d_model=32",
        "model.num_heads=2",
        "model.d_ff=32",
        "model.text_encoder_kwargs.dim=32",
        "model.text_encoder_kwargs.num_heads=2",
        "model.z_node_dim=8",
        "train.batch_size=8",
        "train.epochs=1",
        "train.progress=false",
    ]
    env = {
        **os.environ,
        "PY": sys.executable,
        "CRA_DATA_DIR": str(root),
        "RUN": str(tmp_path / "run"),
        "CONFIG": "synthetic",
        "STEPS": "train predict evaluate",
        "SET": " ".join(f"--set {s}" for s in sets),
        "PYTHONPATH": str(SCRIPT.parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("test-res.json", "test_ground_att.json", "test_ground_posthoc.json", "val_ground_merge.json"):
        assert (tmp_path / "run" / "predictions" / name).is_file()
    assert "test_ground_posthoc.json (seconds)" in done.stdout and "CRA (merge read-out)" in done.stdout
