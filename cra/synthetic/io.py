"""Writing a world in the official NExT-GQA layout, and reading it back.

Files under the output folder, per split::

    <split>.csv                  QA: video_id, frame_count, width, height, question, answer (index),
                                 qid, type (TN/TP), a0..a4
    gsub_<split>.json            {video_id: {duration, fps, location: {qid: [[s, e]]}}}  (also train,
                                 for analysis only: the weakly supervised task never reads it)
    frame2time_<split>.json      {video_id: [32 frame times, s]}
    CLIPL/CLIPL_I_<split>.h5     vid (N,), CLIPL_I (N, 32, feature_dim)
    truth_<split>.json           per question: situation, answer, entity, scene, partners, evidence and
                                 distractor frames and seconds, events, decoys (see :func:`load_truth`)
    world.json                   format, version, seed, config, vocabulary, partner maps, concept vectors
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cra.data.errors import DataFormatError
from cra.data.features import FEAT_TYPE, feature_path, write_feature_file
from cra.data.nextgqa import NUM_CANDIDATES, load_json
from cra.paths import atomic_write_bytes
from cra.synthetic.config import NUM_FRAMES, SPLITS, WorldConfig, check_split
from cra.synthetic.scm import Split, Vocabulary, generate_split, make_vocabulary

FORMAT = "cra-synthetic-world"
#: 1: the first world (answer fixed by the situation, 4 splits); 2: A ~ P(A | Z), val-ood, scene/entity switches
FORMAT_VERSION = 2
QA_HEADER = (
    "video_id",
    "frame_count",
    "width",
    "height",
    "question",
    "answer",
    "qid",
    "type",
    *(f"a{k}" for k in range(NUM_CANDIDATES)),
)


def split_paths(root: Path | str, split: str) -> dict[str, Path]:
    """The files of one split under ``root``."""
    check_split(split)
    root = Path(root)
    return {
        "qa": root / f"{split}.csv",
        "gsub": root / f"gsub_{split}.json",
        "frame2time": root / f"frame2time_{split}.json",
        "features": feature_path(root, split),
        "truth": root / f"truth_{split}.json",
    }


def _json_text(obj: Any, depth: int, indent: str = "") -> str:
    """JSON with objects spread one entry per line down to ``depth`` levels, compact below."""
    if depth <= 0 or not isinstance(obj, dict) or not obj:
        return json.dumps(obj, ensure_ascii=True)
    inner = indent + " "
    entries = [f"{inner}{json.dumps(str(k))}: {_json_text(v, depth - 1, inner)}" for k, v in obj.items()]
    return "{\n" + ",\n".join(entries) + "\n" + indent + "}"


def _json_bytes(obj: Any, depth: int = 1) -> bytes:
    return (_json_text(obj, depth) + "\n").encode()


def _csv_bytes(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=QA_HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def write_split(root: Path, data: Split) -> None:
    paths = split_paths(root, data.name)
    atomic_write_bytes(paths["qa"], _csv_bytes(data.rows))
    atomic_write_bytes(paths["gsub"], _json_bytes(data.gsub))
    atomic_write_bytes(paths["frame2time"], _json_bytes(data.frame2time))
    atomic_write_bytes(paths["truth"], _json_bytes(data.truth))
    write_feature_file(paths["features"], data.video_ids, data.features)


def world_metadata(config: WorldConfig, seed: int, vocab: Vocabulary) -> dict:
    """The content of ``world.json``."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "seed": seed,
        "num_frames": NUM_FRAMES,
        "feature_type": FEAT_TYPE,
        "config": asdict(config),
        "splits": {
            s: {
                "videos": config.num_videos(s),
                "lang_strength": config.strengths(s)[0],
                "vis_strength": config.strengths(s)[1],
            }
            for s in SPLITS
        },
        "vocabulary": {
            "actions": list(vocab.actions),
            "action_phrases": list(vocab.action_phrases),
            "entities": list(vocab.entities),
            "scenes": list(vocab.scenes),
        },
        "partners": {
            "word": {vocab.entities[e]: vocab.actions[z] for z, e in enumerate(vocab.entity_of)},
            "scene": {vocab.scenes[s]: vocab.actions[z] for z, s in enumerate(vocab.scene_of)},
            "situation": {str(z): vocab.actions[z] for z in range(len(vocab.actions))},
        },
        "concepts": {
            "action": vocab.action_vecs.tolist(),
            "entity": vocab.entity_vecs.tolist(),
            "scene": vocab.scene_vecs.tolist(),
        },
    }


def make_world(out_dir: Path | str, seed: int, config: WorldConfig | None = None, *, overwrite: bool = False) -> Path:
    """Generate world ``seed`` and write it to ``out_dir`` in the official NExT-GQA layout.

    The world is written to a temporary sibling folder and moved into place at the end, so
    ``out_dir`` is never half-written. An existing ``out_dir`` is replaced only with
    ``overwrite=True`` and only if it holds a previous world (a ``world.json``) or is empty.
    """
    config = config or WorldConfig()
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out} exists and is not a folder")
        if any(out.iterdir()):
            if not overwrite:
                raise FileExistsError(
                    f"{out} is not empty; pass overwrite=True (--overwrite) to replace a previous world"
                )
            if not (out / "world.json").is_file():
                raise FileExistsError(
                    f"{out} holds files but no world.json: refusing to replace a folder that is not a world"
                )
    vocab = make_vocabulary(config, seed)
    tmp = out.parent / f".{out.name}.part-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for split in SPLITS:  # one split in memory at a time
            write_split(tmp, generate_split(config, seed, split, vocab))
        atomic_write_bytes(tmp / "world.json", _json_bytes(world_metadata(config, seed, vocab), depth=2))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_world(root: Path | str) -> dict:
    """``world.json`` of a generated world, with its config as a :class:`WorldConfig` under ``"world_config"``."""
    from cra.config import ConfigError, from_dict

    path = Path(root) / "world.json"
    meta = load_json(path, "world.json of a synthetic world (python -m cra make-synthetic)")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataFormatError(
            path,
            "top level",
            f"format {meta.get('format') if isinstance(meta, dict) else meta!r}",
            f"format {FORMAT!r}",
        )
    if meta.get("version") != FORMAT_VERSION:
        raise DataFormatError(
            path,
            "version",
            repr(meta.get("version")),
            f"version {FORMAT_VERSION} (a world of an older generator: regenerate it with "
            "`python -m cra make-synthetic`)",
        )
    try:
        config = from_dict(WorldConfig, meta["config"])
    except (ConfigError, KeyError) as err:
        raise DataFormatError(path, "config", str(err), "the parameters of cra.synthetic.WorldConfig") from None
    return {**meta, "world_config": config}


def load_truth(root: Path | str, split: str) -> dict[str, dict]:
    """Per question key, what no real dataset gives: situation, subject entity, scene, the actions
    that the word and the scene point to, whether each shortcut is right, evidence and distractor
    frames (inclusive) and seconds, all events and decoys (entity, action, frames, seconds)."""
    return load_json(split_paths(root, split)["truth"], "truth json of a synthetic world")


def load_split(root: Path | str, split: str, **dataset_kwargs):
    """A :class:`~cra.data.dataset.NextGQADataset` of one split, read with the project's official readers."""
    from cra.data.dataset import NextGQADataset
    from cra.data.features import FeatureStore
    from cra.data.nextgqa import read_qa_csv

    paths = split_paths(root, split)
    return NextGQADataset(read_qa_csv(paths["qa"]), FeatureStore(paths["features"], feature_dim=None), **dataset_kwargs)
