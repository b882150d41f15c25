"""Experiments built on the package: each module runs one study end to end and writes its tables and plots.

* :mod:`cra.experiments.ablation`: the CRA ablation study and the confounder-strength sweep on the
  synthetic world (``python -m cra ablation``).
"""
