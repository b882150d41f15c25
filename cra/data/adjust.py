r"""Training-data options of the study (issue 14): the true evidence frames in every batch, and
data-level adjustment of the training distribution by inverse-propensity resampling.

* :class:`WithEvidence` adds ``evidence_mask`` (T,) bool (frame times inside the question's gsub
  segments: the true grounding) and ``evidence_supervised`` (bool: this question's span may supervise
  the grounding, a fixed fraction of the questions chosen by a hash of the key) to every item.
* :class:`Resampled` draws, each epoch, ``N`` training questions with replacement with probability
  proportional to the stabilised inverse propensity of a confounder proxy ``s``:

  .. math::  \omega(a, s) = \frac{P(a)\, P(s)}{P(a, s)},\qquad P(i \text{ drawn}) \propto \omega(a_i, s_i)

  so that in the resampled data the answer and ``s`` are independent (the data-level back-door
  adjustment, :math:`P(a \mid do(s))`). ``s`` is the true scene (:func:`scene_of`, a synthetic
  world's truth file) or the frame-cluster proxy :math:`\hat x` (:func:`xhat_of`: the ``X_hat`` entry
  nearest to most of a video's frames).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from cra.data.errors import DataFormatError

__all__ = [
    "REWEIGHT",
    "frames_in_segments",
    "evidence_masks",
    "supervised_keys",
    "WithEvidence",
    "Resampled",
    "propensity_weights",
    "scene_of",
    "xhat_of",
]

#: ``data.reweight`` choices
REWEIGHT = ("none", "scene", "xhat")


def frames_in_segments(times: Sequence[float], segments: Sequence[Sequence[float]], num_frames: int) -> np.ndarray:
    """(num_frames,) bool: the frames whose time (seconds) lies in one of ``segments`` ([start, end] seconds)."""
    times = np.asarray(times[:num_frames], dtype=float)  # (T,)
    mask = np.zeros(num_frames, dtype=bool)
    for start, end in segments:
        mask[: len(times)] |= (times >= start) & (times <= end)
    return mask


def evidence_masks(records, gsub: Mapping, frame2time: Mapping, num_frames: int) -> dict[str, np.ndarray]:
    """key -> (T,) bool: the frames whose time lies in one of the question's gsub segments."""
    masks = {}
    for r in records:
        entry = gsub.get(r.video_id)
        segments = None if entry is None else entry["location"].get(r.qid)
        if segments is None:
            raise DataFormatError("gsub", f"question {r.key}", "no segment", "the true span of every question")
        masks[r.key] = frames_in_segments(frame2time[r.video_id], segments, num_frames)
    return masks


def supervised_keys(keys: Sequence[str], fraction: float) -> set[str]:
    """The questions whose span supervises the grounding: crc32(key) / 2^32 < fraction (fixed per key)."""
    return {k for k in keys if zlib.crc32(k.encode()) / 2**32 < fraction}


class WithEvidence(torch.utils.data.Dataset):
    """``dataset``'s items plus ``evidence_mask`` and ``evidence_supervised`` (see the module doc)."""

    def __init__(self, dataset, masks: Mapping[str, np.ndarray], supervised: set[str] = frozenset()):
        self.dataset, self.masks, self.supervised = dataset, masks, set(supervised)
        self.records = dataset.records

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def seed(self):
        return self.dataset.seed

    @seed.setter
    def seed(self, value):
        self.dataset.seed = value

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        T = item["frames"].shape[0]
        mask = self.masks[item["key"]][:T]
        return {
            **item,
            "evidence_mask": torch.from_numpy(mask.copy()),
            "evidence_supervised": item["key"] in self.supervised,
        }


def propensity_weights(answers: Sequence, proxies: Sequence) -> np.ndarray:
    """omega_i = P(a_i) P(s_i) / P(a_i, s_i) from the counts, scaled to mean 1: (N,)."""
    n = len(answers)
    ca, cs, cas = Counter(answers), Counter(proxies), Counter(zip(answers, proxies))
    w = np.array([ca[a] * cs[s] / (n * cas[(a, s)]) for a, s in zip(answers, proxies)], dtype=float)
    return w / w.mean()


class Resampled(torch.utils.data.Dataset):
    """``N`` items of ``dataset`` drawn with replacement with probabilities ``weights``; redrawn whenever
    ``seed`` is set (the trainer sets it each epoch), so each epoch sees a fresh reweighted sample."""

    def __init__(self, dataset, weights: np.ndarray):
        if len(weights) != len(dataset) or not np.all(np.asarray(weights) > 0):
            raise ValueError(f"Resampled: {len(weights)} positive weights needed for {len(dataset)} items")
        self.dataset, self.weights = dataset, np.asarray(weights, dtype=float)
        self.records = dataset.records
        self._seed = None
        self.seed = getattr(dataset, "seed", 0)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def seed(self):
        return self._seed

    @seed.setter
    def seed(self, value):
        self._seed = value
        self.dataset.seed = value
        rng = np.random.default_rng(0 if value is None else int(value))
        self.order = rng.choice(len(self.dataset), len(self.dataset), p=self.weights / self.weights.sum())

    def __getitem__(self, index: int) -> dict:
        return self.dataset[int(self.order[index])]


def scene_of(records, truth_path: Path) -> list:
    """The true scene of each question, from a synthetic world's ``truth_<split>.json``."""
    if not truth_path.is_file():
        raise DataFormatError(truth_path, "file", "absent", "a synthetic world's truth file (data.reweight=scene)")
    truth = json.loads(truth_path.read_text())
    missing = [r.key for r in records if r.key not in truth or "scene" not in truth[r.key]]
    if missing:
        raise DataFormatError(truth_path, f"question {missing[0]}", "no 'scene'", "the scene of every question")
    return [truth[r.key]["scene"] for r in records]


def xhat_of(records, features, X_hat: torch.Tensor) -> list[int]:
    """The frame-cluster proxy of each question's video: the X_hat entry nearest (L2) to most of its frames."""
    centres = X_hat.float().numpy()  # (K, D)
    proxies, cache = [], {}
    for r in records:
        if r.video_id not in cache:
            frames, mask = features.get(r.video_id)  # (T, D), (T,)
            x = np.asarray(frames, dtype=np.float32)[np.asarray(mask, dtype=bool)]
            nearest = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)  # (T,)
            cache[r.video_id] = int(np.bincount(nearest, minlength=len(centres)).argmax())
        proxies.append(cache[r.video_id])
    return proxies
