"""The frozen/cached text mode: a fast option for CPU runs (``train.text_mode: frozen_cached``).

With a fine-tuned RoBERTa-base the text encoder's forward and backward are nearly all of a CPU
training step. :class:`CachedTextEncoder` freezes an encoder (no gradients, always in eval mode,
so no dropout) and keeps the token states of every distinct text it has seen; each text is encoded
once per run, and later steps only re-pad stored vectors. The rest of the model (the text head's
projection and word attention included) still trains.

This is *not* the paper's setting (the paper fine-tunes the encoder). Memory grows with the number
of distinct texts: about ``tokens x token_dim x 4`` bytes each (float32), e.g. 20 tokens x 768 x 4
= 60 KB, so 34k NExT-GQA questions x (5 QA texts + 1 question) need ~12 GB; ``cache_dtype=float16``
halves that. Use it for small and synthetic data.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence

from cra.text.base import TextEncoder, TextEncoding, _check_texts

__all__ = ["CachedTextEncoder"]


class CachedTextEncoder(TextEncoder):
    """A frozen ``encoder`` whose outputs are computed once per distinct text and kept."""

    separate_tokenization = False  # keyed by text: texts are tokenised only on a cache miss

    def __init__(self, encoder: TextEncoder, chunk_size: int = 256, cache_dtype: torch.dtype | None = None):
        super().__init__()
        self.encoder = encoder.requires_grad_(False).eval()
        self.name = f"cached-{encoder.name}"
        self.dim, self.token_dim = encoder.dim, encoder.token_dim
        self.chunk_size = chunk_size
        self.cache_dtype = cache_dtype
        self._cache: dict[
            tuple, tuple
        ] = {}  # (text, max_length, padded) -> (tokens (L_i, D), pooled (dim,), real tokens)
        self.hits = self.misses = 0

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # frozen: never dropout
        return self

    def __len__(self) -> int:
        return len(self._cache)

    def clear(self) -> None:
        self._cache.clear()

    @torch.no_grad()
    def _fill(self, texts: list[str], max_length: int | None = None, pad_to_max_length: bool = False) -> None:
        """Encode the texts not cached yet under this tokenization. With ``pad_to_max_length`` the padding
        positions' states are kept too (the released unmasked word attention reads them)."""
        new = [t for t in dict.fromkeys(texts) if (t, max_length, pad_to_max_length) not in self._cache]
        self.misses += len(new)
        self.hits += len(texts) - len(new)
        new.sort(key=len)  # length-grouped chunks: little padding is computed
        fixed = {"max_length": max_length} if max_length is not None else {}  # only what differs from the
        fixed |= {"pad_to_max_length": True} if pad_to_max_length else {}  # default: any encoder accepts that call
        for start in range(0, len(new), self.chunk_size):
            chunk = new[start : start + self.chunk_size]
            enc = self.encoder(chunk, **fixed)
            lengths = enc.mask.sum(1).tolist()
            for i, text in enumerate(chunk):
                keep = enc.tokens.shape[1] if pad_to_max_length else lengths[i]
                tokens, pooled = enc.tokens[i, :keep], enc.pooled[i]
                if self.cache_dtype is not None:
                    tokens, pooled = tokens.to(self.cache_dtype), pooled.to(self.cache_dtype)
                self._cache[(text, max_length, pad_to_max_length)] = (tokens.clone(), pooled.clone(), lengths[i])

    def forward(
        self, texts: Sequence[str], max_length: int | None = None, pad_to_max_length: bool = False
    ) -> TextEncoding:
        texts = _check_texts(texts)
        if not texts:
            return self.encoder(texts)
        self._fill(texts, max_length, pad_to_max_length)
        entries = [self._cache[(t, max_length, pad_to_max_length)] for t in texts]
        first = entries[0][0]
        dtype = first.dtype if self.cache_dtype is None else torch.float32
        tokens = pad_sequence([tok for tok, _, _ in entries], batch_first=True).to(dtype)  # (N, L, D), zero padding
        real = torch.tensor([n for _, _, n in entries], device=first.device)  # (N,)
        mask = torch.arange(tokens.shape[1], device=first.device) < real[:, None]  # (N, L)
        pooled = torch.stack([p for _, p, _ in entries]).to(dtype)  # (N, dim)
        return TextEncoding(pooled, tokens, mask)
