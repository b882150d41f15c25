"""Wall time of ``python -m cra evaluate`` on the CRA authors' released val predictions.

Run: ``CRA_DATA_DIR=../shared/data python benchmarks/evaluate_cli.py`` (prints seconds per scoring,
each a fresh interpreter, best of 3, including the interpreter start and the imports).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cra import paths

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    data = paths.data_dir()
    n, r = data / "nextgqa", data / "cra_released"
    common = ["--gsub", str(n / "gsub_val.json"), "--qa", str(r / "val-res.json")]
    runs = {
        "attention, post-hoc": [
            "--pred",
            str(r / "val_ground_att.json"),
            "--pred-format",
            "attention",
            "--frame2time",
            str(n / "frame2time_val.json"),
        ],
        "gs weights, window read-out": ["--pred", str(r / "val_ground_gs.json"), "--pred-format", "window"],
        "gs weights, post-hoc": [
            "--pred",
            str(r / "val_ground_gs.json"),
            "--pred-format",
            "attention",
            "--frame2time",
            str(n / "frame2time_val.json"),
        ],
        "attention, post-hoc + baselines (10 seeds)": [
            "--pred",
            str(r / "val_ground_att.json"),
            "--pred-format",
            "attention",
            "--frame2time",
            str(n / "frame2time_val.json"),
            "--baselines",
        ],
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, args in runs.items():
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "cra", "evaluate", *common, *args],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - start)
        print(f"{name:45s} {min(times):6.2f} s (best of 3; all: {', '.join(f'{t:.2f}' for t in times)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
