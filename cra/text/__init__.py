"""Text side of CRA: pluggable text encoders (``encoders.py``) and the semantic structure graphs
of question-answer pairs (``semantic_graph.py``)."""

from cra.text.encoders import TextEncoder, TextEncoding, build_text_encoder

__all__ = ["TextEncoder", "TextEncoding", "build_text_encoder"]
