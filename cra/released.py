"""The CRA authors' released FrozenBiLM predictions on NExT-GQA val, and the spans read from them.

Files (under ``$CRA_DATA_DIR``; ``cra_released/`` is not downloadable, copy it by hand)::

    nextgqa/val.csv, gsub_val.json, frame2time_val.json    official annotations (python -m cra download)
    cra_released/val-res.json         key -> {"prediction", "answer"}: the model's answers
    cra_released/val_ground_att.json  key -> 32 raw temporal attention weights ("raw")
    cra_released/val_ground_gs.json   key -> 32 Gaussian-smoothed GSG weights ("smoothed"; a softmax: they sum to 1)

Four (read-out, weights) pairs turn the weights into spans, all in seconds (``READOUTS``, by display
label; the read-outs are the per-question references of :mod:`cra.readouts`):

* post-hoc on the raw attention: the official NExT-GQA adaptive threshold;
* window on the smoothed weights: CRA's best-sum window of 1/3/5 frames, released convention,
  converted with :func:`cra.metrics.to_seconds` as the official evaluation does;
* post-hoc on the smoothed weights;
* merge across the two curves, window(smoothed) ∩ post-hoc(raw), as the released code merges
  (its pipelines take the post-hoc span of the raw attention and the window of the GSG weights).
  Not the read-out ``merge`` of :mod:`cra.readouts` (and of training and ``cra predict``), which
  intersects the window and the post-hoc span of *one* set of weights: hence the name
  :data:`MERGE_SMOOTHED_RAW`.

The spans equal those of the official scripts run on these files, bit for bit
(``tests/fixtures/official_eval/``, made by ``scripts/official_eval/make_reference.py``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cra import metrics, paths, readouts
from cra.data.keys import question_key, split_key
from cra.data.nextgqa import (
    QARecord,
    read_frame2time,
    read_frame_weights,
    read_gsub,
    read_qa_answers,
    read_qa_csv,
)

ANNOTATIONS = ("nextgqa/val.csv", "nextgqa/gsub_val.json", "nextgqa/frame2time_val.json")
RELEASED = ("cra_released/val-res.json", "cra_released/val_ground_att.json", "cra_released/val_ground_gs.json")
POSTHOC_RAW = "post-hoc, raw attention"
WINDOW = "window, smoothed weights"
POSTHOC_SMOOTHED = "post-hoc, smoothed weights"
MERGE_SMOOTHED_RAW = "merge: window(smoothed) ∩ post-hoc(raw)"
#: display label -> (read-out of :data:`cra.readouts.READOUTS`, weights it reads); the merge takes
#: the window of the smoothed weights and the post-hoc span of the raw attention, as the released code does
#: (cra.readouts' ``merge`` uses one set of weights for both).
READOUTS = {
    POSTHOC_RAW: ("posthoc", "raw"),
    WINDOW: ("window", "smoothed"),
    POSTHOC_SMOOTHED: ("posthoc", "smoothed"),
    MERGE_SMOOTHED_RAW: ("merge", ("smoothed", "raw")),
}


def readout_spans(
    gsub: Mapping[str, Mapping],
    frame2time: Mapping[str, Sequence[float]],
    att: Mapping[str, Sequence[float]],
    gs: Mapping[str, Sequence[float]],
) -> dict[str, dict[str, list[float]]]:
    """The spans (seconds) of every read-out in ``READOUTS``, for the questions of ``gsub``;
    ``att`` are the raw weights, ``gs`` the smoothed ones."""
    posthoc_raw = readouts.posthoc_spans(att, frame2time)
    window_normalized = readouts.window_spans(gs)  # released convention
    durations = {question_key(vid, qid): e["duration"] for vid, e in gsub.items() for qid in e["location"]}
    window = {k: metrics.to_seconds(s, durations[k]) for k, s in window_normalized.items() if k in durations}
    return {
        POSTHOC_RAW: posthoc_raw,
        WINDOW: window,
        POSTHOC_SMOOTHED: readouts.posthoc_spans(gs, frame2time),
        MERGE_SMOOTHED_RAW: readouts.merge_spans(window_normalized, posthoc_raw, gsub),
    }


@dataclass
class ReleasedQuestion:
    """Everything the explorer shows about one val question."""

    key: str
    record: QARecord  # question, candidates, right answer
    prediction: int  # the model's answer (index into the candidates)
    duration: float  # s (the integer duration of gsub)
    segments: list[list[float]]  # ground truth, s
    frame_times: list[float]  # (T,) s, frame2time
    att: list[float]  # (T,) raw attention
    gs: list[float]  # (T,) smoothed GSG weights
    spans: dict[str, list[float]]  # read-out -> [t_s, t_e] in s

    @property
    def correct(self) -> bool:
        return self.prediction == self.record.answer

    def scores(self) -> dict[str, tuple[float, float]]:
        """read-out -> (IoU, IoP) with the official rule (best over the segments, each on its own)."""
        return {name: metrics.best_iou_iop(self.segments, span) for name, span in self.spans.items()}


@dataclass
class ReleasedVal:
    """The released val predictions with the annotations they are scored against."""

    gsub: dict
    frame2time: dict
    questions: dict[str, QARecord]
    answers: dict[str, tuple[int, int]]  # key -> (prediction, answer)
    att: dict[str, list[float]]
    gs: dict[str, list[float]]
    spans: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # read-out -> key -> span

    @property
    def correct(self) -> dict[str, bool]:
        return {k: p == a for k, (p, a) in self.answers.items()}

    @property
    def keys(self) -> list[str]:
        """Ground-truth questions in file order."""
        return [question_key(vid, qid) for vid, e in self.gsub.items() for qid in e["location"]]

    def question(self, key: str) -> ReleasedQuestion:
        vid, qid = split_key(key)
        entry = self.gsub[vid]
        return ReleasedQuestion(
            key=key,
            record=self.questions[key],
            prediction=self.answers[key][0],
            duration=float(entry["duration"]),
            segments=entry["location"][qid],
            frame_times=self.frame2time[vid],
            att=self.att[key],
            gs=self.gs[key],
            spans={name: spans[key] for name, spans in self.spans.items()},
        )

    def reports(self, **kwargs) -> dict[str, metrics.GroundingReport]:
        """:func:`cra.metrics.evaluate_grounding` of every read-out with the model's answers."""
        return {
            name: metrics.evaluate_grounding(self.gsub, spans, self.correct, **kwargs)
            for name, spans in self.spans.items()
        }


def missing_files(root: Path | None = None) -> list[str]:
    """The files :func:`load_released_val` needs that are absent under the data root."""
    root = Path(root) if root is not None else paths.data_dir()
    return [p for p in (*ANNOTATIONS, *RELEASED) if not (root / p).is_file()]


def load_released_val(root: Path | None = None) -> ReleasedVal:
    """Read the annotations and the released val predictions and compute every read-out.

    Raises :class:`cra.paths.DataNotFoundError` naming the first missing file (see :func:`missing_files`).
    """
    f = {p: paths.data_file(p, root) for p in (*ANNOTATIONS, *RELEASED)}
    released = ReleasedVal(
        gsub=read_gsub(f["nextgqa/gsub_val.json"]),
        frame2time=read_frame2time(f["nextgqa/frame2time_val.json"]),
        questions=read_qa_csv(f["nextgqa/val.csv"]).by_key(),
        answers=read_qa_answers(f["cra_released/val-res.json"]),
        att=read_frame_weights(f["cra_released/val_ground_att.json"]),
        gs=read_frame_weights(f["cra_released/val_ground_gs.json"]),
    )
    released.spans = readout_spans(released.gsub, released.frame2time, released.att, released.gs)
    return released


# --------------------------------------------------------------------------------------------
# Does the span depend on the question?
# --------------------------------------------------------------------------------------------
def interval_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Plain IoU of two intervals [s, e]: max(0, overlap) / union; two equal points give 1."""
    inter = max(0.0, min(a[-1], b[-1]) - max(a[0], b[0]))
    union = max(a[-1], b[-1]) - min(a[0], b[0])
    return inter / union if union > 0 else float(a[0] == b[0] and a[-1] == b[-1])


def hull_spans(gsub: Mapping[str, Mapping]) -> dict[str, list[float]]:
    """Per question, the smallest interval holding all its ground-truth segments."""
    return {
        question_key(vid, qid): [min(s for s, _ in segs), max(e for _, e in segs)]
        for vid, e in gsub.items()
        for qid, segs in e["location"].items()
    }


def question_invariance(spans: Mapping[str, Sequence[float]]) -> tuple[float, int]:
    """(mean over videos of the mean pairwise :func:`interval_iou` between the spans of its questions,
    in percent; number of videos with at least two questions). 100 = every question of a video gets
    the same span; the ground truth (:func:`hull_spans`) shows how much the evidence moves."""
    by_video: dict[str, list] = {}
    for key, span in spans.items():
        by_video.setdefault(split_key(key)[0], []).append(span)
    per_video = [
        np.mean([interval_iou(a, b) for a, b in itertools.combinations(v, 2)]) for v in by_video.values() if len(v) > 1
    ]
    return (100.0 * float(np.mean(per_video)) if per_video else float("nan")), len(per_video)


def showcase_keys(
    released: ReleasedVal, per_group: int = 2, readout: str = POSTHOC_SMOOTHED, seed: int = 0
) -> list[str]:
    """A small, reproducible mix of questions for the explorer: ``per_group`` each of answered right
    and grounded (IoP >= 0.5 under ``readout``), right but not grounded, wrong, and multi-segment;
    questions are visited in a random order fixed by ``seed``, one question per video at most."""
    groups: dict[str, list[str]] = {
        "right, grounded": [],
        "right, not grounded": [],
        "wrong": [],
        "several segments": [],
    }
    keys = released.keys
    seen_videos = set()
    for index in np.random.default_rng(seed).permutation(len(keys)):
        key = keys[index]
        vid, qid = split_key(key)
        if vid in seen_videos:
            continue
        segments = released.gsub[vid]["location"][qid]
        _, iop = metrics.best_iou_iop(segments, released.spans[readout][key])
        right = released.correct[key]
        group = (
            "several segments"
            if len(segments) > 1
            else "wrong"
            if not right
            else "right, grounded"
            if iop >= metrics.GQA_IOP
            else "right, not grounded"
        )
        if len(groups[group]) < per_group:
            groups[group].append(key)
            seen_videos.add(vid)
    return [k for g in groups.values() for k in g]
