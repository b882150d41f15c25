"""Interval read-outs of cra.readouts: vectorised vs loop versions, at B=64, T=32 (and a whole split).

    PYTHONPATH=. python benchmarks/readout_speed.py [--batch 64 5553] [--frames 32] [--repeats 20] [--threads 1]

Three implementations of each read-out, all checked to give identical intervals first:

* ``vectorised``: ``cra.readouts.interval_readouts`` (no Python loop over batch or positions; it
  includes the mask check and the conversion to seconds);
* ``numpy loop``: per sample, per window / per frame, numpy slices and scalars: the style of the
  released code and of the official NExT-GQA script (our own transcription of the rules);
* ``list loop``: the test oracles of ``tests/readout_oracles.py``, the per-question references of
  ``cra.readouts`` on Python lists (the fastest loop we could write).

Times are the best of ``--repeats`` runs. ``--threads 1`` is the default: these are tiny tensors, and on
a busy 2-core machine two intra-op threads can add milliseconds of hand-off latency per reduction.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cra.readouts import interval_readouts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the oracles live with the tests
from readout_oracles import merge_readout_loop, posthoc_readout_loop, window_readout_loop  # noqa: E402


def window_numpy(w: torch.Tensor, sizes=(1, 3, 5)):
    starts, ends = [], []
    for row in w.numpy():
        n = len(row)
        peak = int(np.argmax(row))
        best, span = -np.inf, (peak, peak)
        for s in sizes:
            if s != 1 and 2 * s > n:
                continue
            for st in range(n - s + 1):
                window = row[st : st + s]
                if window.max() == row[peak] and st <= peak < st + s:
                    total = window.sum()
                    if total > best:
                        best, span = total, (st, st + s - 1)
        starts.append(span[0])
        ends.append(span[1])
    return torch.tensor(starts), torch.tensor(ends)


def posthoc_numpy(w: torch.Tensor, frame_times: torch.Tensor, thd_weight=0.3, dis=10.0):
    starts, ends = [], []
    for row, times in zip(w.numpy().astype(np.float64), frame_times.numpy().astype(np.float64)):
        a = (row - row.min()) / (row.max() - row.min() + 1e-12)
        peak = int(np.argmax(a))
        thd = (1 + thd_weight) * np.mean(a)
        path = [peak]
        for direction, stop in ((-1, 0), (1, len(a))):
            i = peak + direction
            while (i > stop) if direction < 0 else (i < stop):
                elapse = abs(times[peak] - times[i])
                if a[i] / (1 + elapse / dis) >= thd:
                    path.append(i)
                elif elapse > dis:
                    break
                i += direction
        starts.append(min(path))
        ends.append(max(path))
    return torch.tensor(starts), torch.tensor(ends)


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run(B: int, T: int, repeats: int) -> None:
    torch.manual_seed(0)
    w = torch.softmax(3 * torch.randn(B, T, dtype=torch.float64), 1)  # (B, T)
    times = torch.linspace(1.0, 60.0, T, dtype=torch.float64).repeat(B, 1)  # (B, T) seconds
    sizes = (1, 3, 5)

    def vectorised(name):
        return lambda: interval_readouts(w, times, readouts=(name,), window_sizes=sizes)[name]

    def seconds(frames):  # (start, end) frame indices -> (B, 2) seconds
        return lambda: torch.stack([times.gather(1, f[:, None])[:, 0] for f in frames()], 1)

    cases = {
        # the frame-times names: their seconds are frame times, like the loops' (the released "window"
        # differs only in a rounding of s / (T-1) x duration, a few flops more)
        "window (a)": (
            vectorised("window_frametimes"),
            seconds(lambda: window_numpy(w, sizes)),
            seconds(lambda: window_readout_loop(w, sizes)),
        ),
        "post-hoc (b)": (
            vectorised("posthoc"),
            seconds(lambda: posthoc_numpy(w, times)),
            seconds(lambda: posthoc_readout_loop(w, times)),
        ),
        "merge (c) incl. a+b": (
            vectorised("merge_frametimes"),
            seconds(lambda: merge_readout_loop(window_numpy(w, sizes), posthoc_numpy(w, times))),
            seconds(lambda: merge_readout_loop(window_readout_loop(w, sizes), posthoc_readout_loop(w, times))),
        ),
    }
    print(f"\nB={B}, T={T}: times in ms (best of {repeats}); ratio = loop time / vectorised time")
    print(f"{'read-out':<22}{'vectorised':>11}{'numpy loop':>12}{'ratio':>8}{'list loop':>11}{'ratio':>8}")
    for name, (vec, np_loop, list_loop) in cases.items():
        reference = vec()
        for other in (np_loop, list_loop):
            assert torch.equal(reference, other()), f"{name}: results differ"
        tv, tn, tl = (best_time(f, repeats) for f in (vec, np_loop, list_loop))
        print(f"{name:<22}{tv * 1e3:>11.3f}{tn * 1e3:>12.3f}{tn / tv:>7.1f}x{tl * 1e3:>11.3f}{tl / tv:>7.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 5553])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, numpy {np.__version__}, {torch.get_num_threads()} intra-op thread(s)")
    for B in args.batch:
        run(B, args.frames, args.repeats if B <= 256 else max(2, args.repeats // 10))


if __name__ == "__main__":
    main()
