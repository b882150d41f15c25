"""Score the CRA authors' released FrozenBiLM val predictions and check every number against an
independent reference written here from docs/nextgqa_eval_semantics.md.

The reference is deliberately a different computation from ``cra.metrics``: all (question, GT
segment) pairs are scored at once with numpy and reduced per question; the post-hoc walk is
written as "first stopping frame" searches over vectorised scores; the window read-out is a brute
force over every window. Two facts come from outside the code altogether: the share of window spans
that pass the video end (56.05 %, stated in the semantics doc) and the val QA accuracy the
authors' own training log (``log.txt``) recorded for the released run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require_data

from cra import cli, metrics, readouts
from cra import released as released_module
from cra.data import question_key, read_frame2time, read_frame_weights, read_gsub, read_qa_results, split_key

FILES = (
    "nextgqa/gsub_val.json",
    "nextgqa/frame2time_val.json",
    "cra_released/val-res.json",
    "cra_released/val_ground_att.json",
    "cra_released/val_ground_gs.json",
    "cra_released/log.txt",
)


# ---------------------------------------------------------------- independent reference
def reference_scores(gsub, spans, correct, normalized):
    """(metric -> percent) following the semantics doc, vectorised over all segment pairs."""
    keys, seg_s, seg_e, pred_s, pred_e, owner = [], [], [], [], [], []
    for vid, entry in gsub.items():
        for qid, segs in entry["location"].items():
            key = question_key(vid, qid)
            if key not in spans:
                continue
            span = np.asarray(spans[key], dtype=float)
            if normalized:
                span = np.round(span * entry["duration"], 1)
            for s, e in segs:
                (
                    seg_s.append(s),
                    seg_e.append(e),
                    pred_s.append(span[0]),
                    pred_e.append(span[-1]),
                    owner.append(len(keys)),
                )
            keys.append(key)
    gs, ge, ps, pe, owner = map(np.asarray, (seg_s, seg_e, pred_s, pred_e, owner))
    inter = np.minimum(ge, pe) - np.maximum(gs, ps)
    hull = np.maximum(ge, pe) - np.minimum(gs, ps)
    length = pe - ps
    iou = np.where(hull > 0, inter / np.where(hull > 0, hull, 1), 0.0)
    iop = np.where(length > 0, inter / np.where(length > 0, length, 1), 0.0)
    point = ps == pe
    iou = np.where(point, 0.0, iou)
    iop = np.where(point, ((gs <= ps) & (ps <= ge)).astype(float), iop)
    best_iou, best_iop = np.zeros(len(keys)), np.zeros(len(keys))
    np.maximum.at(best_iou, owner, iou)
    np.maximum.at(best_iop, owner, iop)
    right = np.array([correct[k] for k in keys])
    return {
        "Acc@QA": 100 * right.mean(),
        "Acc@GQA": 100 * (right & (best_iop >= 0.5)).mean(),
        "mIoP": 100 * best_iop.mean(),
        "IoP@0.3": 100 * (best_iop >= 0.3).mean(),
        "IoP@0.5": 100 * (best_iop >= 0.5).mean(),
        "mIoU": 100 * best_iou.mean(),
        "IoU@0.3": 100 * (best_iou >= 0.3).mean(),
        "IoU@0.5": 100 * (best_iou >= 0.5).mean(),
        "n": len(keys),
    }


def reference_posthoc(att, times):
    w = np.asarray(att, dtype=float)
    t = np.asarray(times, dtype=float)
    w = (w - w.min()) / (w.max() - w.min() + 1e-12)
    p = int(np.argmax(w))
    elapsed = np.abs(t - t[p])
    passes = w / (1 + elapsed / 10) >= 1.3 * w.mean()
    stops = ~passes & (elapsed > 10)
    right = np.arange(p + 1, len(w))
    right = right[: np.argmax(stops[right])] if stops[right].any() else right
    left = np.arange(p - 1, 0, -1)  # frame 0 is never visited (official loop bound)
    left = left[: np.argmax(stops[left])] if stops[left].any() else left
    kept = [p, *right[passes[right]], *left[passes[left]]]
    return [t[min(kept)], t[max(kept)]]


def reference_window(weights):
    w = np.asarray(weights, dtype=float)
    n, peak = len(w), int(np.argmax(w))
    csum = np.concatenate([[0.0], np.cumsum(w)])
    candidates = [
        (s, s + size) for size in (1, 3, 5) if size <= n // 2 for s in range(n - size + 1) if s <= peak < s + size
    ]
    sums = [csum[e] - csum[s] for s, e in candidates]
    s, e = candidates[int(np.argmax(sums))]  # argmax: first of equal maxima, in the search order
    return [s / (n - 1), e / (n - 1)]


def reference_merge(released):
    """Window span (seconds, rounded) intersected with the post-hoc span of the raw attention."""
    merged = {}
    for vid, entry in released["gsub"].items():
        for qid in entry["location"]:
            k = question_key(vid, qid)
            ph = reference_posthoc(released["att"][k], released["f2t"][vid])
            win = np.round(np.asarray(reference_window(released["gs"][k])) * entry["duration"], 1)
            lo, hi = max(win[0], ph[0]), min(win[1], ph[1])
            merged[k] = [lo, hi] if lo <= hi else ph
    return merged


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def released():
    root = require_data(*FILES)
    return {
        "gsub": read_gsub(root / FILES[0]),
        "f2t": read_frame2time(root / FILES[1]),
        "correct": read_qa_results(root / FILES[2]),
        "att": read_frame_weights(root / FILES[3]),
        "gs": read_frame_weights(root / FILES[4]),
        "log": root / FILES[5],
        "root": root,
    }


def assert_same_spans(spans, ref_spans):
    assert spans.keys() == ref_spans.keys()
    got = np.array([spans[k] for k in ref_spans], dtype=float)
    want = np.array([ref_spans[k] for k in ref_spans], dtype=float)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def assert_same(report, ref):
    for k in (*metrics.METRIC_KEYS, "n"):
        assert report.metrics[k] == pytest.approx(ref[k], abs=1e-9), k
        assert f"{report.metrics[k]:.2f}" == f"{ref[k]:.2f}", k


def test_posthoc_on_raw_attention(released):
    spans = readouts.posthoc_spans(released["att"], released["f2t"])
    ref_spans = {k: reference_posthoc(w, released["f2t"][split_key(k)[0]]) for k, w in released["att"].items()}
    assert_same_spans(spans, ref_spans)
    report = metrics.evaluate_grounding(released["gsub"], spans, released["correct"])
    assert report.n == 3358 and not report.missing
    assert_same(report, reference_scores(released["gsub"], ref_spans, released["correct"], normalized=False))
    assert len(report.zero_length) == sum(s == e for s, e in ref_spans.values())


def test_window_readout_on_smoothed_weights(released):
    spans = readouts.window_spans(released["gs"])
    ref_spans = {k: reference_window(w) for k, w in released["gs"].items()}
    assert_same_spans(spans, ref_spans)
    # positive weights: the 5-frame window always wins (docs/paper_notes.md §2.3)
    assert {round((e - s) * 31) for s, e in spans.values()} == {5}
    report = metrics.evaluate_grounding(released["gsub"], spans, released["correct"], normalized=True)
    assert_same(report, reference_scores(released["gsub"], ref_spans, released["correct"], normalized=True))
    # the semantics doc (section 2): 56.05 % of val window spans go past the video end
    assert f"{100 * len(report.outside_video) / report.n:.2f}" == "56.05"


def test_posthoc_on_smoothed_weights_and_merge(released):
    spans = readouts.posthoc_spans(released["gs"], released["f2t"])
    ref_spans = {k: reference_posthoc(w, released["f2t"][split_key(k)[0]]) for k, w in released["gs"].items()}
    report = metrics.evaluate_grounding(released["gsub"], spans, released["correct"])
    assert_same(report, reference_scores(released["gsub"], ref_spans, released["correct"], normalized=False))
    # merge: window span (seconds) intersected with the post-hoc span of the raw attention
    ph = readouts.posthoc_spans(released["att"], released["f2t"])
    merged = readouts.merge_spans(readouts.window_spans(released["gs"]), ph, released["gsub"])
    ref_merged = reference_merge(released)
    assert_same_spans(merged, ref_merged)
    report = metrics.evaluate_grounding(released["gsub"], merged, released["correct"])
    assert_same(report, reference_scores(released["gsub"], ref_merged, released["correct"], normalized=False))


def test_acc_qa_matches_the_authors_training_log(released):
    # log.txt is the FrozenBiLM training log of the released run; its last line's val accuracy
    last = [json.loads(line) for line in released["log"].read_text().splitlines() if line.strip()][-1]
    m = metrics.evaluate_grounding(
        released["gsub"], readouts.window_spans(released["gs"]), released["correct"], normalized=True
    ).metrics
    assert m["Acc@QA"] == pytest.approx(100 * last["val_nextgqa_acc"], abs=1e-9)


def test_cli_json_on_released_files(released, capsys):
    root = released["root"]
    gsub, f2t, qa = root / FILES[0], root / FILES[1], root / FILES[2]
    runs = [
        (
            ["--pred", str(root / FILES[3]), "--pred-format", "attention", "--frame2time", str(f2t)],
            {k: reference_posthoc(w, released["f2t"][split_key(k)[0]]) for k, w in released["att"].items()},
            False,
        ),
        (
            ["--pred", str(root / FILES[4]), "--pred-format", "window"],
            {k: reference_window(w) for k, w in released["gs"].items()},
            True,
        ),
        (
            [
                "--pred",
                str(root / FILES[4]),
                "--pred-format",
                "window",
                "--merge-with",
                str(root / FILES[3]),
                "--frame2time",
                str(f2t),
            ],
            reference_merge(released),
            False,
        ),
    ]
    for extra, ref_spans, normalized in runs:
        assert cli.main(["evaluate", "--gsub", str(gsub), "--qa", str(qa), "--json", *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        ref = reference_scores(released["gsub"], ref_spans, released["correct"], normalized)
        for k in (*metrics.METRIC_KEYS, "n"):
            assert out[k] == pytest.approx(ref[k], abs=1e-9), k


# ---------------------------------------------------------------- the official scripts themselves
OFFICIAL = json.loads((Path(__file__).parent / "fixtures" / "official_eval" / "released_val.json").read_text())
#: fixture row -> (read-out, weights it reads) in cra.released
OFFICIAL_ROWS = {
    "posthoc_raw": released_module.POSTHOC_RAW,
    "posthoc_smoothed": released_module.POSTHOC_SMOOTHED,
    "window_smoothed": released_module.WINDOW,
    "merge_smoothed_raw": released_module.MERGE_SMOOTHED_RAW,
}


def seconds_digest(spans):
    """The fixture's digest: sha256 of {key: [start, end]} as sorted JSON (Python floats)."""
    canonical = {k: [float(s[0]), float(s[-1])] for k, s in spans.items()}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def released_val():
    root = require_data(*FILES[:5], "nextgqa/val.csv")
    return released_module.load_released_val(root)


def test_spans_equal_the_official_scripts_exactly(released_val):
    """cra.released's spans (the per-question references of cra.readouts) are the spans of the official
    getspan / combine and of CRA's gen_grounding (scripts/official_eval/make_reference.py), bit for bit."""
    assert set(OFFICIAL_ROWS.values()) == set(released_module.READOUTS)
    for row, label in OFFICIAL_ROWS.items():
        spans = released_val.spans[label]
        assert len(spans) == OFFICIAL["spans"]["count"][row], row
        assert seconds_digest(spans) == OFFICIAL["spans"]["sha256"][row], row


def test_batched_readouts_equal_the_references_on_the_released_weights(released_val):
    """interval_readouts (what training and cra predict use) on the released weights, float64: the same
    spans as the per-question references, exactly; the release's merge (window of the smoothed weights
    ∩ post-hoc of the raw attention) from the two batched results with merge_span."""
    import torch

    rv = released_val
    keys = rv.keys
    vids = [split_key(k)[0] for k in keys]
    times = torch.tensor([rv.frame2time[v] for v in vids], dtype=torch.float64)
    duration = torch.tensor([float(rv.gsub[v]["duration"]) for v in vids], dtype=torch.float64)
    smoothed = readouts.interval_readouts(torch.tensor([rv.gs[k] for k in keys]), times, duration=duration)
    raw = readouts.interval_readouts(torch.tensor([rv.att[k] for k in keys]), times, readouts=("posthoc",))
    batched = {
        released_module.WINDOW: smoothed["window"],
        released_module.POSTHOC_SMOOTHED: smoothed["posthoc"],
        released_module.POSTHOC_RAW: raw["posthoc"],
    }
    for label, spans in batched.items():
        assert {k: spans[i].tolist() for i, k in enumerate(keys)} == rv.spans[label], label
    merged = {
        k: readouts.merge_span(smoothed["window"][i].tolist(), raw["posthoc"][i].tolist()) for i, k in enumerate(keys)
    }
    assert merged == rv.spans[released_module.MERGE_SMOOTHED_RAW]
    # and the one-weights merge of the batched form is its own reference's
    assert {k: smoothed["merge"][i].tolist() for i, k in enumerate(keys)} == {
        k: readouts.question_readouts(rv.gs[k], rv.frame2time[split_key(k)[0]], rv.gsub[split_key(k)[0]]["duration"])[
            "merge"
        ]
        for k in keys
    }


def test_cra_evaluate_reproduces_the_official_scripts(released, capsys):
    """``cra evaluate`` on the released files prints the official script's numbers (one decimal)."""
    root = released["root"]
    gsub, f2t, qa, att, gs = (str(root / f) for f in FILES[:5])
    runs = {
        "posthoc_raw": ["--pred", att, "--pred-format", "attention", "--frame2time", f2t],
        "posthoc_smoothed": ["--pred", gs, "--pred-format", "attention", "--frame2time", f2t],
        "window_smoothed": ["--pred", gs, "--pred-format", "window"],
        "merge_smoothed_raw": ["--pred", gs, "--pred-format", "window", "--merge-with", att, "--frame2time", f2t],
    }
    assert set(runs) == set(OFFICIAL["rows"])
    for row, extra in runs.items():
        assert cli.main(["evaluate", "--gsub", gsub, "--qa", qa, "--json", *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["n"] == 3358
        got = {k: f"{out[k]:.1f}" for k in OFFICIAL["columns"]}
        assert got == {k: f"{v:.1f}" for k, v in OFFICIAL["rows"][row].items()}, row
