"""cra: Cross-modal Causal Relation Alignment for Video Question Grounding, in PyTorch.

The package is the one home of the implementation; the book's chapters import it.
See ``book/notation.md`` for the map from the paper's symbols to the names used here.

Sub-packages: ``cra.data`` (the only readers of QA, span and feature files, and the question key),
``cra.text`` (text encoders and semantic structure graphs), ``cra.confounders`` (building and
storing the confounder dictionaries), ``cra.model`` (the network), ``cra.commands`` (the CLI).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
