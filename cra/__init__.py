"""cra: Cross-modal Causal Relation Alignment for Video Question Grounding, in PyTorch.

The package is the one home of the implementation; the book's chapters import it.
See ``book/notation.md`` for the map from the paper's symbols to the names used here.

Layout (data -> model -> train/predict -> evaluate; each module's docstring says more):

=======================  ===================================================================
``cra.data``             official NExT-GQA file readers, HDF5 features, batches; the synthetic world
``cra.text``             text encoders and semantic structure graphs
``cra.confounders``      the confounder dictionaries Z_l and X_hat, and their file
``cra.model``            the CRA model, one idea of the paper per file
``cra.config``           the one config mechanism: dataclass schemas, YAML layers (``cra/configs``), ``--set``
``cra.train``            training runs; ``cra.predict``: predictions in the official formats
``cra.metrics``          the official grounded-QA metrics (and the metric names)
``cra.study``            the ablation study and confounder-strength sweep (``python -m cra ablation``)
``cra.cli``              ``python -m cra <command>``, one module per command in ``cra.commands``
``cra.scm``, ``cra.nwgm``  causal-inference tools of the book; ``cra.bias``, ``cra.blind``: language shortcuts
``cra.released*``        the authors' released predictions and training log; ``cra.paper_numbers``: quoted numbers
``cra.paths``            where data lives; ``cra.runmode``: the book's fast/full switch; ``cra.viz``: figures
=======================  ===================================================================
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
