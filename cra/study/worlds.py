"""The study's worlds: a synthetic world with its confounder dictionaries built from its train split,
and the same world with blank video (the language-only variant)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

__all__ = ["prepare_world", "existing_world", "blind_copy"]


def prepare_world(root: Path, world_config, seed: int, clusters: int, nlp=None) -> tuple[Path, Path]:
    """Write world ``seed`` to ``root/world`` and build its dictionaries from the train split only.

    ``Z_l``: semantic graphs of the train QA pairs, each node encoded with a (seeded, untrained)
    word encoder of the world's feature size, k-means into ``clusters`` entries, with the empirical
    prior. ``X_hat``: k-means of all train frames into ``clusters`` entries. Returns (world, file).
    """
    import torch

    from cra.confounders import BuildConfig, build_confounders, save_confounders
    from cra.synthetic import make_world
    from cra.text import build_text_encoder

    world = make_world(Path(root) / "world", seed, world_config, overwrite=True)
    dim = world_config.feature_dim
    build = BuildConfig(
        out=str(Path(root) / "confounders.pt"),
        data_root=str(world),
        qa_csv=["train.csv"],
        features_h5=["CLIPL/CLIPL_I_train.h5"],
        text_encoder={"name": "word", "dim": dim, "num_heads": 4, "num_buckets": 4096},
        text_clusters=clusters,
        visual_clusters=clusters,
        seed=seed,
    )

    def factory(name, **kwargs):
        torch.manual_seed(seed)  # the node encoder's random weights are a function of the seed
        return build_text_encoder(name, **kwargs)

    conf = save_confounders(Path(build.out), build_confounders(build, factory, nlp=nlp))
    return world, conf


def existing_world(root: Path, world_config, seed: int) -> tuple[Path, Path]:
    """(world, dictionary file) that :func:`prepare_world` wrote into ``root`` earlier, read only; an
    error naming the folder when it is absent or holds another world (config or seed)."""
    import json
    from dataclasses import asdict

    world, conf = Path(root) / "world", Path(root) / "confounders.pt"
    meta_file = world / "world.json"
    if not meta_file.is_file() or not conf.is_file():
        raise FileNotFoundError(f"{root}: no prepared world (world/world.json and confounders.pt): run the study first")
    meta = json.loads(meta_file.read_text())
    if meta.get("seed") != seed or meta.get("config") != json.loads(json.dumps(asdict(world_config))):
        raise ValueError(f"{meta_file}: holds another world (seed or config) than this study's; rerun the study")
    return world, conf


def blind_copy(world: Path, out: Path) -> Path:
    """The same world with every frame feature set to 0: a model trained on it sees only the text."""
    from cra.data.features import FeatureStore, feature_path, write_feature_file
    from cra.synthetic import SPLITS

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(world, out, ignore=shutil.ignore_patterns("*.h5"))
    for split in SPLITS:
        store = FeatureStore(feature_path(world, split), feature_dim=None)
        write_feature_file(feature_path(out, split), store.stored_ids.tolist(), np.zeros(store.shape, dtype=np.float32))
    return out
