"""A light trainable word-level text encoder: no downloads, so the fast CPU chapters use it."""

from __future__ import annotations

import re
import zlib
from typing import Sequence

import torch
from torch import nn

from cra.text.base import TextEncoder, TextEncoding, masked_mean, pad_ids

_WORD_RE = re.compile(r"</?s>|[a-z0-9]+|[^\sa-z0-9]")


def split_words(text: str) -> list[str]:
    """Lower-cased words and single punctuation marks; ``</s>`` stays one token."""
    return _WORD_RE.findall(text.lower())


class WordEncoder(TextEncoder):
    """Word embeddings (hashed into ``num_buckets``, or a given vocabulary) + learned positions +
    ``num_layers`` transformer layers; pooled = mean over the real tokens.

    Ids: 0 = padding, 1 = the token given to an empty text. With ``vocab``, its words are 3.. and any
    other word is 2 (unknown); without, a word is ``2 + crc32(word) % num_buckets``, so the encoder
    needs no fitting and gives the same ids in every process.
    """

    name = "word"
    PAD, EMPTY, UNK = 0, 1, 2

    def __init__(
        self,
        dim: int = 128,
        num_layers: int = 1,
        num_heads: int = 4,
        num_buckets: int = 8192,
        vocab: Sequence[str] | None = None,
        max_length: int = 64,
        dropout: float = 0.0,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"WordEncoder: dim={dim} must be divisible by num_heads={num_heads}")
        self.dim = self.token_dim = dim
        self.max_length = max_length
        self.vocab = None if vocab is None else {w: 3 + i for i, w in enumerate(dict.fromkeys(vocab))}
        self.num_buckets = num_buckets
        num_ids = (3 + len(self.vocab)) if self.vocab is not None else (2 + num_buckets)
        self.embedding = nn.Embedding(num_ids, dim, padding_idx=self.PAD)
        self.position = nn.Embedding(max_length, dim)
        layer = nn.TransformerEncoderLayer(
            dim, num_heads, dim_feedforward=2 * dim, dropout=dropout, activation="gelu", batch_first=True
        )
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False) if num_layers else None
        self.norm = nn.LayerNorm(dim)

    def word_id(self, word: str) -> int:
        if self.vocab is not None:
            return self.vocab.get(word, self.UNK)
        return 2 + zlib.crc32(word.encode("utf-8")) % self.num_buckets

    def tokenize(self, texts):
        return self.tokenize_to(texts, None, False)

    def tokenize_to(self, texts, max_length, pad_to_max_length):
        length = min(max_length or self.max_length, self.max_length)
        seqs = [[self.word_id(w) for w in split_words(t)][:length] or [self.EMPTY] for t in texts]
        return pad_ids(seqs, self.PAD, length=length if pad_to_max_length else None)

    def encode_ids(self, ids, mask):
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.embedding(ids) + self.position(positions)  # (N, L, D)
        if self.layers is not None:
            x = self.layers(x, src_key_padding_mask=~mask)
        x = self.norm(x)
        return TextEncoding(masked_mean(x, mask), x, mask)
