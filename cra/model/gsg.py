r"""GSG, Gaussian Smoothing Grounding: frame weights from a cross-modal gate, an adaptive Gaussian
filter, and the three ways of reading an interval off the weights.

Weights (paper_digest.md 2.1-2.2):

.. math::

    \tilde v_i = \mathrm{GELU}(W_v \mathrm{LN}(\bar x_i)),\quad
    \tilde l = \mathrm{GELU}(W_l \mathrm{LN}(l)),\quad
    g_i = \tanh(\tilde v_i^\top \tilde l),\quad
    w^0 = \mathrm{softmax}_i\, \mathrm{MLP}(g_i \tilde v_i),\quad
    w \propto k_\sigma * w^0

Read-outs (all vectorised over batch and positions; ``*_loop`` are the literal versions used as
references by the tests, the benchmark and the book):

(a) :func:`window_readout`: the window, among sizes (1, 3, 5) not longer than T/2, that contains the
    arg-max frame and has the largest weight sum (the released code's "pre-hoc" span). With positive
    weights the largest allowed window always wins.
(b) :func:`posthoc_readout`: NExT-GQA's adaptive threshold (nextgqa_eval_semantics.md 1.4).
(c) :func:`merge_readout`: the intersection of (a) and (b), or (b) when they are disjoint.

Intervals are inclusive frame indices ``(start, end)``; :func:`interval_seconds` turns them into
seconds with the frame timestamps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cra.metrics import merge_span, posthoc_indices, window_indices
from cra.model.ops import check_frame_mask, masked_softmax

__all__ = [
    "GroundingWeights", "GaussianSmoothing", "GSG", "AttentionPooling", "gaussian_kernel",
    "window_readout", "posthoc_readout", "merge_readout", "interval_seconds", "released_window_seconds",
    "gaussian_filter", "renormalise", "smooth_weights", "weight_stats",
    "window_readout_loop", "posthoc_readout_loop", "merge_readout_loop",
]


@dataclass
class GroundingWeights:
    w0: torch.Tensor  # (B, T) raw weights, softmax of the MLP scores
    w: torch.Tensor  # (B, T) smoothed weights (= w0 without smoothing)
    gate: torch.Tensor | None  # (B, T) g_i, None for plain attention pooling


def gaussian_kernel(sigma: torch.Tensor, size: int) -> torch.Tensor:
    r"""$k_\sigma(j) = e^{-j^2/2\sigma^2} / \sum_{j'} e^{-j'^2/2\sigma^2}$, $j = -\lfloor size/2 \rfloor..$: (size,)."""
    j = torch.arange(size, device=sigma.device, dtype=sigma.dtype) - size // 2
    logits = -(j**2) / (2 * sigma**2)
    return logits.softmax(0)  # the normalised Gaussian, computed stably


class GaussianSmoothing(nn.Module):
    """A 1-D Gaussian filter along time with one learned width, shared by all videos.

    ``param="softplus"``: sigma = softplus(rho) stays positive (paper intent); ``"raw"``: sigma is the
    parameter itself (released code), which gradient steps may push through 0.
    """

    def __init__(self, kernel_size: int = 5, sigma_init: float = 1.0, param: str = "softplus"):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={kernel_size}: expected odd")
        self.kernel_size, self.param = kernel_size, param
        init = math.log(math.expm1(sigma_init)) if param == "softplus" else sigma_init  # softplus^-1
        self.sigma_param = nn.Parameter(torch.tensor(float(init)))

    @property
    def sigma(self) -> torch.Tensor:
        return F.softplus(self.sigma_param) if self.param == "softplus" else self.sigma_param

    def kernel(self) -> torch.Tensor:
        return gaussian_kernel(self.sigma, self.kernel_size)  # (k,)

    def forward(self, w0: torch.Tensor) -> torch.Tensor:
        """(k_sigma * w0) with zero padding: (B, T) -> (B, T)."""
        return gaussian_filter(w0, self.kernel())


def gaussian_filter(w0: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(k * w0)_i = sum_j k(j) w0_{i+j}, zero padding (frames outside the video weigh 0): (B, T) -> (B, T)."""
    kernel = kernel.to(w0.dtype)
    return F.conv1d(w0[:, None, :], kernel[None, None, :], padding=kernel.shape[0] // 2)[:, 0]


def renormalise(smoothed: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """``l1``: w = s / sum(s) over valid frames (keeps the shape); ``softmax``: w = softmax(s) (released;
    s is a distribution with entries ~1/T, so exp(s) is nearly constant and w nearly uniform)."""
    if how == "l1":
        s = smoothed * mask
        return s / s.sum(1, keepdim=True).clamp_min(torch.finfo(s.dtype).tiny)
    if how == "softmax":
        return masked_softmax(smoothed, mask)
    raise ValueError(f"renorm={how!r}: expected 'l1' or 'softmax'")


def smooth_weights(w0: torch.Tensor, sigma: float, renorm: str = "l1", kernel_size: int = 5,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """The GSG filter at a given width, without parameters: w = renorm(k_sigma * w0), (B, T) -> (B, T)
    (what :class:`GSG` does with its learned sigma; for analysing given weights)."""
    mask = check_frame_mask(mask, tuple(w0.shape), w0.device, full=False)
    kernel = gaussian_kernel(torch.tensor(float(sigma), dtype=w0.dtype, device=w0.device), kernel_size)
    return renormalise(gaussian_filter(w0 * mask, kernel), mask, renorm)


def weight_stats(w: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """How peaked each row of frame weights is (rows are normalised to sum 1 first), each (B,):

    ``peak_ratio`` = max w / min w over valid frames (1 for a uniform row);
    ``entropy_ratio`` = H(w) / log n with H(w) = -sum_i w_i log w_i (1 for uniform, 0 for one frame);
    ``effective_frames`` = exp H(w), the number of equally weighted frames with the same entropy.
    """
    mask = check_frame_mask(mask, tuple(w.shape), w.device, full=False)
    p = (w * mask) / (w * mask).sum(1, keepdim=True)  # (B, T)
    n = mask.sum(1).to(w.dtype)
    entropy = -torch.where(p > 0, p * p.clamp_min(torch.finfo(p.dtype).tiny).log(), torch.zeros_like(p)).sum(1)
    peak = p.masked_fill(~mask, float("-inf")).max(1).values
    low = p.masked_fill(~mask, float("inf")).min(1).values
    return {"peak_ratio": peak / low, "entropy_ratio": entropy / n.log().clamp_min(torch.finfo(p.dtype).tiny),
            "effective_frames": entropy.exp()}


class GSG(nn.Module):
    """Gate, MLP scores, softmax -> w0; Gaussian smoothing + re-normalisation -> w."""

    def __init__(self, d_model: int, use_smoothing: bool = True, kernel_size: int = 5, sigma_init: float = 1.0,
                 sigma_param: str = "softplus", renorm: str = "l1"):
        super().__init__()
        self.video_proj = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_model), nn.GELU())  # W_v
        self.text_proj = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_model), nn.GELU())  # W_l
        hidden = max(1, d_model // 2)
        # the last layer has no bias: softmax over frames ignores a shared shift, so it could never learn
        self.score = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, hidden), nn.GELU(),
                                   nn.Linear(hidden, 1, bias=False))
        self.smoothing = GaussianSmoothing(kernel_size, sigma_init, sigma_param) if use_smoothing else None
        self.renorm = renorm

    def forward(self, frame_states: torch.Tensor, l_global: torch.Tensor, mask: torch.Tensor | None = None) -> GroundingWeights:
        mask = check_frame_mask(mask, frame_states.shape[:2], frame_states.device, full=False)
        v = self.video_proj(frame_states)  # (B, T, D)  v~_i
        l = self.text_proj(l_global)  # (B, D)  l~
        gate = torch.tanh(torch.einsum("btd,bd->bt", v, l))  # (B, T)  g_i = tanh(<v~_i, l~>)
        scores = self.score(gate.unsqueeze(-1) * v).squeeze(-1)  # (B, T)  s_i = MLP(g_i v~_i)
        w0 = masked_softmax(scores, mask)  # (B, T)
        if self.smoothing is None:
            return GroundingWeights(w0, w0, gate)
        w = renormalise(self.smoothing(w0), mask, self.renorm)  # (B, T)
        return GroundingWeights(w0, w, gate)


class AttentionPooling(nn.Module):
    """GSG switched off: parameter-free attention w0 = softmax_i(<x_i, l>/sqrt(D)), w = w0."""

    def forward(self, frame_states, l_global, mask=None) -> GroundingWeights:
        mask = check_frame_mask(mask, frame_states.shape[:2], frame_states.device, full=False)
        scores = torch.einsum("btd,bd->bt", frame_states, l_global) / math.sqrt(frame_states.shape[-1])
        w0 = masked_softmax(scores, mask)  # (B, T)
        return GroundingWeights(w0, w0, None)


# --------------------------------------------------------------------------------------------
# Interval read-outs, vectorised
# --------------------------------------------------------------------------------------------

def _valid(w: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    mask = check_frame_mask(mask, tuple(w.shape), w.device)
    return mask, mask.sum(1)  # (B, T), (B,)


def window_readout(w: torch.Tensor, window_sizes=(1, 3, 5), mask: torch.Tensor | None = None):
    """(a) Best window containing the arg-max: -> (start, end) inclusive frame indices, each (B,).

    A size s is allowed when s = 1 or 2 s <= n (n = valid frames); windows lie inside the valid
    frames. Ties go to the earlier size in ``window_sizes``, then the earlier start.
    """
    mask, n = _valid(w, mask)
    B, T = w.shape
    peak = w.masked_fill(~mask, float("-inf")).argmax(1)  # (B,)
    starts = torch.arange(T, device=w.device)[None, :]  # (1, T)
    w_valid = w * mask
    sums, sizes = [], []
    for s in window_sizes:  # a handful of sizes; positions and batch are vectorised
        total = torch.full_like(w, float("-inf"))
        if s <= T:
            total[:, : T - s + 1] = w_valid.unfold(1, s, 1).sum(-1)  # (B, T-s+1) window sums
        ok = (starts + s <= n[:, None]) & (starts <= peak[:, None]) & (peak[:, None] <= starts + s - 1)
        ok &= ((2 * s <= n) | (s == 1))[:, None]
        sums.append(total.masked_fill(~ok, float("-inf")))
        sizes.append(s)
    flat = torch.stack(sums, 1).flatten(1)  # (B, S*T), ordered (size, start)
    best = flat.argmax(1)  # first maximum
    size = torch.as_tensor(sizes, device=w.device)[best // T]
    start = best % T
    # no allowed size (possible only if 1 is not among window_sizes): fall back to the peak frame
    none = torch.isinf(flat.max(1).values)
    start = torch.where(none, peak, start)
    end = torch.where(none, peak, start + size - 1)
    return start, end


def posthoc_readout(w: torch.Tensor, frame_times: torch.Tensor, mask: torch.Tensor | None = None,
                    thd_weight: float = 0.3, dis: float = 10.0):
    """(b) NExT-GQA's adaptive threshold on min-max normalised weights: -> (start, end) indices.

    From the peak frame p, walk outwards; frame j is kept when
    a_j / (1 + |t_j - t_p| / dis) >= (1 + thd_weight) * mean(a); each walk stops at the first frame
    that fails while more than ``dis`` seconds away. As in the official code the left walk never
    reaches frame 0. The span is [min kept, max kept] (kept frames may have gaps).
    """
    mask, n = _valid(w, mask)
    B, T = w.shape
    lo = w.masked_fill(~mask, float("inf")).min(1, keepdim=True).values
    hi = w.masked_fill(~mask, float("-inf")).max(1, keepdim=True).values
    a = ((w - lo) / (hi - lo + 1e-12)).masked_fill(~mask, 0.0)  # (B, T) min-max normalised
    peak = a.masked_fill(~mask, float("-inf")).argmax(1, keepdim=True)  # (B, 1)
    thd = (1 + thd_weight) * a.sum(1, keepdim=True) / n[:, None]  # (B, 1)
    elapse = (frame_times - frame_times.gather(1, peak)).abs()  # (B, T) seconds from the peak
    passes = a / (1 + elapse / dis) >= thd
    stops = ~passes & (elapse > dis) & mask
    j = torch.arange(T, device=w.device)[None, :]
    right, left = (j > peak) & mask, (j < peak) & (j >= 1)
    blocked_right = (stops & right).cumsum(1) > 0  # at or after the first stop to the right
    blocked_left = (stops & left).flip(1).cumsum(1).flip(1) > 0  # at or before the first stop to the left
    kept = (passes & right & ~blocked_right) | (passes & left & ~blocked_left) | (j == peak)
    start = torch.where(kept, j, T).min(1).values
    end = torch.where(kept, j, -1).max(1).values
    return start, end


def merge_readout(window: tuple, posthoc: tuple):
    """(c) Intersection of the window and post-hoc intervals; the post-hoc one when they are disjoint."""
    start, end = torch.maximum(window[0], posthoc[0]), torch.minimum(window[1], posthoc[1])
    overlap = start <= end
    return torch.where(overlap, start, posthoc[0]), torch.where(overlap, end, posthoc[1])


def interval_seconds(start: torch.Tensor, end: torch.Tensor, frame_times: torch.Tensor) -> torch.Tensor:
    """[t_start, t_end] in seconds from inclusive frame indices: -> (B, 2)."""
    return torch.stack([frame_times.gather(1, start[:, None])[:, 0], frame_times.gather(1, end[:, None])[:, 0]], 1)


def released_window_seconds(start: torch.Tensor, end: torch.Tensor, num_frames: int, duration: torch.Tensor) -> torch.Tensor:
    """The released code's conversion of a window: [s/(T-1), (e+1)/(T-1)] x duration (end exclusive,
    not clamped, so it can run past the video's end): -> (B, 2)."""
    return torch.stack([start, end + 1], 1).to(duration.dtype) / (num_frames - 1) * duration[:, None]


# --------------------------------------------------------------------------------------------
# The same read-outs as literal loops (references for tests, benchmark and book)
# --------------------------------------------------------------------------------------------

def window_readout_loop(w, window_sizes=(1, 3, 5), mask=None):
    """:func:`window_readout` one question at a time with :func:`cra.metrics.window_indices`."""
    mask, n = _valid(w, mask)
    spans = [window_indices(row[:length], window_sizes) for row, length in zip(w.tolist(), n.tolist())]
    return torch.tensor([s for s, _ in spans]), torch.tensor([e - 1 for _, e in spans])  # inclusive end


def posthoc_readout_loop(w, frame_times, mask=None, thd_weight=0.3, dis=10.0):
    """:func:`posthoc_readout` one question at a time with :func:`cra.metrics.posthoc_indices`."""
    mask, n = _valid(w, mask)
    spans = [posthoc_indices(row[:length], times[:length], thd_weight, dis)
             for row, times, length in zip(w.tolist(), frame_times.tolist(), n.tolist())]
    return torch.tensor([s for s, _ in spans]), torch.tensor([e for _, e in spans])


def merge_readout_loop(window, posthoc):
    """:func:`merge_readout` one question at a time with :func:`cra.metrics.merge_span`."""
    spans = [merge_span((ws, we), (ps, pe)) for ws, we, ps, pe in zip(*(t.tolist() for t in (*window, *posthoc)))]
    return torch.tensor([s for s, _ in spans]), torch.tensor([e for _, e in spans])
