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
    in padded views of ``bucket_size`` texts of similar length (:func:`packed_forward`); the same
    outputs as Hugging Face's padded forward (within float rounding; dropout draws its masks in another
    order), in one call whatever the bucket size.

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
            tokens = packed_forward(self.model, ids, mask, checkpointed, self.bucket_size)  # (N, L, D)
        else:
            tokens = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (N, L, D)
        pooled = tokens[:, 0] if self.pooling == "first" else masked_mean(tokens, mask)
        return TextEncoding(pooled, tokens, mask)


def packed_forward(
    model, ids: torch.Tensor, mask: torch.Tensor, checkpointed_layers: int = 0, bucket_size: int | None = None
) -> torch.Tensor:
    """A Hugging Face ``RobertaModel``'s last hidden states, computed on the real tokens only.

    ids, mask (N, L), right-padded. The T = mask.sum() real tokens are gathered into a (T, D) matrix
    once (texts in order of length); embeddings, the Q/K/V and output projections, the feed-forward
    layers, dropout and LayerNorm act on it (one matrix product per layer and projection whatever the
    lengths), and only the attention softmax(Q K^T / sqrt(d_h)) V uses padded (n, H, L_b, d_h) views:
    one per bucket of ``bucket_size`` texts of similar length (all texts in one when ``None``), each
    padded to its own longest text, the padding masked out. Returns (N, L, D) with zeros at padding
    (the module's own forward leaves values there that every consumer masks). ``checkpointed_layers``:
    the first n layers' activations are recomputed in backward instead of kept."""
    N, L = mask.shape
    lengths = mask.sum(1)  # (N,)
    order = torch.argsort(lengths, stable=True)  # texts by length: a bucket's tokens are contiguous
    sorted_mask = mask[order]  # (N, L)
    flat = sorted_mask.reshape(-1).nonzero().squeeze(1)  # (T,) the real tokens in the sorted (N*L) grid
    emb = model.embeddings
    positions = (sorted_mask.long().cumsum(1) + emb.padding_idx).reshape(-1)[flat]  # (T,) pad_id + 1, + 2, ...
    x = emb.word_embeddings(ids[order].reshape(-1)[flat]) + emb.position_embeddings(positions)  # (T, D)
    x = dropout(emb.LayerNorm(x + emb.token_type_embeddings.weight[0]), emb.dropout)  # token type 0 throughout

    buckets = []  # (texts n, width L_b, real tokens in the (n*L_b) grid, key mask)
    counts = []  # real tokens per bucket: the (T, D) matrices split into consecutive pieces
    for rows in torch.arange(N, device=mask.device).split(bucket_size or N):
        width = int(lengths[order[rows[-1]]])  # the bucket's longest text (sorted: its last)
        bucket_mask = sorted_mask[rows[0] : rows[-1] + 1, :width]  # (n, L_b)
        counts.append(int(bucket_mask.sum()))
        local = bucket_mask.reshape(-1).nonzero().squeeze(1)
        buckets.append((len(rows), width, local, bucket_mask[:, None, None, :]))

    def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, p: float) -> torch.Tensor:
        """(T, D) x 3 -> (T, D): softmax(q k^T / sqrt(d_h)) v within each text, bucket by bucket."""
        # split, not slices: a slice's backward writes its gradient into zeros of the whole (T, D) input,
        # once per bucket (time and memory quadratic in the batch); split's backward is one concatenation
        out = []
        for (n, width, local, key_mask), *qkv in zip(buckets, q.split(counts), k.split(counts), v.split(counts)):

            def grid(t: torch.Tensor) -> torch.Tensor:  # (tokens, D) -> (n, H, L_b, d_h), zeros at padding
                g = t.new_zeros(n * width, t.shape[1]).index_copy(0, local, t)
                return g.view(n, width, heads, -1).transpose(1, 2)

            c = F.scaled_dot_product_attention(*map(grid, qkv), attn_mask=key_mask, dropout_p=p)
            out.append(c.transpose(1, 2).reshape(n * width, -1).index_select(0, local))  # (tokens, D)
        return torch.cat(out)

    exact_gelu = model.config.hidden_act == "gelu"  # nn.functional.gelu: the feed-forward below may recompute it

    def layer_forward(x: torch.Tensor, layer) -> torch.Tensor:  # (T, D) -> (T, D): one RobertaLayer
        att = layer.attention.self
        p = att.dropout.p if att.training else 0.0
        context = attention(att.query(x), att.key(x), att.value(x), att.num_attention_heads, p)
        att_out, out = layer.attention.output, layer.output
        h = att_out.LayerNorm(dropout(att_out.dense(context), att_out.dropout) + x)  # LayerNorm(dropout(W_o c) + x)
        if exact_gelu and torch.is_grad_enabled() and not torch.is_autocast_enabled(x.device.type):
            first, second = layer.intermediate.dense, out.dense
            y = FeedForward.apply(h, first.weight, first.bias, second.weight, second.bias)  # W_2 gelu(W_1 h)
        else:
            y = out.dense(layer.intermediate(h))  # W_2 gelu(W_1 h)
        return out.LayerNorm(dropout(y, out.dropout) + h)  # LayerNorm(dropout(W_2 gelu(W_1 h)) + h)

    for i, layer in enumerate(model.encoder.layer):
        if i < checkpointed_layers:  # non-reentrant: the RNG state is kept, so dropout masks repeat exactly
            x = checkpoint(layer_forward, x, layer, use_reentrant=False)
        else:
            x = layer_forward(x, layer)
    place = order[flat // L] * L + flat % L  # (T,) each token's position in the original (N*L) grid
    return x.new_zeros(N * L, x.shape[1]).index_copy(0, place, x).view(N, L, -1)


def dropout(x: torch.Tensor, module: torch.nn.Dropout) -> torch.Tensor:
    """``module(x)`` keeping a 1-byte mask for backward: on CPU ``F.dropout`` keeps a float32 one, a
    (T, D) activation of 4 bytes per value, twice per layer (the same distribution of masks)."""
    if not module.training or module.p == 0:
        return x
    return torch.native_dropout(x, module.p, True)[0]


#: tokens per feed-forward chunk: a (rows, 4D) float32 intermediate of 12 MiB at D = 768, under glibc's largest
#: mmap threshold (32 MiB), so that freed chunks are reused from the heap instead of returned to the system
FEED_FORWARD_ROWS = 1024


class FeedForward(torch.autograd.Function):
    """y = W_2 gelu(W_1 h + b_1) + b_2 that keeps only h and u = W_1 h + b_1 for backward and recomputes
    gelu(u) there (an elementwise pass): a (T, 4D) activation less per layer than autograd's own, which
    keeps gelu(u) as well; the same gradients (float32; under autocast the module path runs instead).

    On CPU it runs in chunks of :data:`FEED_FORWARD_ROWS` tokens: glibc serves an allocation over its mmap
    threshold (at most 32 MiB) with fresh pages from the system, zeroed at first touch, and returns them
    at free, so whole (T, 4D) intermediates (61 MiB each at T = 5,226, B = 32) would be faulted in anew
    five times per layer and step; chunks reuse the same heap memory (weight gradients summed over chunks).
    Other devices (CUDA: a caching allocator) take all tokens in one chunk."""

    @staticmethod
    def forward(ctx, h, w1, b1, w2, b2):  # h (T, D), w1 (4D, D), w2 (D, 4D)
        y = h.new_empty(h.shape[0], w2.shape[0])  # (T, D)
        ctx.rows = rows = FEED_FORWARD_ROWS if h.device.type == "cpu" else max(1, h.shape[0])
        us = []
        for h_c, y_c in zip(h.split(rows), y.split(rows)):
            u = F.linear(h_c, w1, b1)  # (rows, 4D)
            torch.addmm(b2, F.gelu(u), w2.t(), out=y_c)  # (rows, D)
            us.append(u)
        ctx.save_for_backward(h, w1, w2, *us)
        return y

    @staticmethod
    def backward(ctx, grad_y):  # (T, D)
        h, w1, w2, *us = ctx.saved_tensors
        grad_h = torch.empty_like(h)  # (T, D)
        grad_w1, grad_w2 = torch.zeros_like(w1), torch.zeros_like(w2)  # (4D, D), (D, 4D)
        grad_b1 = w1.new_zeros(w1.shape[0])  # (4D,)
        chunks = zip(us, h.split(ctx.rows), grad_y.split(ctx.rows), grad_h.split(ctx.rows))
        for u, h_c, grad_y_c, grad_h_c in chunks:
            grad_w2.addmm_(grad_y_c.t(), F.gelu(u))  # += dy^T gelu(u), gelu(u) recomputed
            grad_u = torch.ops.aten.gelu_backward(grad_y_c @ w2, u)  # (rows, 4D)
            torch.mm(grad_u, w1, out=grad_h_c)  # (rows, D)
            grad_w1.addmm_(grad_u.t(), h_c)  # += du^T h
            grad_b1 += grad_u.sum(0)
        return grad_h, grad_w1, grad_b1, grad_w2, grad_y.sum(0)
