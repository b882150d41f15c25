"""RoBERTa (the paper's text encoder), via Hugging Face transformers, imported lazily."""

from __future__ import annotations

import warnings

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

    def activation_checkpointing(self, on: bool = True) -> None:
        if on:  # torch.utils.checkpoint, non-reentrant: RNG state kept, so dropout masks repeat exactly
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            self.model.gradient_checkpointing_disable()

    def encode_ids(self, ids, mask):
        tokens = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (N, L, D)
        pooled = tokens[:, 0] if self.pooling == "first" else masked_mean(tokens, mask)
        return TextEncoding(pooled, tokens, mask)
