r"""The temporal encoder of the authors' released code, written from its maths (``temporal_encoder:
released``; our default is :class:`cra.model.backbone.TemporalEncoder`).

Input embedding, then ``L`` pre-norm layers and a final norm:

.. math::

    h^0 = \mathrm{Dropout}\big(\mathrm{LN}_{10^{-12}}(\mathrm{GELU}(W_{in} v)) + P\big),\qquad
    P_{t,2i} = \sin\!\big(t / 10000^{2i/D}\big),\ P_{t,2i+1} = \cos\!\big(t / 10000^{2i/D}\big)

.. math::

    a = h + \mathrm{Dropout}(\mathrm{MHA}(\mathrm{SLN}(h))),\qquad
    h' = a + \mathrm{Dropout}\big(W_2\, \mathrm{Dropout}(\mathrm{ReLU}(W_1\, \mathrm{SLN}(a)))\big),\qquad
    \bar x = \mathrm{SLN}(h^L)

$P$ is fixed (a buffer, not learned). SLN is the "std" layer norm of the release,
$\mathrm{SLN}(x) = \gamma \odot (x - \mu) / (s + \epsilon) + \beta$ with the *unbiased* standard
deviation $s$ and $\epsilon = 10^{-6}$ added to $s$ (``nn.LayerNorm`` divides by
$\sqrt{\sigma^2_{biased} + \epsilon}$). MHA is plain scaled dot-product attention with four linear
maps and no dropout on the attention probabilities. Unlike the release, padded frames are masked as
keys; with every frame valid (NExT-GQA: 32 frames per video) the two are identical.

Differences from our default encoder: GELU before the input norm, fixed sinusoidal instead of
learned positions, pre-norm instead of post-norm layers, ReLU instead of GELU feed-forward, the std
layer norm, no attention dropout, a final norm.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cra.model.ops import check_frame_mask

__all__ = ["StdLayerNorm", "sinusoidal_positions", "ReleasedEncoderLayer", "ReleasedTemporalEncoder"]


class StdLayerNorm(nn.Module):
    r"""$\gamma \odot (x - \mu) / (s + \epsilon) + \beta$, $s$ the unbiased std over the last axis."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))  # gamma
        self.bias = nn.Parameter(torch.zeros(dim))  # beta
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)  # unbiased (divides by D - 1)
        return self.weight * (x - mean) / (std + self.eps) + self.bias


def sinusoidal_positions(num_positions: int, dim: int) -> torch.Tensor:
    r"""$P_{t,2i} = \sin(t\,\omega_i)$, $P_{t,2i+1} = \cos(t\,\omega_i)$, $\omega_i = 10000^{-2i/D}$: (N, D)."""
    t = torch.arange(num_positions, dtype=torch.float32)[:, None]  # (N, 1)
    omega = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (ceil(D/2),)
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(t * omega)
    table[:, 1::2] = torch.cos(t * omega[: dim // 2])
    return table


class ReleasedEncoderLayer(nn.Module):
    """One pre-norm layer: h -> h + Drop(MHA(SLN h)) -> a + Drop(FFN(SLN a)), (B, T, D) -> (B, T, D)."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.attention_norm = StdLayerNorm(d_model)
        self.query, self.key, self.value, self.out = (nn.Linear(d_model, d_model) for _ in range(4))
        self.ff_norm = StdLayerNorm(d_model)
        self.ff_in, self.ff_out = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)  # W_1, W_2
        self.dropout = nn.Dropout(dropout)

    def attend(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        heads = [
            f(x).view(B, T, self.num_heads, D // self.num_heads).transpose(1, 2)  # (B, H, T, D/H)
            for f in (self.query, self.key, self.value)
        ]
        ctx = F.scaled_dot_product_attention(*heads, attn_mask=mask[:, None, None, :])  # softmax(QK^T/sqrt(d_k)) V
        return self.out(ctx.transpose(1, 2).reshape(B, T, D))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attend(self.attention_norm(x), mask))
        h = self.ff_norm(x)
        return x + self.dropout(self.ff_out(self.dropout(F.relu(self.ff_in(h)))))


class ReleasedTemporalEncoder(nn.Module):
    """frames (B, T, D_in) + frame_mask (B, T) -> frame_states (B, T, D), the release's video encoder."""

    def __init__(
        self,
        feature_dim: int = 768,
        d_model: int = 768,
        num_layers: int = 2,
        num_heads: int = 8,
        d_ff: int = 768,
        max_frames: int = 32,
        dropout: float = 0.1,
        pos_dropout: float = 0.3,
    ):
        super().__init__()
        self.input_proj = nn.Linear(feature_dim, d_model)  # W_in
        self.input_norm = nn.LayerNorm(d_model, eps=1e-12)
        self.register_buffer("positions", sinusoidal_positions(max_frames, d_model))  # P (T_max, D), fixed
        self.pos_dropout = nn.Dropout(pos_dropout)
        self.layers = nn.ModuleList(ReleasedEncoderLayer(d_model, num_heads, d_ff, dropout) for _ in range(num_layers))
        self.final_norm = StdLayerNorm(d_model)
        self.max_frames = max_frames

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = frames.shape
        if T > self.max_frames:
            raise ValueError(f"frames: {T} frames per video, the model was built for at most {self.max_frames}")
        mask = check_frame_mask(frame_mask, (B, T), frames.device, full=False)
        x = self.input_norm(F.gelu(self.input_proj(frames)))  # (B, T, D)
        x = self.pos_dropout(x + self.positions[:T].to(x.dtype))
        for layer in self.layers:
            x = layer(x, mask)
        return self.final_norm(x)  # (B, T, D)
