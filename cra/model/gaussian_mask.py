r"""NG+ grounding, the Gaussian-mask baseline of the NExT-GQA paper (Xiao et al., CVPR 2024), our reading
of its official code (github.com/doc-doc/NExT-GQA, ``code/TempGQA/model/TempVLM.py``), adapted to the
frame-weight interface of :mod:`cra.model.gsg`.

The query (the global text vector $l$) is appended to the frames, one transformer layer mixes them, an
attention pooling summarises the result, and a linear layer with a sigmoid predicts a centre $c$ and a
width $\omega$ in (0, 1). The Gaussian over normalised time $\tau_i = i / (T - 1)$

.. math::

    g_i = \exp\!\Big(-\frac{(\tau_i - c)^2}{2 (\omega / \sigma)^2}\Big) \big/ \max_j g_j,\qquad
    w^0_i = \mathrm{softmax}_i \frac{\langle \bar x_i, l\rangle}{\sqrt D},\qquad
    w_i = \frac{g_i\, w^0_i}{\sum_j g_j\, w^0_j}

multiplies attention weights and re-normalises them, as the official code multiplies the
transformer's attention by the mask (there inside self-attention; here on the pooling weights, so
that $w$ is a distribution over frames like GSG's). $\sigma$ = ``gaussian_mask_sigma`` (official
default 9). Trained like the rest: the VQA and VQ cross-entropies (the official ``vg_loss``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cra.model.gsg import GroundingWeights
from cra.model.ops import check_frame_mask, masked_softmax

__all__ = ["GaussianMask", "gaussian_mask"]


def gaussian_mask(center: torch.Tensor, width: torch.Tensor, T: int, sigma: float) -> torch.Tensor:
    """g (B, T): a Gaussian over normalised time with centre ``center`` (B,) and width ``width / sigma``, max 1."""
    tau = torch.linspace(0, 1, T, device=center.device, dtype=center.dtype)[None, :]  # (1, T)
    std = width.clamp_min(1e-2)[:, None] / sigma  # (B, 1)
    g = torch.exp(-((tau - center[:, None]) ** 2) / (2 * std**2))  # (B, T)
    return g / g.max(1, keepdim=True).values


class GaussianMask(nn.Module):
    """(frame_states (B, T, D), l (B, D), mask) -> GroundingWeights(w0 = attention, w = mask * attention)."""

    def __init__(self, d_model: int, num_heads: int = 4, dropout: float = 0.1, sigma: float = 9.0):
        super().__init__()
        self.sigma = sigma
        self.mixer = nn.TransformerEncoderLayer(d_model, num_heads, d_model, dropout, batch_first=True)
        self.pool = nn.Sequential(
            nn.Linear(d_model, max(1, d_model // 2)), nn.Tanh(), nn.Linear(max(1, d_model // 2), 1)
        )
        self.center_width = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_model, 2), nn.Sigmoid())

    def forward(
        self, frame_states: torch.Tensor, l_global: torch.Tensor, mask: torch.Tensor | None = None
    ) -> GroundingWeights:
        B, T, D = frame_states.shape
        mask = check_frame_mask(mask, (B, T), frame_states.device, full=False)
        tokens = torch.cat([frame_states, l_global[:, None, :]], 1)  # (B, T + 1, D)
        valid = torch.cat([mask, mask.new_ones(B, 1)], 1)  # (B, T + 1)
        mixed = self.mixer(tokens, src_key_padding_mask=~valid)  # (B, T + 1, D)
        a = masked_softmax(self.pool(mixed).squeeze(-1), valid)  # (B, T + 1)
        center, width = self.center_width(torch.einsum("bt,btd->bd", a, mixed)).unbind(-1)  # (B,), (B,)
        g = gaussian_mask(center, width, T, self.sigma)  # (B, T)
        w0 = masked_softmax(torch.einsum("btd,bd->bt", frame_states, l_global) / math.sqrt(D), mask)  # (B, T)
        w = w0 * (g + 1e-12) * mask
        return GroundingWeights(w0, w / w.sum(1, keepdim=True), g)
