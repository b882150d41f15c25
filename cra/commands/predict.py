"""``python -m cra predict --run <folder> --split <split>``: predictions in the official formats.

Writes, under ``<run>/predictions/`` (or ``--out``), for the split's questions:

* ``<split>-res.json``: ``{key: {"prediction": int, "answer": int}}`` (QA results);
* ``<split>_ground_att.json``: ``{key: [T per-frame weights w]}`` (``evaluate --pred-format attention``);
* ``<split>_ground_<readout>.json``: ``{key: [start, end]}`` in seconds for each read-out
  (window, post-hoc, merge; ``evaluate --pred-format seconds``);
* ``<split>_scores.json``: the metrics of each read-out when the split has ground truth.

Score them with, for example::

    python -m cra evaluate --gsub gsub_val.json --qa val-res.json --pred val_ground_posthoc.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="a training run folder (best.pt, last.pt)")
    parser.add_argument("--split", required=True, help="split name: <split>.csv and its features (val, test, ...)")
    parser.add_argument("--checkpoint", default="best", help="'best', 'last' or a checkpoint path (default: best)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <run>/predictions)")
    parser.add_argument("--device", default=None, help="override train.device (auto, cpu, cuda)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from cra.config import ConfigError
    from cra.data import DataFormatError
    from cra.paths import DataNotFoundError
    from cra.predict import predict_run

    try:
        written, scores = predict_run(
            args.run,
            args.split,
            checkpoint=args.checkpoint,
            out=args.out,
            device=args.device,
            progress=not args.no_progress,
        )
    except (ConfigError, ValueError, DataFormatError, DataNotFoundError, FileNotFoundError) as err:
        print(f"predict: error: {err}", file=sys.stderr)
        return 2
    if scores:
        from cra import metrics

        rows = {r: scores[r] for r in scores if isinstance(scores[r], dict)}
        print(f"{args.split}: Acc@QA over all {scores['n']} questions {scores['qa_acc']:.2f}")
        if rows:
            print(metrics.format_table(rows))
    for path in written:
        print(f"wrote {path}")
    return 0
