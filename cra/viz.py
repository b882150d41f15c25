"""Figures and widgets of the book.

Every widget callback is a plain function here that returns a figure (``matplotlib.figure.Figure``,
no pyplot state) or PNG bytes, so tests call it directly. Widgets that must work in the static book
switch between pre-rendered pictures with controls linked in JavaScript (no Python kernel needed).
"""

from __future__ import annotations

import io
import textwrap
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from cra import metrics


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """A figure as PNG bytes (for an ``ipywidgets.Image``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


# ============================================================================================
# Chapter "GSG": smoothing real attention curves and reading intervals off them
# ============================================================================================
GSG_READOUT_COLORS = {"window": "tab:blue", "post-hoc": "tab:orange", "merge": "tab:green"}
GSG_GT_COLOR = "tab:red"


def gsg_readout_spans(w: Sequence[float], frame_times: Sequence[float], duration: float,
                      window_sizes: Sequence[int] = (1, 3, 5)) -> dict[str, list[float]]:
    """The three read-outs of one weight curve, in seconds, as the released pipeline scores them:
    ``window`` (:func:`cra.metrics.window_span`, released convention, times the integer duration),
    ``post-hoc`` (:func:`cra.metrics.posthoc_span`) and ``merge`` (their intersection)."""
    window = metrics.to_seconds(metrics.window_span(list(w), window_sizes), duration)
    posthoc = metrics.posthoc_span(list(w), list(frame_times))
    return {"window": window, "post-hoc": posthoc, "merge": metrics.merge_span(window, posthoc)}


def gsg_smooth(w0: Sequence[float], sigma: float, renorm: str) -> np.ndarray:
    """One curve through :func:`cra.model.gsg.smooth_weights` (w0 is l1-normalised first): (T,)."""
    from cra.model.gsg import smooth_weights

    w0 = torch.as_tensor(np.asarray(w0, dtype=np.float64))[None]  # (1, T)
    return smooth_weights(w0 / w0.sum(), sigma, renorm)[0].numpy()


def _draw_spans(ax, duration: float, segments, spans: Mapping[str, Sequence[float]]) -> None:
    """Ground truth on the top row, one row per read-out, each labelled with its IoU / IoP."""
    for s, e in segments:
        ax.barh(0, e - s, left=s, height=0.6, color=GSG_GT_COLOR, alpha=0.85)
    for row, (name, span) in enumerate(spans.items(), start=1):
        color = GSG_READOUT_COLORS.get(name, "tab:gray")
        if span[0] == span[-1]:  # zero length: a diamond
            ax.plot([span[0]], [row], marker="D", color=color, markersize=6)
        else:
            ax.barh(row, span[-1] - span[0], left=span[0], height=0.6, color=color, alpha=0.85)
        iou, iop = metrics.best_iou_iop(segments, span)
        ax.text(1.01, row, f"IoU {iou:.2f}  IoP {iop:.2f}", transform=ax.get_yaxis_transform(), va="center", fontsize=7)
    ax.set_yticks(range(len(spans) + 1), ["evidence", *spans], fontsize=8)
    ax.set_ylim(len(spans) + 0.5, -0.6)
    right = max(float(duration), *(e for _, e in segments), *(sp[-1] for sp in spans.values()))
    ax.set_xlim(min(0.0, *(s for s, _ in segments)), right)
    ax.set_xlabel("time (s)")


def gsg_figure(w0: Sequence[float], frame_times: Sequence[float], segments: Sequence[Sequence[float]],
               duration: float, sigma: float = 1.0, renorm: str = "l1", title: str | None = None) -> Figure:
    """The widget's picture: the raw weights w0 and the smoothed w over the frame times with the
    evidence shaded (top), and the three read-outs of w against the evidence (bottom)."""
    from cra.model.gsg import weight_stats

    t = np.asarray(frame_times, dtype=float)
    raw = np.asarray(w0, dtype=float) / np.sum(w0)
    w = gsg_smooth(w0, sigma, renorm)
    stats = {k: v.item() for k, v in weight_stats(torch.as_tensor(w)[None]).items()}
    fig = Figure(figsize=(7.6, 4.2), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    for s, e in segments:
        top.axvspan(s, e, color=GSG_GT_COLOR, alpha=0.12, lw=0)
    top.plot(t, raw, marker=".", color="0.55", lw=1, label="raw $w^0$ (l1-normalised)")
    top.plot(t, w, marker=".", color="tab:purple", lw=1.6, label=f"smoothed $w$ ($\\sigma$={sigma:g}, {renorm})")
    top.axhline(1 / len(t), color="0.7", ls=":", lw=1, label="uniform 1/T")
    top.set_ylabel("weight")
    top.legend(fontsize=7, loc="upper right", framealpha=0.8)
    heading = f"max/min {stats['peak_ratio']:.3g}, effective frames {stats['effective_frames']:.1f} of {len(t)}"
    top.set_title("\n".join(filter(None, [textwrap.shorten(title, 90) if title else None, heading])), fontsize=9)
    _draw_spans(bottom, duration, segments, gsg_readout_spans(w, t, duration))
    return fig


def gsg_explorer(examples: Sequence[Mapping], sigmas: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
                 renorms: Sequence[str] = ("l1", "softmax"), dpi: int = 80):
    """Choose a question, the kernel width sigma and the re-normalisation; see :func:`gsg_figure`.

    ``examples``: mappings with ``label``, ``w0``, ``frame_times``, ``segments``, ``duration``. Every
    (question, renorm, sigma) picture is drawn once; nested ``Stack`` widgets whose indices are
    jslinked to the controls switch between them in the browser, so the widget works in the static
    book (keep the lists short: the page holds every picture).
    """
    import ipywidgets as widgets

    style = {"style": {"description_width": "90px"}, "layout": widgets.Layout(width="620px")}
    question = widgets.Dropdown(options=[(ex["label"], i) for i, ex in enumerate(examples)], description="question", **style)
    sigma = widgets.SelectionSlider(options=[(f"{s:g}", i) for i, s in enumerate(sigmas)], value=min(
        range(len(sigmas)), key=lambda i: abs(sigmas[i] - 1.0)), description="kernel σ", **style)
    renorm = widgets.ToggleButtons(options=[(r, i) for i, r in enumerate(renorms)], description="renormalise")
    per_question = []
    for ex in examples:
        per_renorm = []
        for how in renorms:
            pictures = [widgets.Image(value=figure_png(gsg_figure(ex["w0"], ex["frame_times"], ex["segments"],
                                                                  ex["duration"], s, how, ex.get("title")), dpi),
                                      format="png") for s in sigmas]
            stack = widgets.Stack(pictures, selected_index=sigma.index)
            widgets.jslink((sigma, "index"), (stack, "selected_index"))
            per_renorm.append(stack)
        stack = widgets.Stack(per_renorm, selected_index=renorm.index)
        widgets.jslink((renorm, "index"), (stack, "selected_index"))
        per_question.append(stack)
    pages = widgets.Stack(per_question, selected_index=question.index)
    widgets.jslink((question, "index"), (pages, "selected_index"))
    return widgets.VBox([question, sigma, renorm, pages])


def evidence_mass(w: torch.Tensor, frame_times: torch.Tensor, segments: Sequence[Sequence[Sequence[float]]]) -> torch.Tensor:
    """Share of each row's weight on frames whose time lies inside one of its evidence segments:
    w (B, T), frame_times (B, T), segments: B lists of [start, end] -> (B,)."""
    inside = torch.zeros_like(w, dtype=torch.bool)
    for b, segs in enumerate(segments):
        for s, e in segs:
            inside[b] |= (frame_times[b] >= s) & (frame_times[b] <= e)
    return (w * inside).sum(1) / w.sum(1)
