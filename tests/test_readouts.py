"""The read-outs of cra.readouts: hand-worked cases of the per-question references (post-hoc
adaptive threshold, window search, merge), then the batched entry point against literal loops over
those references (tests/readout_oracles.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from readout_oracles import merge_readout_loop, posthoc_readout_loop, readouts_loop, window_readout_loop

from cra import metrics, readouts
from cra.data.keys import split_key
from cra.readouts import READOUTS, interval_readouts

SECONDS = [float(i) for i in range(8)]  # frame i at i seconds


def test_posthoc_keeps_frames_above_the_discounted_threshold_with_gaps():
    # w' = w (min 0, max 1); mean = 1.8/8 = .225; thd = 1.3 * .225 = .2925
    # frame 3: 0 fails but is 1 s away -> stepped over; frame 4: .8/(1 + 2/10) = .667 >= thd -> kept
    assert readouts.posthoc_span([0, 0, 1, 0, 0.8, 0, 0, 0], SECONDS) == [2.0, 4.0]


def test_posthoc_stops_at_the_first_failure_beyond_dis_seconds():
    w = [0, 0, 1, 0, 0, 0.9, 0, 0]  # mean .2375, thd .30875
    # frames 6 s apart: frame 3 (6 s) fails, frame 4 (12 s > 10) fails -> stop before frame 5
    assert readouts.posthoc_span(w, [0, 6, 12, 18, 24, 30, 36, 42]) == [12.0, 12.0]  # zero length
    # frames 1 s apart: frame 5 is reached, .9/(1 + 3/10) = .69 >= thd
    assert readouts.posthoc_span(w, SECONDS) == [2.0, 5.0]


def test_posthoc_frame_zero_quirk():
    w = [0.9, 1, 0, 0, 0, 0, 0, 0]  # argmax 1; frame 0 would pass (.9/1.1 > thd)
    assert readouts.posthoc_span(w, SECONDS) == [1.0, 1.0]  # official: the left walk stops before frame 0
    assert readouts.posthoc_span(w, SECONDS, official=False) == [0.0, 1.0]
    assert readouts.posthoc_span([1, 0.9, 0, 0, 0, 0, 0, 0], SECONDS) == [0.0, 1.0]  # frame 0 as argmax is fine


def test_posthoc_uniform_weights_give_the_whole_sampled_range():
    # min-max normalisation maps constant weights to 0: thd 0 and every score 0 >= 0 -> all frames right of 0
    assert readouts.posthoc_span([0.5] * 8, SECONDS) == [0.0, 7.0]


def test_posthoc_spans_needs_frame_times_for_every_video():
    with pytest.raises(KeyError, match="no frame2time entry for video 'v'"):
        readouts.posthoc_spans({"v_1": [0.0] * 8}, {"u": SECONDS})
    with pytest.raises(ValueError, match="same length"):
        readouts.posthoc_span([0.0] * 8, SECONDS[:4])


W10 = [0.05, 0.05, 0.1, 0.1, 0.3, 0.1, 0.05, 0.2, 0.025, 0.025]


def test_window_readout_by_hand():
    # T = 10 -> sizes 1, 3, 5 allowed (<= T // 2). Peak at 4. 5-frame windows holding frame 4:
    # start 0: .60, 1: .65, 2: .65, 3: .75, 4: .675 -> start 3, end 8 (exclusive)
    assert readouts.window_indices(W10) == (3, 8)
    assert readouts.window_span(W10) == pytest.approx([3 / 9, 8 / 9])  # released: / (T - 1)
    assert readouts.window_span(W10, convention="bins") == pytest.approx([3 / 10, 8 / 10])
    # T = 8: size 5 > 4 is skipped; 3-frame windows around the peak at 3: starts 1 (.5), 2 (.5), 3 (.6)
    assert readouts.window_indices([0.1, 0.1, 0.1, 0.3, 0.1, 0.2, 0.05, 0.05]) == (3, 6)
    # ties keep the first window found (binary-exact weights: the three sums are exactly 0.625)
    assert readouts.window_indices([0.125, 0.125, 0.125, 0.375, 0.125, 0.125, 0.125, 0.125]) == (1, 4)


def test_window_released_convention_can_pass_the_video_end():
    w = [1.0] * 31 + [2.0]  # peak at the last frame: window [27, 32)
    assert readouts.window_span(w) == pytest.approx([27 / 31, 32 / 31])
    assert readouts.window_span(w, convention="bins")[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown window convention"):
        readouts.window_span(w, convention="frames")


def test_merge_rule():
    assert readouts.merge_span([2, 6], [4, 8]) == [4, 8 - 2]  # intersection [4, 6]
    assert readouts.merge_span([1, 2], [5, 6]) == [5, 6]  # disjoint: keep the post-hoc span
    assert readouts.merge_span([1, 5], [5, 8]) == [5, 5]  # touching: a zero-length intersection
    gsub = {"v": {"duration": 10, "location": {"1": [[0.0, 1.0]], "2": [[0.0, 1.0]]}}}
    # the window span is converted first: [0.25, 0.45] * 10 -> round -> [2.5, 4.5]
    merged = readouts.merge_spans({"v_1": [0.25, 0.45], "v_2": [0.0, 0.1]}, {"v_1": [3.0, 7.0]}, gsub)
    assert merged == {"v_1": [3.0, 4.5]}  # v_2 has no post-hoc span


def test_split_key():
    assert split_key("4882821564_1") == ("4882821564", "1")
    with pytest.raises(ValueError, match="not of the form"):
        split_key("4882821564")


# ---------------------------------------------------------------------------------------------
# The batched entry point against the references
# ---------------------------------------------------------------------------------------------
def random_cases(seed: int, n_cases: int = 300, T: int = 32):
    """Weights of several shapes (flat, peaked, spiky, with exact ties), prefix masks, timestamps
    (sorted, some repeated as for short videos) and integer durations."""
    g = torch.Generator().manual_seed(seed)
    kind = torch.randint(0, 4, (n_cases,), generator=g)
    w = torch.rand(n_cases, T, generator=g, dtype=torch.float64)
    w[kind == 1] = torch.softmax(5 * torch.randn(int((kind == 1).sum()), T, generator=g, dtype=torch.float64), 1)
    w[kind == 2] = torch.rand(int((kind == 2).sum()), T, generator=g, dtype=torch.float64) ** 8
    w[kind == 3] = (
        torch.randint(0, 3, (int((kind == 3).sum()), T), generator=g).double() + 0.5
    )  # exact ties (binary fractions)
    lengths = torch.where(torch.rand(n_cases, generator=g) < 0.7, T, torch.randint(1, T + 1, (n_cases,), generator=g))
    mask = torch.arange(T)[None, :] < lengths[:, None]
    duration = torch.randint(5, 125, (n_cases,), generator=g).double()
    steps = torch.rand(n_cases, T, generator=g, dtype=torch.float64) * (torch.rand(n_cases, T, generator=g) > 0.2)
    times = steps.cumsum(1) / steps.sum(1, keepdim=True).clamp_min(1e-9) * duration[:, None]  # repeats where step = 0
    return w, mask, times, duration


def frame_numbers(w: torch.Tensor) -> torch.Tensor:
    """Frame i at i seconds: seconds then equal frame indices."""
    return torch.arange(w.shape[1], dtype=w.dtype).repeat(w.shape[0], 1)


def as_seconds(frames: tuple, frame_times: torch.Tensor) -> torch.Tensor:
    start, end = frames
    return torch.stack([frame_times.gather(1, start[:, None])[:, 0], frame_times.gather(1, end[:, None])[:, 0]], 1)


@pytest.mark.parametrize("sizes", [(1, 3, 5), (2, 4), (5, 3, 1, 9), (3,)])
def test_window_equals_the_reference_per_question(sizes):
    w, mask, _, _ = random_cases(1)
    frames = frame_numbers(w)
    got = interval_readouts(w, frames, mask, readouts=("window_frametimes",), window_sizes=sizes)["window_frametimes"]
    ref_start, ref_end = window_readout_loop(w, sizes, mask)
    assert torch.equal(got, torch.stack([ref_start, ref_end], 1).double())
    peak = w.masked_fill(~mask, -1).argmax(1)
    assert bool((got[:, 0] <= peak).all() and (peak <= got[:, 1]).all() and (got[:, 1] < mask.sum(1)).all())


def test_window_quirk_largest_window_wins():
    """With positive weights every 1- or 3-frame window holding the peak lies inside a 5-frame window
    that holds it too and has a larger sum: the released read-out always has width 5."""
    w, _, _, _ = random_cases(2)
    span = interval_readouts(w, frame_numbers(w), readouts=("window_frametimes",))["window_frametimes"]
    assert bool((span[:, 1] - span[:, 0] + 1 == 5).all())


def test_posthoc_equals_the_reference_per_question():
    for seed in (3, 4):
        w, mask, times, _ = random_cases(seed)
        for thd_weight, dis in ((0.3, 10.0), (0.0, 3.0), (0.8, 30.0)):
            ref = posthoc_readout_loop(w, times, mask, thd_weight, dis)
            got = interval_readouts(w, times, mask, readouts=("posthoc",), thd_weight=thd_weight, dis=dis)["posthoc"]
            assert torch.equal(got, as_seconds(ref, times))
            # with frame i at 6 i seconds the seconds identify the frames: the same frames, exactly
            spread = 6.0 * frame_numbers(w)
            got = interval_readouts(w, spread, mask, readouts=("posthoc",), thd_weight=thd_weight, dis=dis)["posthoc"]
            ref_start, ref_end = posthoc_readout_loop(w, spread, mask, thd_weight, dis)
            assert torch.equal(got / 6, torch.stack([ref_start, ref_end], 1).double())


def test_posthoc_left_walk_never_adds_frame_zero():
    w = torch.tensor([[0.9, 0.95, 1.0, 0.0, 0.0, 0.0], [1.0, 0.9, 0.0, 0.0, 0.0, 0.0]])
    span = interval_readouts(w, frame_numbers(w), readouts=("posthoc",))["posthoc"]
    assert span.tolist() == [[1.0, 2.0], [0.0, 1.0]]  # frame 0 only as the peak itself


def test_merge_comes_from_the_window_and_posthoc_and_equals_the_reference():
    w, mask, times, duration = random_cases(5)
    mask[:, :2] = True  # the released window divides by T - 1
    got = interval_readouts(w, times, mask, readouts=readouts.ALL_READOUTS, duration=duration)
    assert list(got) == list(readouts.ALL_READOUTS) and all(s.dtype == torch.float64 for s in got.values())
    ref = readouts_loop(w, times, mask, readouts=readouts.ALL_READOUTS, duration=duration)
    assert all(torch.equal(got[r], ref[r]) for r in readouts.ALL_READOUTS)  # bit-identical in float64
    # the frame-times merge equals the intersection of frame indices: both spans hold the peak frame
    window, post = window_readout_loop(w, (1, 3, 5), mask), posthoc_readout_loop(w, times, mask)
    assert torch.equal(got["merge_frametimes"], as_seconds(merge_readout_loop(window, post), times))
    w_frames, p_frames = torch.stack(window, 1), torch.stack(post, 1)
    assert not bool(((w_frames[:, 1] < p_frames[:, 0]) | (p_frames[:, 1] < w_frames[:, 0])).any())
    narrower = (got["merge_frametimes"][:, 1] - got["merge_frametimes"][:, 0]) < (
        got["posthoc"][:, 1] - got["posthoc"][:, 0]
    )
    assert bool(narrower.any())


def test_mask_is_checked_once_and_each_readout_computed_once(monkeypatch):
    import cra.model.ops

    calls = {"mask": 0, "window": 0, "posthoc": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(cra.model.ops, "check_frame_mask", counting("mask", cra.model.ops.check_frame_mask))
    monkeypatch.setattr(readouts, "_window_frames", counting("window", readouts._window_frames))
    monkeypatch.setattr(readouts, "_posthoc_frames", counting("posthoc", readouts._posthoc_frames))
    w, mask, times, duration = random_cases(6, n_cases=8)
    mask[:, :2] = True
    interval_readouts(w, times, mask, readouts=readouts.ALL_READOUTS, duration=duration)  # 3 windows, 3 merges
    assert calls == {"mask": 1, "window": 1, "posthoc": 1}
    only_merge = interval_readouts(w, times, mask, readouts=("merge",), duration=duration)
    assert list(only_merge) == ["merge"] and calls == {"mask": 2, "window": 2, "posthoc": 2}
    interval_readouts(w, times, mask, readouts=("window_frametimes",))
    assert calls == {"mask": 3, "window": 3, "posthoc": 2}
    bad = mask.clone()
    bad[0, 0] = False  # padding before a valid frame
    with pytest.raises(ValueError, match="valid frames must come first"):
        interval_readouts(w, times, bad, duration=duration)


@pytest.mark.parametrize(
    "window, merge, convention", [("window", "merge", "released"), ("window_bins", "merge_bins", "bins")]
)
def test_normalised_window_conventions_equal_the_official_conversion(window, merge, convention):
    """window / window_bins: the window as a fraction of the video, times the integer duration, rounded
    as cra.metrics.to_seconds rounds; the merge intersects seconds like the official combine (merge_spans)."""
    w, mask, times, duration = random_cases(7)
    names = (window, "posthoc", merge)
    if convention == "released":  # [s/(T-1), e'/(T-1)] needs two frames
        with pytest.raises(ValueError, match="fewer than 2 valid frames"):
            interval_readouts(w, times, mask, readouts=names, duration=duration)
        mask[:, :2] = True
    got = interval_readouts(w, times, mask, readouts=names, duration=duration)
    ref = readouts_loop(w, times, mask, readouts=names, duration=duration)
    assert all(torch.equal(got[r], ref[r]) for r in names)  # bit-identical in float64
    # in seconds the window and the post-hoc span can miss each other: both branches of the merge occur
    (ws, we), (ps, pe) = got[window].T, got["posthoc"].T
    disjoint = (we < ps) | (pe < ws)
    assert 0 < int(disjoint.sum()) < len(w)
    assert torch.equal(got[merge][disjoint], got["posthoc"][disjoint])
    # the same through the dict helpers of cra evaluate and cra.released (full rows only: no mask there)
    full = mask.all(1)
    keys = [f"v{b}_0" for b in range(len(w)) if full[b]]
    weights = {k: w[int(k[1:-2])].tolist() for k in keys}
    f2t = {split_key(k)[0]: times[int(k[1:-2])].tolist() for k in keys}
    gsub = {split_key(k)[0]: {"duration": duration[int(k[1:-2])].item(), "location": {"0": [[0.0, 1.0]]}} for k in keys}
    normalized = readouts.window_spans(weights, convention=convention)
    posthoc = readouts.posthoc_spans(weights, f2t)
    merged = readouts.merge_spans(normalized, posthoc, gsub)
    for k in keys:
        b = int(k[1:-2])
        assert got[window][b].tolist() == metrics.to_seconds(normalized[k], gsub[split_key(k)[0]]["duration"])
        assert got["posthoc"][b].tolist() == posthoc[k]
        assert got[merge][b].tolist() == merged[k]


def test_window_conventions_by_hand():
    w = torch.tensor([[1.0] * 31 + [2.0]])  # float32 in: peak at the last frame, frames 27..31
    times = 2.0 * frame_numbers(w)
    duration = torch.tensor([31.0])
    spans = interval_readouts(w, times, readouts=("window", "window_frametimes", "window_bins"), duration=duration)
    assert {k: s.tolist() for k, s in spans.items()} == {
        "window": [[27.0, 32.0]],  # [27/31, 32/31] x 31 s: past the video's end (released convention)
        "window_frametimes": [[54.0, 62.0]],  # [t_27, t_31]
        "window_bins": [[26.2, 31.0]],
    }  # round([27/32, 32/32] x 31, 1)
    assert all(s.dtype == torch.float64 for s in spans.values())  # float64 whatever comes in


def test_readouts_are_float64_at_the_ten_second_boundary():
    """The post-hoc walk stops at the first failing frame more than dis = 10 s away. 10.1 - 0.1 is
    10 in float64 (not more than 10: the walk steps over frame 6 and keeps frame 7), but 10.1 and 0.1
    stored in float32 are 10.00000038 s apart (the walk stops at frame 6): read-outs take float64 times."""
    t = [0.1, 1.0, 2.0, 3.0, 4.0, 5.0, 10.1, 10.5]
    w = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9]  # thd = 1.3 x 1.9 / 8; frame 7: .9 / (1 + 1.04) >= thd
    reference = readouts.posthoc_span(w, t)  # numpy float64, the official semantics
    assert reference == [0.1, 10.5]
    got = interval_readouts(torch.tensor([w]), torch.tensor([t], dtype=torch.float64), readouts=("posthoc",))["posthoc"]
    assert got.dtype == torch.float64 and got.tolist() == [reference]
    t32 = torch.tensor([t], dtype=torch.float32)  # what the read-out got before issue 13
    assert float(t32[0, 6]) - float(t32[0, 0]) > 10.0
    got = interval_readouts(torch.tensor([w]), t32, readouts=("posthoc",))["posthoc"]
    assert got.tolist() == [[float(t32[0, 0])] * 2]  # a different decision: frame times must be float64


def test_names_and_bad_arguments():
    assert READOUTS == ("window", "posthoc", "merge")
    assert set(readouts.LABELS) == set(readouts.ALL_READOUTS) and readouts.LABELS["posthoc"] == "post-hoc"
    assert len(set(readouts.LABELS.values())) == len(readouts.LABELS)  # one name, one rule
    assert set(readouts.WINDOW_CONVENTION.values()) == {"released", "frame_times", "bins"}
    from cra.config import RunConfig

    assert tuple(RunConfig().eval.readouts) == READOUTS  # the run config scores all of them by default
    w = torch.rand(2, 8)
    t = frame_numbers(w)
    d = torch.tensor([8.0, 9.0])
    assert list(interval_readouts(w, t, readouts=("merge", "window"), duration=d)) == ["merge", "window"]
    with pytest.raises(ValueError, match="expected some of"):
        interval_readouts(w, t, readouts=("post-hoc",))
    with pytest.raises(TypeError, match="window_seconds"):
        interval_readouts(w, t, window_seconds="released")  # the convention is part of the read-out's name
    for names in (("window",), ("merge",), ("window_bins",), ("merge_bins",)):
        with pytest.raises(ValueError, match="need duration"):
            interval_readouts(w, t, readouts=names)
    interval_readouts(w, t, readouts=("posthoc", "window_frametimes", "merge_frametimes"))  # no duration needed
    with pytest.raises(ValueError, match="duration: expected shape"):
        interval_readouts(w, t, duration=d[:1])
    with pytest.raises(ValueError, match="frame_times: expected shape"):
        interval_readouts(w, t[:, :4], duration=d)
    with pytest.raises(ValueError, match="expected some of"):
        readouts.question_readouts([0.1, 0.9], [0.0, 1.0], readouts=("pre-hoc",))
    with pytest.raises(ValueError, match="need the video's duration"):
        readouts.question_readouts([0.1, 0.9], [0.0, 1.0])
    assert readouts.duration_from_frame_times([1.2, 2.2, 32.8]) == pytest.approx(34.0)


def test_the_model_package_reads_out_nothing():
    """cra/model/ computes weights only: it imports neither the read-outs nor the metrics."""
    model_dir = Path(readouts.__file__).parent / "model"
    for path in model_dir.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(n.startswith(("cra.metrics", "cra.readouts")) for n in names), f"{path.name} imports {names}"
