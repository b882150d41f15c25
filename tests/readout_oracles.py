"""Literal per-question loops over the references of :mod:`cra.readouts`: the oracles that the
batched :func:`cra.readouts.interval_readouts` is checked against (tests and
``benchmarks/readout_speed.py``). Not part of the package: nothing but checks uses them."""

from __future__ import annotations

import torch

from cra.readouts import READOUTS, merge_span, posthoc_indices, question_readouts, window_indices


def _lengths(w: torch.Tensor, mask: torch.Tensor | None) -> list[int]:
    return [w.shape[1]] * w.shape[0] if mask is None else mask.sum(1).tolist()


def window_readout_loop(w, window_sizes=(1, 3, 5), mask=None):
    """The window read-out one question at a time: (start, end) inclusive frame indices, (B,) each."""
    spans = [window_indices(row[:n], window_sizes) for row, n in zip(w.tolist(), _lengths(w, mask))]
    return torch.tensor([s for s, _ in spans]), torch.tensor([e - 1 for _, e in spans])  # inclusive end


def posthoc_readout_loop(w, frame_times, mask=None, thd_weight=0.3, dis=10.0):
    """The post-hoc read-out one question at a time: (start, end) inclusive frame indices, (B,) each."""
    spans = [
        posthoc_indices(row[:n], times[:n], thd_weight, dis)
        for row, times, n in zip(w.tolist(), frame_times.tolist(), _lengths(w, mask))
    ]
    return torch.tensor([s for s, _ in spans]), torch.tensor([e for _, e in spans])


def merge_readout_loop(window, posthoc):
    """The merge of two (start, end) index pairs one question at a time, (B,) each."""
    spans = [merge_span((ws, we), (ps, pe)) for ws, we, ps, pe in zip(*(t.tolist() for t in (*window, *posthoc)))]
    return torch.tensor([s for s, _ in spans]), torch.tensor([e for _, e in spans])


def readouts_loop(w, frame_times, mask=None, *, readouts=READOUTS, duration=None, **options):
    """:func:`cra.readouts.question_readouts` on every row: ``{name: (B, 2) seconds}`` (float64)."""
    rows = []
    for b, n in enumerate(_lengths(w, mask)):
        d = None if duration is None else duration[b].item()
        rows.append(question_readouts(w[b, :n].tolist(), frame_times[b, :n].tolist(), d, readouts=readouts, **options))
    return {r: torch.tensor([row[r] for row in rows], dtype=torch.float64) for r in readouts}
