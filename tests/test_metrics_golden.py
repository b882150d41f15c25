"""Golden tests: tiny hand-made ground truth and predictions whose metrics are computed by hand.

Each expected number below is worked out in the comment beside it from the official rules
(docs/nextgqa_eval_semantics.md): IoU = inter / hull, IoP = inter / prediction length, maxima over
GT segments taken separately from 0, inclusive thresholds, zero-length spans IoP 1 inside GT.
"""

from __future__ import annotations

import math

import pytest

from cra import metrics

# video v1: 10 s; v2: 20 s
GSUB = {
    "v1": {
        "duration": 10,
        "fps": 30.0,
        "location": {
            "0": [[2.0, 6.0]],
            "1": [[0.0, 4.0], [6.0, 10.0]],  # two segments
            "2": [[2.0, 6.0]],
            "3": [[2.0, 6.0]],
            "4": [[8.0, 10.0]],
            "5": [[2.0, 6.0]],  # no prediction
        },
    },
    "v2": {
        "duration": 20,
        "fps": 30.0,
        "location": {
            "0": [[5.0, 15.0]],
            "1": [[5.0, 15.0]],
            "2": [[5.0, 15.0]],
            "3": [[5.0, 15.0]],
        },
    },
}
SPANS = {
    "v1_0": [3.0, 5.0],  # inside: IoU 2/4 = 0.5, IoP 1
    "v1_1": [2.0, 8.0],  # covers parts of both segments: each gives inter 2, hull 8 -> IoU 0.25, IoP 2/6 (no union!)
    "v1_2": [7.0, 9.0],  # disjoint: (-1/7, -1/2) -> 0, 0
    "v1_3": [6.0, 9.0],  # touching at 6: (0, 0)
    "v1_4": [8.0, 12.0],  # past the 10 s end, not clipped: inter 2, hull 4 -> IoU 0.5, IoP 0.5
    "v2_0": [10.0, 10.0],  # zero length inside: (0, 1)
    "v2_1": [12.0, 8.0],  # reversed: IoU -0.4 -> 0, IoP 0
    "v2_2": [15.0, 15.0],  # zero length on the GT end (bounds included): (0, 1)
    "v2_3": [6.0, 100.0, 10.0],  # three numbers: only first and last used -> [6, 10]: IoU 0.4, IoP 1
    "x9_9": [0.0, 1.0],  # not in the ground truth: ignored
}
CORRECT = {
    "v1_0": True,
    "v1_1": True,
    "v1_2": False,
    "v1_3": True,
    "v1_4": True,
    "v1_5": True,
    "v2_0": True,
    "v2_1": False,
    "v2_2": False,
    "v2_3": True,
}


@pytest.mark.parametrize(
    "span, expected",
    [
        ([4, 4], (0, 1)),
        ([6, 6], (0, 1)),
        ([7, 7], (0, 0)),
        ([3, 5], (0.5, 1.0)),
        ([0, 10], (0.4, 0.4)),
        ([7, 9], (-1 / 7, -0.5)),
        ([6, 9], (0.0, 0.0)),
        ([5, 3], (-0.5, 0.0)),
        ([3, 100, 5], (0.5, 1.0)),
    ],
)
def test_iou_iop_table_of_the_semantics_doc(span, expected):
    # the edge-case table of docs/nextgqa_eval_semantics.md 1.2, GT [2, 6]
    assert metrics.iou_iop([2, 6], span) == pytest.approx(expected)


def test_multi_segment_gt_is_not_a_union():
    # GT [[0,4],[6,10]], prediction [2,8]: IoP 2/6 from either segment, not 4/6 from their union
    iou, iop = metrics.best_iou_iop([[0, 4], [6, 10]], [2, 8])
    assert iop == pytest.approx(1 / 3) and iou == pytest.approx(0.25)
    # the two maxima may come from different segments: span [3, 5] vs A = [0, 10] gives inter 2,
    # hull 10 -> (0.2, 1.0); vs B = [3, 4.5] inter 1.5, hull 2 -> (0.75, 0.75). Max IoU from B, max IoP from A.
    assert metrics.best_iou_iop([[0, 10], [3, 4.5]], [3, 5]) == pytest.approx((0.75, 1.0))


def test_aggregate_official_mode():
    report = metrics.evaluate_grounding(GSUB, SPANS, CORRECT)
    m = report.metrics
    n = 9  # v1_5 has no prediction and is skipped (official)
    assert report.n == n and m["n"] == n and report.n_gt == 10
    assert report.missing == ["v1_5"] and report.ignored == ["x9_9"]
    # IoU:  .5 .25 0 0 .5 | 0 0 0 .4  -> sum 1.65
    assert m["mIoU"] == pytest.approx(100 * 1.65 / n)
    # IoP:  1 1/3 0 0 .5 | 1 0 1 1  -> sum 29/6
    assert m["mIoP"] == pytest.approx(100 * (29 / 6) / n)
    assert m["IoP@0.3"] == pytest.approx(100 * 6 / n)  # 1, 1/3, .5, 1, 1, 1
    assert m["IoP@0.5"] == pytest.approx(100 * 5 / n)  # .5 counts: inclusive
    assert m["IoU@0.3"] == pytest.approx(100 * 3 / n)  # .5, .5, .4
    assert m["IoU@0.5"] == pytest.approx(100 * 2 / n)
    assert m["Acc@QA"] == pytest.approx(100 * 6 / n)  # right: v1_0 v1_1 v1_3 v1_4 v2_0 v2_3
    assert m["Acc@GQA"] == pytest.approx(100 * 4 / n)  # right and IoP >= .5: v1_0 v1_4 v2_0 v2_3
    assert m["FR"] == pytest.approx(100 * 4 / 6)
    assert m["UF@0.5"] == pytest.approx(100 * 2 / n)  # right with IoP < .5: v1_1 (1/3), v1_3 (0)
    assert m["UF@0.3"] == pytest.approx(100 * 1 / n)  # v1_3
    assert sorted(report.zero_length) == ["v2_0", "v2_2"] and report.zero_length_inside == 2
    assert report.outside_video == ["v1_4"]
    assert any("no prediction" in line and "v1_5" in line for line in report.notes())


def test_aggregate_strict_mode_scores_missing_as_zero():
    m = metrics.evaluate_grounding(GSUB, SPANS, CORRECT, strict=True).metrics
    n = 10
    assert m["n"] == n
    assert m["mIoU"] == pytest.approx(100 * 1.65 / n)
    assert m["mIoP"] == pytest.approx(100 * (29 / 6) / n)
    assert m["IoP@0.5"] == pytest.approx(50.0)
    assert m["Acc@QA"] == pytest.approx(70.0)  # v1_5 was answered right
    assert m["Acc@GQA"] == pytest.approx(40.0)
    assert m["UF@0.5"] == pytest.approx(30.0) and m["UF@0.3"] == pytest.approx(20.0)


def test_missing_qa_entry_is_an_error_unless_strict():
    correct = {k: v for k, v in CORRECT.items() if k != "v1_0"}
    with pytest.raises(KeyError, match="1 scored questions have no QA result.*v1_0.*strict"):
        metrics.evaluate_grounding(GSUB, SPANS, correct)
    report = metrics.evaluate_grounding(GSUB, SPANS, correct, strict=True)
    assert report.metrics["Acc@GQA"] == pytest.approx(100 * 3 / 10)  # v1_0 now counts as answered wrong
    assert report.missing_qa == ["v1_0"] and any("1 scored questions have no QA result" in x for x in report.notes())


def test_without_qa_the_accuracy_columns_are_nan():
    m = metrics.evaluate_grounding(GSUB, SPANS).metrics
    assert math.isnan(m["Acc@QA"]) and math.isnan(m["Acc@GQA"]) and math.isnan(m["FR"])
    assert m["IoP@0.5"] == pytest.approx(100 * 5 / 9)


def test_normalized_spans_round_half_to_even_and_are_not_clipped():
    assert metrics.to_seconds([0.025, 0.075], 10) == [0.2, 0.8]  # 0.25 -> 0.2 and 0.75 -> 0.8 (half to even)
    gsub = {"v": {"duration": 10, "location": {"0": [[8.0, 10.0]], "1": [[2.0, 6.0]]}}}
    spans = {"v_0": [0.9, 1.1], "v_1": [0.3, 0.5]}  # -> [9, 11] (past the end) and [3, 5]
    report = metrics.evaluate_grounding(gsub, spans, normalized=True)
    # v_0: inter 1, hull 3 -> IoU 1/3, IoP 1/2; v_1: IoU 0.5, IoP 1
    assert report.per_question["v_0"][:2] == pytest.approx((1 / 3, 0.5))
    assert report.per_question["v_1"][:2] == pytest.approx((0.5, 1.0))
    assert report.outside_video == ["v_0"]


def test_subset_restricts_the_scored_questions():
    m = metrics.evaluate_grounding(GSUB, SPANS, CORRECT, subset={"v1_0", "v1_2"}).metrics
    assert m["n"] == 2 and m["mIoP"] == pytest.approx(50.0) and m["Acc@GQA"] == pytest.approx(50.0)


def test_baselines_by_hand():
    gsub = {"v": {"duration": 8, "location": {"0": [[0.0, 2.0]], "1": [[2.0, 6.0]]}}}
    whole = metrics.baseline_spans(gsub, "whole video")
    half = metrics.baseline_spans(gsub, "middle half")
    assert whole["v_0"] == [0.0, 8.0] and half["v_1"] == [2.0, 6.0]
    rows = metrics.evaluate_baselines(gsub, {"v_0": True, "v_1": False}, seeds=[0, 1, 2])
    # whole video: IoP 2/8 and 4/8 -> mIoP 37.5, IoP@0.5 50; only v_1 reaches .5 and it is answered wrong
    assert rows["whole video"]["mIoP"] == pytest.approx(37.5)
    assert rows["whole video"]["Acc@GQA"] == pytest.approx(0.0)
    # middle half [2, 6]: v_0 touching -> 0; v_1 exact -> 1
    assert rows["middle half"]["mIoU"] == pytest.approx(50.0)
    # all answers correct: Acc@GQA equals IoP@0.5
    ceiling = rows["whole video (all answers correct)"]
    assert ceiling["Acc@GQA"] == pytest.approx(ceiling["IoP@0.5"]) == pytest.approx(50.0)
    # random spans lie inside [0, d], are sorted, and depend on the seed only
    for seed in (0, 1):
        spans = metrics.baseline_spans(gsub, "random span", seed)
        assert all(0 <= s <= e <= 8 for s, e in spans.values())
        assert spans == metrics.baseline_spans(gsub, "random span", seed)
    assert metrics.baseline_spans(gsub, "random span", 0) != metrics.baseline_spans(gsub, "random span", 1)
    random_row = next(v for k, v in rows.items() if k.startswith("random span") and "all answers" not in k)
    runs = [
        metrics.evaluate_grounding(
            gsub, metrics.baseline_spans(gsub, "random span", s), {"v_0": True, "v_1": False}
        ).metrics
        for s in (0, 1, 2)
    ]
    assert random_row["mIoP"] == pytest.approx(sum(r["mIoP"] for r in runs) / 3)
    with pytest.raises(ValueError, match="unknown baseline"):
        metrics.baseline_spans(gsub, "half")


def test_format_table():
    table = metrics.format_table({"model": {**dict.fromkeys(metrics.METRIC_KEYS, 12.345), "n": 7}})
    lines = table.splitlines()
    assert lines[0].startswith("|") and "Acc@GQA" in lines[0] and lines[1].startswith("|--")
    assert "12.35" in lines[2] and lines[2].rstrip().endswith("7 |")
