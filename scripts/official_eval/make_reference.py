"""Reference metric rows from the *official* scripts, run unmodified on the CRA authors' released val files.

What runs (nothing is copied into cra; the sources are read from bare git snapshots into a
temporary folder and imported from there):

* doc-doc/NExT-GQA @ 63772e0: ``code/TempGQA/tools/getspan.py`` (``generate_ground``: post-hoc spans
  from per-frame attention and ``frame2time``), ``code/TempGQA/eval_ground.py`` (``eval_ground``: the
  metric line it prints; ``combine``: the merge), with their ``util.py``;
* WissingChen/CRA-GQA @ aaf4da4: ``FrozenBiLM/causal_module.py``, ``GroundingModule.gen_grounding``
  (CRA's window read-out, "pre-hoc": ``find_best_interval_v2`` then ``[s/31, e/31]``) on the released
  smoothed weights as a float32 tensor, as the released model held them. Runtime patch: the module
  imports ``torch_geometric`` for classes not used here; empty stand-ins are put in ``sys.modules``.

Rows (the official script prints ``Acc&GQA mIoP TIoP@0.3 TIoP@0.5 mIoU TIoU@0.3 TIoU@0.5`` with one
decimal; each printed line is parsed back into numbers):

* ``posthoc_raw``: getspan on ``val_ground_att.json`` (raw attention), ``eval_ground(gs=False)``;
* ``posthoc_smoothed``: getspan on ``val_ground_gs.json`` (smoothed GSG weights), ``gs=False``;
* ``window_smoothed``: gen_grounding on ``val_ground_gs.json``, ``eval_ground(gs=True)``;
* ``merge_smoothed_raw``: ``combine(window_smoothed, posthoc_raw)``, ``gs=False``: the release's merge
  (window of the smoothed weights ∩ post-hoc of the raw attention).

Usage (writes tests/fixtures/official_eval/released_val.json)::

    CRA_DATA_DIR=/path/with/nextgqa+cra_released python scripts/official_eval/make_reference.py \\
        --nextgqa-git /path/to/doc-doc/NExT-GQA.git --cra-git /path/to/WissingChen/CRA-GQA.git
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import io
import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

NEXTGQA_COMMIT = "63772e0256ad9e34b83d6a108f1ba2041b924607"
CRA_COMMIT = "aaf4da4961337b3f2db53b2493ce0faa5ac05012"
NEXTGQA_FILES = ("code/TempGQA/util.py", "code/TempGQA/eval_ground.py", "code/TempGQA/tools/getspan.py")
CRA_FILES = ("FrozenBiLM/causal_module.py",)
COLUMNS = ("Acc@GQA", "mIoP", "IoP@0.3", "IoP@0.5", "mIoU", "IoU@0.3", "IoU@0.5")
OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "official_eval" / "released_val.json"


def export(git_dir: Path, commit: str, paths: tuple[str, ...], into: Path) -> None:
    for path in paths:
        text = subprocess.run(
            ["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"], check=True, capture_output=True
        ).stdout
        (into / Path(path).name).write_bytes(text)


def span_digest(spans: dict, gt: dict | None = None) -> str:
    """sha256 of the spans in seconds as sorted JSON ([first, last] as Python floats, so equal floats
    give equal text); normalised spans (``gt`` given) are converted as eval_ground(gs=True) does."""
    import numpy as np

    seconds = {}
    for key, span in spans.items():
        if gt is not None:
            vid, qid = key.split("_")
            if not (vid in gt and qid in gt[vid]["location"]):
                continue
            span = np.round(np.asarray(span) * gt[vid]["duration"], 1)
        seconds[key] = [float(span[0]), float(span[-1])]
    return hashlib.sha256(json.dumps(seconds, sort_keys=True).encode()).hexdigest()


def printed_row(fn, *args, **kwargs) -> tuple[dict, str]:
    """Run an official function that prints a header and one line of numbers; parse that line."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        fn(*args, **kwargs)
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    values = lines[-1].split()
    if len(values) != len(COLUMNS):
        raise RuntimeError(f"unexpected output of {fn.__name__}: {buffer.getvalue()!r}")
    return dict(zip(COLUMNS, (float(v) for v in values))), lines[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nextgqa-git", type=Path, required=True, help="bare git dir of doc-doc/NExT-GQA")
    parser.add_argument("--cra-git", type=Path, required=True, help="bare git dir of WissingChen/CRA-GQA")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CRA_DATA_DIR", "data")))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    data = args.data
    ann, rel = data / "nextgqa", data / "cra_released"

    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp)
        export(args.nextgqa_git, NEXTGQA_COMMIT, NEXTGQA_FILES, code)
        export(args.cra_git, CRA_COMMIT, CRA_FILES, code)
        sys.path.insert(0, str(code))
        for name, attrs in (
            ("torch_geometric", {}),
            ("torch_geometric.data", {"Data": object}),
            ("torch_geometric.nn", {"GCNConv": object}),
        ):  # unused by the code run here
            sys.modules[name] = types.SimpleNamespace(**attrs)
        import torch

        util = importlib.import_module("util")
        getspan = importlib.import_module("getspan")
        eval_ground = importlib.import_module("eval_ground")
        causal_module = importlib.import_module("causal_module")

        gt = util.load_file(str(ann / "gsub_val.json"))
        qa = util.load_file(str(rel / "val-res.json"))
        spans = {}
        for name, weights in (("posthoc_raw", "val_ground_att.json"), ("posthoc_smoothed", "val_ground_gs.json")):
            target = code / f"{name}.json"
            with contextlib.redirect_stdout(io.StringIO()):  # it prints the number of predictions
                getspan.generate_ground(
                    str(rel / weights), str(ann / "frame2time_val.json"), str(target), str(ann / "val.csv")
                )
            spans[name] = util.load_file(str(target))

        gs = util.load_file(str(rel / "val_ground_gs.json"))
        keys = list(gs)
        grounding = types.SimpleNamespace()  # gen_grounding only calls self.find_best_interval_v2
        grounding.find_best_interval_v2 = lambda p: causal_module.GroundingModule.find_best_interval_v2(grounding, p)
        with torch.no_grad():
            param = causal_module.GroundingModule.gen_grounding(grounding, torch.tensor([gs[k] for k in keys]))
        start, end = param["start"].numpy(), param["end"].numpy()  # float32, as the released pipeline saves them
        spans["window_smoothed"] = {k: [s, e] for k, s, e in zip(keys, start.tolist(), end.tolist())}
        spans["merge_smoothed_raw"] = eval_ground.combine(spans["window_smoothed"], spans["posthoc_raw"], gt)

        rows, printed = {}, {}
        for name, normalized in (
            ("posthoc_raw", False),
            ("posthoc_smoothed", False),
            ("window_smoothed", True),
            ("merge_smoothed_raw", False),
        ):
            rows[name], printed[name] = printed_row(eval_ground.eval_ground, gt, spans[name], qa, gs=normalized)
        digests = {name: span_digest(spans[name], gt if name == "window_smoothed" else None) for name in rows}
        counts = {name: len(s) for name, s in spans.items()}

    result = {
        "about": "official NExT-GQA eval_ground / getspan (and CRA's gen_grounding for the window) run on the "
        "CRA authors' released FrozenBiLM val files; one decimal, as printed",
        "sources": {
            "doc-doc/NExT-GQA": NEXTGQA_COMMIT,
            "WissingChen/CRA-GQA": CRA_COMMIT,
            "files": [*NEXTGQA_FILES, *CRA_FILES],
        },
        "inputs": [
            "nextgqa/gsub_val.json",
            "nextgqa/frame2time_val.json",
            "nextgqa/val.csv",
            "cra_released/val-res.json",
            "cra_released/val_ground_att.json",
            "cra_released/val_ground_gs.json",
        ],
        "command": "python scripts/official_eval/make_reference.py --nextgqa-git ... --cra-git ...",
        "columns": list(COLUMNS),
        "rows": rows,
        "printed": printed,
        "spans": {
            "about": "sha256 of {key: [start, end] seconds} as sorted JSON; the window's normalised spans "
            "converted as eval_ground(gs=True) does (ground-truth questions only)",
            "sha256": digests,
            "count": counts,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for name, line in printed.items():
        print(f"{name:20s} {line}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
