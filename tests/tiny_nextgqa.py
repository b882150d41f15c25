"""A tiny NExT-GQA-shaped dataset in the official layout, written with the cra.data writers (tests only).

``<root>/nextgqa/{train,val,test}.csv``, ``gsub_{val,test}.json``, ``frame2time_{val,test}.json`` and
``<root>/features/CLIPL/CLIPL_I_<split>.h5`` with ``feature_dim``-sized frame features. The answer
is written into the features (a direction per answer index in the frames of the ground-truth
segment), so a model can learn something in a few steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cra.data import feature_path, write_feature_file

COLOURS = ["red", "blue", "green", "yellow", "black"]
OBJECTS = ["ball", "cup", "dog", "kite", "hat", "box"]


def write_tiny_nextgqa(
    root: Path,
    *,
    videos: dict | None = None,
    questions_per_video: int = 2,
    feature_dim: int = 16,
    num_frames: int = 32,
    seed: int = 0,
) -> Path:
    rng = np.random.default_rng(seed)
    videos = videos or {"train": 8, "val": 4, "test": 4}
    ann = Path(root) / "nextgqa"
    ann.mkdir(parents=True, exist_ok=True)
    directions = rng.standard_normal((len(COLOURS), feature_dim)).astype(np.float32)
    next_id = 1000
    for split, n_videos in videos.items():
        rows, gsub, frame2time, feats, vids = [], {}, {}, [], []
        for _ in range(n_videos):
            vid = str(next_id)
            next_id += 1
            duration = int(rng.integers(12, 40))
            times = np.round(np.linspace(0.2, duration - 0.5, num_frames), 1).tolist()
            x = rng.standard_normal((num_frames, feature_dim)).astype(np.float32) * 0.5
            location = {}
            for q in range(questions_per_video):
                answer = int(rng.integers(0, len(COLOURS)))
                obj = OBJECTS[int(rng.integers(0, len(OBJECTS)))]
                start = int(rng.integers(0, num_frames - 8))
                x[start : start + 6] += directions[answer]
                location[str(q)] = [[times[start], times[start + 5]]]
                rows.append(
                    {
                        "video_id": vid,
                        "frame_count": 100,
                        "width": 320,
                        "height": 240,
                        "question": f"what colour is the {obj} number {q}",
                        "answer": COLOURS[answer] if split == "train" else answer,
                        "qid": q,
                        "type": ["CW", "TN", "TC"][q % 3],
                        **{f"a{k}": c for k, c in enumerate(COLOURS)},
                    }
                )
            gsub[vid] = {"duration": duration, "fps": 30.0, "location": location}
            frame2time[vid] = times
            feats.append(x)
            vids.append(vid)
        pd.DataFrame(rows).to_csv(ann / f"{split}.csv", index=False)
        if split != "train":
            (ann / f"gsub_{split}.json").write_text(json.dumps(gsub))
            (ann / f"frame2time_{split}.json").write_text(json.dumps(frame2time))
        write_feature_file(feature_path(Path(root) / "features", split), vids, np.stack(feats))
    return Path(root)


def tiny_overrides(root: Path, **extra) -> list[str]:
    """``--set`` items for a small, fast model on :func:`write_tiny_nextgqa` data."""
    values = {
        "data.root": str(root),
        "data.annotations": "nextgqa",
        "data.features": "features",
        "data.test_split": "test",
        "model.feature_dim": 16,
        "model.d_model": 32,
        "model.num_heads": 2,
        "model.d_ff": 32,
        "model.text_encoder_kwargs": "{dim: 32, num_heads: 2, num_buckets: 256}",
        "model.num_z_entries": 4,
        "model.z_node_dim": 8,
        "model.num_x_entries": 4,
        "train.batch_size": 4,
        "train.epochs": 2,
        "train.progress": False,
        "train.lr": 1e-3,
        "eval.batch_size": 8,
        **extra,
    }
    return [f"{k}={v}" for k, v in values.items()]
