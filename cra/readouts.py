r"""Read-outs: from per-frame weights $w$ to an interval $t^* = [t_s, t_e]$ in seconds. The one home.

The read-outs (by the names used in configs, prediction files and code; one name, one rule; symbols
of ``book/notation.md``, semantics of ``docs/nextgqa_eval_semantics.md``):

``READOUTS``, what training, ``cra predict`` and ``cra evaluate`` score (the released convention):

(a) ``window`` ("pre-hoc"): among the windows of the given sizes (1, 3, 5; a size above T/2 is
    skipped unless it is 1) that contain the arg-max frame, the one with the largest weight sum (the
    released code's ``find_best_interval_v2``). With positive weights the widest wins. Frames s..e
    (inclusive, e' = e + 1, T frames) become seconds as the released code writes the span and the
    official script converts it: round([s / (T-1), e' / (T-1)] x duration, 1), integer ``duration``
    of gsub; it can pass the video's end.
(b) ``posthoc``: NExT-GQA's adaptive threshold (``find_seg_ada``) on min-max normalised weights,
    [frame_times[first kept], frame_times[last kept]].
(c) ``merge``: window(w) ∩ posthoc(w), both of the *same* weights, intersected in seconds, or the
    post-hoc span when they are disjoint (the official ``combine``, way ``itsc``). The released
    FrozenBiLM files merge across two weight curves instead, window(smoothed) ∩ post-hoc(raw):
    :data:`cra.released.MERGE_SMOOTHED_RAW`, built from the same :func:`merge_span`.

``OTHER_READOUTS``, the same window turned into seconds another way (never called plain "window"):

* ``window_frametimes``: [frame_times[s], frame_times[e]], like the post-hoc span (the read-out
  ``cra`` trained with before issue 13); ``merge_frametimes`` = window_frametimes ∩ posthoc;
* ``window_bins``: round([s / T, e' / T] x duration, 1): frame i covers [i/T, (i+1)/T] of the video,
  never past its end; ``merge_bins`` = window_bins ∩ posthoc.

Everything is computed and returned in float64, as the official (numpy) code computes: in float32
the post-hoc comparison flips at the 10-second boundary and spans are written with float noise.

Two forms of the same rules:

* :func:`interval_readouts`, batched and vectorised (torch): ``{name: (B, 2) float64 seconds}``;
* the per-question references (numpy, the official semantics, one question): :func:`window_indices`,
  :func:`window_span`, :func:`posthoc_indices`, :func:`posthoc_span`, :func:`merge_span`,
  :func:`question_readouts` (the reference twin of :func:`interval_readouts`), and the dict
  helpers :func:`window_spans`, :func:`posthoc_spans`, :func:`merge_spans` over
  ``"{video}_{question}"`` keys used by :mod:`cra.released` and ``cra evaluate``.

The tests check the batched form against literal loops over the references
(``tests/readout_oracles.py``), and the references against the official scripts run on the authors'
released val files (``tests/fixtures/official_eval/``). torch is imported only by the batched form,
so scoring tools that use the references stay light.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np

from cra.data.keys import question_key, split_key
from cra.metrics import GSub, to_seconds

if TYPE_CHECKING:
    import torch

#: The read-outs scored by default (released convention for the window), by their config names.
READOUTS = ("window", "posthoc", "merge")
#: The window in other conventions, each with its merge (see the module docstring).
OTHER_READOUTS = ("window_frametimes", "merge_frametimes", "window_bins", "merge_bins")
ALL_READOUTS = READOUTS + OTHER_READOUTS
#: How a window read-out turns frames into seconds.
WINDOW_CONVENTION = {"window": "released", "window_frametimes": "frame_times", "window_bins": "bins"}
#: The window each merge intersects with the post-hoc span.
MERGE_OF = {"merge": "window", "merge_frametimes": "window_frametimes", "merge_bins": "window_bins"}
#: How tables and figures name them.
LABELS = {
    "window": "window",
    "posthoc": "post-hoc",
    "merge": "merge",
    "window_frametimes": "window (frame times)",
    "merge_frametimes": "merge (frame-times window)",
    "window_bins": "window (bins)",
    "merge_bins": "merge (bins window)",
}

__all__ = [
    "READOUTS",
    "OTHER_READOUTS",
    "ALL_READOUTS",
    "WINDOW_CONVENTION",
    "MERGE_OF",
    "LABELS",
    "interval_readouts",
    "question_readouts",
    "duration_from_frame_times",
    "window_indices",
    "window_span",
    "posthoc_indices",
    "posthoc_span",
    "merge_span",
    "window_spans",
    "posthoc_spans",
    "merge_spans",
]


def _check_names(readouts: Sequence[str]) -> None:
    bad = [r for r in readouts if r not in ALL_READOUTS]
    if bad or not readouts:
        raise ValueError(f"readouts={list(readouts)}: expected some of {ALL_READOUTS}")


def _windows_needed(readouts: Sequence[str]) -> list[str]:
    """The window read-outs that ``readouts`` needs (their own or their merge's), in a fixed order."""
    wanted = {r for r in readouts if r in WINDOW_CONVENTION} | {MERGE_OF[r] for r in readouts if r in MERGE_OF}
    return [r for r in WINDOW_CONVENTION if r in wanted]


def _needs_duration(readouts: Sequence[str]) -> bool:
    return any(WINDOW_CONVENTION[r] != "frame_times" for r in _windows_needed(readouts))


def duration_from_frame_times(frame_times: Sequence[float]) -> float:
    """A video's duration guessed from its frame times when gsub's is not at hand: t_first + t_last.

    NExT-GQA's ``frame2time`` stamps sit near the centres of equal bins, so the last frame is about
    as far from the end as the first is from 0 (on val this equals the gsub duration, rounded, for
    83 % of videos, and is within 1.4 s for all). Scoring uses the gsub duration, never this guess.
    """
    return float(frame_times[0]) + float(frame_times[-1])


# ============================================================================================
# Batched: the one entry point
# ============================================================================================
def interval_readouts(
    w: torch.Tensor,
    frame_times: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    readouts: Sequence[str] = READOUTS,
    window_sizes: Sequence[int] = (1, 3, 5),
    thd_weight: float = 0.3,
    dis: float = 10.0,
    duration: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The ``readouts`` of weights ``w`` (B, T) as ``{name: (B, 2) [t_s, t_e] float64 seconds}``, in that order.

    ``frame_times`` (B, T) s; ``mask`` (B, T) bool, valid frames first (``None``: all valid), checked
    once here; ``window_sizes``, ``thd_weight``, ``dis`` as in the references (a model's come from its
    config: ``window_sizes``, ``posthoc_thd_weight``, ``posthoc_dis``); ``duration`` (B,) s, the
    integer gsub duration, needed by ``window``/``merge`` and the ``_bins`` pair. ``w`` and
    ``frame_times`` are read in float64 (the official code is numpy float64); the merges are taken
    from the window and post-hoc results in seconds, not recomputed.
    """
    import torch

    from cra.model.ops import check_frame_mask

    readouts = tuple(readouts)
    _check_names(readouts)
    if _needs_duration(readouts) and duration is None:
        raise ValueError(
            f"readouts {[r for r in readouts if r not in ('posthoc', 'window_frametimes', 'merge_frametimes')]} "
            "need duration: a (B,) tensor of seconds (gsub's integer duration)"
        )
    if frame_times.shape != w.shape:
        raise ValueError(
            f"frame_times: expected shape {tuple(w.shape)} like the weights, got {tuple(frame_times.shape)}"
        )
    if duration is not None and tuple(duration.shape) != (w.shape[0],):
        raise ValueError(f"duration: expected shape ({w.shape[0]},), one per row, got {tuple(duration.shape)}")
    mask = check_frame_mask(mask, tuple(w.shape), w.device)  # (B, T), the one check
    w, frame_times = w.to(torch.float64), frame_times.to(torch.float64)
    n = mask.sum(1)  # (B,) valid frames
    windows = _windows_needed(readouts)
    need_posthoc = "posthoc" in readouts or any(r in MERGE_OF for r in readouts)
    seconds = {}
    if windows:
        frames = _window_frames(w, mask, n, window_sizes)  # (start, end) (B,) each, inclusive
        for name in windows:
            convention = WINDOW_CONVENTION[name]
            seconds[name] = (
                _at_times(frames, frame_times)
                if convention == "frame_times"
                else _fraction_seconds(frames, n, duration, convention)
            )
    if need_posthoc:
        seconds["posthoc"] = _at_times(_posthoc_frames(w, frame_times, mask, n, thd_weight, dis), frame_times)
    for name in readouts:
        if name in MERGE_OF:  # the official combine, on seconds
            parts = seconds[MERGE_OF[name]], seconds["posthoc"]
            seconds[name] = torch.stack(_intersect_or_second(*((p[:, 0], p[:, 1]) for p in parts)), 1)
    return {r: seconds[r] for r in readouts}


def _window_frames(w: torch.Tensor, mask: torch.Tensor, n: torch.Tensor, window_sizes: Sequence[int]):
    """(a) Best window containing the arg-max: (start, end) inclusive frame indices, (B,) each.

    A size s is allowed when s = 1 or 2 s <= n; windows lie inside the valid frames. Ties go to the
    earlier size in ``window_sizes``, then the earlier start.
    """
    import torch

    B, T = w.shape
    peak = w.masked_fill(~mask, float("-inf")).argmax(1)  # (B,)
    starts = torch.arange(T, device=w.device)[None, :]  # (1, T)
    w_valid = w * mask
    sums = []
    for s in window_sizes:  # a handful of sizes; positions and batch are vectorised
        total = torch.full_like(w, float("-inf"))
        if s <= T:
            total[:, : T - s + 1] = w_valid.unfold(1, s, 1).sum(-1)  # (B, T-s+1) window sums
        ok = (starts + s <= n[:, None]) & (starts <= peak[:, None]) & (peak[:, None] <= starts + s - 1)
        ok &= ((2 * s <= n) | (s == 1))[:, None]
        sums.append(total.masked_fill(~ok, float("-inf")))
    flat = torch.stack(sums, 1).flatten(1)  # (B, S*T), ordered (size, start)
    best = flat.argmax(1)  # first maximum
    size = torch.as_tensor(tuple(window_sizes), device=w.device)[best // T]
    start = best % T
    # no allowed size (possible only if 1 is not among window_sizes): fall back to the peak frame
    none = torch.isinf(flat.max(1).values)
    start = torch.where(none, peak, start)
    end = torch.where(none, peak, start + size - 1)
    return start, end


def _posthoc_frames(
    w: torch.Tensor, frame_times: torch.Tensor, mask: torch.Tensor, n: torch.Tensor, thd_weight: float, dis: float
):
    """(b) NExT-GQA's adaptive threshold: (start, end) inclusive frame indices, (B,) each.

    From the peak frame p, walk outwards; frame j is kept when
    a_j / (1 + |t_j - t_p| / dis) >= (1 + thd_weight) * mean(a), a = min-max normalised w; each walk
    stops at the first frame that fails while more than ``dis`` seconds away. As in the official
    code the left walk never reaches frame 0. The span is [min kept, max kept] (gaps possible).
    """
    import torch

    B, T = w.shape
    lo = w.masked_fill(~mask, float("inf")).min(1, keepdim=True).values
    hi = w.masked_fill(~mask, float("-inf")).max(1, keepdim=True).values
    a = ((w - lo) / (hi - lo + 1e-12)).masked_fill(~mask, 0.0)  # (B, T) min-max normalised
    peak = a.masked_fill(~mask, float("-inf")).argmax(1, keepdim=True)  # (B, 1)
    thd = (1 + thd_weight) * a.sum(1, keepdim=True) / n[:, None]  # (B, 1)
    elapse = (frame_times - frame_times.gather(1, peak)).abs()  # (B, T) seconds from the peak
    passes = a / (1 + elapse / dis) >= thd
    stops = ~passes & (elapse > dis) & mask
    j = torch.arange(T, device=w.device)[None, :]
    right, left = (j > peak) & mask, (j < peak) & (j >= 1)
    blocked_right = (stops & right).cumsum(1) > 0  # at or after the first stop to the right
    blocked_left = (stops & left).flip(1).cumsum(1).flip(1) > 0  # at or before the first stop to the left
    kept = (passes & right & ~blocked_right) | (passes & left & ~blocked_left) | (j == peak)
    start = torch.where(kept, j, T).min(1).values
    end = torch.where(kept, j, -1).max(1).values
    return start, end


def _intersect_or_second(first: tuple, second: tuple):
    """(c) [max of starts, min of ends] where first and second meet, else second; (B,) each, of
    frame indices or seconds."""
    import torch

    start, end = torch.maximum(first[0], second[0]), torch.minimum(first[1], second[1])
    meet = start <= end
    return torch.where(meet, start, second[0]), torch.where(meet, end, second[1])


def _at_times(frames: tuple, frame_times: torch.Tensor) -> torch.Tensor:
    """[t_start, t_end] from inclusive frame indices (B,) each: -> (B, 2) seconds."""
    import torch

    start, end = frames
    return torch.stack([frame_times.gather(1, start[:, None])[:, 0], frame_times.gather(1, end[:, None])[:, 0]], 1)


def _fraction_seconds(frames: tuple, n: torch.Tensor, duration: torch.Tensor, convention: str) -> torch.Tensor:
    """round([s / D, e' / D] x duration, 1) with e' = e + 1 (exclusive end) and D = T - 1 (``"released"``)
    or T (``"bins"``), T = n valid frames: -> (B, 2) float64 seconds, as :func:`cra.metrics.to_seconds`
    converts :func:`window_span` (numpy's round is rint(10 x) / 10, half to even, as torch.round)."""
    import torch

    if convention == "released" and bool((n < 2).any()):
        raise ValueError(
            f"the 'window' read-out (released convention) divides by T-1: rows "
            f"{torch.nonzero(n < 2).flatten().tolist()} have fewer than 2 valid frames"
        )
    steps = (n - 1 if convention == "released" else n).to(torch.float64)  # (B,) D
    start, end = frames[0].to(torch.float64), (frames[1] + 1).to(torch.float64)  # (B,) s, e'
    fraction = torch.stack([start / steps, end / steps], 1)  # (B, 2) of the video
    return torch.round(fraction * duration.to(torch.float64)[:, None] * 10) / 10


# ============================================================================================
# Per question: the references (numpy, the official semantics)
# ============================================================================================
def posthoc_indices(
    w: Sequence[float],
    frame_times: Sequence[float],
    thd_weight: float = 0.3,
    dis: float = 10.0,
    *,
    official: bool = True,
) -> tuple[int, int]:
    """The official post-hoc rule (``find_seg_ada``) on per-frame weights ``w``: (first, last) kept
    frame, both inclusive.

    1. min-max normalise: w' = (w - min w) / (max w - min w + 1e-12);
    2. start at i* = argmax w' (first maximum), threshold thd = (1 + thd_weight) * mean(w');
    3. walk away from i* on each side; frame j joins when w'_j / (1 + |t_j - t_i*| / dis) >= thd;
       the walk stops at the first failing frame more than ``dis`` seconds away (failing frames
       nearer than that are stepped over, so the kept set can have gaps);
    4. return (min kept, max kept), with ``frame_times`` t (``frame2time``) giving the distances.

    ``official=True`` keeps the official quirk that the left walk never reaches frame 0 (its loop
    runs while j > 0); ``official=False`` lets it reach frame 0.
    """
    w = np.asarray(w, dtype=float)  # (T,)
    t = np.asarray(frame_times, dtype=float)  # (T,)
    if w.ndim != 1 or t.shape != w.shape:
        raise ValueError(
            f"posthoc_span needs 1-d weights and frame times of the same length, got {w.shape} and {t.shape}"
        )
    w = (w - w.min()) / (w.max() - w.min() + 1e-12)
    peak = int(np.argmax(w))
    thd = (1.0 + thd_weight) * w.mean()
    kept = [peak]

    def walk(frames: Iterable[int]) -> None:
        for j in frames:
            elapsed = abs(t[peak] - t[j])
            if w[j] / (1.0 + elapsed / dis) >= thd:
                kept.append(j)
            elif elapsed > dis:
                break

    first_left = 1 if official else 0
    walk(range(peak - 1, first_left - 1, -1))  # leftwards
    walk(range(peak + 1, len(w)))  # rightwards
    return min(kept), max(kept)


def posthoc_span(
    w: Sequence[float],
    frame_times: Sequence[float],
    thd_weight: float = 0.3,
    dis: float = 10.0,
    *,
    official: bool = True,
) -> list[float]:
    """The official post-hoc span in seconds: [t_first, t_last] of :func:`posthoc_indices`.
    A single kept frame gives a zero-length span."""
    first, last = posthoc_indices(w, frame_times, thd_weight, dis, official=official)
    return [float(frame_times[first]), float(frame_times[last])]


def window_indices(w: Sequence[float], window_sizes: Sequence[int] = (1, 3, 5)) -> tuple[int, int]:
    """CRA's window read-out of weights ``w`` (``find_best_interval_v2``): (start, end), end exclusive.

    Among the windows of the given sizes (sizes above T // 2 skipped) that contain the arg-max
    frame, the one with the largest sum of ``w``; ties keep the first found (sizes in order, then
    starts left to right). With positive weights the widest window always wins. A one-frame window
    is always allowed (so a one-frame video gives (0, 1)); with no allowed size the result is the
    peak frame alone.
    """
    w = np.asarray(w, dtype=float)  # (T,)
    n = len(w)
    peak = int(np.argmax(w))
    best, best_sum = (peak, peak + 1), -math.inf  # the peak frame alone when no size is allowed
    for size in window_sizes:
        if size > n // 2 and size != 1:
            continue
        for start in range(max(0, peak - size + 1), min(peak, n - size) + 1):
            total = float(w[start : start + size].sum())
            if total > best_sum:
                best, best_sum = (start, start + size), total
    return best


def window_span(
    w: Sequence[float], window_sizes: Sequence[int] = (1, 3, 5), *, convention: str = "released"
) -> list[float]:
    """The window read-out as a normalised span (evaluate with ``normalized=True``).

    ``convention="released"``: [s / (T-1), e / (T-1)] with exclusive end e, as the released CRA code
    writes it; it can exceed 1 (up to T/(T-1)) and is not clipped. ``"bins"``: frame i covers
    [i/T, (i+1)/T], so the span is [s / T, e / T] and never leaves the video.
    """
    start, end = window_indices(w, window_sizes)
    n = len(w)
    if convention == "released":
        if n < 2:
            raise ValueError(f"the released window convention divides by T-1: needs at least 2 frames, got {n}")
        return [start / (n - 1), end / (n - 1)]
    if convention == "bins":
        return [start / n, end / n]
    raise ValueError(f"unknown window convention {convention!r}; expected 'released' or 'bins'")


def merge_span(window: Sequence[float], posthoc: Sequence[float]) -> list[float]:
    """The official merge (``combine``, way ``itsc``): the intersection of the two spans, or the
    post-hoc span when they do not intersect (touching spans give a zero-length intersection).
    Both in seconds (the official use) or both in inclusive frame indices."""
    start = max(window[0], posthoc[0])
    end = min(window[1], posthoc[1])
    return [start, end] if start <= end else list(posthoc)


def question_readouts(
    w: Sequence[float],
    frame_times: Sequence[float],
    duration: float | None = None,
    *,
    readouts: Sequence[str] = READOUTS,
    window_sizes: Sequence[int] = (1, 3, 5),
    thd_weight: float = 0.3,
    dis: float = 10.0,
) -> dict[str, list[float]]:
    """The ``readouts`` of one question's weights ``w`` (T,) as ``{name: [t_s, t_e] seconds}``: the
    per-question reference of :func:`interval_readouts`, same arguments (``duration`` in seconds, the
    integer gsub duration). The default read-outs are what the official evaluation scores."""
    readouts = tuple(readouts)
    _check_names(readouts)
    if _needs_duration(readouts) and duration is None:
        raise ValueError(f"readouts {list(readouts)} need the video's duration in seconds")
    spans = {}
    windows = _windows_needed(readouts)
    if windows:
        start, end = window_indices(w, window_sizes)  # end exclusive
    for name in windows:
        convention = WINDOW_CONVENTION[name]
        spans[name] = (
            [float(frame_times[start]), float(frame_times[end - 1])]
            if convention == "frame_times"
            else to_seconds(window_span(w, window_sizes, convention=convention), duration)
        )
    if "posthoc" in readouts or any(r in MERGE_OF for r in readouts):
        spans["posthoc"] = posthoc_span(w, frame_times, thd_weight, dis)
    for name in readouts:
        if name in MERGE_OF:
            spans[name] = merge_span(spans[MERGE_OF[name]], spans["posthoc"])
    return {r: spans[r] for r in readouts}


# --------------------------------------------------------------------------------------------
# Over a prediction file: {"<video_id>_<qid>": weights}
# --------------------------------------------------------------------------------------------
def posthoc_spans(
    weights: Mapping[str, Sequence[float]], frame2time: Mapping[str, Sequence[float]], **kwargs
) -> dict[str, list[float]]:
    """:func:`posthoc_span` for every key of ``weights``, frame times from ``frame2time[video_id]``."""
    spans = {}
    for key, w in weights.items():
        vid, _ = split_key(key)
        if vid not in frame2time:
            raise KeyError(
                f"no frame2time entry for video {vid!r} (prediction {key!r}); expected one list of "
                f"{len(w)} timestamps per video"
            )
        spans[key] = posthoc_span(w, frame2time[vid], **kwargs)
    return spans


def window_spans(weights: Mapping[str, Sequence[float]], **kwargs) -> dict[str, list[float]]:
    """:func:`window_span` (normalised) for every key of ``weights``."""
    return {key: window_span(w, **kwargs) for key, w in weights.items()}


def merge_spans(
    window_normalized: Mapping[str, Sequence[float]], posthoc: Mapping[str, Sequence[float]], gsub: GSub
) -> dict[str, list[float]]:
    """:func:`merge_span` per GT question present in both; the window span is converted with
    :func:`cra.metrics.to_seconds` first, as the official ``combine`` does."""
    merged = {}
    for vid, entry in gsub.items():
        for qid in entry["location"]:
            key = question_key(vid, qid)
            if key in window_normalized and key in posthoc:
                merged[key] = merge_span(to_seconds(window_normalized[key], entry["duration"]), posthoc[key])
    return merged
