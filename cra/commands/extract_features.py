"""``python -m cra extract-features --videos <dir> --out <root> --split <split> --model ViT-L-14 --pretrained openai``.

Decodes every video, samples 32 frames as NExT-GQA does (6 fps, every 3rd frame, 32 clip centres;
see :mod:`cra.extract`), encodes them with an open_clip image tower and writes
``<root>/<feat-type>/<feat-type>_I_<split>.h5`` (datasets ``vid`` and ``<feat-type>_I``) and
``<root>/frame2time_<split>.json``. Without ``--pretrained`` the weights are random (offline tests);
``--model cra-tiny-clip`` is a tiny random model. ``--csv`` restricts to the videos of a QA csv;
``--map`` (``map_vid_vidorID.json``) finds NExT-QA's ``<folder>/<vidor id>.mp4`` files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--videos", type=Path, required=True, help="folder with the video files (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="feature root: writes <out>/<feat-type>/<feat-type>_I_<split>.h5")
    parser.add_argument("--split", default="train", help="split name in the file name (default: train)")
    parser.add_argument("--csv", type=Path, default=None, help="only the videos of this QA csv (column video_id)")
    parser.add_argument("--map", type=Path, default=None, help="video_id -> relative path json (map_vid_vidorID.json)")
    parser.add_argument("--model", default="ViT-L-14", help="open_clip model (default ViT-L-14; cra-tiny-clip for tests)")
    parser.add_argument("--pretrained", default=None, help="open_clip weights tag, e.g. openai (default: random weights)")
    parser.add_argument("--feat-type", default="CLIPL", help="feature name in the layout (default CLIPL)")
    parser.add_argument("--num-frames", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=64, help="frames per image-tower call")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from cra.extract import extract_features, find_videos
    from cra.run import select_device

    try:
        ids = None
        if args.csv is not None:
            from cra.data import read_qa_csv

            ids = list(dict.fromkeys(r.video_id for r in read_qa_csv(args.csv).records))
        mapping = json.loads(args.map.read_text()) if args.map is not None else None
        videos = find_videos(args.videos, ids, mapping)
        h5, f2t = extract_features(videos, args.out, args.split, model=args.model, pretrained=args.pretrained,
                                   feat_type=args.feat_type, num_frames=args.num_frames,
                                   device=select_device(args.device), batch_size=args.batch_size,
                                   progress=not args.no_progress)
    except (ValueError, FileNotFoundError, OSError, ImportError) as err:
        print(f"extract-features: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {h5} ({len(videos)} videos) and {f2t}")
    return 0
