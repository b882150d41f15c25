"""Pluggable text encoders: one interface, three implementations.

Every encoder maps a list of N strings to

* ``pooled``  (N, dim):      one vector per text,
* ``tokens``  (N, L, token_dim): one vector per token,
* ``mask``    (N, L) bool:    True for real tokens,

where L is the longest tokenised text **of this batch** (dynamic padding: the text encoder is where
almost all of a training step's time goes, so no text is padded to a fixed length).

================  =====================================  ============================================
name              class                                  weights
================  =====================================  ============================================
``"word"``        :class:`WordEncoder`                   trainable word embeddings + a small
                                                         transformer; no downloads (fast CPU chapters)
``"roberta"``     :class:`RobertaTextEncoder`            the paper's RoBERTa-base, fine-tuned; random
                                                         init from ``RobertaConfig`` with a byte-level
                                                         tokenizer when no weights are on disk
``"clip"``        :class:`OpenClipTextEncoder`           an open_clip text tower (pretrained tag, or
                                                         random / :data:`TINY_CLIP_TEXT_CFG` offline)
================  =====================================  ============================================

Contract used by other parts of the package (confounder dictionaries, the model):
``encoder.encode(texts) -> Tensor (N, dim)`` (pooled, no gradient, eval mode), the attribute
``encoder.dim``, and the factory :func:`build_text_encoder` ``(name, **kwargs)``.
Empty strings are valid input (a missing graph node is an empty string) and get a vector too.
"""

from __future__ import annotations

import re
import sys
import warnings
import zlib
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

__all__ = [
    "TextEncoding",
    "TextEncoder",
    "WordEncoder",
    "RobertaTextEncoder",
    "OpenClipTextEncoder",
    "ByteTokenizer",
    "build_text_encoder",
    "import_open_clip",
    "import_transformers",
    "ensure_torchvision_importable",
    "ENCODERS",
    "ROBERTA_TINY_CONFIG",
    "TINY_CLIP_TEXT_CFG",
]


@dataclass
class TextEncoding:
    """Output of a text encoder for N texts padded to the batch's longest length L."""

    pooled: torch.Tensor  # (N, dim)
    tokens: torch.Tensor  # (N, L, token_dim)
    mask: torch.Tensor  # (N, L) bool, True = real token


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


def pad_ids(sequences: list[list[int]], pad_id: int, device: torch.device,
            length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token-id lists to the longest one (or to ``length``): -> ids (N, L) long, mask (N, L) bool."""
    length = length or max((len(s) for s in sequences), default=1)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for row, seq in enumerate(sequences):
        mask[row, : len(seq)] = True
    return ids.to(device), mask.to(device)


class TextEncoder(nn.Module):
    """Interface: ``forward(texts) -> TextEncoding``; ``encode(texts) -> (N, dim)``; ``dim``; ``token_dim``."""

    name: str = "base"
    dim: int
    token_dim: int
    #: Encode a call's texts in length-sorted chunks of this many (``None``: one padded batch). Each
    #: text's output is unchanged (padding is masked) while far less padding is computed, which is
    #: what a CPU step spends its time on; on a GPU one large batch is usually faster.
    bucket_size: int | None = None

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (N, L) long and mask (N, L) bool, L = the longest text of this batch."""
        raise NotImplementedError

    def encode_ids(self, ids: torch.Tensor, mask: torch.Tensor) -> TextEncoding:
        raise NotImplementedError

    def tokenize_to(self, texts: Sequence[str], max_length: int | None, pad_to_max_length: bool):
        """:meth:`tokenize` with another token limit and, with ``pad_to_max_length``, every text padded
        to exactly that many tokens (the released code's fixed-length padding)."""
        raise NotImplementedError(f"the {self.name!r} text encoder has no fixed-length tokenization")

    def forward(self, texts: Sequence[str], max_length: int | None = None, pad_to_max_length: bool = False) -> TextEncoding:
        """Encode ``texts``; ``max_length`` / ``pad_to_max_length`` override the token limit and the
        dynamic padding (see :meth:`tokenize_to`; such calls are not bucketed)."""
        if max_length is not None or pad_to_max_length:
            ids, mask = self.tokenize_to(_check_texts(texts), max_length, pad_to_max_length)
            return self.encode_ids(ids, mask)
        texts = _check_texts(texts)
        if not texts:
            device = self._device()
            return TextEncoding(
                torch.zeros(0, self.dim, device=device),
                torch.zeros(0, 1, self.token_dim, device=device),
                torch.zeros(0, 1, dtype=torch.bool, device=device),
            )
        ids, mask = self.tokenize(texts)
        if self.bucket_size is None or len(texts) <= self.bucket_size:
            return self.encode_ids(ids, mask)
        return self._encode_bucketed(ids, mask)

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
            chunks = [self([texts[i] for i in order[s: s + batch_size]]).pooled
                      for s in range(0, len(texts), batch_size)]
            out = torch.empty(len(texts), self.dim, dtype=chunks[0].dtype, device=chunks[0].device)
            out[torch.as_tensor(order, device=out.device)] = torch.cat(chunks)
            return out
        finally:
            self.train(was_training)


# --------------------------------------------------------------------------------------------
# 1. A light trainable word-level encoder (no downloads; the fast CPU chapters use it)
# --------------------------------------------------------------------------------------------

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
        layer = nn.TransformerEncoderLayer(dim, num_heads, dim_feedforward=2 * dim, dropout=dropout,
                                           activation="gelu", batch_first=True)
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
        return pad_ids(seqs, self.PAD, self._device(), length if pad_to_max_length else None)

    def encode_ids(self, ids, mask):
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.embedding(ids) + self.position(positions)  # (N, L, D)
        if self.layers is not None:
            x = self.layers(x, src_key_padding_mask=~mask)
        x = self.norm(x)
        return TextEncoding(masked_mean(x, mask), x, mask)


# --------------------------------------------------------------------------------------------
# Lazy imports of the optional packages
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


def import_open_clip():
    """``import open_clip`` (lazily, after :func:`ensure_torchvision_importable`)."""
    ensure_torchvision_importable()
    try:
        import open_clip
    except ModuleNotFoundError as err:
        raise ImportError("the 'clip' text encoder needs open_clip: pip install 'cra-book[clip]'") from err
    return open_clip


def import_transformers():
    """``import transformers`` (lazily, after :func:`ensure_torchvision_importable`)."""
    ensure_torchvision_importable()
    try:
        import transformers
    except ModuleNotFoundError as err:
        raise ImportError("the 'roberta' text encoder needs transformers: pip install 'cra-book[roberta]'") from err
    return transformers


# --------------------------------------------------------------------------------------------
# 2. RoBERTa (the paper's encoder), via Hugging Face transformers, imported lazily
# --------------------------------------------------------------------------------------------

#: A tiny RoBERTa for tests and CPU demos (random weights; byte-level ids need vocab_size >= 259).
ROBERTA_TINY_CONFIG = dict(vocab_size=260, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=258)


class ByteTokenizer:
    """Fallback tokenizer when no BPE vocabulary is on disk: UTF-8 bytes shifted past RoBERTa's
    special ids (``<s>``=0, ``<pad>``=1, ``</s>``=2). The literal text ``</s>`` becomes the separator."""

    bos_id, pad_id, eos_id, offset = 0, 1, 2, 3
    vocab_size = 259

    def __call__(self, text: str, max_length: int) -> list[int]:
        ids = [self.bos_id]
        for i, part in enumerate(text.split("</s>")):
            if i:
                ids.append(self.eos_id)
            ids.extend(b + self.offset for b in part.strip().encode("utf-8"))
        return ids[: max_length - 1] + [self.eos_id]


class RobertaTextEncoder(TextEncoder):
    """RoBERTa token states; pooled = the ``<s>`` state (``pooling="first"``) or the token mean.

    ``pretrained`` is a Hugging Face name or local folder. Weights are looked up on disk only
    (``local_files_only=True`` unless changed); when they are absent and ``allow_random`` is true the
    model is built from ``RobertaConfig(**config)`` with random weights and :class:`ByteTokenizer`,
    and a warning says so. ``max_length`` counts BPE tokens (the paper: QA text <= 38); the byte
    fallback allows ``byte_length_factor`` times more.
    """

    name = "roberta"

    def __init__(
        self,
        pretrained: str | None = "roberta-base",
        config: dict | None = None,
        max_length: int = 38,
        pooling: str = "first",
        local_files_only: bool = True,
        allow_random: bool = True,
        byte_length_factor: int = 4,
    ):
        super().__init__()
        transformers = import_transformers()
        if pooling not in ("first", "mean"):
            raise ValueError(f"pooling={pooling!r}: expected 'first' or 'mean'")
        self.pooling = pooling
        self.model, self.hf_tokenizer = None, None
        if pretrained is not None:
            try:
                self.hf_tokenizer = transformers.AutoTokenizer.from_pretrained(pretrained, local_files_only=local_files_only)
                self.model = transformers.RobertaModel.from_pretrained(pretrained, local_files_only=local_files_only,
                                                                       add_pooling_layer=False)
            except (OSError, ValueError) as err:
                if not allow_random:
                    raise
                warnings.warn(f"RoBERTa weights {pretrained!r} not found ({type(err).__name__}); "
                              "using random weights and a byte-level tokenizer", stacklevel=2)
                self.hf_tokenizer = None
        if self.model is None:
            cfg = transformers.RobertaConfig(**(config or {}))
            if cfg.vocab_size < ByteTokenizer.vocab_size:
                raise ValueError(f"RobertaConfig.vocab_size={cfg.vocab_size}: the byte tokenizer needs >= 259")
            self.model = transformers.RobertaModel(cfg, add_pooling_layer=False)
            self.byte_tokenizer = ByteTokenizer()
        self._positions = self.model.config.max_position_embeddings - 2  # RoBERTa positions start at pad_id + 1
        self._factor = 1 if self.hf_tokenizer is not None else byte_length_factor
        self.max_length = min(max_length * self._factor, self._positions)
        self.dim = self.token_dim = self.model.config.hidden_size

    def tokenize(self, texts):
        return self.tokenize_to(texts, None, False)

    def tokenize_to(self, texts, max_length, pad_to_max_length):
        """``max_length`` counts BPE tokens like the constructor's (times ``byte_length_factor`` for the
        byte fallback); with ``pad_to_max_length`` every text has exactly that many ids."""
        device = self._device()
        length = self.max_length if max_length is None else min(max_length * self._factor, self._positions)
        if self.hf_tokenizer is not None:
            enc = self.hf_tokenizer(list(texts), padding="max_length" if pad_to_max_length else "longest",
                                    truncation=True, max_length=length, return_tensors="pt")
            return enc["input_ids"].to(device), enc["attention_mask"].bool().to(device)
        seqs = [self.byte_tokenizer(t, length) for t in texts]
        return pad_ids(seqs, ByteTokenizer.pad_id, device, length if pad_to_max_length else None)

    def encode_ids(self, ids, mask):
        tokens = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (N, L, D)
        pooled = tokens[:, 0] if self.pooling == "first" else masked_mean(tokens, mask)
        return TextEncoding(pooled, tokens, mask)


# --------------------------------------------------------------------------------------------
# 3. An open_clip text tower, imported lazily
# --------------------------------------------------------------------------------------------

#: A tiny CLIP text tower for tests and CPU demos (random weights, open_clip's bundled BPE tokenizer).
TINY_CLIP_TEXT_CFG = dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2)
TINY_CLIP_EMBED_DIM = 64

class OpenClipTextEncoder(TextEncoder):
    """A CLIP text transformer (causal attention, pooled at the end-of-text token, projected).

    ``model_name`` is an open_clip architecture (default ViT-L-14, whose 768-d output matches the
    frame features) or ``"tiny"`` (:data:`TINY_CLIP_TEXT_CFG`). With ``pretrained`` (an open_clip tag
    such as ``"openai"``) the text weights are copied from ``open_clip.create_model``; without, the
    tower has random weights. Tokens are open_clip's bundled BPE ids, trimmed to the batch's longest
    text: with causal attention and end-of-text pooling this gives exactly the 77-token result.
    """

    name = "clip"

    def __init__(self, model_name: str = "ViT-L-14", pretrained: str | None = None, text_cfg: dict | None = None,
                 embed_dim: int | None = None, quick_gelu: bool | None = None, cache_dir: str | None = None):
        super().__init__()
        open_clip = import_open_clip()
        from open_clip.model import _build_text_tower

        if text_cfg is None and model_name == "tiny":
            text_cfg, embed_dim = dict(TINY_CLIP_TEXT_CFG), embed_dim or TINY_CLIP_EMBED_DIM
        if text_cfg is None:
            model_cfg = open_clip.get_model_config(model_name)
            if model_cfg is None:
                raise ValueError(f"unknown open_clip model {model_name!r}; see open_clip.list_models()")
            text_cfg, embed_dim = dict(model_cfg["text_cfg"]), embed_dim or model_cfg["embed_dim"]
            if quick_gelu is None:
                quick_gelu = bool(model_cfg.get("quick_gelu", False)) or pretrained == "openai"
        if embed_dim is None:
            raise ValueError("OpenClipTextEncoder: give embed_dim with a custom text_cfg")
        for key in ("hf_model_name", "hf_tokenizer_name"):
            if text_cfg.get(key):
                raise NotImplementedError(f"open_clip text towers with {key} are not supported here")
        tower = _build_text_tower(embed_dim, text_cfg, quick_gelu=bool(quick_gelu))
        if getattr(tower, "cls_emb", None) is not None or tower.pool_type != "argmax" or tower.attn_mask is None:
            raise NotImplementedError("only causal CLIP towers pooled at the end-of-text token are supported")
        if pretrained:
            full = open_clip.create_model(model_name, pretrained=pretrained, cache_dir=cache_dir)
            state = {k: v for k, v in full.state_dict().items() if not k.startswith("visual.") and "logit_" not in k}
            missing, _ = tower.load_state_dict(state, strict=False)
            if [k for k in missing if k != "attn_mask"]:
                raise RuntimeError(f"{model_name}/{pretrained}: text weights missing {missing}")
        self.tower = tower
        tokenizer_name = model_name if open_clip.get_model_config(model_name) else "ViT-B-32"
        self.tokenizer = open_clip.get_tokenizer(tokenizer_name, context_length=text_cfg.get("context_length", 77))
        self.dim = embed_dim
        self.token_dim = tower.width

    def tokenize(self, texts):
        ids = self.tokenizer(list(texts))  # (N, 77), 0-padded, <end_of_text> has the largest id
        mask = ids != 0
        length = int(mask.sum(1).max())
        device = self._device()
        return ids[:, :length].to(device), mask[:, :length].to(device)

    def encode_ids(self, ids, mask):
        t = self.tower
        length = ids.shape[1]
        x = t.token_embedding(ids) + t.positional_embedding[:length]  # (N, L, W)
        x = t.transformer(x, attn_mask=t.attn_mask[:length, :length])
        x = t.ln_final(x)
        pooled = x[torch.arange(len(ids), device=ids.device), ids.argmax(dim=-1)]  # end-of-text token
        if isinstance(t.text_projection, nn.Linear):
            pooled = t.text_projection(pooled)
        elif t.text_projection is not None:
            pooled = pooled @ t.text_projection  # (N, dim)
        return TextEncoding(pooled, x, mask)


ENCODERS = {"word": WordEncoder, "roberta": RobertaTextEncoder, "clip": OpenClipTextEncoder}


def build_text_encoder(name: str, **kwargs) -> TextEncoder:
    """``"word"``, ``"clip"`` or ``"roberta"``; keyword arguments go to the class."""
    if name not in ENCODERS:
        raise ValueError(f"unknown text encoder {name!r}; expected one of {sorted(ENCODERS)}")
    return ENCODERS[name](**kwargs)
