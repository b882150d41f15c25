r"""Training CRA: data and model set-up (every check before the first step), the loop, evaluation.

One epoch: shuffle (seeded), forward both passes (VQA and VQ), the loss of :meth:`CRA.losses`, Adam
(amsgrad) with gradient clipping and a linear warm-up/decay learning rate

.. math::

    \eta(s) = \eta_0 \cdot \begin{cases} s / S_w & s < S_w \\ (S - s) / (S - S_w) & s \ge S_w \end{cases}

(:math:`S_w` = warm-up steps, :math:`S` = all steps), then the val split is scored with
:mod:`cra.metrics` for every read-out (window, post-hoc, merge) and one line is appended to
``metrics.jsonl``. The checkpoint of the best val ``train.select_metric`` is ``best.pt``; the test
split is never read here. ``last.pt`` (model, optimiser, schedule, scaler, RNG states) lets
``--resume`` continue exactly: each epoch reseeds every generator from ``(seed, epoch)``, so a
resumed CPU run repeats the losses of an uninterrupted one bit for bit.

Run folder: ``config.yaml`` (the resolved config), ``metrics.jsonl``, ``last.pt``, ``best.pt``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml

from cra import metrics
from cra.config import ConfigError, RunConfig, TrainConfig, from_dict, to_dict
from cra.data import (FeatureStore, QAFile, feature_path, read_frame2time, read_gsub, read_qa_csv)
from cra.data.errors import DataFormatError
from cra.model import CRA
from cra.paths import DataNotFoundError, atomic_write_bytes, data_dir
from cra.schedules import schedule_factor, warmup_linear  # noqa: F401  (warmup_linear: public name kept)

__all__ = ["SplitData", "select_device", "autocast_settings", "seed_everything", "warmup_linear", "load_split",
           "build_model", "make_optimizer", "evaluate", "Trainer", "read_run_config", "load_checkpoint", "METRICS_FILE"]

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.yaml"


# --------------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------------
def select_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise the named device (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={name!r} but CUDA is not available; use 'auto' or 'cpu'")
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


def make_optimizer(model: torch.nn.Module, train: TrainConfig) -> torch.optim.Adam:
    """Adam (amsgrad by default) over the trainable parameters, as one fused kernel where torch has
    one for the device (the same update; on CPU the per-tensor loop over RoBERTa-base's 125M
    parameters costs about 3x more)."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=train.lr, weight_decay=train.weight_decay, amsgrad=train.amsgrad,
                            fused=fused or None)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _json_clean(x):
    if isinstance(x, dict):
        return {k: _json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def save_torch(path: Path, obj) -> None:
    """``torch.save`` atomically: readers see the old file or the complete new one."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(Path(path), json.dumps(_json_clean(obj)).encode())


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


def data_root(config: RunConfig) -> Path:
    return Path(config.data.root).expanduser() if config.data.root else data_dir()


def load_split(config: RunConfig, split: str, *, grounding: bool) -> SplitData:
    """Read ``<split>.csv`` and its feature file (and, with ``grounding``, gsub and frame2time).

    Everything is validated here: a missing file, a video without features, a feature size other
    than ``model.feature_dim`` or missing frame times raise before any training step.
    """
    from cra.data import NextGQADataset

    d = config.data
    root = data_root(config)
    annotations = root / d.annotations
    qa = read_qa_csv(annotations / f"{split}.csv")
    if d.limit is not None:
        qa.records = qa.records[: d.limit]
    store = FeatureStore(feature_path(root / d.features, split, d.feat_type), feature_dim=config.model.feature_dim,
                         num_frames=d.num_frames)
    if d.num_frames > config.model.max_frames:
        raise ValueError(f"data.num_frames={d.num_frames} > model.max_frames={config.model.max_frames}")
    dataset = NextGQADataset(qa, store, same_video_prob=d.same_video_prob, seed=config.train.seed,
                             qa_template=d.qa_template)
    gsub = frame2time = None
    if grounding:
        gsub = read_gsub(annotations / f"gsub_{split}.json")
        frame2time = read_frame2time(annotations / f"frame2time_{split}.json", num_frames=d.num_frames)
        missing = sorted({r.video_id for r in qa.records} - set(frame2time))
        if missing:
            raise DataFormatError(annotations / f"frame2time_{split}.json", f"video(s) {missing[:5]}",
                                  "absent", f"frame times for every video of {split}.csv")
    return SplitData(split, qa, dataset, gsub, frame2time)


# --------------------------------------------------------------------------------------------
# Model
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
        raise ConfigError(f"model.text_encoder_kwargs={m.text_encoder_kwargs!r} for text_encoder "
                          f"{m.text_encoder!r}: {err}") from None
    encoder.bucket_size = text_bucket_size(config)
    if config.train.text_mode == "frozen_cached":
        from cra.text.cached import CachedTextEncoder

        encoder = CachedTextEncoder(encoder)
    return CRA(m, encoder, Z_l=dictionaries.get("Z_l"), X_hat=dictionaries.get("X_hat"),
               Z_prior=dictionaries.get("Z_prior"))


def text_bucket_size(config: RunConfig) -> int | None:
    """``train.text_bucket_size`` with ``auto`` resolved: 16 texts per chunk on CPU, one batch on CUDA."""
    size = config.train.text_bucket_size
    if size == "auto":
        return None if select_device(config.train.device).type == "cuda" else 16
    return size


def load_dictionaries(config: RunConfig) -> dict:
    m = config.model
    if not (m.use_backdoor or m.use_frontdoor):
        return {}
    if not config.data.confounders:
        warnings.warn("data.confounders is not set: the causal modules use random dictionaries "
                      "(build them with `python -m cra build-confounders`)", stacklevel=3)
        return {}
    from cra.confounders import load_confounders

    path = Path(config.data.confounders).expanduser()
    if not path.is_absolute() and not path.exists():
        path = data_root(config) / path
    conf = load_confounders(path, text_dim=m.z_node_dim if m.use_backdoor else None,
                            visual_dim=m.x_hat_size if m.use_frontdoor else None)
    out = {}
    if m.use_backdoor:
        out["Z_l"], out["Z_prior"] = conf.Z_l.float(), conf.prior.float()
    if m.use_frontdoor:
        out["X_hat"] = conf.X_hat.float()
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
# Evaluation
# --------------------------------------------------------------------------------------------
def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


@torch.no_grad()
def predict_split(model: CRA, split: SplitData, config: RunConfig, device: torch.device,
                  progress: bool = False) -> dict:
    """Answers, per-frame weights ``w`` and spans (seconds) of every read-out for every question.

    Returns ``{"qa": {key: {"prediction", "answer"}}, "weights": {key: [T floats]},
    "spans": {readout: {key: [start, end]}}}`` (spans only when the split has frame times).
    """
    from tqdm.auto import tqdm

    from cra.data import make_loader

    enabled, dtype, _ = autocast_settings(config.train.amp, device)
    model.eval()
    out = {"qa": {}, "weights": {}, "spans": {r: {} for r in config.eval.readouts}}
    loader = make_loader(split.dataset, batch_size=config.eval.batch_size, shuffle=False,
                         num_workers=config.data.num_workers)
    for batch in tqdm(loader, desc=f"eval {split.name}", disable=not progress, leave=False, file=sys.stderr):
        inputs = to_device({k: batch[k] for k in ("frames", "frame_mask", "qa_texts")}, device)  # VQA pass only
        with torch.autocast(device.type, dtype=dtype, enabled=enabled):
            result = model(inputs)
        prediction = result.vqa.logits.float().argmax(1).cpu()
        w = result.vqa.w.float()  # (B, T)
        spans = {}
        if split.frame2time is not None:
            times = torch.tensor([split.frame2time[v] for v in batch["video_id"]], dtype=torch.float32, device=device)
            spans = {r: model.ground(w, times, inputs["frame_mask"], r).cpu() for r in config.eval.readouts}  # (B, 2)
        w = w.cpu()
        for b, key in enumerate(batch["key"]):
            out["qa"][key] = {"prediction": int(prediction[b]), "answer": int(batch["answer"][b])}
            out["weights"][key] = w[b].tolist()
            for r, s in spans.items():
                out["spans"][r][key] = s[b].tolist()
    return out


def score_predictions(predictions: dict, split: SplitData) -> dict:
    """``{"qa_acc": percent over all questions, readout: metric row (+ FR, UF) ...}`` via :mod:`cra.metrics`."""
    qa = predictions["qa"]
    correct = {k: v["prediction"] == v["answer"] for k, v in qa.items()}
    scores = {"qa_acc": 100.0 * sum(correct.values()) / max(1, len(correct)), "n": len(correct)}
    if split.gsub is None:
        return scores
    for readout, spans in predictions["spans"].items():
        report = metrics.evaluate_grounding(split.gsub, spans, correct, subset=set(qa))
        scores[readout] = {**report.row(), **{k: report.metrics[k] for k in metrics.DIAGNOSTIC_KEYS}}
    return scores


def evaluate(model: CRA, split: SplitData, config: RunConfig, device: torch.device, progress: bool = False) -> dict:
    """:func:`predict_split` then :func:`score_predictions`."""
    return score_predictions(predict_split(model, split, config, device, progress), split)


def selection_value(scores: dict, config: RunConfig) -> float:
    metric = config.train.select_metric
    if metric == "Acc@QA":
        return scores["qa_acc"]  # over every val question, as the released code selects
    value = scores[config.train.select_readout][metric]
    return -math.inf if value is None or (isinstance(value, float) and math.isnan(value)) else value


# --------------------------------------------------------------------------------------------
# Run folders and checkpoints
# --------------------------------------------------------------------------------------------
def read_run_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {run_dir} is not a training run folder")
    from cra.config import check_keys, read_yaml

    values = read_yaml(path)
    check_keys(values, RunConfig, str(path))
    return from_dict(RunConfig, values)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return torch.load(path, map_location=device, weights_only=False)


def model_from_checkpoint(config: RunConfig, checkpoint: dict) -> CRA:
    model = build_model(config, dictionary_placeholders(checkpoint["dictionaries"]))
    model.load_state_dict(checkpoint["model"])
    return model


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------
class Trainer:
    """Set-up in ``__init__`` (all data, sizes and dictionaries checked), then :meth:`fit`."""

    def __init__(self, config: RunConfig, run_dir: Path | str, *, resume: bool = False, log: Callable = print):
        self.config, self.run_dir, self.log = config, Path(run_dir), log
        t = config.train
        last = self.run_dir / "last.pt"
        if resume and not last.is_file():
            raise FileNotFoundError(f"--resume: {last} does not exist")
        if not resume and last.is_file():
            raise FileExistsError(f"{self.run_dir} already holds a run (last.pt); use --resume or another --run folder")
        self.device = select_device(t.device)
        self.amp, self.amp_dtype, use_scaler = autocast_settings(t.amp, self.device)
        if t.deterministic:
            torch.backends.cudnn.benchmark = False
        seed_everything(t.seed)
        self.train_data = load_split(config, config.data.train_split, grounding=False)
        self.val_data = load_split(config, config.data.val_split, grounding=True)
        self.model = build_model(config).to(self.device)
        self.optimizer = make_optimizer(self.model, t)
        self.steps_per_epoch = math.ceil(len(self.train_data.dataset) / t.batch_size)
        self.total_steps = self.steps_per_epoch * t.epochs
        warmup = round(t.warmup_epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: schedule_factor(t.schedule, step, warmup, self.total_steps))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.epoch = 0  # epochs completed
        self.best = -math.inf
        if resume:
            self._restore(load_checkpoint(last, self.device))

    # -- checkpoints ---------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "epoch": self.epoch,
                "best": self.best, "rng": _rng_state(), "config": to_dict(self.config),
                "dictionaries": dictionary_shapes(self.model)}

    def _restore(self, state: dict) -> None:
        if state["config"] != to_dict(self.config):
            raise ValueError(f"--resume: the config of {self.run_dir / 'last.pt'} differs from this run's config")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.best = state["epoch"], state["best"]
        _set_rng_state(state["rng"])

    def _write_metrics(self, record: dict) -> None:
        path = self.run_dir / METRICS_FILE
        kept = []
        if path.is_file():  # drop lines of epochs a resumed run repeats
            kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["epoch"] < record["epoch"]]
        atomic_write_bytes(path, ("\n".join(kept + [json.dumps(_json_clean(record))]) + "\n").encode())

    # -- one epoch -------------------------------------------------------------------------------
    def _loader(self, epoch: int):
        from cra.data import make_loader

        t = self.config.train
        generator = torch.Generator().manual_seed(t.seed * 1009 + epoch)
        self.train_data.dataset.seed = t.seed * 1009 + epoch  # fresh, reproducible VQ negatives each epoch
        return make_loader(self.train_data.dataset, batch_size=t.batch_size, shuffle=True,
                           num_workers=self.config.data.num_workers, generator=generator)

    def train_epoch(self, epoch: int) -> dict:
        from tqdm.auto import tqdm

        t = self.config.train
        seed_everything(t.seed * 1009 + epoch)  # dropout etc.: a function of (seed, epoch) only
        self.model.train()
        sums: dict[str, float] = {}
        seen = correct = 0
        bar = tqdm(self._loader(epoch), total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{t.epochs}",
                   disable=not t.progress, file=sys.stderr, dynamic_ncols=True)
        params = [p for p in self.model.parameters() if p.requires_grad]
        for batch in bar:
            batch = to_device(batch, self.device)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                out = self.model(batch)
                losses = self.model.losses(batch, out)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(losses["loss"]).backward()
            if t.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            B = len(batch["key"])
            seen += B
            correct += int((out.vqa.logits.argmax(1) == batch["answer"]).sum())
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) * B
            if not math.isfinite(sums["loss"]):
                raise FloatingPointError(f"epoch {epoch + 1}: the loss is {float(losses['loss'])}; lower train.lr or check the data")
            bar.set_postfix(loss=f"{sums['loss'] / seen:.4f}", acc=f"{100 * correct / seen:.1f}")
        bar.close()
        return {**{k: v / seen for k, v in sums.items()}, "acc": 100.0 * correct / seen, "n": seen}

    # -- the loop --------------------------------------------------------------------------------
    def fit(self, stop_after: int | None = None) -> list[dict]:
        """Train to ``train.epochs`` (or stop after ``stop_after`` epochs of this call, as an interruption would)."""
        t = self.config.train
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.run_dir / CONFIG_FILE, yaml.safe_dump(to_dict(self.config), sort_keys=False).encode())
        records, done = [], 0
        self.log(f"train: {len(self.train_data.dataset)} questions, val: {len(self.val_data.dataset)}; device {self.device}"
                 f"{' (' + str(self.amp_dtype).removeprefix('torch.') + ' autocast)' if self.amp else ''}; "
                 f"{sum(p.numel() for p in self.model.parameters() if p.requires_grad):,} trainable parameters; "
                 f"run folder {self.run_dir}")
        with deterministic_algorithms(t.deterministic, self.device):
            while self.epoch < t.epochs and (stop_after is None or done < stop_after):
                records.append(self._one_epoch())
                done += 1
        return records

    def _one_epoch(self) -> dict:
        """Train one epoch, score val, save checkpoints, append a line to metrics.jsonl."""
        t = self.config.train
        epoch = self.epoch
        start = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        train_stats = self.train_epoch(epoch)
        scores = evaluate(self.model, self.val_data, self.config, self.device)
        value = selection_value(scores, self.config)
        improved = value >= self.best if t.select_compare == ">=" else value > self.best
        self.epoch = epoch + 1
        if improved:
            self.best = value
            save_torch(self.run_dir / "best.pt", {"model": self.model.state_dict(), "epoch": self.epoch,
                                                  "config": to_dict(self.config), "selection": {t.select_metric: value},
                                                  "dictionaries": dictionary_shapes(self.model)})
        save_torch(self.run_dir / "last.pt", self._state())
        record = {"epoch": self.epoch, "lr_start": lr, "train": train_stats, "val": scores, "selected": improved,
                  "select_metric": t.select_metric, "seconds": time.perf_counter() - start}
        self._write_metrics(record)
        row = scores.get(t.select_readout, {})
        self.log(f"epoch {self.epoch}: train loss {train_stats['loss']:.4f} acc {train_stats['acc']:.1f} | "
                 f"val Acc@QA {scores['qa_acc']:.2f}"
                 + (f" Acc@GQA ({t.select_readout}) {row['Acc@GQA']:.2f} mIoP {row['mIoP']:.2f}" if row else "")
                 + (" *" if improved else ""))
        return record
