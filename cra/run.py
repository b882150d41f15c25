"""Run assembly: a :class:`~cra.config.RunConfig` turned into data, model, dictionaries and device.

No loop lives here. The flow of the package (see :mod:`cra`)::

    cra.data, cra.model  ->  cra.run (this module: assembly)  ->  cra.train (Trainer)  /  cra.predict
    (predict_split, Predictor)  ->  cra.metrics (scores)  ->  metrics.jsonl, prediction files, chapters

This module imports only ``cra.config``, ``cra.data``, ``cra.model`` (with its text encoders),
``cra.confounders`` and ``cra.paths``.

Every check happens here, before a training step or a prediction: a missing file, a video without
features, a feature size other than ``model.feature_dim``, a confounder file whose sizes differ from
``model.num_z_entries`` / ``num_x_entries`` / ``z_node_dim``.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from cra.config import ConfigError, RunConfig, check_keys, from_dict, read_yaml
from cra.data import FeatureStore, QAFile, feature_path, question_key, read_grounding_files, read_qa_csv
from cra.model import CRA
from cra.paths import atomic_write_bytes, data_dir

__all__ = [
    "SplitData",
    "select_device",
    "valid_devices",
    "autocast_settings",
    "seed_everything",
    "deterministic_algorithms",
    "data_root",
    "resolve_paths",
    "load_split",
    "build_model",
    "load_dictionaries",
    "text_bucket_size",
    "dictionary_shapes",
    "dictionary_placeholders",
    "to_device",
    "read_run_config",
    "write_json",
    "CONFIG_FILE",
    "METRICS_FILE",
]

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"


# --------------------------------------------------------------------------------------------
# Device, precision, random numbers
# --------------------------------------------------------------------------------------------
def valid_devices() -> list[str]:
    """The ``train.device`` values this machine accepts."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def select_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise the named device, checked: a name torch
    does not know, or a device this machine lacks, is a ``ValueError`` listing the valid ones."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    valid = f"valid on this machine: {', '.join(valid_devices())}"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"train.device={name!r} is not a device name; {valid}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={name!r} but CUDA is not available; {valid}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"train.device={name!r} but this machine has {torch.cuda.device_count()} CUDA device(s); {valid}"
        )
    if device.type not in ("cpu", "cuda") and str(device) not in valid_devices():
        raise ValueError(f"train.device={name!r} is not available here; {valid}")
    return device


def autocast_settings(amp: str, device: torch.device) -> tuple[bool, torch.dtype | None, bool]:
    """(autocast on?, its dtype, use a gradient scaler?) for ``train.amp`` on ``device``.

    ``auto`` = bfloat16 on CUDA, off on CPU (CPU runs stay full precision and reproducible).
    """
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return False, None, False
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError("train.amp='fp16' needs a CUDA device; use 'bf16' or 'off' on CPU")
        return True, torch.float16, True
    return True, torch.bfloat16, False  # "auto" on CUDA, or "bf16"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool, device: torch.device):
    """Deterministic kernels inside the block (errors on CPU if an op has none; warnings on CUDA)."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
@dataclass
class SplitData:
    """One split: its questions, the dataset over its features, and (val/test) ground truth and frame times."""

    name: str
    qa: QAFile
    dataset: "torch.utils.data.Dataset"
    gsub: dict | None = None
    frame2time: dict | None = None
    notes: list[str] = field(default_factory=list)  # what scoring skips, as the official script does


def data_root(config: RunConfig) -> Path:
    return Path(config.data.root).expanduser() if config.data.root else data_dir()


def resolve_paths(config: RunConfig, cwd: Path | str | None = None) -> RunConfig:
    """``config`` with a relative ``data.root`` (and a ``data.confounders`` found from ``cwd``) made
    absolute, so that a run's saved config works from any working directory."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    d = config.data
    root, confounders = d.root, d.confounders
    if root and not Path(root).expanduser().is_absolute():
        root = str((cwd / Path(root).expanduser()).resolve())
    if confounders and not Path(confounders).expanduser().is_absolute() and (cwd / confounders).exists():
        confounders = str((cwd / confounders).resolve())
    return replace(config, data=replace(d, root=root, confounders=confounders))


def load_split(config: RunConfig, split: str, *, grounding: bool) -> SplitData:
    """Read ``<split>.csv`` and its feature file (and, with ``grounding``, gsub and frame2time).

    Everything is validated here, before any training step: a missing file, a header-only csv, a
    video without features, a feature size other than ``model.feature_dim``; with ``grounding``
    (:func:`cra.data.read_grounding_files`) frame times that are not seconds within each video's
    duration, ground truth far outside the video, missing frame times, and a feature file whose
    stored frame count differs from the frame times (16 frames against 32 times). Questions without
    ground truth are counted in ``notes`` (scoring skips them, as the official script does).
    """
    from cra.data import NextGQADataset
    from cra.data.augment import training_augmentation

    d = config.data
    root = data_root(config)
    annotations = root / d.annotations
    qa = read_qa_csv(annotations / f"{split}.csv")
    if d.limit is not None:
        qa.records = qa.records[: d.limit]
    store = FeatureStore(
        feature_path(root / d.features, split, d.feat_type),
        feature_dim=config.model.feature_dim,
        num_frames=d.num_frames,
    )
    if d.features_in_memory:
        store.load_into_memory()
    if d.num_frames > config.model.max_frames:
        raise ValueError(f"data.num_frames={d.num_frames} > model.max_frames={config.model.max_frames}")
    augment = training_augmentation(d, annotations) if split == d.train_split else None  # released draws
    dataset = NextGQADataset(
        qa,
        store,
        same_video_prob=d.same_video_prob,
        seed=config.train.seed,
        qa_template=d.qa_template,
        negative_groups=d.negative_groups,
        augment=augment,
    )
    gsub = frame2time = None
    notes = []
    if grounding or config.model.needs_evidence:
        with warnings.catch_warnings(record=True) as caught:  # videos without ground truth: a note
            warnings.simplefilter("always")
            gsub, frame2time = read_grounding_files(
                annotations, split, [r.video_id for r in qa.records], num_frames=d.num_frames, features=store
            )
        notes += [str(w.message) for w in caught]
        with_gt = {question_key(v, q) for v, entry in gsub.items() for q in entry["location"]}
        no_gt = [r.key for r in qa.records if r.key not in with_gt]
        if no_gt:
            notes.append(
                f"{len(no_gt)} of the {len(qa.records)} questions of {split}.csv have no ground truth in "
                f"gsub_{split}.json: Acc@QA counts all {len(qa.records)}, the grounding metrics skip them "
                f"(as the official script does); first: {', '.join(no_gt[:5])}"
            )
    dataset = study_data_options(config, split, dataset, store, gsub, frame2time)
    if not grounding:
        gsub = frame2time = None
    return SplitData(split, qa, dataset, gsub, frame2time, notes)


def study_data_options(config: RunConfig, split: str, dataset, store, gsub, frame2time):
    """The study's data options (:mod:`cra.data.adjust`): true evidence in the batches when the model
    needs it (``model.mediator=true_evidence``, ``model.gsg_supervision``), and on the train split the
    inverse-propensity resampling of ``data.reweight``."""
    from cra.data.adjust import (
        REWEIGHT,
        Resampled,
        WithEvidence,
        evidence_masks,
        propensity_weights,
        scene_of,
        supervised_keys,
        xhat_of,
    )

    d, m = config.data, config.model
    if d.reweight not in REWEIGHT:
        raise ConfigError(f"data.reweight={d.reweight!r}: expected one of {REWEIGHT}")
    if m.needs_evidence:
        masks = evidence_masks(dataset.records, gsub, frame2time, d.num_frames)
        chosen = supervised_keys(masks, m.gsg_supervision) if split == d.train_split else set()
        dataset = WithEvidence(dataset, masks, chosen)
    if split == d.train_split and d.reweight != "none":
        records = dataset.records
        answers = [r.candidates[r.answer] for r in records]
        if d.reweight == "scene":
            proxies = scene_of(records, data_root(config) / d.annotations / f"truth_{split}.json")
        else:
            X_hat = load_dictionaries(replace(config, model=replace(m, use_frontdoor=True))).get("X_hat")
            if X_hat is None:
                raise ConfigError("data.reweight=xhat needs data.confounders with an X_hat dictionary")
            proxies = xhat_of(records, store, X_hat)
        dataset = Resampled(dataset, propensity_weights(answers, proxies))
    return dataset


# --------------------------------------------------------------------------------------------
# Model and dictionaries
# --------------------------------------------------------------------------------------------
def build_model(config: RunConfig, dictionaries: dict | None = None) -> CRA:
    """CRA for ``config``. ``dictionaries``: ``{"Z_l", "X_hat", "Z_prior"}`` tensors (any may be absent);
    ``None`` reads ``data.confounders`` (checked against the model's sizes) or, without a file,
    uses random dictionaries of the configured sizes (with a warning)."""
    from cra.text.encoders import build_text_encoder

    m = config.model
    if dictionaries is None:
        dictionaries = load_dictionaries(config)
    try:
        encoder = build_text_encoder(m.text_encoder, **m.text_encoder_kwargs)
    except TypeError as err:  # an argument the encoder does not take
        raise ConfigError(
            f"model.text_encoder_kwargs={m.text_encoder_kwargs!r} for text_encoder {m.text_encoder!r}: {err}"
        ) from None
    encoder.bucket_size = text_bucket_size(config)
    if config.train.text_checkpointing:
        try:
            encoder.activation_checkpointing(config.train.text_checkpointing)  # true, or a number of layers
        except ValueError as err:
            raise ConfigError(f"train.text_checkpointing={config.train.text_checkpointing!r}: {err}") from None
    if config.train.text_mode == "frozen_cached":
        from cra.text.cached import CachedTextEncoder

        encoder = CachedTextEncoder(encoder)
    model = CRA(
        m, encoder, Z_l=dictionaries.get("Z_l"), X_hat=dictionaries.get("X_hat"), Z_prior=dictionaries.get("Z_prior")
    )
    model.fewer_products = config.train.fewer_products
    return model


def text_bucket_size(config: RunConfig) -> int | None:
    """``train.text_bucket_size`` with ``auto`` resolved: 16 texts per chunk on CPU, one batch on CUDA."""
    size = config.train.text_bucket_size
    if size == "auto":
        return None if select_device(config.train.device).type == "cuda" else 16
    return size


def load_dictionaries(config: RunConfig) -> dict:
    """The dictionaries of ``data.confounders``, checked against the model config: the node size
    (``z_node_dim``, ``x_hat_size``) and the number of entries (``num_z_entries``, ``num_x_entries``)
    must both match, so that the saved config describes the model exactly."""
    m = config.model
    if not (m.use_backdoor or m.use_frontdoor):
        return {}
    if not config.data.confounders:
        warnings.warn(
            "data.confounders is not set: the causal modules use random dictionaries "
            "(build them with `python -m cra build-confounders`)",
            stacklevel=3,
        )
        return {}
    from cra.confounders import ConfounderDimensionError, load_confounders

    path = Path(config.data.confounders).expanduser()
    if not path.is_absolute() and not path.exists():
        path = data_root(config) / path
    conf = load_confounders(
        path, text_dim=m.z_node_dim if m.use_backdoor else None, visual_dim=m.x_hat_size if m.use_frontdoor else None
    )
    out = {}
    if m.use_backdoor:
        out["Z_l"], out["Z_prior"] = conf.Z_l.float(), conf.prior.float()
    if m.use_frontdoor:
        out["X_hat"] = conf.X_hat.float()
    for name, key, expected in (("Z_l", "num_z_entries", m.num_z_entries), ("X_hat", "num_x_entries", m.num_x_entries)):
        if name in out and out[name].shape[0] != expected:
            raise ConfounderDimensionError(
                f"{path}: {name} has {out[name].shape[0]} entries but model.{key}={expected}; "
                f"set model.{key}={out[name].shape[0]} (or rebuild the dictionary with {expected} clusters)"
            )
    return out


def dictionary_placeholders(shapes: dict) -> dict:
    """Tensors of the stored shapes, to build a model whose checkpoint then fills them."""
    out = {name: torch.zeros(shape) for name, shape in shapes.items()}
    if "Z_prior" in out:
        out["Z_prior"] += 1.0
    return out


def dictionary_shapes(model: CRA) -> dict:
    shapes = {}
    if model.backdoor is not None:
        shapes["Z_l"] = list(model.backdoor.Z_l.shape)
        if model.backdoor.log_prior is not None:
            shapes["Z_prior"] = list(model.backdoor.log_prior.shape)
    if model.frontdoor is not None:
        shapes["X_hat"] = list(model.frontdoor.X_hat.shape)
    return shapes


# --------------------------------------------------------------------------------------------
# Run folders
# --------------------------------------------------------------------------------------------
def read_run_config(run_dir: Path) -> RunConfig:
    """The run's saved ``config.yaml`` (checked like any config layer)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {run_dir} is not a training run folder")
    values = read_yaml(path)
    check_keys(values, RunConfig, str(path))
    return from_dict(RunConfig, values)


def json_clean(x):
    """``x`` with non-finite floats as ``None`` (JSON has no NaN)."""
    if isinstance(x, dict):
        return {k: json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(Path(path), json.dumps(json_clean(obj)).encode())
