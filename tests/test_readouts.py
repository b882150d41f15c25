"""Hand-worked cases of the span read-outs: post-hoc adaptive threshold, window search, merge."""

from __future__ import annotations

import pytest

from cra import metrics
from cra.data.keys import split_key

SECONDS = [float(i) for i in range(8)]  # frame i at i seconds


def test_posthoc_keeps_frames_above_the_discounted_threshold_with_gaps():
    # w' = w (min 0, max 1); mean = 1.8/8 = .225; thd = 1.3 * .225 = .2925
    # frame 3: 0 fails but is 1 s away -> stepped over; frame 4: .8/(1 + 2/10) = .667 >= thd -> kept
    assert metrics.posthoc_span([0, 0, 1, 0, 0.8, 0, 0, 0], SECONDS) == [2.0, 4.0]


def test_posthoc_stops_at_the_first_failure_beyond_dis_seconds():
    w = [0, 0, 1, 0, 0, 0.9, 0, 0]  # mean .2375, thd .30875
    # frames 6 s apart: frame 3 (6 s) fails, frame 4 (12 s > 10) fails -> stop before frame 5
    assert metrics.posthoc_span(w, [0, 6, 12, 18, 24, 30, 36, 42]) == [12.0, 12.0]  # zero length
    # frames 1 s apart: frame 5 is reached, .9/(1 + 3/10) = .69 >= thd
    assert metrics.posthoc_span(w, SECONDS) == [2.0, 5.0]


def test_posthoc_frame_zero_quirk():
    w = [0.9, 1, 0, 0, 0, 0, 0, 0]  # argmax 1; frame 0 would pass (.9/1.1 > thd)
    assert metrics.posthoc_span(w, SECONDS) == [1.0, 1.0]  # official: the left walk stops before frame 0
    assert metrics.posthoc_span(w, SECONDS, official=False) == [0.0, 1.0]
    assert metrics.posthoc_span([1, 0.9, 0, 0, 0, 0, 0, 0], SECONDS) == [0.0, 1.0]  # frame 0 as argmax is fine


def test_posthoc_uniform_weights_give_the_whole_sampled_range():
    # min-max normalisation maps constant weights to 0: thd 0 and every score 0 >= 0 -> all frames right of 0
    assert metrics.posthoc_span([0.5] * 8, SECONDS) == [0.0, 7.0]


def test_posthoc_spans_needs_frame_times_for_every_video():
    with pytest.raises(KeyError, match="no frame2time entry for video 'v'"):
        metrics.posthoc_spans({"v_1": [0.0] * 8}, {"u": SECONDS})
    with pytest.raises(ValueError, match="same length"):
        metrics.posthoc_span([0.0] * 8, SECONDS[:4])


W10 = [0.05, 0.05, 0.1, 0.1, 0.3, 0.1, 0.05, 0.2, 0.025, 0.025]


def test_window_readout_by_hand():
    # T = 10 -> sizes 1, 3, 5 allowed (<= T // 2). Peak at 4. 5-frame windows holding frame 4:
    # start 0: .60, 1: .65, 2: .65, 3: .75, 4: .675 -> start 3, end 8 (exclusive)
    assert metrics.window_indices(W10) == (3, 8)
    assert metrics.window_span(W10) == pytest.approx([3 / 9, 8 / 9])  # released: / (T - 1)
    assert metrics.window_span(W10, convention="bins") == pytest.approx([3 / 10, 8 / 10])
    # T = 8: size 5 > 4 is skipped; 3-frame windows around the peak at 3: starts 1 (.5), 2 (.5), 3 (.6)
    assert metrics.window_indices([0.1, 0.1, 0.1, 0.3, 0.1, 0.2, 0.05, 0.05]) == (3, 6)
    # ties keep the first window found (binary-exact weights: the three sums are exactly 0.625)
    assert metrics.window_indices([0.125, 0.125, 0.125, 0.375, 0.125, 0.125, 0.125, 0.125]) == (1, 4)


def test_window_released_convention_can_pass_the_video_end():
    w = [1.0] * 31 + [2.0]  # peak at the last frame: window [27, 32)
    assert metrics.window_span(w) == pytest.approx([27 / 31, 32 / 31])
    assert metrics.window_span(w, convention="bins")[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown window convention"):
        metrics.window_span(w, convention="frames")


def test_merge_rule():
    assert metrics.merge_span([2, 6], [4, 8]) == [4, 8 - 2]  # intersection [4, 6]
    assert metrics.merge_span([1, 2], [5, 6]) == [5, 6]  # disjoint: keep the post-hoc span
    assert metrics.merge_span([1, 5], [5, 8]) == [5, 5]  # touching: a zero-length intersection
    gsub = {"v": {"duration": 10, "location": {"1": [[0.0, 1.0]], "2": [[0.0, 1.0]]}}}
    # the window span is converted first: [0.25, 0.45] * 10 -> round -> [2.5, 4.5]
    merged = metrics.merge_spans({"v_1": [0.25, 0.45], "v_2": [0.0, 0.1]}, {"v_1": [3.0, 7.0]}, gsub)
    assert merged == {"v_1": [3.0, 4.5]}  # v_2 has no post-hoc span


def test_split_key():
    assert split_key("4882821564_1") == ("4882821564", "1")
    with pytest.raises(ValueError, match="not of the form"):
        split_key("4882821564")
