"""``python -m cra download``: fetch the official NExT-GQA annotation files, checking sha256."""

from __future__ import annotations

import argparse
from pathlib import Path

from cra import paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=None, help="data root (default: $CRA_DATA_DIR or ~/.cache/cra-book/data)")
    parser.add_argument("--force", action="store_true", help="download even when a file with the right sha256 exists")


def run(args: argparse.Namespace) -> int:
    root = args.root if args.root is not None else paths.data_dir()
    for path in paths.download_annotations(root, force=args.force):
        print(f"ok  {path}")
    return 0
