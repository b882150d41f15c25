r"""Temp[CLIP] backbone: a small temporal transformer over frozen CLIP frame features, and the
text head that turns each candidate text into one vector.

Video:  $\bar x = \mathrm{Transformer}(\mathrm{Dropout}(\mathrm{LN}(W_{in} v) + P))$, with learned
temporal position embeddings $P$ (docs/paper_notes.md §2.1, §6).

Text:   tokens $t_j$ of a candidate text (question and answer, joined by ``data.qa_template``) from a
:class:`cra.text.base.TextEncoder`, a linear map $h_j = W t_j + b$ to $D$, then word-attention pooling
$l_k = \sum_j \mathrm{softmax}_j(u^\top h_j)\, h_j$ over the real tokens (docs/paper_notes.md §5.1), or
over every position, padding included, as the released code does (``mask_word_attention=False``).
``pool_first`` computes the same thing with the map after the pooling,

.. math::

    u^\top h_j = (W^\top u)^\top t_j + u^\top b,\qquad
    l_k = W \Big(\sum_j \alpha_j t_j\Big) + b \sum_j \alpha_j ,

one $D \times D$ product per text instead of one per token (float rounding differs, ~1e-7).

The released code's temporal encoder is :class:`cra.model.released_encoder.ReleasedTemporalEncoder`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cra.model.ops import check_frame_mask, masked_softmax
from cra.text.base import TextEncoder, TextEncoding, TokenIds

__all__ = ["TemporalEncoder", "TextHead"]


class TemporalEncoder(nn.Module):
    """frames (B, T, D_in) + frame_mask (B, T) -> frame_states (B, T, D)."""

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
        self.input = nn.Sequential(nn.Linear(feature_dim, d_model), nn.LayerNorm(d_model))
        self.position = nn.Parameter(torch.zeros(max_frames, d_model))
        nn.init.normal_(self.position, std=0.02)
        self.dropout = nn.Dropout(pos_dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, num_heads, dim_feedforward=d_ff, dropout=dropout, activation="gelu", batch_first=True
        )
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.max_frames = max_frames

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = frames.shape
        if T > self.max_frames:
            raise ValueError(f"frames: {T} frames per video, the model was built for at most {self.max_frames}")
        mask = check_frame_mask(frame_mask, (B, T), frames.device, full=False)
        x = self.dropout(self.input(frames) + self.position[:T])  # (B, T, D)
        return self.layers(x, src_key_padding_mask=~mask)  # (B, T, D)


class TextHead(nn.Module):
    """Texts -> one D-vector each: encoder tokens, linear to D, word-attention pooling."""

    def __init__(self, encoder: TextEncoder, d_model: int, mask_padding: bool = True, pool_first: bool = False):
        super().__init__()
        self.encoder = encoder
        self.proj = nn.Linear(encoder.token_dim, d_model)  # W, b
        self.word_score = nn.Linear(d_model, 1)  # u
        self.mask_padding = mask_padding
        if not mask_padding and encoder.packs_tokens:
            # the released word attention also reads the padding's token states, which only the padded
            # forward computes (a padding-free encoder returns zeros there)
            encoder.packs_tokens = False
        self.pool_first = pool_first  # the same math, the projection after the pooling (module docstring)

    def forward(
        self, texts: Sequence[str], max_length: int | None = None, pad_to_max_length: bool = False
    ) -> torch.Tensor:
        """Texts -> (N, D); ``max_length`` / ``pad_to_max_length`` as in :meth:`TextEncoder.forward`."""
        fixed = {"max_length": max_length} if max_length is not None else {}  # only what differs from the
        fixed |= {"pad_to_max_length": True} if pad_to_max_length else {}  # default: any encoder accepts that call
        return self.pool(self.encoder(texts, **fixed))

    def encode_tokens(self, tokens: TokenIds) -> torch.Tensor:
        """Texts tokenised ahead (:meth:`TextEncoder.tokenize_call`, e.g. in a loader worker) -> (N, D)."""
        return self.pool(self.encoder.encode_tokens(tokens))

    def pool(self, enc: TextEncoding) -> torch.Tensor:
        """Word-attention pooling of the encoder's tokens: (N, L, token_dim) -> (N, D)."""
        mask = enc.mask if self.mask_padding else None
        if not self.pool_first:
            h = self.proj(enc.tokens)  # (N, L, D)
            alpha = masked_softmax(self.word_score(h).squeeze(-1), mask)  # (N, L)
            return torch.einsum("nl,nld->nd", alpha, h)  # (N, D)
        W, b = self.proj.weight, self.proj.bias  # (D, token_dim), (D,)
        u, c = self.word_score.weight[0], self.word_score.bias  # (D,), (1,)
        scores = enc.tokens @ (W.t() @ u) + (u @ b + c)  # (N, L)  u^T h_j = (W^T u)^T t_j + u^T b + c
        alpha = masked_softmax(scores, mask)  # (N, L)
        pooled = torch.einsum("nl,nlt->nt", alpha, enc.tokens)  # (N, token_dim)  sum_j alpha_j t_j
        return pooled @ W.t() + alpha.sum(1, keepdim=True) * b  # (N, D)  W (sum_j alpha_j t_j) + b sum_j alpha_j
