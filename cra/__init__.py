"""cra: Cross-modal Causal Relation Alignment for Video Question Grounding, in PyTorch.

The package is the one home of the implementation; the book's chapters import it. The flow::

    cra.data (files -> batches)  ->  cra.model (CRA)  ->  cra.run (a RunConfig -> data, model,
    dictionaries, device)  ->  cra.train (Trainer: loop, checkpoints, metrics.jsonl)  /  cra.predict
    (predict_split, Predictor.from_checkpoint)  ->  cra.metrics (official scores)  ->  chapters

No module imports one to its right, except that ``cra.predict`` (and so the trainer's evaluation)
calls ``cra.metrics``, pure scoring that imports no other part of the flow. ``cra.checkpoint`` reads
and writes checkpoints as plain data (never running code from a file).
See ``book/notation.md`` for the map from the paper's symbols to the names used here.

Layout (data -> model -> train/predict -> evaluate; each module's docstring says more):

=======================  ============================================================"""

__version__ = "0.1.0"

__all__ = ["__version__"]
