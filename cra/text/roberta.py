"""RoBERTa (the paper's text encoder), via Hugging Face transformers, imported lazily."""

from __future__ import annotations

import warnings

import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from cra.text.base import TextEncoder, TextEncoding, ensure_torchvision_importable, masked_mean, pad_ids


def import_transformers():
    """``import transformers`` (lazily, after :func:`ensure_torchvision_importable`)."""
    ensure_torchvision_importable()
    try:
        import transformers
    except ModuleNotFoundError as err:
        raise ImportError("the 'roberta' text encoder needs transformers: pip install 'cra-book[roberta]'") from err
    return transformers


#: A tiny RoBERTa for tests and CPU demos (random weights; byte-level ids need vocab_size >= 259).
ROBERTA_TINY_CONFIG = dict(
    vocab_size=260,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=258,
)


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

    ``packed`` (default): the encoder runs on the batch's real tokens only: every token-wise layer
    (embeddings, projections, feed-forward, LayerNorm) on the (T, D) packed tokens, attention per text
    on a padded (N, L) view (:func:`packed_forward`); the same outputs as Hugging Face's padded forward
    (within float rounding; dropout draws its masks in another order), so length buckets are not needed.

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
        packed: bool = True,
    ):
        super().__init__()
        self.packs_tokens = bool(packed)
        self._checkpointed_layers = 0  # the packed path recomputes this many layers (from the first) in backward
        transformers = import_transformers()
        if pooling not in ("first", "mean"):
            raise ValueError(f"pooling={pooling!r}: expected 'first' or 'mean'")
        self.pooling = pooling
        self.model, self.hf_tokenizer = None, None
        if pretrained is not None:
            try:
                self.hf_tokenizer = transformers.AutoTokenizer.from_pretrained(
                    pretrained, local_files_only=local_files_only
                )
                self.model = transformers.RobertaModel.from_pretrained(
                    pretrained, local_files_only=local_files_only, add_pooling_layer=False
                )
            except (OSError, ValueError) as err:
                if not allow_random:
                    raise
                warnings.warn(
                    f"RoBERTa weights {pretrained!r} not found ({type(err).__name__}); "
                    "using random weights and a byte-level tokenizer",
                    stacklevel=2,
                )
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
        length = self.max_length if max_length is None else min(max_length * self._factor, self._positions)
        if self.hf_tokenizer is not None:
            enc = self.hf_tokenizer(
                list(texts),
                padding="max_length" if pad_to_max_length else "longest",
                truncation=True,
                max_length=length,
                return_tensors="pt",
            )
            return enc["input_ids"], enc["attention_mask"].bool()
        seqs = [self.byte_tokenizer(t, length) for t in texts]
        return pad_ids(seqs, ByteTokenizer.pad_id, length=length if pad_to_max_length else None)

    def activation_checkpointing(self, on: bool | int = True) -> None:
        """``True``: every layer; an integer n: the first n layers (packed forward only), for a memory
        between none and all at a part of the time (each checkpointed layer runs its forward twice)."""
        layers = self.model.config.num_hidden_layers
        if on is True or on is False:
            n = layers if on else 0
        elif isinstance(on, int) and 0 <= on <= layers:
            if not self.packs_tokens and on not in (0, layers):
                raise ValueError(f"checkpointing {on} of {layers} layers needs the packed forward (packed=true)")
            n = on
        else:
            raise ValueError(f"activation checkpointing {on!r}: expected true, false or 0..{layers} layers")
        self._checkpointed_layers = n  # the packed path's own layer loop reads this
        if n:  # torch.utils.checkpoint, non-reentrant: RNG state kept, so dropout masks repeat exactly
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            self.model.gradient_checkpointing_disable()

    def encode_ids(self, ids, mask):
        if self.packs_tokens:
            checkpointed = self._checkpointed_layers if self.training else 0
            tokens = packed_forward(self.model, ids, mask, checkpointed)  # (N, L, D)
        else:
            tokens = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (N, L, D)
        pooled = tokens[:, 0] if self.pooling == "first" else masked_mean(tokens, mask)
        return TextEncoding(pooled, tokens, mask)


def packed_forward(model, ids: torch.Tensor, mask: torch.Tensor, checkpointed_layers: int = 0) -> torch.Tensor:
    """A Hugging Face ``RobertaModel``'s last hidden states, computed on the real tokens only.

    ids, mask (N, L), right-padded. The T = mask.sum() real tokens are gathered into a (T, D) matrix
    once; embeddings, the Q/K/V and output projections, the feed-forward layers, dropout and LayerNorm
    act on it (one matrix product per layer and projection whatever the lengths), and only the
    attention scores softmax(Q K^T / sqrt(d_h)) V use a padded (N, H, L, d_h) view with the padding
    masked out. Returns (N, L, D) with zeros at padding (the module's own forward leaves values there
    that every consumer masks). ``checkpointed_layers``: the first n layers' activations are recomputed
    in backward instead of kept."""
    N, L = mask.shape
    flat = mask.reshape(-1).nonzero().squeeze(1)  # (T,) positions of the real tokens in the (N*L) grid
    emb = model.embeddings
    positions = (mask.long().cumsum(1) + emb.padding_idx).reshape(-1)[flat]  # (T,) RoBERTa: pad_id + 1, + 2, ...
    x = emb.word_embeddings(ids.reshape(-1)[flat]) + emb.position_embeddings(positions)  # (T, D)
    x = emb.dropout(emb.LayerNorm(x + emb.token_type_embeddings.weight[0]))  # token type 0 throughout
    key_mask = mask[:, None, None, :]  # (N, 1, 1, L): True where a key is a real token

    def padded(t: torch.Tensor, heads: int) -> torch.Tensor:  # (T, D) -> (N, H, L, d_h), zeros at padding
        grid = t.new_zeros(N * L, t.shape[1]).index_copy(0, flat, t)
        return grid.view(N, L, heads, -1).transpose(1, 2)

    def layer_forward(x: torch.Tensor, layer) -> torch.Tensor:  # (T, D) -> (T, D): one RobertaLayer
        att = layer.attention.self
        heads = att.num_attention_heads
        q, k, v = (padded(proj(x), heads) for proj in (att.query, att.key, att.value))
        p = att.dropout.p if att.training else 0.0
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=p)  # (N, H, L, d_h)
        context = context.transpose(1, 2).reshape(N * L, -1).index_select(0, flat)  # (T, D)
        h = layer.attention.output(context, x)  # LayerNorm(dropout(W_o c) + x)
        return layer.output(layer.intermediate(h), h)  # LayerNorm(dropout(W_2 gelu(W_1 h)) + h)

    for i, layer in enumerate(model.encoder.layer):
        if i < checkpointed_layers:  # non-reentrant: the RNG state is kept, so dropout masks repeat exactly
            x = checkpoint(layer_forward, x, layer, use_reentrant=False)
        else:
            x = layer_forward(x, layer)
    return x.new_zeros(N * L, x.shape[1]).index_copy(0, flat, x).view(N, L, -1)
