"""Fraction of training-step time spent waiting for data: one epoch of ``Trainer.train_epoch`` with the
loader's ``next()`` timed.

    PYTHONPATH=$PWD python benchmarks/data_wait.py --config synthetic --set data.root=$PWD/data_samples/synthetic
    PYTHONPATH=$PWD python benchmarks/data_wait.py --config nextgqa --set data.features_in_memory=true \\
        --set data.num_workers=4 --max-steps 50

Prints the epoch's wall time, the time blocked in the loader and their ratio. ``--max-steps`` stops
the epoch early (the remaining batches are not drawn). On CUDA the device is synchronised once at
the end, so asynchronous kernels are counted in the wall time, not in the wait.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


class TimedIterable:
    """Wraps an iterable of batches; ``wait`` accumulates the seconds spent in ``next()``."""

    def __init__(self, iterable, max_steps: int | None):
        self.iterable, self.max_steps, self.wait, self.steps = iterable, max_steps, 0.0, 0

    def __len__(self):
        return len(self.iterable) if self.max_steps is None else min(len(self.iterable), self.max_steps)

    def __iter__(self):
        it = iter(self.iterable)
        while self.max_steps is None or self.steps < self.max_steps:
            start = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            self.wait += time.perf_counter() - start
            self.steps += 1
            yield batch


def main() -> None:
    from cra.config import load_run_config
    from cra.train import Trainer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", default=[])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args()
    config, _ = load_run_config(args.config or ["synthetic"], ["train.progress=false", *args.overrides])
    trainer = Trainer.from_config(config, tempfile.mkdtemp(prefix="cra_data_wait_") + "/run", log=None)
    make = trainer._batches
    timed = {}

    def batches(epoch):
        loader, sizes = make(epoch)
        timed["it"] = TimedIterable(loader, args.max_steps)
        return timed["it"], sizes

    trainer._batches = batches
    start = time.perf_counter()
    trainer.train_epoch(0)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    t = timed["it"]
    print(
        f"device {trainer.device}, batch {config.train.batch_size}, num_workers {config.data.num_workers}, "
        f"features_in_memory {config.data.features_in_memory}, compile {config.train.compile}"
    )
    print(
        f"{t.steps} steps in {wall:.2f} s ({wall / max(1, t.steps):.3f} s/step); waiting for data {t.wait:.2f} s "
        f"= {100 * t.wait / wall:.1f} % of the step time"
    )


if __name__ == "__main__":
    main()
