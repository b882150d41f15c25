"""``python -m cra download``: fetch the official NExT-GQA annotation files, checking sha256.

Exit status 1, with one line naming the URL and the file, when a file cannot be fetched or its
sha256 differs; files already fetched are kept, nothing is half-written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cra import paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", type=Path, default=None, help="data root (default: $CRA_DATA_DIR or ~/.cache/cra-book/data)"
    )
    parser.add_argument("--force", action="store_true", help="download even when a file with the right sha256 exists")


def run(args: argparse.Namespace) -> int:
    root = args.root if args.root is not None else paths.data_dir()
    for relpath in paths.ANNOTATION_FILES:
        try:
            (path,) = paths.download_annotations(root, [relpath], force=args.force)
        except (paths.DownloadError, ValueError, OSError) as err:
            print(f"download: error: {err}", file=sys.stderr)
            return 1
        print(f"ok  {path}")
    return 0


def interrupted_hint(args: argparse.Namespace) -> str:
    return "Files marked ok are kept; run the same command again to fetch the rest."
