"""The text-encoder interface shared by every encoder, and its tokenisation helpers.

Every encoder maps a list of N strings to a :class:`TextEncoding`:

* ``pooled``  (N, dim):      one vector per text,
* ``tokens``  (N, L, token_dim): one vector per token,
* ``mask``    (N, L) bool:    True for real tokens,

where L is the longest tokenised text **of this batch** (dynamic padding: the text encoder is where
almost all of a training step's time goes, so no text is padded to a fixed length). A subclass of
:class:`TextEncoder` gives ``tokenize`` and ``encode_ids``; ``forward`` (length buckets) and
``encode`` (pooled vectors, no gradient, eval mode) come from here. Empty strings are valid input
(a missing graph node is an empty string) and get a vector too.

``forward(texts)`` is two halves that may run in different processes:
``tokenize_call(texts) -> TokenIds`` (CPU tensors, from the encoder's non-module attributes only, so
:func:`tokenizer_only` can send it to ``DataLoader`` workers) and ``encode_tokens(TokenIds)``.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
from torch import nn


@dataclass
class TextEncoding:
    """Output of a text encoder for N texts padded to the batch's longest length L."""

    pooled: torch.Tensor  # (N, dim)
    tokens: torch.Tensor  # (N, L, token_dim)
    mask: torch.Tensor  # (N, L) bool, True = real token


class TokenIds(NamedTuple):
    """One encoder call's tokenised texts (CPU until the step moves them): what ``forward`` encodes."""

    ids: torch.Tensor  # (N, L) long
    mask: torch.Tensor  # (N, L) bool, True = real token
    bucketed: bool  # encoded in length buckets (the default tokenization) or as one padded batch


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, got one string")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return texts


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real tokens: (N, L, D), (N, L) -> (N, D)."""
    weights = mask.to(tokens.dtype).unsqueeze(-1)  # (N, L, 1)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def pad_ids(
    sequences: list[list[int]], pad_id: int, device: torch.device | None = None, length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token-id lists to the longest one (or to ``length``): -> ids (N, L) long, mask (N, L) bool."""
    length = length or max((len(s) for s in sequences), default=1)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for row, seq in enumerate(sequences):
        mask[row, : len(seq)] = True
    return (ids, mask) if device is None else (ids.to(device), mask.to(device))


def tokenizer_only(encoder: "TextEncoder") -> "TextEncoder":
    """A shallow copy of ``encoder`` without parameters, buffers or submodules: enough for
    :meth:`TextEncoder.tokenize_call` (which reads only plain attributes), light to send to a worker."""
    light = copy.copy(encoder)
    light.__dict__.update(_parameters={}, _buffers={}, _modules={})
    return light


class TextEncoder(nn.Module):
    """Interface: ``forward(texts) -> TextEncoding``; ``encode(texts) -> (N, dim)``; ``dim``; ``token_dim``."""

    name: str = "base"
    dim: int
    token_dim: int
    #: Encode a call's texts in length-sorted chunks of this many (``None``: one padded batch). Each
    #: text's output is unchanged (padding is masked) while far less padding is computed, which is
    #: what a CPU step spends its time on; on a GPU one large batch is usually faster. An encoder that
    #: ``packs_tokens`` computes no padding anyway and uses the buckets for its attention only.
    bucket_size: int | None = None

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    #: ``tokenize_call`` is separate from the weights (``False``: only ``forward(texts)`` works).
    separate_tokenization: bool = True
    #: ``encode_ids`` computes only the real tokens (padding-free) and applies ``bucket_size`` inside itself
    packs_tokens: bool = False

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (N, L) long and mask (N, L) bool (CPU), L = the longest text of this batch; reads no
        parameter (see :func:`tokenizer_only`)."""
        raise NotImplementedError

    def encode_ids(self, ids: torch.Tensor, mask: torch.Tensor) -> TextEncoding:
        raise NotImplementedError

    def activation_checkpointing(self, on: bool | int = True) -> None:
        """Recompute the layers' activations in the backward pass instead of keeping them (less memory,
        one more forward of the encoder; the same results, dropout masks included); an integer: that
        many layers, where the encoder supports it."""
        raise NotImplementedError(f"the {self.name!r} text encoder has no activation checkpointing")

    def tokenize_to(self, texts: Sequence[str], max_length: int | None, pad_to_max_length: bool):
        """:meth:`tokenize` with another token limit and, with ``pad_to_max_length``, every text padded
        to exactly that many tokens (the released code's fixed-length padding)."""
        raise NotImplementedError(f"the {self.name!r} text encoder has no fixed-length tokenization")

    def tokenize_call(
        self, texts: Sequence[str], max_length: int | None = None, pad_to_max_length: bool = False
    ) -> TokenIds:
        """The first half of :meth:`forward`: ``texts`` tokenised on the CPU. ``max_length`` /
        ``pad_to_max_length`` override the token limit and the dynamic padding (see
        :meth:`tokenize_to`; such calls are not bucketed)."""
        texts = _check_texts(texts)
        if max_length is not None or pad_to_max_length:
            return TokenIds(*self.tokenize_to(texts, max_length, pad_to_max_length), False)
        if not texts:
            return TokenIds(torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, 1, dtype=torch.bool), False)
        return TokenIds(*self.tokenize(texts), True)

    def encode_tokens(self, tokens: TokenIds) -> TextEncoding:
        """The second half of :meth:`forward`: encode tokenised texts (moved to the encoder's device)."""
        device = self._device()
        ids, mask = tokens.ids.to(device, non_blocking=True), tokens.mask.to(device, non_blocking=True)
        if not len(ids):
            return TextEncoding(
                torch.zeros(0, self.dim, device=device),
                torch.zeros(0, 1, self.token_dim, device=device),
                torch.zeros(0, 1, dtype=torch.bool, device=device),
            )
        if not tokens.bucketed or self.bucket_size is None or self.packs_tokens or len(ids) <= self.bucket_size:
            return self.encode_ids(ids, mask)
        return self._encode_bucketed(ids, mask)

    def forward(
        self, texts: Sequence[str], max_length: int | None = None, pad_to_max_length: bool = False
    ) -> TextEncoding:
        """Encode ``texts``: :meth:`encode_tokens` of :meth:`tokenize_call`."""
        return self.encode_tokens(self.tokenize_call(texts, max_length, pad_to_max_length))

    def _encode_bucketed(self, ids: torch.Tensor, mask: torch.Tensor) -> TextEncoding:
        """:meth:`encode_ids` on chunks of similar length, each trimmed to its own longest text
        (right-padded ids), reassembled in the original order and padded to the batch's length."""
        lengths = mask.sum(1)  # (N,)
        order = torch.argsort(lengths, stable=True)
        pooled, tokens = [], []
        for chunk in order.split(self.bucket_size):
            width = int(lengths[chunk].max())
            enc = self.encode_ids(ids[chunk, :width], mask[chunk, :width])
            pooled.append(enc.pooled)
            tokens.append(nn.functional.pad(enc.tokens, (0, 0, 0, ids.shape[1] - width)))  # (n, L, D)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=order.device)
        return TextEncoding(torch.cat(pooled)[inverse], torch.cat(tokens)[inverse], mask)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Pooled vectors (N, dim), in eval mode without gradients, in order of ``texts``.

        Long lists are encoded ``batch_size`` texts at a time, grouped by length so that little
        padding is computed.
        """
        texts = _check_texts(texts)
        was_training = self.training
        self.eval()
        try:
            if len(texts) <= batch_size:
                return self(texts).pooled
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            chunks = [
                self([texts[i] for i in order[s : s + batch_size]]).pooled for s in range(0, len(texts), batch_size)
            ]
            out = torch.empty(len(texts), self.dim, dtype=chunks[0].dtype, device=chunks[0].device)
            out[torch.as_tensor(order, device=out.device)] = torch.cat(chunks)
            return out
        finally:
            self.train(was_training)


# --------------------------------------------------------------------------------------------
# Optional packages (open_clip, transformers) behind a torchvision that may not import
# --------------------------------------------------------------------------------------------
_TORCHVISION_SCHEMAS = None


def ensure_torchvision_importable() -> None:
    """Make ``import torchvision`` work when a CUDA-built torchvision wheel sits next to a CPU torch.

    Such a torchvision fails at import with ``operator torchvision::nms does not exist`` (its C
    extension cannot load), and so do open_clip, timm and the transformers models that import it.
    Only in that case do we define the two missing operator schemas and import again; on a working
    install (or without torchvision) this is a plain import attempt and changes nothing. Callers
    only need torchvision's pure-Python parts.
    """
    global _TORCHVISION_SCHEMAS
    try:
        import torchvision  # noqa: F401

        return
    except ModuleNotFoundError:
        return
    except RuntimeError as err:
        if "torchvision::nms does not exist" not in str(err):
            raise
    for mod in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
        del sys.modules[mod]  # drop the half-imported package
    if _TORCHVISION_SCHEMAS is None:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_SCHEMAS = lib  # keep the library object alive
    import torchvision  # noqa: F401,F811
