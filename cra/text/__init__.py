"""Text side of CRA: pluggable text encoders and the semantic structure graphs of QA pairs.

=====================  ======================================================================
module                 job
=====================  ======================================================================
``base.py``            the interface (:class:`TextEncoder` -> :class:`TextEncoding`), padding
                       and pooling helpers, the guarded import of optional packages
``word.py``            :class:`WordEncoder`: hashed word embeddings + a small transformer
``roberta.py``         :class:`RobertaTextEncoder`: the paper's RoBERTa (transformers)
``clip.py``            :class:`OpenClipTextEncoder`: a CLIP text tower (open_clip)
``wordllama.py``       :class:`WordLlamaTextEncoder`: frozen pretrained token vectors (wordllama)
``encoders.py``        :func:`build_text_encoder`, the one factory of encoders by name
``cached.py``          a frozen encoder whose outputs are computed once and kept
``semantic_graph.py``  the 8-node semantic structure graph of a question-answer pair
=====================  ======================================================================
"""

from cra.text.base import TextEncoder, TextEncoding
from cra.text.clip import OpenClipTextEncoder
from cra.text.encoders import ENCODERS, build_text_encoder
from cra.text.roberta import RobertaTextEncoder
from cra.text.word import WordEncoder
from cra.text.wordllama import WordLlamaTextEncoder

__all__ = [
    "TextEncoder",
    "TextEncoding",
    "WordEncoder",
    "RobertaTextEncoder",
    "OpenClipTextEncoder",
    "WordLlamaTextEncoder",
    "ENCODERS",
    "build_text_encoder",
]
