"""Ground truth for faithfulness: where the frame weights and the spans of a model fall.

Every question of a synthetic world knows its evidence frames, its distractor (the answer's action
done by someone else) and its decoys (another event's action repeated); these functions measure a
model's weights and spans against them.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from cra.synthetic.config import NUM_FRAMES

#: frame roles returned by :func:`frame_roles`
BACKGROUND, EVIDENCE, DISTRACTOR, OTHER_EVENT, DECOY = 0, 1, 2, 3, 4
ROLE_NAMES = {
    BACKGROUND: "background",
    EVIDENCE: "evidence",
    DISTRACTOR: "distractor",
    OTHER_EVENT: "other event",
    DECOY: "decoy",
}


def frame_roles(entry: Mapping) -> np.ndarray:
    """Role of each of the 32 frames of a question (``truth[key]``): BACKGROUND, EVIDENCE,
    DISTRACTOR (the answer's action outside the evidence), OTHER_EVENT or DECOY (another event's
    action repeated).  ``(T,)`` int"""
    roles = np.full(NUM_FRAMES, BACKGROUND, dtype=np.int64)
    for j, event in enumerate(entry["events"]):
        first, last = event["frames"]
        roles[first : last + 1] = EVIDENCE if j == entry["queried_event"] else OTHER_EVENT
    for first, last in entry["distractor_frames"]:
        roles[first : last + 1] = DISTRACTOR
    for decoy in entry["decoys"]:
        first, last = decoy["frames"]
        roles[first : last + 1] = DECOY
    return roles


def uniform_mass(truth: Mapping[str, Mapping]) -> float:
    """Mean share of the frames that are evidence: the mass uniform weights put on the evidence."""
    return float(np.mean([(frame_roles(e) == EVIDENCE).mean() for e in truth.values()]))


def weight_mass(weights: Mapping[str, Sequence[float]], truth: Mapping[str, Mapping]) -> dict[str, float]:
    """Mean share of per-frame weights (``{key: 32 weights}``, e.g. ``w``) on each frame role.

    Only questions that have a distractor (decoy) count for ``"distractor"`` (``"decoy"``); each share is
    sum(w on role) / sum(w), averaged over questions.
    """
    shares: dict[str, list[float]] = {name: [] for name in ROLE_NAMES.values()}
    for key, w in weights.items():
        if key not in truth:
            raise KeyError(f"weights for {key!r}, which is not a question of this split")
        w = np.asarray(w, dtype=float)  # (T,)
        roles = frame_roles(truth[key])
        total = w.sum()
        for role, name in ROLE_NAMES.items():
            if (role == DISTRACTOR and not truth[key]["distractor_frames"]) or (
                role == DECOY and not truth[key]["decoys"]
            ):
                continue
            shares[name].append(float(w[roles == role].sum() / total) if total > 0 else float("nan"))
    return {name: float(np.mean(v)) if v else float("nan") for name, v in shares.items()}


def grounding_outcomes(
    spans: Mapping[str, Sequence[float]],
    correct: Mapping[str, bool],
    truth: Mapping[str, Mapping],
    threshold: float = 0.5,
) -> dict[str, float]:
    """Shares (percent, over ``spans``) of: right answer on the evidence (IoP >= t), right answer on a
    distractor (IoP with a distractor >= t: right for the wrong reason), right answer elsewhere,
    wrong answer. ``spans`` in seconds, as scored by :mod:`cra.metrics`."""
    from cra.metrics import best_iou_iop

    counts = {"right, on evidence": 0, "right, on distractor": 0, "right, elsewhere": 0, "wrong": 0}
    for key, span in spans.items():
        entry = truth[key]
        if not correct[key]:
            counts["wrong"] += 1
        elif best_iou_iop([entry["evidence_seconds"]], span)[1] >= threshold:
            counts["right, on evidence"] += 1
        elif entry["distractor_seconds"] and best_iou_iop(entry["distractor_seconds"], span)[1] >= threshold:
            counts["right, on distractor"] += 1
        else:
            counts["right, elsewhere"] += 1
    n = max(len(spans), 1)
    return {name: 100.0 * c / n for name, c in counts.items()}
