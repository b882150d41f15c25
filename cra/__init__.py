"""cra: Cross-modal Causal Relation Alignment for Video Question Grounding, in PyTorch.

The package is the one home of the implementation; the book's chapters import it.
See ``book/notation.md`` for the map from the paper's symbols to the names used here.

Layout (data -> model -> train/predict -> evaluate; each module's docstring says more):

=======================  ============================================================"""

__version__ = "0.1.0"

__all__ = ["__version__"]
