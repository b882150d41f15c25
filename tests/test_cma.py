"""CMA: InfoNCE against values computed by hand, each direction, the released sampler."""

from __future__ import annotations

import math

import pytest
import torch

from cra.model.cma import cma_loss, info_nce

R = 1 / math.sqrt(2)
TAU = 0.07
# three samples in 2-D; text l_i and video v_i
TEXT = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
VIDEO = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
# cos(l_i, v_j), worked out by hand: rows i = text, columns j = video
COS = [[1.0, R, 0.0], [0.0, R, 1.0], [R, 1.0, R]]


def nce_row(positive: float, negatives: list[float]) -> float:
    """-log(e^{c+/tau} / (e^{c+/tau} + sum_k e^{c-_k/tau}))."""
    num = math.exp(positive / TAU)
    return -math.log(num / (num + sum(math.exp(c / TAU) for c in negatives)))


def test_text_to_video_matches_hand_computation():
    expected = (nce_row(1.0, [R, 0.0]) + nce_row(R, [0.0, 1.0]) + nce_row(R, [R, 1.0])) / 3
    got = info_nce(TEXT, VIDEO, TAU)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_video_to_text_matches_hand_computation():
    # anchor v_i, positive l_i, negatives l_j: column i of COS
    expected = (nce_row(1.0, [0.0, R]) + nce_row(R, [R, 1.0]) + nce_row(R, [0.0, 1.0])) / 3
    got = info_nce(VIDEO, TEXT, TAU)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_both_directions_sum_and_released_one_direction():
    both = cma_loss(TEXT, VIDEO, TAU, directions="both")
    one = cma_loss(TEXT, VIDEO, TAU, directions="text_to_video")
    assert set(one) == {"text_to_video", "total"}
    torch.testing.assert_close(both["total"], both["text_to_video"] + both["video_to_text"])
    torch.testing.assert_close(one["total"], info_nce(TEXT, VIDEO, TAU))
    assert both["total"].item() > one["total"].item() + 1e-3  # the two settings differ


def test_sampled_negatives_never_use_the_anchor():
    """With B = 2 the only other sample is drawn k times: the loss has a closed form."""
    text, video = TEXT[:2], VIDEO[:2]
    got = info_nce(text, video, TAU, negatives="sampled", num_negatives=5, generator=torch.Generator().manual_seed(0))
    expected = (nce_row(1.0, [R] * 5) + nce_row(R, [0.0] * 5)) / 2
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_sampled_negatives_differ_from_all_and_are_reproducible():
    torch.manual_seed(0)
    t, v = torch.randn(16, 8), torch.randn(16, 8)
    a = info_nce(t, v, negatives="sampled", num_negatives=32, generator=torch.Generator().manual_seed(1))
    b = info_nce(t, v, negatives="sampled", num_negatives=32, generator=torch.Generator().manual_seed(1))
    assert a.item() == b.item()
    assert abs(a.item() - info_nce(t, v).item()) > 1e-4


def test_gradients_and_degenerate_batch():
    t, v = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    cma_loss(t, v)["total"].backward()
    assert t.grad.abs().sum() > 0 and v.grad.abs().sum() > 0
    assert info_nce(torch.randn(1, 8), torch.randn(1, 8)).item() == 0.0
    with pytest.raises(ValueError):
        cma_loss(t, v, directions="sideways")
