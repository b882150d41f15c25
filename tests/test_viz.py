"""The book's figure and widget callbacks (cra.viz), called directly, on hand-made inputs and, where
present, on the released predictions."""

from __future__ import annotations

import json

import ipywidgets as widgets
import numpy as np
import pytest
from matplotlib.figure import Figure

from cra import metrics, readouts, released, viz
from cra.data import read_qa_answers, read_qa_csv, split_key
from cra.data.tables import QUESTION_TYPES, question_table, ratio_histogram, segment_table

SEGMENTS = [[8.0, 14.0], [26.0, 30.0]]
DURATION = 40.0
PNG = b"\x89PNG"


def test_span_scores_follow_the_official_rule():
    # [10, 20] against [8, 14]: inter 4, hull 12, length 10; the other segment is disjoint
    s = viz.span_scores(SEGMENTS, [10.0, 20.0])
    assert s["iou"] == pytest.approx(4 / 12) and s["iop"] == pytest.approx(0.4)
    assert not s["grounded"] and not s["gqa"]
    # inside a segment: IoP 1, grounded; it counts for Acc@GQA only with a right answer
    assert viz.span_scores(SEGMENTS, [9.0, 13.0]) == {
        "iou": pytest.approx(4 / 6),
        "iop": 1.0,
        "grounded": True,
        "gqa": True,
    }
    assert viz.span_scores(SEGMENTS, [9.0, 13.0], answer_correct=False)["gqa"] is False
    # a span over both segments: the maxima are per segment, never over their union
    s = viz.span_scores(SEGMENTS, [8.0, 30.0])
    assert s["iop"] == pytest.approx(6 / 22) and s["iou"] == pytest.approx(6 / 22)
    # zero length inside: IoU 0, IoP 1
    assert viz.span_scores(SEGMENTS, [27.0, 27.0])["iop"] == 1.0
    assert "unfaithful" in viz.span_summary(SEGMENTS, [10.0, 20.0])
    assert "counts for Acc@GQA" in viz.span_summary(SEGMENTS, [9.0, 13.0])
    assert "wrong answer" in viz.span_summary(SEGMENTS, [9.0, 13.0], answer_correct=False)


def test_timeline_figure_and_png():
    fig = viz.timeline_figure(SEGMENTS, [10.0, 20.0], DURATION)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert "IoU = 0.33" in ax.get_title() and "IoP = 0.40" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ground truth", "prediction"]
    assert viz.figure_png(fig).startswith(PNG)


def test_overlap_maps_agree_with_best_iou_iop():
    times, iou, iop = viz.overlap_maps(SEGMENTS, DURATION, steps=41)
    assert iou.shape == iop.shape == (41, 41) and times[0] == 0.0 and times[-1] == DURATION
    assert np.isnan(iou[0, 5]) and np.isnan(iop[3, 10])  # t_e < t_s: not a span
    j_end, i_start = 20, 10  # span [10, 20]
    assert (iou[j_end, i_start], iop[j_end, i_start]) == metrics.best_iou_iop(SEGMENTS, [10.0, 20.0])
    assert np.nanmax(iop) == 1.0 and np.nanmax(iou) == 1.0  # the spans equal to a segment
    fig = viz.overlap_map_figure(SEGMENTS, DURATION, span=[10.0, 20.0], steps=21)
    assert len(fig.axes) == 3  # two maps and a colour bar


def test_span_widget_holds_every_score_line_and_links_it_in_javascript(monkeypatch):
    links = []

    def jslink(source, target):
        links.append((source[0].model_id, source[1], target[0].model_id, target[1]))
        return real_jslink(source, target)

    real_jslink = widgets.jslink
    monkeypatch.setattr(widgets, "jslink", jslink)
    box = viz.span_widget(SEGMENTS, DURATION, span=(10.0, 20.0))
    start, end, evidence1, evidence2, lines = box.children
    assert evidence1.disabled and evidence1.value == (8.0, 14.0) and evidence2.value == (26.0, 30.0)
    times = [float(label) for label, _ in start.options]
    assert times == [float(label) for label, _ in end.options] == [2.0 * k for k in range(21)]
    assert (start.value, end.value) == (5, 10) and (lines.selected_index, lines.children[5].selected_index) == (5, 10)
    # every (start, end) line is the package's own summary; end before start is no span
    for i, per_end in enumerate(lines.children):
        for j, line in enumerate(per_end.children):
            if j >= i:
                assert line.value == viz.span_summary(SEGMENTS, (times[i], times[j]), None)
            else:
                assert "not a span" in line.value
    shown = lines.children[5].children[10].value  # [10, 20]
    assert "IoP</b> = 0.40" in shown and "unfaithful" in shown
    inside = lines.children[4].children[7].value  # [8, 14]: grounded
    assert "IoP</b> = 1.00" in inside and "a right answer counts for Acc@GQA" in inside
    # the sliders drive the stacks in the browser: jslinks, one per stack, from each slider's index
    assert sorted(links) == sorted(
        [(start.model_id, "index", lines.model_id, "selected_index")]
        + [(end.model_id, "index", stack.model_id, "selected_index") for stack in lines.children]
    )


def test_minmax():
    np.testing.assert_allclose(viz.minmax([2.0, 4.0, 3.0]), [0.0, 1.0, 0.5])


# ---------------------------------------------------------------- tables of the annotations
GSUB = {
    "v1": {"duration": 20, "fps": 30.0, "location": {"0": [[0.0, 5.0]], "1": [[2.0, 4.0], [10.0, 21.0]]}},
    "v2": {"duration": 10, "fps": 30.0, "location": {"0": [[-0.5, 10.0]]}},
}


def test_segment_table_and_ratio_histogram():
    table = segment_table(GSUB)
    assert len(table) == 4
    assert table.ratio.tolist() == pytest.approx([0.25, 0.1, 0.55, 1.05])
    assert table.n_segments.tolist() == [1, 2, 2, 1] and table.key.tolist()[:2] == ["v1_0", "v1_1"]
    assert table.center.iloc[0] == pytest.approx(2.5 / 20)
    shares = ratio_histogram(table.ratio)
    assert shares.sum() == pytest.approx(100.0)
    # 0.1 lands in bin 1 ([0.1, 0.2)), 0.25 in bin 2, 0.55 in bin 5, 1.05 clipped into the last bin
    assert shares.tolist() == pytest.approx([0, 25, 25, 0, 0, 25, 0, 0, 0, 25])
    # 0.7 - 0.4 is 0.29999999999999993 in floating point: still the bin [0.3, 0.4); 1.0 is in the last bin
    assert ratio_histogram([0.7 - 0.4, 1.0, 0.0, 0.05]).tolist() == pytest.approx([50, 0, 0, 25, 0, 0, 0, 0, 0, 25])


def test_question_table(tmp_path):
    csv = tmp_path / "val.csv"
    csv.write_text(
        "video_id,qid,question,answer,type,a0,a1,a2,a3,a4\n"
        "v1,0,why did the dog run,1,CW,a,b,c,d,e\nv1,1,what next,4,TN,a,b,c,d,e\nv3,0,how,0,CH,a,b,c,d,e\n"
    )
    table = question_table(read_qa_csv(csv), GSUB)
    assert table.type_name.tolist() == [QUESTION_TYPES["CW"], QUESTION_TYPES["TN"], QUESTION_TYPES["CH"]]
    assert table.answer.tolist() == ["b", "e", "a"] and table.n_segments.tolist() == [1, 2, 0]
    assert table.evidence.tolist() == pytest.approx([5.0, 13.0, 0.0])
    assert table.duration.iloc[0] == 20 and np.isnan(table.duration.iloc[2])


def test_read_qa_answers(tmp_path):
    path = tmp_path / "res.json"
    path.write_text(json.dumps({"v1_0": {"prediction": 2, "answer": 2}, "v1_1": {"prediction": 0, "answer": 3}}))
    assert read_qa_answers(path) == {"v1_0": (2, 2), "v1_1": (0, 3)}
    path.write_text(json.dumps({"v1_0": {"prediction": "2", "answer": 2}}))
    with pytest.raises(Exception, match="key v1_0"):
        read_qa_answers(path)


# ---------------------------------------------------------------- released predictions (synthetic files)
def _write_released(root, att_peak=3, gs_peak=20):
    """A two-video world in the released layout: uniform frame times, one weight peak per question."""
    (root / "nextgqa").mkdir(parents=True)
    (root / "cra_released").mkdir()
    gsub = {
        "v1": {"duration": 32, "fps": 30.0, "location": {"0": [[2.0, 6.0]], "1": [[18.0, 24.0]]}},
        "v2": {"duration": 32, "fps": 30.0, "location": {"0": [[10.0, 12.0], [20.0, 30.0]]}},
    }
    times = {v: [float(i) + 0.5 for i in range(32)] for v in gsub}
    rows = ["video_id,qid,question,answer,type,a0,a1,a2,a3,a4"]
    rows += [f"{v},{q},question {v} {q},1,CW,a,b,c,d,e" for v, e in gsub.items() for q in e["location"]]
    res = {
        "v1_0": {"prediction": 1, "answer": 1},
        "v1_1": {"prediction": 0, "answer": 1},
        "v2_0": {"prediction": 1, "answer": 1},
    }

    def peaked(i):
        w = [1.0] * 32
        w[i] = 50.0
        total = sum(w)
        return [x / total for x in w]

    att = {k: peaked(att_peak) for k in res}
    gs = {k: peaked(gs_peak) for k in res}
    files = {
        "nextgqa/gsub_val.json": gsub,
        "nextgqa/frame2time_val.json": times,
        "cra_released/val-res.json": res,
        "cra_released/val_ground_att.json": att,
        "cra_released/val_ground_gs.json": gs,
    }
    for rel, content in files.items():
        (root / rel).write_text(json.dumps(content))
    (root / "nextgqa/val.csv").write_text("\n".join(rows) + "\n")
    return root


def test_load_released_val_on_synthetic_files(tmp_path):
    assert released.missing_files(tmp_path) == [*released.ANNOTATIONS, *released.RELEASED]
    root = _write_released(tmp_path)
    assert released.missing_files(root) == []
    r = released.load_released_val(root)
    assert r.keys == ["v1_0", "v1_1", "v2_0"] and r.correct == {"v1_0": True, "v1_1": False, "v2_0": True}
    assert (
        list(r.spans)
        == list(released.READOUTS)
        == [released.POSTHOC_RAW, released.WINDOW, released.POSTHOC_SMOOTHED, released.MERGE_SMOOTHED_RAW]
    )
    assert {r for r, _ in released.READOUTS.values()} == set(readouts.READOUTS)  # the read-outs of cra.readouts
    # one sharp peak: post-hoc keeps the peak frame only (zero length); the window holds 5 frames around it
    assert r.spans[released.POSTHOC_RAW]["v1_0"] == [3.5, 3.5]
    assert r.spans[released.WINDOW]["v1_0"] == metrics.to_seconds(readouts.window_span(r.gs["v1_0"]), 32)
    start, end = r.spans[released.WINDOW]["v1_0"]
    assert start <= 20.5 <= end and end - start == pytest.approx(5 / 31 * 32, abs=0.1)
    assert r.spans[released.POSTHOC_SMOOTHED]["v1_0"] == [20.5, 20.5]
    # merge: the window and the raw post-hoc point do not meet -> the post-hoc span is kept
    assert r.spans[released.MERGE_SMOOTHED_RAW]["v1_0"] == [3.5, 3.5]
    q = r.question("v1_1")
    assert not q.correct and q.prediction == 0 and q.segments == [[18.0, 24.0]] and len(q.frame_times) == 32
    assert q.scores()[released.POSTHOC_SMOOTHED] == (0.0, 1.0)  # a point inside the evidence: IoP 1, IoU 0
    reports = r.reports()
    assert reports[released.POSTHOC_RAW].metrics["Acc@QA"] == pytest.approx(200 / 3)
    # v1_0: point 3.5 in [2, 6] -> grounded and right; v2_0: 3.5 not in its segments
    assert reports[released.POSTHOC_RAW].metrics["Acc@GQA"] == pytest.approx(100 / 3)
    html = viz.question_html(q)
    assert "model&#x27;s answer" in html or "model's answer" in html
    assert html.count("<li>") == 5 and "right answer" in html and "[18.0, 24.0]" in html
    fig = viz.question_figure(q)
    assert len(fig.axes) == 2 and "v1_1" in fig.axes[0].get_title()
    keys = released.showcase_keys(r, per_group=1)
    assert set(keys) <= set(r.keys) and len({split_key(k)[0] for k in keys}) == len(keys) == 2  # one per video


def test_question_explorer_both_modes(tmp_path):
    r = released.load_released_val(_write_released(tmp_path))
    box = viz.question_explorer(r, r.keys, prerender=True)
    choose, stack = box.children
    assert len(stack.children) == 3 and stack.selected_index == 0
    assert all(bytes(page.children[1].value).startswith(PNG) for page in stack.children)
    assert "question v1 1" in stack.children[1].children[0].value
    live = viz.question_explorer(r, r.keys, prerender=False)
    choose, text, picture = live.children
    assert "question v1 0" in text.value
    choose.index = 2
    assert "question v2 0" in text.value and bytes(picture.value).startswith(PNG)


def test_question_invariance_and_interval_iou():
    assert released.interval_iou([0, 10], [5, 15]) == pytest.approx(5 / 15)
    assert released.interval_iou([0, 1], [2, 3]) == 0.0 and released.interval_iou([4, 4], [4, 4]) == 1.0
    same = {"v1_0": [0, 10], "v1_1": [0, 10], "v2_0": [1, 2], "v2_1": [1, 2], "v3_0": [5, 6]}
    assert released.question_invariance(same) == (100.0, 2)
    moving = {"v1_0": [0, 10], "v1_1": [10, 20], "v1_2": [0, 20]}
    # pairs: 0, 0.5, 0.5 -> one video, mean 1/3
    assert released.question_invariance(moving) == (pytest.approx(100 / 3), 1)
    assert released.hull_spans(GSUB) == {"v1_0": [0.0, 5.0], "v1_1": [2.0, 21.0], "v2_0": [-0.5, 10.0]}


# ---------------------------------------------------------------- released predictions (real files, if present)
def test_released_val_readouts_match_the_official_evaluation():
    from conftest import require_data

    root = require_data(*released.ANNOTATIONS, *released.RELEASED)
    r = released.load_released_val(root)
    assert len(r.keys) == 3358 and set(r.questions) >= set(r.keys)
    reports = r.reports()
    # the window spans were converted to seconds here; scoring the normalised spans gives the same row
    official = metrics.evaluate_grounding(r.gsub, readouts.window_spans(r.gs), r.correct, normalized=True)
    assert reports[released.WINDOW].row() == official.row()
    merged = readouts.merge_spans(readouts.window_spans(r.gs), readouts.posthoc_spans(r.att, r.frame2time), r.gsub)
    assert reports[released.MERGE_SMOOTHED_RAW].row() == metrics.evaluate_grounding(r.gsub, merged, r.correct).row()
    assert all(rep.n == 3358 and not rep.missing for rep in reports.values())
    keys = released.showcase_keys(r)
    assert len(keys) == 8 and len({split_key(k)[0] for k in keys}) == 8


def test_paper_numbers_are_labelled_quotations():
    from cra import paper_numbers

    assert "quoted" in paper_numbers.NEXTGQA_TEST_FROZENBILM_SOURCE
    for row in paper_numbers.NEXTGQA_TEST_FROZENBILM.values():
        assert list(row) == list(metrics.METRIC_KEYS)


def test_say_wraps_to_the_page(capsys):
    viz.say("word " * 40, width=30)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 3 and all(len(line) <= 30 for line in lines) and lines[1].startswith("  ")
