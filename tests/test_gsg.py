"""GSG: the Gaussian kernel, the learned width and the re-normalisation (the interval read-outs of
the weights are tested in test_readouts.py)."""

from __future__ import annotations

import math

import pytest
import torch

from cra.model.gsg import (
    GSG,
    AttentionPooling,
    GaussianSmoothing,
    gaussian_kernel,
    renormalise,
    smooth_weights,
    weight_stats,
)


@pytest.mark.parametrize("sigma,size", [(0.3, 5), (1.0, 5), (2.5, 7), (1.0, 1)])
def test_gaussian_kernel_normalised_symmetric_and_matches_formula(sigma, size):
    k = gaussian_kernel(torch.tensor(sigma, dtype=torch.float64), size)
    assert k.shape == (size,)
    torch.testing.assert_close(k.sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(k, k.flip(0))
    raw = [math.exp(-(j * j) / (2 * sigma * sigma)) for j in range(-(size // 2), size // 2 + 1)]
    torch.testing.assert_close(k, torch.tensor([r / sum(raw) for r in raw], dtype=torch.float64))


def test_width_is_learned_and_stays_positive():
    smoothing = GaussianSmoothing(5, sigma_init=1.0)
    torch.testing.assert_close(smoothing.sigma, torch.tensor(1.0))
    w0 = torch.zeros(1, 9)
    w0[0, 4] = 1.0
    before = smoothing.sigma.item()
    opt = torch.optim.SGD(smoothing.parameters(), lr=10.0)
    for _ in range(3):  # reward a sharp peak: pushes sigma down hard
        loss = -smoothing(w0)[0, 4]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert smoothing.sigma.item() != before
    assert 0 < smoothing.sigma.item() < before


def test_raw_sigma_parameter_is_the_released_option():
    soft, raw = GaussianSmoothing(5, 1.0, "softplus"), GaussianSmoothing(5, 1.0, "raw")
    torch.testing.assert_close(soft.kernel(), raw.kernel())  # same filter at initialisation
    w0 = torch.rand(2, 9)
    for module in (soft, raw):
        module(w0)[:, 4].sum().backward()
    # d/d rho of softplus(rho) is sigmoid(rho) < 1: the two parametrisations learn differently
    ratio = soft.sigma_param.grad / raw.sigma_param.grad
    torch.testing.assert_close(ratio, torch.sigmoid(soft.sigma_param.detach()))
    assert abs(ratio.item() - 1) > 0.1


def test_gsg_weights_are_distributions_and_padding_is_zero():
    torch.manual_seed(0)
    gsg = GSG(16)
    frames, l = torch.randn(3, 10, 16), torch.randn(3, 16)
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[1, 7:] = False
    out = gsg(frames, l, mask)
    for w in (out.w0, out.w):
        torch.testing.assert_close(w.sum(1), torch.ones(3))
        assert bool((w >= 0).all()) and bool((w[~mask] == 0).all())
    assert out.gate.shape == (3, 10) and bool((out.gate.abs() <= 1).all())


def test_softmax_renormalisation_flattens_the_weights():
    """The released code re-normalises with a softmax. The smoothed weights s_i lie in [0, 1], so
    w_max / w_min = exp(s_max - s_min) <= e whatever w0 was: the peak is squashed towards uniform.
    The l1 re-normalisation only rescales, so it keeps the shape."""
    torch.manual_seed(0)
    w0 = torch.softmax(4 * torch.randn(6, 32), 1)  # peaked raw weights
    mask = torch.ones(6, 32, dtype=torch.bool)
    smoothed = GaussianSmoothing(5)(w0).detach()
    paper, released = renormalise(smoothed, mask, "l1"), renormalise(smoothed, mask, "softmax")
    torch.testing.assert_close(paper, smoothed / smoothed.sum(1, keepdim=True))  # l1 only rescales

    def peak_ratio(w):
        return w.max(1).values / w.min(1).values

    assert bool((peak_ratio(released) <= math.e).all())
    assert bool((peak_ratio(paper) > 100).all())
    # the same through GSG: identical w0, different w
    gsg_paper, gsg_released = GSG(16, renorm="l1"), GSG(16, renorm="softmax")
    gsg_released.load_state_dict(gsg_paper.state_dict())
    frames, l = torch.randn(4, 32, 16), torch.randn(4, 16)
    a, b = gsg_paper(frames, l), gsg_released(frames, l)
    torch.testing.assert_close(a.w0, b.w0)
    assert not torch.allclose(a.w, b.w)
    assert bool((b.w.std(1) < a.w.std(1)).all())


def test_no_smoothing_and_no_gsg():
    torch.manual_seed(0)
    gsg = GSG(16, use_smoothing=False)
    assert not any("sigma" in n for n, _ in gsg.named_parameters())
    frames, l = torch.randn(2, 6, 16), torch.randn(2, 16)
    out = gsg(frames, l)
    assert out.w is out.w0
    pool = AttentionPooling()
    assert list(pool.parameters()) == []
    expected = torch.softmax(torch.einsum("btd,bd->bt", frames, l) / 4.0, 1)
    torch.testing.assert_close(pool(frames, l).w, expected)


def test_smooth_weights_is_the_module_at_a_fixed_width():
    torch.manual_seed(0)
    w0 = torch.softmax(3 * torch.randn(4, 16), 1)
    module = GaussianSmoothing(5, sigma_init=1.7)
    mask = torch.ones(4, 16, dtype=torch.bool)
    for how in ("l1", "softmax"):
        expected = renormalise(module(w0).detach(), mask, how)
        torch.testing.assert_close(smooth_weights(w0, 1.7, how), expected)
    # by hand: one spike in the middle spreads into the kernel itself (l1 keeps it a distribution)
    spike = torch.zeros(1, 9, dtype=torch.float64)
    spike[0, 4] = 1.0
    kernel = gaussian_kernel(torch.tensor(0.8, dtype=torch.float64), 5)
    torch.testing.assert_close(smooth_weights(spike, 0.8, "l1")[0, 2:7], kernel)
    # padded frames stay at 0 and do not leak into the valid ones
    pad = torch.ones(1, 9, dtype=torch.bool)
    pad[0, 6:] = False
    w = smooth_weights(torch.rand(1, 9), 1.0, "l1", mask=pad)
    assert bool((w[0, 6:] == 0).all()) and abs(w.sum().item() - 1) < 1e-6


def test_weight_stats_by_hand():
    uniform, onehot = torch.full((1, 4), 0.25), torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    u, o = weight_stats(uniform), weight_stats(onehot)
    torch.testing.assert_close(u["entropy_ratio"], torch.ones(1))
    torch.testing.assert_close(u["effective_frames"], torch.full((1,), 4.0))
    torch.testing.assert_close(u["peak_ratio"], torch.ones(1))
    torch.testing.assert_close(o["entropy_ratio"], torch.zeros(1))
    assert math.isinf(o["peak_ratio"].item())
    s = weight_stats(torch.tensor([[2.0, 1.0, 1.0, 9.0]]), mask=torch.tensor([[True, True, True, False]]))
    h = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))  # the valid part normalised: (0.5, 0.25, 0.25)
    torch.testing.assert_close(s["entropy_ratio"], torch.tensor([h / math.log(3)]))
    torch.testing.assert_close(s["peak_ratio"], torch.tensor([2.0]))
