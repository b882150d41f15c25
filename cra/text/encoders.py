"""The text encoders by name: :func:`build_text_encoder` ``(name, **kwargs)``, the one factory.

===============  ============================================  ==========================================
name             class (module)                                weights
===============  ============================================  ==========================================
``"word"``       ``WordEncoder`` (``word.py``)                 trainable word embeddings + a small
                                                               transformer; no downloads (the fast CPU
                                                               chapters)
``"roberta"``    ``RobertaTextEncoder`` (``roberta.py``)       the paper's RoBERTa-base, fine-tuned;
                                                               random init from ``RobertaConfig`` with a
                                                               byte-level tokenizer when no weights are
                                                               on disk
``"clip"``       ``OpenClipTextEncoder`` (``clip.py``)         an open_clip text tower (pretrained tag,
                                                               or random / ``TINY_CLIP_TEXT_CFG`` offline)
``"wordllama"``  ``WordLlamaTextEncoder`` (``wordllama.py``)   frozen pretrained WordLlama token vectors
                                                               (256-d) shipped in the ``wordllama``
                                                               wheel; no downloads
===============  ============================================  ==========================================

Contract used by other parts of the package (confounder dictionaries, the model):
``encoder.encode(texts) -> Tensor (N, dim)`` (pooled, no gradient, eval mode) and the attribute
``encoder.dim`` (:class:`cra.text.base.TextEncoder`).
"""

from __future__ import annotations

from cra.text.base import TextEncoder
from cra.text.clip import OpenClipTextEncoder
from cra.text.roberta import RobertaTextEncoder
from cra.text.word import WordEncoder
from cra.text.wordllama import WordLlamaTextEncoder

ENCODERS = {
    "word": WordEncoder,
    "roberta": RobertaTextEncoder,
    "clip": OpenClipTextEncoder,
    "wordllama": WordLlamaTextEncoder,
}


def build_text_encoder(name: str, **kwargs) -> TextEncoder:
    """``"word"``, ``"clip"``, ``"roberta"`` or ``"wordllama"``; keyword arguments go to the class."""
    if name not in ENCODERS:
        raise ValueError(f"unknown text encoder {name!r}; expected one of {sorted(ENCODERS)}")
    return ENCODERS[name](**kwargs)
