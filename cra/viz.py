"""Figures and widgets of the book.

Every widget callback is a plain function here that returns a figure, a string or PNG bytes, so
tests call it directly. Figures are built with ``matplotlib.figure.Figure`` (no pyplot state): a
chapter shows one with ``display(fig)``. Widgets compute what each control position shows once, in
Python, and switch between the results with ``Stack`` widgets jslinked to the controls, so the
rendered book stays interactive without a Python kernel (``question_explorer(prerender=False)`` aside:
long lists, live notebook only).
"""

from __future__ import annotations

import html
import io
import textwrap
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from cra import metrics, readouts

if TYPE_CHECKING:  # imported lazily: cra.released reads data files
    from cra.released import ReleasedQuestion, ReleasedVal


def say(text: str, width: int = 88) -> None:
    """Print a sentence wrapped to the width of a book page (chapters print their numbers in prose)."""
    print(textwrap.fill(text, width, break_on_hyphens=False, subsequent_indent="  "))


GT_COLOR = "tab:red"
SPAN_COLOR = "tab:blue"
READOUT_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")


# --------------------------------------------------------------------------------------------
# One predicted span against the ground truth (chapter "The task and the data")
# --------------------------------------------------------------------------------------------
def span_scores(segments: Sequence[Sequence[float]], span: Sequence[float], answer_correct: bool = True) -> dict:
    """The official per-question scores of ``span``: ``iou``, ``iop`` (each the best over the
    segments, taken separately), ``grounded`` (IoP >= 0.5) and ``gqa`` (answer right and grounded)."""
    iou, iop = metrics.best_iou_iop(segments, span)
    grounded = iop >= metrics.GQA_IOP
    return {"iou": iou, "iop": iop, "grounded": grounded, "gqa": bool(answer_correct) and grounded}


def span_summary(segments: Sequence[Sequence[float]], span: Sequence[float], answer_correct: bool | None = True) -> str:
    """One line (HTML) saying what ``span`` scores and whether the answer counts for Acc@GQA
    (``answer_correct=None``: what a right answer would count for)."""
    s = span_scores(segments, span, bool(answer_correct))
    if answer_correct is None:
        verdict = (
            "grounded (IoP ≥ 0.5): a right answer counts for Acc@GQA"
            if s["grounded"]
            else "not grounded (IoP < 0.5): a right answer would be unfaithful"
        )
    else:
        verdict = (
            "counts for Acc@GQA (right answer, IoP ≥ 0.5)"
            if s["gqa"]
            else "right answer but not grounded (IoP < 0.5): unfaithful"
            if answer_correct
            else "wrong answer: never counts for Acc@GQA"
        )
    return (
        f"<b>prediction</b> [{span[0]:.1f}, {span[-1]:.1f}] s &nbsp; <b>IoU</b> = {s['iou']:.2f} &nbsp; "
        f"<b>IoP</b> = {s['iop']:.2f} &nbsp; → {verdict}"
    )


def draw_timeline(
    ax,
    duration: float,
    segments: Sequence[Sequence[float]],
    spans: Mapping[str, Sequence[float]],
    colors: Sequence[str] = READOUT_COLORS,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Ground-truth segments on the top row, then one row per entry of ``spans`` (name -> [t_s, t_e]).
    A zero-length span is drawn as a diamond. ``labels`` (name -> text) is written right of each row."""
    rows = ["ground truth", *spans]
    for s, e in segments:
        ax.barh(0, e - s, left=s, height=0.6, color=GT_COLOR, alpha=0.85)
    for i, (name, span) in enumerate(spans.items(), start=1):
        color = colors[(i - 1) % len(colors)]
        t_s, t_e = span[0], span[-1]
        if t_s == t_e:
            ax.plot([t_s], [i], marker="D", color=color, markersize=7)
        else:
            ax.barh(i, t_e - t_s, left=t_s, height=0.6, color=color, alpha=0.85)
        if labels and name in labels:
            ax.text(1.01, i, labels[name], transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    for s, _ in segments:  # light guides: where the evidence starts and ends
        ax.axvline(s, color=GT_COLOR, lw=0.6, alpha=0.3)
    for _, e in segments:
        ax.axvline(e, color=GT_COLOR, lw=0.6, alpha=0.3)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_ylim(len(rows) - 0.4, -0.6)
    ax.set_xlim(
        min(0.0, *(s for s, _ in segments)),
        max(float(duration), *(e for _, e in segments), *(sp[-1] for sp in spans.values())),
    )
    ax.set_xlabel("time (s)")


def timeline_figure(
    segments: Sequence[Sequence[float]], span: Sequence[float], duration: float, answer_correct: bool = True
) -> Figure:
    """The figure behind the span widget: evidence and prediction on one time axis, scores in the title."""
    s = span_scores(segments, span, answer_correct)
    fig = Figure(figsize=(7.0, 1.9), layout="constrained")
    ax = fig.add_subplot()
    draw_timeline(ax, duration, segments, {"prediction": span}, colors=(SPAN_COLOR,))
    verdict = "counts for Acc@GQA" if s["gqa"] else "grounded, wrong answer" if s["grounded"] else "not grounded"
    ax.set_title(f"IoU = {s['iou']:.2f}   IoP = {s['iop']:.2f}   ({verdict})", fontsize=10)
    return fig


def overlap_maps(segments: Sequence[Sequence[float]], duration: float, steps: int = 81):
    """(times, IoU, IoP): the official best IoU / IoP of every span [t_s, t_e] with t_s, t_e on a grid of
    ``steps`` times over [0, duration]; arrays (steps, steps) indexed [t_e, t_s], NaN where t_e < t_s."""
    times = np.linspace(0.0, float(duration), steps)  # (S,)
    iou = np.full((steps, steps), np.nan)
    iop = np.full((steps, steps), np.nan)
    for i, t_s in enumerate(times):
        for j in range(i, steps):
            iou[j, i], iop[j, i] = metrics.best_iou_iop(segments, [t_s, times[j]])
    return times, iou, iop


def overlap_map_figure(
    segments: Sequence[Sequence[float]], duration: float, span: Sequence[float] | None = None, steps: int = 81
) -> Figure:
    """IoU and IoP of every possible span as two heat maps, with the IoP = 0.5 (Acc@GQA) contour."""
    times, iou, iop = overlap_maps(segments, duration, steps)
    fig = Figure(figsize=(8.0, 3.4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, grid, name in zip(axes, (iou, iop), ("IoU", "IoP")):
        image = ax.pcolormesh(times, times, grid, vmin=0, vmax=1, cmap="viridis", shading="nearest")
        ax.contour(times, times, np.nan_to_num(grid, nan=-1), levels=[metrics.GQA_IOP], colors="white", linewidths=1)
        if span is not None:
            ax.plot([span[0]], [span[-1]], marker="o", color="white", markeredgecolor="black")
        ax.set_title(f"best {name} over the evidence segments", fontsize=10)
        ax.set_xlabel("predicted start $t_s$ (s)")
        ax.set_aspect("equal")
    axes[0].set_ylabel("predicted end $t_e$ (s)")
    fig.colorbar(image, ax=axes, shrink=0.9)
    return fig


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """A figure as PNG bytes (for an ``ipywidgets.Image``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _slider_style() -> dict:
    import ipywidgets as widgets

    return {"style": {"description_width": "110px"}, "layout": widgets.Layout(width="640px")}


def span_widget(
    segments: Sequence[Sequence[float]],
    duration: float,
    span: Sequence[float] = (0.0, 1.0),
    positions: int = 21,
):
    """Move a predicted span's start and end; see IoU, IoP and whether a right answer would count
    for Acc@GQA.

    Start and end sit on ``positions`` evenly spaced times over the video (and the evidence), above
    one disabled slider per evidence segment on the same scale. The score line of every (start, end)
    pair is computed once (:func:`span_summary`); nested ``Stack`` widgets whose indices are jslinked
    to the two sliders switch between them in the browser, so the widget works in the static book
    (``positions`` ** 2 / 2 lines: keep it small). Returns VBox([start, end, *evidence, lines]) where
    ``lines.children[i].children[j]`` holds the line of the span [times[i], times[j]].
    """
    import ipywidgets as widgets

    lo = min(0.0, *(float(s) for s, _ in segments))
    hi = max(float(duration), *(float(e) for _, e in segments))
    times = np.linspace(lo, hi, positions)  # (P,)
    nearest = [int(np.abs(times - t).argmin()) for t in (span[0], span[-1])]
    start, end = (
        widgets.SelectionSlider(
            options=[(f"{t:.1f}", i) for i, t in enumerate(times)], value=k, description=name, **_slider_style()
        )
        for name, k in zip(("start (s)", "end (s)"), nearest)
    )
    evidence = [
        widgets.FloatRangeSlider(
            value=(float(s), float(e)),
            min=lo,
            max=hi,
            step=0.1,
            readout_format=".1f",
            disabled=True,
            description=f"evidence {i + 1}",
            **_slider_style(),
        )
        for i, (s, e) in enumerate(segments)
    ]
    from ipywidgets.widgets.widget_string import HTMLStyle

    layout, style = widgets.Layout(), HTMLStyle()  # one of each, shared by every line
    reversed_span = widgets.HTML("<b>end before start</b>: not a span", layout=layout, style=style)
    per_start = []
    for i, t_s in enumerate(times):
        lines = [
            widgets.HTML(span_summary(segments, (t_s, t_e), None), layout=layout, style=style)
            if j >= i
            else reversed_span
            for j, t_e in enumerate(times)
        ]
        stack = widgets.Stack(lines, selected_index=end.index)
        widgets.jslink((end, "index"), (stack, "selected_index"))
        per_start.append(stack)
    lines = widgets.Stack(per_start, selected_index=start.index)
    widgets.jslink((start, "index"), (lines, "selected_index"))
    return widgets.VBox([start, end, *evidence, lines])


# --------------------------------------------------------------------------------------------
# The released predictions, one question at a time (chapter "Grounding on real NExT-GQA")
# --------------------------------------------------------------------------------------------
def minmax(w: Sequence[float]) -> np.ndarray:
    """(w - min) / (max - min), the normalisation the post-hoc read-out starts with."""
    w = np.asarray(w, dtype=float)
    return (w - w.min()) / (w.max() - w.min() + 1e-12)


def question_figure(q: ReleasedQuestion) -> Figure:
    """Raw attention and smoothed weights over the 32 frame times with the evidence shaded (top),
    and the span of every read-out against the ground truth with its IoU / IoP (bottom)."""
    fig = Figure(figsize=(8.0, 4.4), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    for s, e in q.segments:
        top.axvspan(s, e, color=GT_COLOR, alpha=0.15, lw=0)
    t = np.asarray(q.frame_times)
    top.plot(t, minmax(q.att), marker=".", color="0.35", label="raw attention (min-max)")
    top.plot(t, minmax(q.gs), marker=".", color="tab:green", label="smoothed weights (min-max)")
    top.set_ylabel("weight, rescaled")
    top.legend(loc="upper left", fontsize=7, framealpha=0.8)
    verdict = "right" if q.correct else "wrong"
    title = textwrap.shorten(f"{q.key}: {q.record.question}?", 95)
    top.set_title(f"{title}\nanswer {verdict}; evidence shaded red", fontsize=9)
    labels = {name: f"IoU {iou:.2f}  IoP {iop:.2f}" for name, (iou, iop) in q.scores().items()}
    draw_timeline(bottom, q.duration, q.segments, q.spans, labels=labels)
    return fig


def question_html(q: ReleasedQuestion) -> str:
    """The question, its candidates (right answer and the model's answer marked) and the read-out spans."""
    items = []
    for k, text in enumerate(q.record.candidates):
        marks = [m for m, on in (("right answer", k == q.record.answer), ("model's answer", k == q.prediction)) if on]
        line = html.escape(text) + (f" &nbsp;<b>← {' and '.join(marks)}</b>" if marks else "")
        items.append(f"<li>{line}</li>")
    segments = ", ".join(f"[{s:.1f}, {e:.1f}]" for s, e in q.segments)
    cell = "<td style='padding: 0 0.8em'>{}</td>"
    rows = "".join(
        "<tr>"
        + "".join(
            cell.format(v) for v in (html.escape(name), f"[{sp[0]:.1f}, {sp[-1]:.1f}]", f"{iou:.2f}", f"{iop:.2f}")
        )
        + "</tr>"
        for (name, sp), (iou, iop) in zip(q.spans.items(), q.scores().values())
    )
    head = "".join(f"<th style='padding: 0 0.8em'>{h}</th>" for h in ("read-out", "span (s)", "IoU", "IoP"))
    return (
        f"<p><b>{html.escape(q.record.question)}?</b> &nbsp;(<code>{q.key}</code>, type {q.record.type}, "
        f"video {q.duration:.0f} s, evidence {segments} s)</p><ol start='0'>{''.join(items)}</ol>"
        f"<table><tr>{head}</tr>{rows}</table>"
    )


def _question_label(q: ReleasedQuestion) -> str:
    return textwrap.shorten(f"{q.key} [{q.record.type}, {'right' if q.correct else 'wrong'}] {q.record.question}", 80)


def question_explorer(released: ReleasedVal, keys: Sequence[str], prerender: bool = True, dpi: int = 80):
    """Choose a question, see :func:`question_html` and :func:`question_figure`.

    ``prerender=True`` draws every question of ``keys`` once and links the dropdown to a stack of
    pages in JavaScript, so it works in the static book too (keep ``keys`` short). ``prerender=False``
    draws on demand through a Python callback: any number of keys, live notebook only.
    """
    import ipywidgets as widgets

    questions = [released.question(k) for k in keys]
    choose = widgets.Dropdown(
        options=[(_question_label(q), i) for i, q in enumerate(questions)],
        description="question",
        layout=widgets.Layout(width="760px"),
    )

    def page(q) -> list:
        return [widgets.HTML(question_html(q)), widgets.Image(value=figure_png(question_figure(q), dpi), format="png")]

    if prerender:
        stack = widgets.Stack([widgets.VBox(page(q)) for q in questions], selected_index=0)
        widgets.jslink((choose, "index"), (stack, "selected_index"))
        return widgets.VBox([choose, stack])
    text, picture = page(questions[0])

    def update(change) -> None:
        q = questions[change["new"]]
        text.value = question_html(q)
        picture.value = figure_png(question_figure(q), dpi)

    choose.observe(update, names="index")
    return widgets.VBox([choose, text, picture])


# ============================================================================================
# Chapter "GSG": smoothing real attention curves and reading intervals off them
# ============================================================================================
GSG_READOUT_COLORS = {"window": "tab:blue", "posthoc": "tab:orange", "merge": "tab:green"}
GSG_GT_COLOR = "tab:red"


def gsg_smooth(w0: Sequence[float], sigma: float, renorm: str) -> np.ndarray:
    """One curve through :func:`cra.model.gsg.smooth_weights` (w0 is l1-normalised first): (T,)."""
    from cra.model.gsg import smooth_weights

    w0 = torch.as_tensor(np.asarray(w0, dtype=np.float64))[None]  # (1, T)
    return smooth_weights(w0 / w0.sum(), sigma, renorm)[0].numpy()


def gsg_figure(
    w0: Sequence[float],
    frame_times: Sequence[float],
    segments: Sequence[Sequence[float]],
    duration: float,
    sigma: float = 1.0,
    renorm: str = "l1",
    title: str | None = None,
) -> Figure:
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
    # the three read-outs of w as the official evaluation scores them (window: released convention)
    spans = readouts.question_readouts(w, t, duration)
    labels = {
        readouts.LABELS[r]: "IoU {:.2f}  IoP {:.2f}".format(*metrics.best_iou_iop(segments, span))
        for r, span in spans.items()
    }
    draw_timeline(
        bottom,
        duration,
        segments,
        {readouts.LABELS[r]: span for r, span in spans.items()},
        colors=[GSG_READOUT_COLORS[r] for r in spans],
        labels=labels,
    )
    return fig


def gsg_explorer(
    examples: Sequence[Mapping],
    sigmas: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
    renorms: Sequence[str] = ("l1", "softmax"),
    dpi: int = 80,
):
    """Choose a question, the kernel width sigma and the re-normalisation; see :func:`gsg_figure`.

    ``examples``: mappings with ``label``, ``w0``, ``frame_times``, ``segments``, ``duration``. Every
    (question, renorm, sigma) picture is drawn once; nested ``Stack`` widgets whose indices are
    jslinked to the controls switch between them in the browser, so the widget works in the static
    book (keep the lists short: the page holds every picture).
    """
    import ipywidgets as widgets

    style = {"style": {"description_width": "90px"}, "layout": widgets.Layout(width="620px")}
    question = widgets.Dropdown(
        options=[(ex["label"], i) for i, ex in enumerate(examples)], description="question", **style
    )
    sigma = widgets.SelectionSlider(
        options=[(f"{s:g}", i) for i, s in enumerate(sigmas)],
        value=min(range(len(sigmas)), key=lambda i: abs(sigmas[i] - 1.0)),
        description="kernel σ",
        **style,
    )
    renorm = widgets.ToggleButtons(options=[(r, i) for i, r in enumerate(renorms)], description="renormalise")
    per_question = []
    for ex in examples:
        per_renorm = []
        for how in renorms:
            pictures = [
                widgets.Image(
                    value=figure_png(
                        gsg_figure(
                            ex["w0"], ex["frame_times"], ex["segments"], ex["duration"], s, how, ex.get("title")
                        ),
                        dpi,
                    ),
                    format="png",
                )
                for s in sigmas
            ]
            stack = widgets.Stack(pictures, selected_index=sigma.index)
            widgets.jslink((sigma, "index"), (stack, "selected_index"))
            per_renorm.append(stack)
        stack = widgets.Stack(per_renorm, selected_index=renorm.index)
        widgets.jslink((renorm, "index"), (stack, "selected_index"))
        per_question.append(stack)
    pages = widgets.Stack(per_question, selected_index=question.index)
    widgets.jslink((question, "index"), (pages, "selected_index"))
    return widgets.VBox([question, sigma, renorm, pages])


def evidence_mass(
    w: torch.Tensor, frame_times: torch.Tensor, segments: Sequence[Sequence[Sequence[float]]]
) -> torch.Tensor:
    """Share of each row's weight on frames whose time lies inside one of its evidence segments:
    w (B, T), frame_times (B, T), segments: B lists of [start, end] -> (B,)."""
    inside = torch.zeros_like(w, dtype=torch.bool)
    for b, segs in enumerate(segments):
        for s, e in segs:
            inside[b] |= (frame_times[b] >= s) & (frame_times[b] <= e)
    return (w * inside).sum(1) / w.sum(1)
