"""Grounded-QA metrics with the exact semantics of the official NExT-GQA evaluation: scoring only
(spans in, numbers out; the read-outs that turn frame weights into spans are :mod:`cra.readouts`).

Reference: ``eval_ground.py`` and ``tools/getspan.py`` of doc-doc/NExT-GQA (see
``docs/nextgqa_eval_semantics.md``). Everything here is written from those semantics; no code is
copied. Conventions, all as in the official script:

* a prediction ``span`` is read through ``span[0]`` and ``span[-1]`` only, in seconds;
* normalised spans become seconds as ``round(span * duration, 1)`` (numpy's half-to-even), with
  the *integer* ``duration`` of ``gsub``, and are **not clipped** to the video;
* a question's IoU and IoP are the maxima over its ground-truth segments taken *separately*
  (no union of segments), both maxima starting at 0, taken independently of each other;
* thresholds are inclusive (``>=``); Acc@GQA = answer correct **and** IoP >= 0.5;
* a zero-length prediction scores IoU 0 and IoP 1 when it lies inside a segment (bounds included).

Two lax points of the official code get an explicit, reported choice: questions without a
prediction are skipped (official; their count and ids are reported) or scored 0 (``strict``), and
zero-length predictions are counted.

Symbols (``book/notation.md``): ``span`` = :math:`t^*=[t_s, t_e]`, ``segments`` = the ground-truth
segments :math:`\\tau_{gt}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from cra.data.keys import question_key

#: The metric columns, in the order of the NExT-GQA protocol (all in percent).
METRIC_KEYS = ("Acc@QA", "Acc@GQA", "mIoP", "IoP@0.3", "IoP@0.5", "mIoU", "IoU@0.3", "IoU@0.5")
#: Faithfulness diagnostics the released CRA code computes but does not print.
DIAGNOSTIC_KEYS = ("FR", "UF@0.3", "UF@0.5")
THRESHOLDS = (0.3, 0.5)
#: Acc@GQA's IoP threshold.
GQA_IOP = 0.5

GSub = Mapping[str, Mapping]  # {video_id: {"duration": int, "location": {qid: [[s, e], ...]}, ...}}


# --------------------------------------------------------------------------------------------
# One prediction against one ground-truth segment
# --------------------------------------------------------------------------------------------
def iou_iop(segment: Sequence[float], span: Sequence[float]) -> tuple[float, float]:
    """(IoU, IoP) of prediction ``span`` against one ground-truth ``segment`` [s, e].

    IoU = inter / hull and IoP = inter / (t_e - t_s) with inter = min(ends) - max(starts), which is
    negative for disjoint segments (the caller's max with 0 removes that). A reversed span has
    IoP 0. A zero-length span gives (0, 1) if ``s <= t_s <= e`` else (0, 0).
    """
    t_s, t_e = span[0], span[-1]
    g_s, g_e = segment[0], segment[-1]
    if t_s == t_e:
        return 0.0, 1.0 if g_s <= t_s <= g_e else 0.0
    inter = min(g_e, t_e) - max(g_s, t_s)
    hull = max(g_e, t_e) - min(g_s, t_s)  # equals the union whenever the two overlap
    iou = inter / hull if hull > 0 else 0.0
    iop = inter / (t_e - t_s) if t_e > t_s else 0.0
    return iou, iop


def best_iou_iop(segments: Iterable[Sequence[float]], span: Sequence[float]) -> tuple[float, float]:
    """max IoU and max IoP over the ground-truth ``segments``, each maximum taken on its own, from 0."""
    best_iou = best_iop = 0.0
    for segment in segments:
        iou, iop = iou_iop(segment, span)
        best_iou, best_iop = max(best_iou, iou), max(best_iop, iop)
    return best_iou, best_iop


def to_seconds(span: Sequence[float], duration: float) -> list[float]:
    """A normalised span in seconds as the official code converts it: round(span * duration, 1).

    numpy rounds half to even; the result is not clipped to [0, duration].
    """
    return np.round(np.asarray(span, dtype=float) * duration, 1).tolist()


# --------------------------------------------------------------------------------------------
# Aggregation over a split
# --------------------------------------------------------------------------------------------
@dataclass
class GroundingReport:
    """The metrics of one prediction set plus everything the official script does not tell."""

    metrics: dict[str, float]  # METRIC_KEYS + DIAGNOSTIC_KEYS (percent) and "n"
    n: int  # questions counted (the denominator)
    n_gt: int  # questions in the ground-truth file (after ``subset``)
    strict: bool
    missing: list[str] = field(default_factory=list)  # GT keys without a prediction
    ignored: list[str] = field(default_factory=list)  # prediction keys not in the GT file
    zero_length: list[str] = field(default_factory=list)  # counted keys with t_s == t_e
    zero_length_inside: int = 0  # ... of which inside a GT segment (scored IoP = 1)
    outside_video: list[str] = field(default_factory=list)  # t_s < 0 or t_e > duration (not clipped)
    reversed: list[str] = field(default_factory=list)  # counted keys with t_e < t_s (IoU, IoP 0 by the official rule)
    no_ground_truth: list[str] = field(default_factory=list)  # ``subset`` keys absent from the GT file (not scored)
    missing_qa: list[str] = field(default_factory=list)  # counted keys without a QA result (strict: wrong)
    per_question: dict[str, tuple[float, float, bool | None]] = field(
        default_factory=dict
    )  # key -> (IoU, IoP, correct)

    def row(self) -> dict[str, float]:
        """The metric columns plus ``n`` (what ``--json`` prints)."""
        return {k: self.metrics[k] for k in (*METRIC_KEYS, "n")}

    def notes(self) -> list[str]:
        """One line per thing a reader should know about these numbers."""
        lines = []
        if self.missing:
            how = "scored 0 (strict)" if self.strict else "skipped as the official script does; --strict scores them 0"
            lines.append(
                f"{len(self.missing)} of {self.n_gt} ground-truth questions have no prediction: {how}; "
                f"first: {', '.join(self.missing[:5])}"
            )
        if self.missing_qa:
            lines.append(
                f"{len(self.missing_qa)} scored questions have no QA result: counted as answered wrong (strict); "
                f"first: {', '.join(self.missing_qa[:5])}"
            )
        if self.ignored:
            lines.append(
                f"{len(self.ignored)} predictions have no ground truth and are ignored; first: "
                f"{', '.join(self.ignored[:5])}"
            )
        if self.zero_length:
            lines.append(
                f"{len(self.zero_length)} zero-length spans (IoU 0 by rule), {self.zero_length_inside} "
                f"of them inside a GT segment and scored IoP = 1"
            )
        if self.outside_video:
            lines.append(f"{len(self.outside_video)} spans reach outside [0, duration]; not clipped (official)")
        if self.reversed:
            lines.append(
                f"{len(self.reversed)} reversed spans (end before start) scored IoU = IoP = 0 as the official "
                f"script does; first: {', '.join(self.reversed[:5])}"
            )
        if self.no_ground_truth:
            lines.append(
                f"{len(self.no_ground_truth)} questions have no ground truth in the GT file and are not scored "
                f"(official); first: {', '.join(self.no_ground_truth[:5])}"
            )
        return lines


def _pct(count: float, n: int) -> float:
    return 100.0 * count / n if n else math.nan


def evaluate_grounding(
    gsub: GSub,
    spans: Mapping[str, Sequence[float]],
    correct: Mapping[str, bool] | None = None,
    *,
    normalized: bool = False,
    strict: bool = False,
    subset: Iterable[str] | None = None,
) -> GroundingReport:
    """Score ``spans`` (key :func:`~cra.data.keys.question_key` -> [t_s, ..., t_e]) against ``gsub``.

    ``correct`` maps a key to whether its answer is right (``None``: QA unknown, Acc columns NaN).
    ``normalized``: spans are fractions of the video, converted by :func:`to_seconds`.
    ``strict``: a GT question without a span counts with IoU = IoP = 0 (and a wrong answer if it
    has no QA entry either) instead of being skipped. ``subset``: only these keys are scored.

    Acc@QA is taken over the counted questions, so it equals the official ``eval_next`` accuracy
    when every GT question has a prediction; a counted question missing from ``correct`` is an
    error unless ``strict`` (then it counts as wrong).
    """
    keep = set(subset) if subset is not None else None
    report = GroundingReport(metrics={}, n=0, n_gt=0, strict=strict)
    sums = {
        "iou": 0.0,
        "iop": 0.0,
        "qa": 0,
        "gqa": 0,
        **{f"iou@{t}": 0 for t in THRESHOLDS},
        **{f"iop@{t}": 0 for t in THRESHOLDS},
        **{f"uf@{t}": 0 for t in THRESHOLDS},
    }
    missing_qa = report.missing_qa
    gt_keys = set()
    for vid, entry in gsub.items():
        duration = entry["duration"]
        for qid, segments in entry["location"].items():
            key = question_key(vid, qid)
            if keep is not None and key not in keep:
                continue
            gt_keys.add(key)
            report.n_gt += 1
            span = spans.get(key)
            if span is None:
                report.missing.append(key)
                if not strict:
                    continue
                iou = iop = 0.0
            else:
                if normalized:
                    span = to_seconds(span, duration)
                iou, iop = best_iou_iop(segments, span)
                if span[0] == span[-1]:
                    report.zero_length.append(key)
                    report.zero_length_inside += iop == 1.0
                if min(span[0], span[-1]) < 0 or max(span[0], span[-1]) > duration:
                    report.outside_video.append(key)
                if span[-1] < span[0]:
                    report.reversed.append(key)
            ok = None
            if correct is not None:
                ok = correct.get(key)
                if ok is None:
                    missing_qa.append(key)
                    ok = False
            report.n += 1
            report.per_question[key] = (iou, iop, ok)
            sums["iou"] += iou
            sums["iop"] += iop
            for t in THRESHOLDS:
                sums[f"iou@{t}"] += iou >= t
                sums[f"iop@{t}"] += iop >= t
                sums[f"uf@{t}"] += bool(ok) and iop < t
            sums["qa"] += bool(ok)
            sums["gqa"] += bool(ok) and iop >= GQA_IOP
    if missing_qa and not strict:
        raise KeyError(
            f"{len(missing_qa)} scored questions have no QA result (prediction/answer); first: "
            f"{missing_qa[:5]}; pass strict=True (--strict) to count them as wrong"
        )
    report.ignored = sorted(set(spans) - gt_keys) if keep is None else sorted((set(spans) & keep) - gt_keys)
    report.no_ground_truth = sorted(keep - gt_keys - set(spans)) if keep is not None else []  # the rest: ignored
    n = report.n
    has_qa = correct is not None
    m = {
        "Acc@QA": _pct(sums["qa"], n) if has_qa else math.nan,
        "Acc@GQA": _pct(sums["gqa"], n) if has_qa else math.nan,
        "mIoP": _pct(sums["iop"], n),
        "IoP@0.3": _pct(sums["iop@0.3"], n),
        "IoP@0.5": _pct(sums["iop@0.5"], n),
        "mIoU": _pct(sums["iou"], n),
        "IoU@0.3": _pct(sums["iou@0.3"], n),
        "IoU@0.5": _pct(sums["iou@0.5"], n),
    }
    # FR = Acc@GQA / Acc@QA; UF@t = answered correctly but IoP < t (unfaithful).
    m["FR"] = 100.0 * m["Acc@GQA"] / m["Acc@QA"] if has_qa and m["Acc@QA"] > 0 else math.nan
    for t in THRESHOLDS:
        m[f"UF@{t}"] = _pct(sums[f"uf@{t}"], n) if has_qa else math.nan
    m["n"] = n
    report.metrics = m
    return report


# --------------------------------------------------------------------------------------------
# Reference baselines
# --------------------------------------------------------------------------------------------
BASELINES = ("whole video", "middle half", "random span")


def baseline_spans(gsub: GSub, kind: str, seed: int = 0) -> dict[str, list[float]]:
    """Spans (seconds) that ignore the question: ``"whole video"`` [0, d], ``"middle half"``
    [d/4, 3d/4], or ``"random span"``: the sorted pair of two uniform draws in [0, d] (seeded)."""
    rng = np.random.default_rng(seed)
    spans = {}
    for vid, entry in gsub.items():
        d = float(entry["duration"])
        for qid in entry["location"]:
            if kind == "whole video":
                span = [0.0, d]
            elif kind == "middle half":
                span = [0.25 * d, 0.75 * d]
            elif kind == "random span":
                span = sorted(rng.uniform(0.0, d, size=2).tolist())
            else:
                raise ValueError(f"unknown baseline {kind!r}; expected one of {BASELINES}")
            spans[question_key(vid, qid)] = span
    return spans


def evaluate_baselines(
    gsub: GSub, correct: Mapping[str, bool] | None, seeds: Sequence[int] = tuple(range(10)), *, strict: bool = False
) -> dict[str, dict[str, float]]:
    """Metric rows of the three baselines with the given answers and with all answers correct
    (the grounding-only ceiling: Acc@GQA = IoP@0.5). Random spans are averaged over ``seeds``;
    their row carries ``"seeds"`` and the standard deviation of Acc@GQA (``"Acc@GQA sd"``).
    ``strict`` as in :func:`evaluate_grounding` (a GT question missing from ``correct``)."""
    all_keys = [question_key(vid, qid) for vid, e in gsub.items() for qid in e["location"]]
    ceiling = dict.fromkeys(all_keys, True)
    rows = {}
    for answers, suffix in ((correct, ""), (ceiling, " (all answers correct)")):
        if answers is None:
            continue
        for kind in BASELINES:
            if kind != "random span":
                rows[kind + suffix] = evaluate_grounding(gsub, baseline_spans(gsub, kind), answers, strict=strict).row()
                continue
            runs = [
                evaluate_grounding(gsub, baseline_spans(gsub, kind, s), answers, strict=strict).row() for s in seeds
            ]
            row = {k: float(np.mean([r[k] for r in runs])) for k in METRIC_KEYS}
            row["n"] = runs[0]["n"]
            row["seeds"] = len(seeds)
            row["Acc@GQA sd"] = float(np.std([r["Acc@GQA"] for r in runs]))
            rows[f"{kind} ({len(seeds)} seed{'s' * (len(seeds) != 1)}){suffix}"] = row
    return rows


# --------------------------------------------------------------------------------------------
# A table for a paper
# --------------------------------------------------------------------------------------------
def format_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str] = METRIC_KEYS, digits: int = 2) -> str:
    """A Markdown table (aligned, so it also reads as plain text): one row per entry of ``rows``."""
    header = ["", *columns, "n"]
    body = []
    for name, row in rows.items():
        cells = [name]
        for c in columns:
            v = row.get(c, math.nan)
            cells.append("–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}")
        cells.append(str(int(row["n"])) if "n" in row else "")
        body.append(cells)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells):
        parts = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join(["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]]) + "|"
    return "\n".join([line(header), rule, *map(line, body)])
