"""Scores of one trained model on one split: the official metrics (:mod:`cra.metrics`, through
:func:`cra.predict.score_predictions`) and the faithfulness measures only a world with known causes
allows; and the random-span baseline."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from cra.data.keys import split_key
from cra.study.plan import DIAG, METRICS, SPLITS

__all__ = ["faithfulness", "split_rows", "random_spans", "random_span_rows", "cached_truth"]

_TRUTH_CACHE: dict[str, dict] = {}


def cached_truth(world: str, split: str) -> dict:
    """:func:`cra.synthetic.load_truth`, read once per (world, split) and process."""
    from cra.synthetic import load_truth

    key = f"{world}::{split}"
    if key not in _TRUTH_CACHE:
        _TRUTH_CACHE[key] = load_truth(world, split)
    return _TRUTH_CACHE[key]


def faithfulness(
    qa: Mapping[str, Mapping],
    weights: Mapping[str, Sequence[float]],
    spans: Mapping[str, Sequence[float]],
    candidates: Mapping[str, Sequence[str]],
    truth: Mapping[str, Mapping],
) -> dict[str, float]:
    """What only a world with known causes can measure, for one split (all in percent):

    * ``mass_evidence`` / ``mass_distractor`` / ``mass_decoy``: mean share of the frame weights ``w`` on
      the evidence, on the distractor (questions that have one) and on decoys
      (:func:`cra.synthetic.weight_mass`); uniform weights give the frames' share of the video.
    * ``right_on_evidence`` / ``right_on_distractor`` / ``right_elsewhere``: shares of all questions
      answered right with the span on the evidence (IoP >= 0.5), on the distractor (right for the wrong
      reason) or neither (:func:`cra.synthetic.grounding_outcomes`).
    * ``follows_word`` / ``follows_scene``: among questions whose word (scene) shortcut points to a
      wrong candidate, the share answered with that candidate (chance: 20 %).
    """
    from cra.synthetic import grounding_outcomes, weight_mass

    correct = {k: v["prediction"] == v["answer"] for k, v in qa.items()}
    mass = weight_mass(weights, truth)
    outcomes = grounding_outcomes(spans, correct, truth)
    out = {
        "mass_evidence": 100 * mass["evidence"],
        "mass_distractor": 100 * mass["distractor"],
        "mass_decoy": 100 * mass["decoy"],
        "right_on_evidence": outcomes["right, on evidence"],
        "right_on_distractor": outcomes["right, on distractor"],
        "right_elsewhere": outcomes["right, elsewhere"],
    }
    for name, field_name in (("follows_word", "word_partner"), ("follows_scene", "scene_partner")):
        hits = total = 0
        for key, result in qa.items():
            shortcut = truth[key][field_name]
            if shortcut is None or shortcut == truth[key]["answer"]:
                continue
            total += 1
            hits += candidates[key][result["prediction"]] == shortcut
        out[name] = 100.0 * hits / total if total else math.nan
    return out


def split_rows(predictions: dict, data, truth: dict) -> dict[str, dict]:
    """Per read-out: the official metrics and the faithfulness measures of one split."""
    from cra.predict import score_predictions

    scores = score_predictions(predictions, data)
    candidates = {r.key: r.candidates for r in data.qa.records}
    rows = {}
    for readout, spans in predictions["spans"].items():
        row = {k: scores[readout][k] for k in METRICS}
        row.update(faithfulness(predictions["qa"], predictions["weights"], spans, candidates, truth))
        diagnostics = predictions.get("diagnostics", {})  # cra.diagnostics; a switched-off part has none
        row.update({k: diagnostics.get(k, math.nan) for k in DIAG})
        rows[readout] = row
    return rows


def random_spans(qa: Mapping[str, Any], frame2time: Mapping[str, Sequence[float]], seed: int) -> dict[str, list[float]]:
    """A span between two frames drawn uniformly (sorted) for every question: the random-span baseline."""
    rng = np.random.default_rng(seed)
    out = {}
    for key in sorted(qa):
        times = frame2time[split_key(key)[0]]
        first, last = sorted(rng.integers(0, len(times), size=2).tolist())
        out[key] = [float(times[first]), float(times[last])]
    return out


def random_span_rows(world: Path, answers: dict, seed: int, readouts: Sequence[str]) -> dict[str, dict]:
    """Random spans with CRA's answers; uniform frame weights for the weight masses."""
    from cra.data.nextgqa import read_frame2time, read_gsub, read_qa_csv
    from cra.run import SplitData
    from cra.synthetic import NUM_FRAMES, split_paths

    rows = {}
    for split in SPLITS:
        paths = split_paths(world, split)
        qa = answers[split]
        data = SplitData(split, read_qa_csv(paths["qa"]), None, read_gsub(paths["gsub"]))
        spans = random_spans(qa, read_frame2time(paths["frame2time"]), seed)
        weights = {k: [1.0 / NUM_FRAMES] * NUM_FRAMES for k in qa}
        predictions = {"qa": qa, "weights": weights, "spans": {r: spans for r in readouts}}
        rows[split] = split_rows(predictions, data, cached_truth(str(world), split))
    return rows
