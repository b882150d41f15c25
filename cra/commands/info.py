"""``python -m cra info``: version, data location and which data files are present.

``--verify`` checks each annotation file's sha256 and exits 1 when one is missing or differs.
"""

from __future__ import annotations

import argparse
import os
import sys

from cra import __version__, paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verify", action="store_true", help="also check the sha256 of each annotation file")


def run(args: argparse.Namespace) -> int:
    import torch

    root = paths.data_dir()
    origin = f"from ${paths.DATA_DIR_ENV}" if os.environ.get(paths.DATA_DIR_ENV) else "default; set $CRA_DATA_DIR to change"
    print(f"cra {__version__}  torch {torch.__version__}  cuda available: {torch.cuda.is_available()}")
    print(f"data dir: {root} ({origin})")
    bad = []
    if args.verify:
        for relpath, status in paths.verify_annotations(root).items():
            print(f"  {status:>16}  {relpath}")
            if status != "ok":
                bad.append(f"{relpath} ({status})")
    else:
        for relpath in paths.ANNOTATION_FILES:
            print(f"  {'present' if (root / relpath).is_file() else 'missing':>8}  {relpath}")
    features = paths.features_dir(root) / "CLIPL"
    print(f"features: {features} ({'present' if features.is_dir() else 'missing'})")
    if bad:
        print(f"info: error: {len(bad)} annotation file(s) under {root} failed verification: {', '.join(bad)}; "
              "run `python -m cra download` (add --force to replace a file that differs)", file=sys.stderr)
        return 1
    return 0
