r"""Learning-rate schedules: the factor $f(s)$ that multiplies the base learning rate before step $s$
(``torch.optim.lr_scheduler.LambdaLR``), with $W$ warm-up steps and $S$ steps in all.

* ``linear`` (ours): $f(s) = s/W$ for $s < W$, then $f(s) = \max(0, (S - s)/(S - W))$.
* ``cosine`` (the released code): the same warm-up, then
  $f(s) = e + (1 - e)\,\tfrac12\big(1 + \cos(\pi\,\tfrac{s - W}{S - W})\big)$ with $e = 0.001$, so the
  rate ends at $0.001\times$ the base rate. The release calls it ``get_linear_schedule_with_warmup``
  (``utils/optim/lr_scheduler.py``), but the function it returns is this cosine;
  ``tests/test_compat.py`` checks it against the factors their scheduler produced.
"""

from __future__ import annotations

import math

__all__ = ["SCHEDULES", "warmup_linear", "warmup_cosine", "schedule_factor"]


def warmup_linear(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor: linear from 0 to 1 over ``warmup_steps``, then linear to 0 at ``total_steps``."""
    if step < warmup_steps:
        return step / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, end_factor: float = 0.001) -> float:
    """Learning-rate factor: linear from 0 to 1 over ``warmup_steps``, then a half cosine from 1 to
    ``end_factor`` at ``total_steps`` (the released schedule)."""
    if step < warmup_steps:
        return step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    cosine = max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    return end_factor + (1.0 - end_factor) * cosine


SCHEDULES = {"linear": warmup_linear, "cosine": warmup_cosine}


def schedule_factor(name: str, step: int, warmup_steps: int, total_steps: int) -> float:
    """:data:`SCHEDULES` ``[name]`` at ``step``."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule {name!r}: expected one of {sorted(SCHEDULES)}")
    return SCHEDULES[name](step, warmup_steps, total_steps)
