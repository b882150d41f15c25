r"""GSG, Gaussian Smoothing Grounding: frame weights from a cross-modal gate and an adaptive
Gaussian filter.

Weights (docs/paper_notes.md §2.1-2.2):

.. math::

    \tilde v_i = \mathrm{GELU}(W_v \mathrm{LN}(\bar x_i)),\quad
    \tilde l = \mathrm{GELU}(W_l \mathrm{LN}(l)),\quad
    g_i = \tanh(\tilde v_i^\top \tilde l / \sqrt D),\quad
    w^0 = \mathrm{softmax}_i\, \mathrm{MLP}(g_i\, \mathrm{LN}(\tilde v_i)),\quad
    w \propto k_\sigma * w^0

Released (``scaled_gate=False, norm="after_gate"``): $g_i = \tanh(\tilde v_i^\top \tilde l)$ and
$\mathrm{MLP}(\mathrm{LN}(g_i \tilde v_i))$. Since $\mathrm{LN}(g v) = \mathrm{sign}(g)\,\mathrm{LN}(v)$ (up to
LN's epsilon), only the gate's sign reaches the score, and its gradient is zero: the frame scores cannot
learn to depend on the question (the GSG chapter shows it).

Reading an interval off the weights (window, post-hoc threshold, merge) is :mod:`cra.readouts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cra.model.ops import check_frame_mask, masked_softmax

__all__ = [
    "GroundingWeights",
    "GaussianSmoothing",
    "GSG",
    "AttentionPooling",
    "gaussian_kernel",
    "gaussian_filter",
    "renormalise",
    "smooth_weights",
    "weight_stats",
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

    ``param="softplus"``: sigma = softplus(rho) stays positive (our reading: the
    paper's method text was not available to us, and its numbers come from the released model); ``"raw"``: sigma is the
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


def smooth_weights(
    w0: torch.Tensor, sigma: float, renorm: str = "l1", kernel_size: int = 5, mask: torch.Tensor | None = None
) -> torch.Tensor:
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
    return {
        "peak_ratio": peak / low,
        "entropy_ratio": entropy / n.log().clamp_min(torch.finfo(p.dtype).tiny),
        "effective_frames": entropy.exp(),
    }


#: where the score MLP's LayerNorm sits: "before_gate" (ours) or "after_gate" (released, cancels |g_i|)
GATE_NORMS = ("before_gate", "after_gate")


class GSG(nn.Module):
    """Gate, MLP scores, softmax -> w0; Gaussian smoothing + re-normalisation -> w."""

    def __init__(
        self,
        d_model: int,
        use_smoothing: bool = True,
        kernel_size: int = 5,
        sigma_init: float = 1.0,
        sigma_param: str = "softplus",
        renorm: str = "l1",
        norm: str = "before_gate",
        scaled_gate: bool = True,
    ):
        super().__init__()
        if norm not in GATE_NORMS:
            raise ValueError(f"GSG norm={norm!r}: expected one of {GATE_NORMS}")
        self.video_proj = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_model), nn.GELU())  # W_v
        self.text_proj = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_model), nn.GELU())  # W_l
        self.norm = norm
        self.gate_scale = 1.0 / math.sqrt(d_model) if scaled_gate else 1.0
        hidden = max(1, d_model // 2)
        # the last layer has no bias: softmax over frames ignores a shared shift, so it could never learn
        self.score = nn.Sequential(
            nn.LayerNorm(d_model), nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, 1, bias=False)
        )
        self.smoothing = GaussianSmoothing(kernel_size, sigma_init, sigma_param) if use_smoothing else None
        self.renorm = renorm

    def frame_terms(self, frame_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The products that do not depend on the text, for a caller that scores one video several
        times (both passes): v~ (B, T, D) and, with ``before_gate``, W_1 LN(v~) (B, T, D/2), no bias.
        Given to :meth:`forward`, the score is computed as g_i (W_1 LN(v~_i)) + b_1 = W_1 (g_i LN(v~_i)) + b_1."""
        v = self.video_proj(frame_states)  # (B, T, D)  v~_i
        if self.norm == "after_gate":
            return v, None
        return v, F.linear(self.score[0](v), self.score[1].weight)  # (B, T, D/2)

    def forward(
        self,
        frame_states: torch.Tensor,
        l_global: torch.Tensor,
        mask: torch.Tensor | None = None,
        terms: tuple[torch.Tensor, torch.Tensor | None] | None = None,
    ) -> GroundingWeights:
        """``terms``: :meth:`frame_terms` of ``frame_states``, computed once by the caller."""
        mask = check_frame_mask(mask, frame_states.shape[:2], frame_states.device, full=False)
        v, first = terms if terms is not None else (self.video_proj(frame_states), None)  # (B, T, D)  v~_i
        l = self.text_proj(l_global)  # (B, D)  l~
        # (B, T)  g_i = tanh(<v~_i, l~> / sqrt(D)); released: tanh(<v~_i, l~>), saturated at +-1 for most frames
        gate = torch.tanh(torch.einsum("btd,bd->bt", v, l) * self.gate_scale)
        if self.norm == "after_gate":  # released: LN(g_i v~_i) = sign(g_i) LN(v~_i), |g_i| cancels
            scores = self.score(gate.unsqueeze(-1) * v).squeeze(-1)  # (B, T)  s_i = MLP(LN(g_i v~_i))
        elif first is not None:  # the same, with W_1 LN(v~_i) of frame_terms: g_i (W_1 LN(v~_i)) + b_1
            hidden = gate.unsqueeze(-1) * first + self.score[1].bias  # (B, T, D/2)
            scores = self.score[3](self.score[2](hidden)).squeeze(-1)  # (B, T)
        else:  # the gate scales the normalised frame: s_i = MLP'(g_i LN(v~_i))
            layer_norm, mlp = self.score[0], self.score[1:]
            scores = mlp(gate.unsqueeze(-1) * layer_norm(v)).squeeze(-1)  # (B, T)
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
