"""The study's figures, as pyplot-free :class:`matplotlib.figure.Figure` objects (safe in notebooks)."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from cra.study.plan import SPLITS

__all__ = ["plot_ablation", "plot_sweep"]


def plot_ablation(summary: Sequence[Mapping], readout: str, order: Sequence[str]):
    """Bars: Acc@QA, Acc@GQA and the evidence weight mass per variant, test-id beside test-ood.
    A pyplot-free :class:`matplotlib.figure.Figure` (no backend is switched: safe in notebooks)."""
    from matplotlib.figure import Figure

    rows = {(r["variant"], r["split"]): r for r in summary if r["readout"] == readout}
    panels = [
        ("Acc@QA", "Acc@QA (%)"),
        ("Acc@GQA", f"Acc@GQA ({readout}, %)"),
        ("mass_evidence", "weight on the evidence (%)"),
        ("right_on_distractor", "right, grounded on distractor (%)"),
    ]
    fig = Figure(figsize=(4.2 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels))
    x = np.arange(len(order))
    for ax, (metric, label) in zip(axes, panels):
        for j, (split, colour) in enumerate(zip(SPLITS, ("#4c72b0", "#dd8452"))):
            means = [rows.get((v, split), {}).get(f"{metric}_mean", math.nan) for v in order]
            stds = [rows.get((v, split), {}).get(f"{metric}_std", math.nan) for v in order]
            stds = [0.0 if s is None or math.isnan(s) else s for s in stds]
            ax.bar(x + (j - 0.5) * 0.4, means, 0.4, yerr=stds, color=colour, label=split, capsize=2)
        ax.set_xticks(x, order, rotation=60, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("CRA ablation on the synthetic world (mean ± std over seeds)", fontsize=11)
    fig.tight_layout()
    return fig


def plot_sweep(summary: Sequence[Mapping], axes_names: Sequence[str], variants: Sequence[str]):
    """Acc@GQA and Acc@QA against the train confounder strength, test-id solid, test-ood dashed
    (a pyplot-free :class:`matplotlib.figure.Figure`)."""
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8 * len(axes_names)))
    axes = fig.subplots(len(axes_names), 2, squeeze=False)
    colours = dict(zip(variants, matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]))
    for row, axis in enumerate(axes_names):
        for col, metric in enumerate(("Acc@GQA", "Acc@QA")):
            ax = axes[row, col]
            for v in variants:
                for split, style in zip(SPLITS, ("-", "--")):
                    pts = sorted(
                        (r["strength"], r[f"{metric}_mean"], r[f"{metric}_std"])
                        for r in summary
                        if r["axis"] == axis and r["variant"] == v and r["split"] == split
                    )
                    if not pts:
                        continue
                    s, m, e = (np.array(t, dtype=float) for t in zip(*pts))
                    ax.errorbar(
                        s,
                        m,
                        yerr=np.nan_to_num(e),
                        fmt=style + "o",
                        color=colours[v],
                        ms=4,
                        capsize=2,
                        label=f"{v} {split}",
                    )
            ax.set_xlabel(f"train confounder strength ({axis}); test-ood: 0")
            ax.set_title(f"{metric}: test-id solid, test-ood dashed", fontsize=10)
            ax.set_ylabel(f"{metric} (%)")
            ax.grid(alpha=0.3)
    if axes[0, 0].get_legend_handles_labels()[0]:  # a study without a sweep draws empty axes
        axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
