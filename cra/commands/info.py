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
    origin = (
        f"from ${paths.DATA_DIR_ENV}" if os.environ.get(paths.DATA_DIR_ENV) else "default; set $CRA_DATA_DIR to change"
    )
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
    for h5 in sorted(features.glob("*.h5")) if features.is_dir() else []:
        print(f"  {h5.name}: {_describe_features(h5)}")
    if bad:
        print(
            f"info: error: {len(bad)} annotation file(s) under {root} failed verification: {', '.join(bad)}; "
            "run `python -m cra download` (add --force to replace a file that differs)",
            file=sys.stderr,
        )
        return 1
    return 0


def _describe_features(path) -> str:
    """Shape and recorded provenance (model, weights, sampling) of a feature file, or why it cannot be read."""
    from cra.data import DataFormatError, FeatureStore

    try:
        store = FeatureStore(path, feature_dim=None)
    except DataFormatError as err:
        return f"unreadable: {err.problem}"
    made = store.provenance
    how = (
        (
            f"model {made.get('model')}, weights {made.get('weights')}, {made.get('num_frames')} frames "
            f"({made.get('sampling')})"
        )
        if "model" in made
        else "no provenance recorded (e.g. the official files)"
    )
    return f"{store.shape[0]} videos x {store.shape[1]} frames x {store.shape[2]}; {how}"
