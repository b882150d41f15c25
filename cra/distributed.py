r"""Data-parallel training on ``torch.distributed``: the process group, the batch sampler, the
collectives the :class:`~cra.train.Trainer` and :func:`cra.predict.evaluate` call.

``torchrun --nproc-per-node N -m cra train ...`` starts N processes; each reads its place from the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and :func:`setup` joins the group (NCCL on
CUDA, one GPU per process; gloo on CPU). A plain ``python -m cra train`` is one process and none of
this runs: the single-process path is unchanged.

One global batch, whatever N. Step ``s`` of epoch ``e`` takes the global batch
``perm[s*B:(s+1)*B]`` of the epoch's permutation (the one a single process draws from the seed
``(train.seed, e)``, :func:`epoch_permutation`); rank ``r`` takes the ``r``-th contiguous share of it
(:func:`shares`: sizes differ by at most one, nothing padded or repeated). Each rank's loss is its
local mean; the Trainer scales it by :math:`N B_r / B` so that DistributedDataParallel's average of
the gradients is the gradient of the global mean,

.. math::

    \frac1N \sum_r \nabla \Big( N \frac{B_r}{B} \cdot \frac{1}{B_r} \sum_{i \in r} \ell_i \Big)
    = \nabla \frac1B \sum_{i} \ell_i .

CMA negatives come from the global batch: :func:`gather_with_grad` all-gathers the features of
every rank (the local rows keep their graph) and its backward sums, over ranks, the gradients every
rank's anchors send to each rank's rows, so the InfoNCE loss and its gradient do not change with N.

Evaluation is sharded without padding (:func:`shard_indices`), the predictions gathered
(:func:`gather_predictions`) and checked: every question scored exactly once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "SINGLE",
    "from_env",
    "setup",
    "shutdown",
    "epoch_permutation",
    "shares",
    "GlobalBatchSampler",
    "shard_indices",
    "gather_with_grad",
    "all_reduce_sum",
    "all_gather_objects",
    "gather_predictions",
    "barrier",
    "wrap_model",
    "RANK_SEED_STRIDE",
]

#: per-rank seeds: rank r reseeds its generators (dropout, ...) with seed + r * RANK_SEED_STRIDE
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistInfo()


def from_env() -> DistInfo:
    """The place ``torchrun`` gives this process (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); one process
    without them."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as err:
        raise ValueError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers (set by torchrun): {err}") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank}, WORLD_SIZE={world}: expected 0 <= RANK < WORLD_SIZE")
    return DistInfo(rank, world, local)


def setup(device_name: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1); returns (place, device).

    Device: ``cuda:LOCAL_RANK`` with NCCL when ``device_name`` is ``auto``/``cuda`` and CUDA is
    available, else CPU with gloo. One process: :func:`cra.run.select_device`, no group."""
    from cra.run import select_device

    info = from_env()
    if not info.enabled:
        return info, select_device(device_name)
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available() or device_name.startswith("cuda:")
    if use_cuda and device_name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device='cuda' but CUDA is not available")
    if use_cuda:
        if info.local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={info.local_rank} but only {torch.cuda.device_count()} CUDA device(s)")
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=info.rank, world_size=info.world_size)
    return info, device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


# --------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------
#: int64 draws before the permutation in the single-process loader this sampler replaces: the
#: ``DataLoader`` iterator draws its workers' base seed from the generator, and there were two such
#: iterators (``tqdm.auto`` makes one in its constructor, the loop another). Kept so that one
#: process trains bit for bit as before ``cra.distributed`` existed.
DRAWS_BEFORE_PERMUTATION = 2


def epoch_permutation(n: int, seed: int) -> torch.Tensor:
    """The order of one epoch: ``randperm(n)`` of a generator seeded with ``seed`` after
    :data:`DRAWS_BEFORE_PERMUTATION` int64 draws."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(DRAWS_BEFORE_PERMUTATION):
        torch.empty((), dtype=torch.int64).random_(generator=generator)
    return torch.randperm(n, generator=generator)


def shares(total: int, world_size: int) -> list[int]:
    """Sizes of the contiguous shares of ``total`` samples over ``world_size`` ranks (differ by <= 1)."""
    return [total // world_size + (r < total % world_size) for r in range(world_size)]


class GlobalBatchSampler(torch.utils.data.Sampler):
    """Batches of dataset indices for one rank: this rank's share of each global batch of ``batch_size``.

    With one rank it yields exactly the batches the single-process loop drew before (see
    :data:`DRAWS_BEFORE_PERMUTATION`). Every global batch must give each rank at least one sample."""

    def __init__(self, n: int, batch_size: int, seed: int, info: DistInfo = SINGLE, parts_per_rank: int = 1):
        self.n, self.batch_size, self.seed, self.info = n, batch_size, seed, info
        need = info.world_size * parts_per_rank  # every micro-batch of every rank needs a sample
        what = f"{info.world_size} process(es) x {parts_per_rank} micro-batch(es) (train.accumulate)"
        if batch_size < need:
            raise ValueError(
                f"train.batch_size={batch_size} (the global batch) is smaller than {what}: "
                f"each needs at least one sample"
            )
        last = n % batch_size
        if last and last < need:
            raise ValueError(
                f"the last batch of an epoch holds {last} of {n} questions, fewer than {what}: "
                f"choose a train.batch_size for which {n} % batch_size is 0 or >= {need}"
            )

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def global_sizes(self) -> list[int]:
        """Size of every global batch of the epoch."""
        return [min(self.batch_size, self.n - s) for s in range(0, self.n, self.batch_size)]

    def __iter__(self):
        order = epoch_permutation(self.n, self.seed).tolist()
        r = self.info.rank
        for start in range(0, self.n, self.batch_size):
            batch = order[start : start + self.batch_size]
            sizes = shares(len(batch), self.info.world_size)
            offset = sum(sizes[:r])
            yield batch[offset : offset + sizes[r]]


def shard_indices(n: int, info: DistInfo) -> range:
    """This rank's contiguous share of ``n`` evaluation items: every item on exactly one rank, none repeated."""
    sizes = shares(n, info.world_size)
    start = sum(sizes[: info.rank])
    return range(start, start + sizes[info.rank])


# --------------------------------------------------------------------------------------------
# Collectives
# --------------------------------------------------------------------------------------------
class _GatherWithGrad(torch.autograd.Function):
    """All-gather of (B_r, ...) rows of unequal counts; backward: the sum over ranks of the gradient
    of this rank's rows (every rank's loss may use every row)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: tuple, rank: int):
        ctx.sizes, ctx.rank = sizes, rank
        width = max(sizes)
        padded = x.new_zeros((width, *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # sum of every rank's gradient w.r.t. every row
        offset = sum(ctx.sizes[: ctx.rank])
        return grad[offset : offset + ctx.sizes[ctx.rank]], None, None


def gather_with_grad(x: torch.Tensor, sizes: list[int], info: DistInfo) -> tuple[torch.Tensor, int]:
    """(rows of every rank in rank order (sum(sizes), ...), offset of this rank's rows); differentiable."""
    if not info.enabled:
        return x, 0
    if x.shape[0] != sizes[info.rank]:
        raise ValueError(f"gather_with_grad: rank {info.rank} holds {x.shape[0]} rows, expected {sizes[info.rank]}")
    return _GatherWithGrad.apply(x, tuple(sizes), info.rank), sum(sizes[: info.rank])


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum over ranks, in place (returned); unchanged with one process."""
    if info.enabled:
        dist.all_reduce(tensor)
    return tensor


def all_gather_objects(obj, info: DistInfo) -> list:
    """Every rank's ``obj`` (picklable), in rank order."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def gather_predictions(part: dict, expected_keys: list[str], info: DistInfo) -> dict:
    """Merge every rank's :func:`cra.predict.predict_split` output; each key of ``expected_keys``
    must have been predicted by exactly one rank (else ``RuntimeError`` naming the keys). The
    diagnostics are taken as they are (``predict_split(..., dist=info)`` already gathered them)."""
    parts = all_gather_objects(part, info)
    merged = {"qa": {}, "weights": {}, "spans": {r: {} for r in part["spans"]}}
    if "diagnostics" in part:
        merged["diagnostics"] = part["diagnostics"]
    seen: dict[str, int] = {}
    for p in parts:
        for key in p["qa"]:
            seen[key] = seen.get(key, 0) + 1
        merged["qa"].update(p["qa"])
        merged["weights"].update(p["weights"])
        for r, spans in p["spans"].items():
            merged["spans"][r].update(spans)
    twice = sorted(k for k, c in seen.items() if c > 1)
    missing = sorted(set(expected_keys) - set(seen))
    extra = sorted(set(seen) - set(expected_keys))
    if twice or missing or extra:
        raise RuntimeError(
            f"sharded evaluation: questions scored twice {twice[:5]}, never {missing[:5]}, unexpected {extra[:5]}"
        )
    return merged


def wrap_model(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` under torchrun (gradients averaged over ranks); the model itself otherwise."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
