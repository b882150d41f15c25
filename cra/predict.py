"""Predictions of a trained model: whole splits in the official NExT-GQA formats, and one video in memory.

* :func:`predict_split` -> answers, per-frame weights ``w`` and intervals of every read-out for a
  split; :func:`score_predictions` scores them with :mod:`cra.metrics`; :func:`evaluate` does both.
* :func:`predict_run` writes a run's prediction files (``python -m cra predict``).
* :class:`Predictor` rebuilds a model from the config saved *inside* a checkpoint (no data files
  needed) and answers and grounds videos held in memory::

      predictor = Predictor.from_checkpoint("runs/synthetic/best.pt")
      result = predictor(frames, "what does the person do", ["run", "jump", "sit", "wave", "eat"],
                         frame_times=times, duration=34)
      result.answer, result.probabilities, result.weights, result.intervals["posthoc"]

Flow: ``cra.run`` (assembly) -> this module -> ``cra.metrics``; nothing here imports ``cra.train``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from cra import metrics
from cra.checkpoint import CheckpointError, load_checkpoint
from cra.config import ConfigError, RunConfig, check_keys, from_dict
from cra.model import CRA
from cra.model.cra import TOKENS_KEY
from cra.readouts import interval_readouts
from cra.run import (
    SplitData,
    autocast_settings,
    build_model,
    data_root,
    dictionary_placeholders,
    load_split,
    select_device,
    to_device,
    write_json,
)

__all__ = [
    "predict_split",
    "score_predictions",
    "evaluate",
    "predict_run",
    "config_from_checkpoint",
    "model_from_checkpoint",
    "Predictor",
    "Prediction",
]


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------
def read_out(
    model: CRA,
    w: torch.Tensor,
    frame_times: torch.Tensor,
    frame_mask: torch.Tensor,
    readouts: Sequence[str],
    duration: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """``{readout: (B, 2) float64 interval in seconds}`` from frame weights ``w`` (B, T), ``frame_times``
    (B, T) and the videos' ``duration`` (B,) s (gsub's integer duration: the window is in the released
    convention, :mod:`cra.readouts`).

    The one place where predictions turn weights into intervals (split files, :class:`Predictor`,
    and so training-time scores), with the read-out settings of the model's config
    (:func:`cra.readouts.interval_readouts`). Computed on the CPU in float64, as the official code."""
    cfg = model.config
    cpu = torch.device("cpu")
    return interval_readouts(
        w.detach().to(cpu, torch.float64),
        frame_times.to(cpu, torch.float64),
        frame_mask.to(cpu),
        readouts=tuple(readouts),
        window_sizes=cfg.window_sizes,
        thd_weight=cfg.posthoc_thd_weight,
        dis=cfg.posthoc_dis,
        duration=None if duration is None else duration.to(cpu, torch.float64),
    )


def split_durations(split: SplitData, video_ids: Sequence[str]) -> torch.Tensor:
    """(B,) float64 durations in seconds of ``video_ids`` from the split's gsub (its integer
    ``duration``, as the official evaluation converts normalised spans)."""
    missing = [v for v in video_ids if v not in split.gsub]
    if missing:
        raise ValueError(
            f"gsub_{split.name}.json has no entry for video(s) {sorted(set(missing))[:5]}: the window "
            "read-out needs each video's duration (expected every video of the split in gsub)"
        )
    return torch.tensor([float(split.gsub[v]["duration"]) for v in video_ids], dtype=torch.float64)


@torch.no_grad()
def predict_split(
    model: CRA, split: SplitData, config: RunConfig, device: torch.device, progress: bool = False, dist=None
) -> dict:
    """Answers, per-frame weights ``w`` and spans (seconds) of every read-out for every question.

    Returns ``{"qa": {key: {"prediction", "answer"}}, "weights": {key: [T floats]},
    "spans": {readout: {key: [start, end]}}, "diagnostics": {...}}`` (spans only when the split has
    frame times and gsub; diagnostics: :mod:`cra.diagnostics`, mass on the evidence when the split has gsub).
    Weights are the float32 model outputs as Python floats; spans are float64 seconds, read out as
    ``cra evaluate`` reads the written weights (so the two agree exactly for videos without padding).
    ``dist`` (several processes, each predicting its share): the diagnostics are those of every share.
    """
    from tqdm.auto import tqdm

    from cra.data import make_loader
    from cra.diagnostics import Diagnostics, recording

    enabled, dtype, _ = autocast_settings(config.train.amp, device)
    model.eval()
    out = {"qa": {}, "weights": {}, "spans": {r: {} for r in config.eval.readouts}}
    tokenizer = model.candidate_tokenizer(keys=("qa_texts",))  # the VQA pass's texts, tokenised by the loader
    loader = make_loader(
        split.dataset,
        batch_size=config.eval.batch_size,
        shuffle=False,
        num_workers=config.data.num_workers,
        **({} if tokenizer is None else {"collate_fn": tokenizer.collate}),
    )
    diagnostics = Diagnostics()
    for batch in tqdm(loader, desc=f"eval {split.name}", disable=not progress, leave=False, file=sys.stderr):
        optional = ("evidence_mask", TOKENS_KEY)
        keys = ("frames", "frame_mask", "qa_texts", *(k for k in optional if k in batch))
        inputs = to_device({k: batch[k] for k in keys}, device)  # VQA pass only
        with torch.autocast(device.type, dtype=dtype, enabled=enabled), recording(model, diagnostics):
            result = model(inputs)
        diagnostics.update(
            model, result, inputs.get("evidence_mask", _evidence(split, batch, w_shape=result.vqa.w.shape))
        )
        prediction = result.vqa.logits.float().argmax(1).cpu()
        w = result.vqa.w.float().cpu()  # (B, T)
        spans = {}
        if split.frame2time is not None and split.gsub is not None:
            times = torch.tensor([split.frame2time[v] for v in batch["video_id"]], dtype=torch.float64)  # (B, T) s
            spans = read_out(
                model, w, times, batch["frame_mask"], config.eval.readouts, split_durations(split, batch["video_id"])
            )
        for b, key in enumerate(batch["key"]):
            out["qa"][key] = {"prediction": int(prediction[b]), "answer": int(batch["answer"][b])}
            out["weights"][key] = w[b].tolist()
            for r, s in spans.items():
                out["spans"][r][key] = s[b].tolist()
    out["diagnostics"] = (diagnostics if dist is None else diagnostics.gathered(dist)).summary()
    return out


def _evidence(split: SplitData, batch: dict, w_shape) -> torch.Tensor | None:
    """(B, T) bool: frames inside the question's gsub segments, when the split has spans and times."""
    from cra.data.adjust import frames_in_segments

    if split.gsub is None or split.frame2time is None:
        return None
    T = w_shape[1]
    return torch.from_numpy(
        np.stack(
            [
                frames_in_segments(
                    split.frame2time[video], split.gsub.get(video, {}).get("location", {}).get(qid, ()), T
                )
                for video, qid in zip(batch["video_id"], batch["qid"])
            ]
        )
    )


def score_predictions(predictions: dict, split: SplitData) -> dict:
    """``{"qa_acc": percent over all questions, readout: metric row (+ FR, UF) ...}`` via :mod:`cra.metrics`."""
    qa = predictions["qa"]
    correct = {k: v["prediction"] == v["answer"] for k, v in qa.items()}
    scores = {"qa_acc": 100.0 * sum(correct.values()) / max(1, len(correct)), "n": len(correct)}
    if predictions.get("diagnostics"):
        scores["diagnostics"] = predictions["diagnostics"]
    if split.gsub is None:
        return scores
    for readout, spans in predictions["spans"].items():
        report = metrics.evaluate_grounding(split.gsub, spans, correct, subset=set(qa))
        scores[readout] = {**report.row(), **{k: report.metrics[k] for k in metrics.DIAGNOSTIC_KEYS}}
    return scores


def evaluate(
    model: CRA, split: SplitData, config: RunConfig, device: torch.device, progress: bool = False, dist=None
) -> dict:
    """:func:`predict_split` then :func:`score_predictions`. ``dist`` (:class:`cra.distributed.DistInfo`)
    with several processes: each predicts its contiguous share of the split (no padding), the shares
    are gathered and checked (every question exactly once) and every rank scores the whole split."""
    if dist is None or not dist.enabled:
        return score_predictions(predict_split(model, split, config, device, progress), split)
    from dataclasses import replace

    from cra import distributed

    share = torch.utils.data.Subset(split.dataset, distributed.shard_indices(len(split.dataset), dist))
    part = predict_split(model, replace(split, dataset=share), config, device, progress and dist.is_main, dist)
    keys = [r.key for r in split.dataset.records]
    return score_predictions(distributed.gather_predictions(part, keys, dist), split)


# --------------------------------------------------------------------------------------------
# Models from checkpoints
# --------------------------------------------------------------------------------------------
def config_from_checkpoint(checkpoint: dict, path: Path | str = "checkpoint") -> RunConfig:
    """The :class:`RunConfig` saved inside a checkpoint (checked like a config file)."""
    values = checkpoint.get("config")
    if not isinstance(values, dict):
        raise CheckpointError(f"{path}: no saved config (expected a dict under 'config')")
    try:
        check_keys(values, RunConfig, str(path))
        return from_dict(RunConfig, values)
    except ConfigError as err:
        raise CheckpointError(f"{path}: the saved config is not valid for this cra: {err}") from None


def model_from_checkpoint(config: RunConfig, checkpoint: dict, path: Path | str = "checkpoint") -> CRA:
    """CRA of ``config`` with the checkpoint's weights; the dictionaries come from its state dict."""
    shapes = checkpoint.get("dictionaries", {})
    m = config.model
    for name, key, size in (("Z_l", "num_z_entries", m.num_z_entries), ("X_hat", "num_x_entries", m.num_x_entries)):
        if name in shapes and shapes[name][0] != size:
            raise CheckpointError(f"{path}: {name} has {shapes[name][0]} entries but the saved model.{key}={size}")
    model = build_model(config, dictionary_placeholders(shapes))
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the model of its saved config: {err}") from None
    return model


# --------------------------------------------------------------------------------------------
# A run's prediction files
# --------------------------------------------------------------------------------------------
def predict_run(
    run_dir: Path | str,
    split: str,
    *,
    checkpoint: str = "best",
    out: Path | str | None = None,
    device: str | None = None,
    progress: bool = False,
) -> tuple[list[Path], dict]:
    """Write the prediction files of ``split`` for the run's ``checkpoint``; returns (paths, scores).

    The model and the data settings come from the config saved inside the checkpoint. Scores
    (:func:`score_predictions`) are computed when the split has ``gsub`` and ``frame2time`` files;
    a split without them (train) gets QA results and weights only.
    """
    run_dir = Path(run_dir)
    ckpt_path = Path(checkpoint) if checkpoint not in ("best", "last") else run_dir / f"{checkpoint}.pt"
    state = load_checkpoint(ckpt_path, "cpu")
    config = config_from_checkpoint(state, ckpt_path)
    if device is not None:
        config.train.device = device
    torch_device = select_device(config.train.device)
    folder = data_root(config) / config.data.annotations
    grounding = (folder / f"gsub_{split}.json").is_file() and (folder / f"frame2time_{split}.json").is_file()
    data = load_split(config, split, grounding=grounding)
    model = model_from_checkpoint(config, state, ckpt_path).to(torch_device)
    predictions = predict_split(model, data, config, torch_device, progress)
    out = Path(out) if out is not None else run_dir / "predictions"
    written = [out / f"{split}-res.json", out / f"{split}_ground_att.json"]
    write_json(written[0], predictions["qa"])
    write_json(written[1], predictions["weights"])
    if grounding:
        for readout, spans in predictions["spans"].items():
            written.append(out / f"{split}_ground_{readout}.json")
            write_json(written[-1], spans)
    scores = score_predictions(predictions, data)
    if grounding:
        written.append(out / f"{split}_scores.json")
        write_json(written[-1], {"checkpoint": str(ckpt_path), "epoch": state.get("epoch"), **scores})
    return written, scores


# --------------------------------------------------------------------------------------------
# One video in memory
# --------------------------------------------------------------------------------------------
@dataclass
class Prediction:
    """The model's reading of one question about one video."""

    answer: int  # index of the chosen candidate
    probabilities: torch.Tensor  # (K,) softmax over the candidates
    weights: torch.Tensor  # (T,) the grounding weights w over the video's frames
    intervals: dict[str, tuple[float, float]]  # read-out -> (start, end) in seconds (frame units without times)
    duration: float  # s, the duration the window read-out used (given, or guessed from the frame times)


class Predictor:
    """A trained CRA that answers and grounds questions about videos held in memory.

    ``predictor(frames, question, candidates, frame_times=None, duration=None)``: ``frames`` (T, D)
    tensor or array of frame features (the same features as training: ``model.feature_dim``),
    ``candidates`` the K answer strings, ``frame_times`` (T,) seconds of each frame (without them,
    frame i is at i: intervals are in frame units), ``duration`` the video's length in seconds, which
    the window read-out scales by (released convention; NExT-GQA's gsub gives it). Without it the
    duration is guessed as t_first + t_last (:func:`cra.readouts.duration_from_frame_times`). More
    than ``data.num_frames`` frames are sampled uniformly, as the data loader does.
    """

    def __init__(self, model: CRA, config: RunConfig, device: torch.device | str | None = None):
        self.config = config
        self.device = select_device(config.train.device if device is None else str(device))
        self.model = model.to(self.device).eval()

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: torch.device | str | None = None) -> "Predictor":
        """Rebuild the model from the config and weights saved in ``path`` (``best.pt`` or ``last.pt``
        of a run); reads no other file. ``device``: default CUDA when available, else CPU."""
        state = load_checkpoint(path, "cpu")
        config = config_from_checkpoint(state, path)
        config.train.device = "auto" if device is None else str(device)  # not necessarily the training device
        return cls(model_from_checkpoint(config, state, path), config)

    def __call__(
        self, frames, question: str, candidates: Sequence[str], frame_times=None, duration: float | None = None
    ) -> Prediction:
        return self.batch(
            [frames],
            [question],
            [candidates],
            None if frame_times is None else [frame_times],
            None if duration is None else [duration],
        )[0]

    @torch.no_grad()
    def batch(
        self,
        frames: Sequence,
        questions: Sequence[str],
        candidates: Sequence[Sequence[str]],
        frame_times: Sequence | None = None,
        duration: Sequence[float] | None = None,
    ) -> list[Prediction]:
        """:meth:`__call__` for B videos at once (each its own T; shorter ones are padded and masked);
        ``duration``: B seconds, or ``None`` to guess each from its frame times."""
        from cra.data.dataset import QA_TEMPLATE
        from cra.data.features import uniform_indices
        from cra.readouts import duration_from_frame_times

        B = len(frames)
        counts = {"frame_times": frame_times, "duration": duration}
        if not (len(questions) == len(candidates) == B) or any(v is not None and len(v) != B for v in counts.values()):
            given = "".join(f", {len(v)} {k}" for k, v in counts.items() if v is not None)
            raise ValueError(
                f"Predictor.batch: {B} videos, {len(questions)} questions, {len(candidates)} candidate "
                f"lists{given}: expected one each"
            )
        D, limit = self.config.model.feature_dim, self.config.data.num_frames
        videos, times, seconds = [], [], []
        for b in range(B):
            x = torch.as_tensor(np.asarray(frames[b]), dtype=torch.float32)  # (T, D)
            if x.ndim != 2 or x.shape[1] != D or x.shape[0] == 0:
                raise ValueError(f"frames[{b}]: expected a (T, {D}) array with T >= 1, got shape {tuple(x.shape)}")
            t = (
                torch.arange(len(x), dtype=torch.float64)
                if frame_times is None
                else torch.as_tensor(np.asarray(frame_times[b], dtype=np.float64))
            )
            if t.shape != (len(x),):
                raise ValueError(
                    f"frame_times[{b}]: expected {len(x)} times (one per frame), got shape {tuple(t.shape)}"
                )
            d = duration_from_frame_times(t.tolist()) if duration is None else float(duration[b])
            if not (math.isfinite(d) and d > 0):
                raise ValueError(f"duration[{b}] = {d}: expected a positive number of seconds")
            seconds.append(d)
            keep = torch.as_tensor(uniform_indices(len(x), limit))  # at most data.num_frames frames
            videos.append(x[keep])
            times.append(t[keep])
        T = max(len(x) for x in videos)
        padded = torch.zeros(B, T, D)  # (B, T, D)
        mask = torch.zeros(B, T, dtype=torch.bool)  # (B, T)
        frame_times_bt = torch.zeros(B, T, dtype=torch.float64)  # (B, T)
        for b, (x, t) in enumerate(zip(videos, times)):
            padded[b, : len(x)], mask[b, : len(x)], frame_times_bt[b, : len(x)] = x, True, t
        qa_texts = [
            [QA_TEMPLATE.format(question=q, answer=a) for a in cands] for q, cands in zip(questions, candidates)
        ]
        inputs = to_device({"frames": padded, "frame_mask": mask, "qa_texts": qa_texts}, self.device)
        enabled, dtype, _ = autocast_settings(self.config.train.amp, self.device)
        with torch.autocast(self.device.type, dtype=dtype, enabled=enabled):
            result = self.model(inputs).vqa
        logits, w = result.logits.float(), result.w.float()  # (B, K), (B, T)
        spans = read_out(
            self.model, w, frame_times_bt, mask, self.config.eval.readouts, torch.tensor(seconds, dtype=torch.float64)
        )  # float64, on the CPU
        answers, probabilities, w = logits.argmax(1).cpu(), logits.softmax(1).cpu(), w.cpu()
        return [
            Prediction(
                answer=int(answers[b]),
                probabilities=probabilities[b],
                weights=w[b, : len(videos[b])],
                intervals={r: tuple(float(v) for v in s[b]) for r, s in spans.items()},
                duration=seconds[b],
            )
            for b in range(B)
        ]
