"""``python -m cra extract-features --videos <dir> --out <root> --split <split> --model ViT-L-14 --pretrained openai``.

Decodes every video, samples 32 frames as NExT-GQA does (6 fps, every 3rd frame, 32 clip centres;
see :mod:`cra.extract`), encodes them with an open_clip image tower and writes
``<root>/<feat-type>/<feat-type>_I_<split>.h5`` (datasets ``vid`` and ``<feat-type>_I``; attributes
``model``, ``weights`` and the sampling) and ``<root>/frame2time_<split>.json``.

Weights are required: ``--pretrained TAG_OR_PATH`` (an open_clip tag such as ``openai``, or a local
weights file), or ``--random-weights`` for tests (``--model cra-tiny-clip`` is a tiny model for them).
``--csv`` restricts to the videos of a QA csv; ``--map`` (``map_vid_vidorID.json``) finds NExT-QA's
``<folder>/<vidor id>.mp4`` files. An unreadable video is skipped and reported (``--strict``: abort);
existing outputs are replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cra.cli import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--videos", type=Path, required=True, help="folder with the video files (searched recursively)")
    parser.add_argument(
        "--out", type=Path, required=True, help="feature root: writes <out>/<feat-type>/<feat-type>_I_<split>.h5"
    )
    parser.add_argument("--split", default="train", help="split name in the file name (default: train)")
    parser.add_argument("--csv", type=Path, default=None, help="only the videos of this QA csv (column video_id)")
    parser.add_argument("--map", type=Path, default=None, help="video_id -> relative path json (map_vid_vidorID.json)")
    parser.add_argument(
        "--model", default="ViT-L-14", help="open_clip model (default ViT-L-14; cra-tiny-clip for tests)"
    )
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument(
        "--pretrained",
        metavar="TAG_OR_PATH",
        default=None,
        help="open_clip weights: a tag (e.g. openai) or a local weights file",
    )
    weights.add_argument("--random-weights", action="store_true", help="an untrained image tower (tests only)")
    parser.add_argument(
        "--cache-dir", default=None, help="where downloaded weights are cached (default: the Hugging Face cache)"
    )
    parser.add_argument("--feat-type", default="CLIPL", help="feature name in the layout (default CLIPL)")
    parser.add_argument("--num-frames", type=positive_int, default=32)
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="frames per image-tower call")
    parser.add_argument(
        "--strict", action="store_true", help="abort on the first unreadable video (default: skip and report it)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing feature and frame2time files")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from cra.data import DataFormatError
    from cra.extract import WeightsUnavailableError, extract_features, find_videos
    from cra.run import select_device

    try:
        ids = None
        if args.csv is not None:
            from cra.data import read_qa_csv

            ids = list(dict.fromkeys(r.video_id for r in read_qa_csv(args.csv).records))
        mapping = None
        if args.map is not None:
            try:
                mapping = json.loads(args.map.read_text())
            except json.JSONDecodeError as err:
                raise DataFormatError(
                    args.map,
                    f"line {err.lineno}",
                    f"invalid json ({err.msg})",
                    "a json object video_id -> relative path",
                ) from None
        videos = find_videos(args.videos, ids, mapping)
        h5, f2t, skipped = extract_features(
            videos,
            args.out,
            args.split,
            model=args.model,
            pretrained=None if args.random_weights else args.pretrained,
            feat_type=args.feat_type,
            num_frames=args.num_frames,
            device=select_device(args.device),
            batch_size=args.batch_size,
            progress=not args.no_progress,
            cache_dir=args.cache_dir,
            strict=args.strict,
            overwrite=args.overwrite,
        )
    except (ValueError, OSError, ImportError, WeightsUnavailableError) as err:
        print(f"extract-features: error: {err}", file=sys.stderr)
        return 2
    for vid, reason in skipped.items():
        print(f"skipped {vid}: {reason}", file=sys.stderr)
    if skipped:
        print(
            f"extract-features: skipped {len(skipped)} of {len(videos)} videos (listed above, and in the file's "
            f"'skipped_videos' attribute); --strict aborts instead",
            file=sys.stderr,
        )
    weights = "random weights" if args.random_weights else f"weights {args.pretrained}"
    print(f"wrote {h5} ({len(videos) - len(skipped)} videos, {args.model}, {weights}) and {f2t}")
    return 0


def interrupted_hint(args: argparse.Namespace) -> str:
    return (
        "Nothing was written (the outputs are written at the end, atomically); "
        "run the same command again to start over."
    )
