r"""Training CRA: the :class:`Trainer` loop, its checkpoints and ``metrics.jsonl``.

``Trainer(model, train_data, evaluate_fn, train_config, run_dir)`` takes a built model and its data
(assembled by :mod:`cra.run`, or made by hand in a chapter or a test); :meth:`Trainer.from_config`
assembles both from a :class:`~cra.config.RunConfig` for ``python -m cra train``.

One epoch: shuffle (seeded), forward both passes (VQA and VQ), the loss of :meth:`CRA.losses`, Adam
(amsgrad) with gradient clipping and a linear warm-up/decay learning rate

.. math::

    \eta(s) = \eta_0 \cdot \begin{cases} s / S_w & s < S_w \\ (S - s) / (S - S_w) & s \ge S_w \end{cases}

(:math:`S_w` = warm-up steps, :math:`S` = all steps), then ``evaluate_fn`` scores the val split
(:func:`cra.predict.evaluate`: every read-out, via :mod:`cra.metrics`) and the epoch's record joins
the metrics history. The checkpoint of the best val ``train.select_metric`` is ``best.pt``; the test
split is never read here. ``last.pt`` (model, optimiser, schedule, scaler, RNG states) lets
``--resume`` continue exactly: each epoch reseeds every generator from ``(seed, epoch)``, so a
resumed CPU run repeats the losses of an uninterrupted one bit for bit. Checkpoints hold plain data
only and carry the resolved config (:mod:`cra.checkpoint`), so :class:`cra.predict.Predictor` can
rebuild the model from one file.

Run folder (:mod:`cra.runfolder`): ``config.yaml`` (the resolved config), ``last.pt``, ``best.pt``,
``metrics.jsonl`` and, while a trainer works in it, ``train.lock`` (a second trainer is refused). Each
epoch has one commit, ``last.pt``, which holds the whole metrics history, the thread count and the
library versions; ``best.pt`` and ``metrics.jsonl`` are written after it and repaired from it on
``--resume`` if a kill came between the writes. A resumed run is bit-identical only with the same
thread count (:func:`cra.runfolder.environment_changes` warns otherwise).

Several processes (``torchrun --nproc-per-node N -m cra train ...``, :mod:`cra.distributed`): the
same global batch ``train.batch_size`` split over the ranks, gradients averaged by
DistributedDataParallel, CMA negatives from the global batch, losses and accuracy summed over ranks,
evaluation sharded; only rank 0 writes the run folder and logs. Losses are kept as tensors during an
epoch (no host synchronisation per step); they are read, and checked to be finite, every
:data:`CHECK_EVERY` steps and at the end of the epoch.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import torch
import yaml

from cra import distributed, runfolder
from cra.checkpoint import load_checkpoint, rng_state, set_rng_state
from cra.config import RunConfig, TrainConfig, to_dict
from cra.distributed import SINGLE, DistInfo
from cra.model import CRA
from cra.model.cra import TOKENS_KEY
from cra.run import (
    CONFIG_FILE,
    METRICS_FILE,
    autocast_settings,
    build_model,
    deterministic_algorithms,
    dictionary_shapes,
    json_clean,
    load_split,
    resolve_paths,
    seed_everything,
    to_device,
)
from cra.schedules import schedule_factor, warmup_linear  # noqa: F401  (warmup_linear: public name kept)

__all__ = ["Trainer", "make_optimizer", "warmup_linear", "selection_value", "CHECK_EVERY"]

#: steps between reads of the running losses (finite check, progress bar): the only host syncs of an epoch
CHECK_EVERY = 25


def make_optimizer(model: torch.nn.Module, train: TrainConfig) -> torch.optim.Adam:
    """Adam (amsgrad by default) over the trainable parameters, as one fused kernel where torch has
    one for the device (the same update; on CPU the per-tensor loop over RoBERTa-base's 125M
    parameters costs about 3x more)."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(
        params, lr=train.lr, weight_decay=train.weight_decay, amsgrad=train.amsgrad, fused=fused or None
    )


def selection_value(scores: dict, train: TrainConfig) -> float:
    """The val number that picks ``best.pt``: ``train.select_metric`` (of ``train.select_readout``)."""
    metric = train.select_metric
    if metric == "Acc@QA":
        return scores["qa_acc"]  # over every val question, as the released code selects
    value = scores[train.select_readout][metric]
    return -math.inf if value is None or (isinstance(value, float) and math.isnan(value)) else value


def slice_batch(batch: dict, start: int, stop: int) -> dict:
    """Rows ``start:stop`` of a batch (tensors and lists alike); texts tokenised ahead are left out
    (their padding is the whole batch's), so the slice's texts are tokenised in the step."""
    return {
        k: v[start:stop] if torch.is_tensor(v) or isinstance(v, list) else v
        for k, v in batch.items()
        if k != TOKENS_KEY
    }


def _check_run_dir(run_dir: Path | None, resume: bool) -> None:
    if run_dir is None:
        if resume:
            raise ValueError("resume needs a run folder")
        return
    last = run_dir / "last.pt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: {last} does not exist")
    if not resume and last.is_file():
        raise FileExistsError(f"{run_dir} already holds a run (last.pt); use --resume or another --run folder")


class Trainer:
    """Trains ``model`` on ``train_data``; :meth:`fit` runs the epochs.

    ``train_data``: a ``Dataset`` of :mod:`cra.data` (batched with its ``collate``, shuffled by a
    generator seeded from ``(train.seed, epoch)``), or a function ``epoch -> iterable of batches``.
    ``evaluate_fn(model) -> scores`` (:func:`cra.predict.evaluate`'s dict) runs after each epoch and
    picks ``best.pt``; ``None``: no evaluation. ``run_dir=None`` writes nothing. ``optimizer``
    (default :func:`make_optimizer`), ``lr_factor`` (step -> factor of the learning rate; default the
    warm-up/decay of ``train_config``, which needs a ``Dataset``; ``None``: constant),
    ``reseed_each_epoch`` (``False`` leaves the global generators to the caller) adapt it to a
    hand-made experiment. ``tokenize_in_loader``: a ``Dataset``'s candidate texts are tokenised in the
    ``DataLoader`` (:class:`cra.model.cra.CandidateTokenizer`; the same ids as the step would make).
    ``run_config``: what checkpoints record (default: ``model.config`` and ``train_config``).
    ``resume``: continue from ``run_dir/last.pt``. The model stays on its device.

    A hand-made run (the CMA chapter does this)::

        trainer = Trainer(CRA(model_config), lambda epoch: my_batches(), train_config=TrainConfig(epochs=5),
                          lr_factor=None, log=None)
        records = trainer.fit()  # one dict per epoch: {"epoch", "train": {"loss", ..., "acc"}, "val", ...}
    """

    def __init__(
        self,
        model: CRA,
        train_data,
        evaluate_fn: Callable[[CRA], dict] | None = None,
        train_config: TrainConfig | None = None,
        run_dir: Path | str | None = None,
        *,
        optimizer: torch.optim.Optimizer | None = None,
        lr_factor: Callable[[int], float] | None | str = "warmup",
        reseed_each_epoch: bool = True,
        run_config: RunConfig | None = None,
        num_workers: int = 0,
        tokenize_in_loader: bool = True,
        resume: bool = False,
        log: Callable | None = print,
        lock: runfolder.RunLock | None = None,
        dist: DistInfo = SINGLE,
    ):
        self.model, self.train_data, self.evaluate_fn = model, train_data, evaluate_fn
        self.train_config = t = train_config if train_config is not None else TrainConfig()
        self.run_config = run_config if run_config is not None else RunConfig(model=model.config, train=t)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.reseed_each_epoch, self.num_workers = reseed_each_epoch, num_workers
        self.tokenize_in_loader = tokenize_in_loader
        self.dist = dist
        if dist.enabled and callable(train_data):
            raise ValueError(
                "several processes need train_data as a Dataset (split by cra.distributed), not a function"
            )
        self.log = (log or (lambda *args: None)) if dist.is_main else (lambda *args: None)
        self.val_data = None  # SplitData when made by from_config (for the log line)
        owns_folder = self.run_dir is not None and dist.is_main  # rank 0 alone locks and writes the run folder
        self.lock = lock if lock is not None or not owns_folder else runfolder.RunLock(self.run_dir, self.log).acquire()
        try:
            self._setup(model, t, optimizer, lr_factor, resume)
        except BaseException:
            self.close()
            raise

    def _setup(self, model: CRA, t: TrainConfig, optimizer, lr_factor, resume: bool) -> None:
        """The rest of ``__init__``, under the run folder's lock (released if it fails)."""
        _check_run_dir(self.run_dir, resume)  # under the lock: no other trainer writes here now
        if self.run_dir is not None and self.dist.is_main:
            runfolder.remove_orphans(self.run_dir, self.log)
        self.device = next(model.parameters()).device
        self.amp, self.amp_dtype, use_scaler = autocast_settings(t.amp, self.device)
        self.optimizer = optimizer if optimizer is not None else make_optimizer(model, t)
        data = self.train_data
        self.train_model = distributed.wrap_model(model, self.dist, self.device)  # DDP with several processes
        if t.compile:  # opt-in: compiled forward (the loss and the optimiser stay eager)
            self.train_model = torch.compile(self.train_model)
        self.steps_per_epoch = math.ceil(len(data) / t.batch_size) if not callable(data) else None
        self.total_steps = None if self.steps_per_epoch is None else self.steps_per_epoch * t.epochs
        if lr_factor == "warmup":
            if self.steps_per_epoch is None:
                raise ValueError(
                    "lr_factor='warmup' needs train_data with a length (a Dataset); "
                    "pass lr_factor=None (constant) or a function of the step"
                )
            warmup = round(t.warmup_epochs * self.steps_per_epoch)
            lr_factor = lambda step: schedule_factor(t.schedule, step, warmup, self.total_steps)  # noqa: E731
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor or (lambda step: 1.0))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.epoch = 0  # epochs completed
        self.best, self.best_epoch = -math.inf, None
        self.history: list[dict] = []  # one record per completed epoch, also inside last.pt
        self.written: list[Path] = []  # files written by this trainer (the command lists them)
        self.committed = 0  # the epoch that last.pt on disk holds
        if resume:
            self.resume()

    def close(self) -> None:
        """Release the run folder's lock (:meth:`fit` does it when it ends; a later :meth:`fit` takes it again)."""
        if self.lock is not None:
            self.lock.release()

    # -- assembly from a config (the CLI) ------------------------------------------------------
    @classmethod
    def from_config(
        cls, config: RunConfig, run_dir: Path | str, *, resume: bool = False, log: Callable = print
    ) -> "Trainer":
        """Data, model and dictionaries of ``config`` (every check before the first step), a run
        folder for it; ``resume`` continues from ``run_dir/last.pt``. Relative data paths are stored
        absolute (:func:`cra.run.resolve_paths`)."""
        from cra.predict import evaluate

        config = resolve_paths(config)
        run_dir = Path(run_dir)
        _check_run_dir(run_dir, resume)
        t = config.train
        info, device = distributed.setup(t.device)  # one process: select_device(t.device)
        lock = (
            runfolder.RunLock(run_dir, log).acquire() if info.is_main else None
        )  # released by fit(), or on a failed start
        try:
            if t.deterministic:
                torch.backends.cudnn.benchmark = False
            seed_everything(t.seed)
            train_data = load_split(config, config.data.train_split, grounding=False)
            val_data = load_split(config, config.data.val_split, grounding=True)
            model = build_model(config).to(device)
            trainer = cls(
                model,
                train_data.dataset,
                lambda m: evaluate(m, val_data, config, device, dist=info),
                t,
                run_dir,
                run_config=config,
                num_workers=config.data.num_workers,
                resume=resume,
                log=log,
                lock=lock,
                dist=info,
            )
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        trainer.val_data = val_data
        for note in val_data.notes:
            trainer.log(f"note: {val_data.name}: {note}")
        return trainer

    # -- checkpoints ---------------------------------------------------------------------------
    def _state(self) -> dict:
        """``last.pt``: everything to continue, and the metrics history (the epoch's one commit)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "rng": rng_state(),
            "config": to_dict(self.run_config),
            "dictionaries": dictionary_shapes(self.model),
            "history": self.history,
            "environment": runfolder.environment(),
        }

    def _best_state(self, model_state: dict, epoch: int, value: float) -> dict:
        """``best.pt``: the weights of the selected epoch and what predicting needs."""
        return {
            "model": model_state,
            "epoch": epoch,
            "config": to_dict(self.run_config),
            "selection": {self.train_config.select_metric: value},
            "dictionaries": dictionary_shapes(self.model),
            "environment": runfolder.environment(),
        }

    def resume(self) -> None:
        """Continue from ``run_dir/last.pt``: weights, optimiser, schedule, scaler, epoch, RNG states.

        The metrics history in ``last.pt`` must hold epochs 1..n with no gap; ``metrics.jsonl`` and
        ``best.pt`` are then repaired from it where a stop came between the writes of an epoch
        (:func:`cra.runfolder.repair`, each repair a note), and a thread count or library version
        other than the one that wrote ``last.pt`` is warned about (the run is then not bit-identical).
        """
        path = self.run_dir / "last.pt"
        state = load_checkpoint(path, self.device, require=("model", "config", "optimizer", "scheduler", "rng"))
        if state["config"] != to_dict(self.run_config):
            raise ValueError(f"--resume: the config of {path} differs from this run's config")
        epoch = state["epoch"]
        if "history" in state:
            history = state["history"]
            runfolder.check_history(history, epoch, path)
        else:
            history = runfolder.history_from_metrics(self.run_dir / METRICS_FILE, epoch, path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.committed, self.best, self.history = epoch, epoch, state["best"], list(history)
        self.best_epoch = state.get("best_epoch", max((r["epoch"] for r in history if r.get("selected")), default=None))
        set_rng_state(state["rng"])
        for warning in runfolder.environment_changes(state.get("environment"), runfolder.environment(), path):
            self.log(f"warning: {warning}")
        if self.dist.is_main:  # rank 0 alone writes the run folder
            self.written += runfolder.repair(
                self.run_dir,
                self.history,
                lambda: self._best_state(state["model"], epoch, state["best"]),
                self.best_epoch,
                self.log,
            )
        self.log(f"resume: {path} holds epochs 1..{epoch} (history complete)")

    def _write(self, path: Path, content: dict | bytes) -> None:
        """:func:`cra.runfolder.write_file` (atomic; a failure names the file), remembered in :attr:`written`."""
        runfolder.write_file(path, content)
        if path not in self.written:
            self.written.append(path)

    # -- one epoch -------------------------------------------------------------------------------
    def _batches(self, epoch: int) -> tuple[Iterable[dict], list[int] | None]:
        """(this rank's batches of the epoch, the size of each global batch; None for a batch function)."""
        if callable(self.train_data):
            return self.train_data(epoch), None
        from cra.data.dataset import collate

        t = self.train_config
        epoch_seed = t.seed * 1009 + epoch
        if hasattr(self.train_data, "seed"):
            self.train_data.seed = epoch_seed  # fresh, reproducible VQ negatives each epoch (the same on every rank)
        sampler = distributed.GlobalBatchSampler(
            len(self.train_data), t.batch_size, epoch_seed, self.dist, parts_per_rank=t.accumulate
        )
        # texts tokenised by the loader (in its workers when num_workers > 0), not in the step
        tokenizer = self.model.candidate_tokenizer() if self.tokenize_in_loader and t.accumulate == 1 else None
        loader = torch.utils.data.DataLoader(
            self.train_data,
            batch_sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate if tokenizer is None else tokenizer.collate,
            generator=torch.Generator().manual_seed(epoch_seed),
            pin_memory=self.device.type == "cuda",
        )
        return loader, sampler.global_sizes()

    def train_epoch(self, epoch: int) -> dict:
        """One pass over the training data; returns the mean losses, the answer accuracy and the count
        (over every process's questions)."""
        from tqdm.auto import tqdm

        t, info = self.train_config, self.dist
        if self.reseed_each_epoch:  # dropout etc.: a function of (seed, epoch, rank) only
            seed_everything(t.seed * 1009 + epoch + distributed.RANK_SEED_STRIDE * info.rank)
        self.train_model.train()
        batches, global_sizes = self._batches(epoch)
        sums: dict[str, torch.Tensor] = {}  # name -> float64 sum over samples of the loss, on the device
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        seen = 0
        bar = tqdm(
            batches,
            total=self.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{t.epochs}",
            disable=not (t.progress and info.is_main),
            file=sys.stderr,
            dynamic_ncols=True,
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        A = t.accumulate
        for step, batch in enumerate(bar):
            self.model.check_inputs(batch)  # on the loader's CPU tensors: no device sync
            batch = to_device(batch, self.device)
            total = global_sizes[step] if global_sizes is not None else len(batch["answer"])  # the global batch
            micro = [distributed.shares(s, A) for s in distributed.shares(total, info.world_size)]  # [rank][part]
            self.optimizer.zero_grad(set_to_none=True)
            start = 0
            for part in range(A):  # train.accumulate micro-batches per rank, one optimiser step
                B = micro[info.rank][part]
                piece = batch if A == 1 else slice_batch(batch, start, start + B)
                start += B
                gather = None
                if info.enabled:  # CMA negatives from this micro-batch of every rank
                    sizes = [micro[r][part] for r in range(info.world_size)]
                    gather = functools.partial(distributed.gather_with_grad, sizes=sizes, info=info)
                sync = info.enabled and part < A - 1  # DDP averages the gradients once, after the last part
                with self.train_model.no_sync() if sync else contextlib.nullcontext():
                    with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                        out = self.train_model(piece, checked=True)
                        losses = self.model.losses(piece, out, gather=gather, checked=True)
                    # global mean: N * (B_part / B_global) * local mean (DDP divides the sum of gradients by N)
                    objective = (
                        losses["loss"]
                        if (A == 1 and not info.enabled)
                        else losses["loss"] * (info.world_size * B / total)
                    )
                    self.scaler.scale(objective).backward()
                seen += B
                correct += (out.vqa.logits.argmax(1) == piece["answer"]).sum()
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0.0) + value.detach().double() * B
            if t.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            if (step + 1) % CHECK_EVERY == 0:  # the only host sync of the loop
                loss, n = self._check_finite(sums["loss"], seen, epoch)
                bar.set_postfix(loss=f"{loss / n:.4f}")
        bar.close()
        names = list(sums)
        totals = torch.stack(
            [sums[k] for k in names]
            + [correct.double(), torch.tensor(float(seen), dtype=torch.float64, device=self.device)]
        )
        totals = distributed.all_reduce_sum(totals, info).tolist()
        seen = totals[-1]
        if not math.isfinite(totals[names.index("loss")]):
            raise FloatingPointError(
                f"epoch {epoch + 1}: the mean loss is {totals[names.index('loss')] / seen}; "
                f"lower train.lr or check the data"
            )
        return {**{k: v / seen for k, v in zip(names, totals)}, "acc": 100.0 * totals[-2] / seen, "n": int(seen)}

    def _check_finite(self, loss_sum: torch.Tensor, seen: int, epoch: int) -> tuple[float, float]:
        """(loss sum, count) over every rank so far; raises ``FloatingPointError`` when the loss is not finite."""
        pair = distributed.all_reduce_sum(
            torch.stack([loss_sum, torch.tensor(float(seen), dtype=torch.float64, device=loss_sum.device)]), self.dist
        )
        loss, n = pair.tolist()
        if not math.isfinite(loss):
            raise FloatingPointError(f"epoch {epoch + 1}: the loss is {loss / n}; lower train.lr or check the data")
        return loss, n

    # -- the loop --------------------------------------------------------------------------------
    def fit(self, stop_after: int | None = None) -> list[dict]:
        """Train to ``train.epochs`` (or stop after ``stop_after`` epochs of this call, as an interruption would)."""
        t = self.train_config
        if self.lock is not None:
            self.lock.acquire()  # again, for a second fit() of the same trainer
        try:
            return self._fit(t, stop_after)
        finally:
            self.close()

    def _fit(self, t: TrainConfig, stop_after: int | None) -> list[dict]:
        if self.run_dir is not None and self.dist.is_main:
            config_yaml = yaml.safe_dump(to_dict(self.run_config), sort_keys=False).encode()
            path = self.run_dir / CONFIG_FILE
            if not path.is_file() or path.read_bytes() != config_yaml:
                self._write(path, config_yaml)
        size = f"train: {len(self.train_data)} questions" if not callable(self.train_data) else "train"
        autocast = f" ({str(self.amp_dtype).removeprefix('torch.')} autocast)" if self.amp else ""
        self.log(
            f"{size}{f', val: {len(self.val_data.dataset)}' if self.val_data is not None else ''}; "
            f"device {self.device}{autocast}; "
            f"{sum(p.numel() for p in self.model.parameters() if p.requires_grad):,} trainable parameters; "
            f"{torch.get_num_threads()} torch threads"
            f"{f'; run folder {self.run_dir}' if self.run_dir is not None else ''}"
        )
        records, done = [], 0
        with deterministic_algorithms(t.deterministic, self.device):
            while self.epoch < t.epochs and (stop_after is None or done < stop_after):
                records.append(self._one_epoch())
                done += 1
        return records

    def _one_epoch(self) -> dict:
        """Train one epoch, score val, save checkpoints, append a line to metrics.jsonl."""
        t = self.train_config
        epoch = self.epoch
        start = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        train_stats = self.train_epoch(epoch)
        scores = self.evaluate_fn(self.model) if self.evaluate_fn is not None else None
        value = selection_value(scores, t) if scores is not None else None
        improved = value is not None and (value >= self.best if t.select_compare == ">=" else value > self.best)
        self.epoch = epoch + 1
        if improved:
            self.best, self.best_epoch = value, self.epoch
        record = {
            "epoch": self.epoch,
            "lr_start": lr,
            "train": train_stats,
            "val": scores,
            "selected": improved,
            "select_metric": t.select_metric,
            "seconds": time.perf_counter() - start,
        }
        self.history.append(json.loads(json.dumps(json_clean(record))))  # plain data, as metrics.jsonl holds it
        if self.run_dir is not None and self.dist.is_main:  # last.pt is the commit; best.pt and metrics.jsonl follow
            self._write(self.run_dir / "last.pt", self._state())  # rank 0 writes; the others wait at the barrier
            self.committed = self.epoch
            runfolder.fault_point("after-last-checkpoint", self.epoch)
            if improved:
                self._write(self.run_dir / "best.pt", self._best_state(self.model.state_dict(), self.epoch, value))
            self._write(self.run_dir / METRICS_FILE, runfolder.metrics_bytes(self.history))
        distributed.barrier(self.dist)
        row = (scores or {}).get(t.select_readout, {})
        self.log(
            f"epoch {self.epoch}: train loss {train_stats['loss']:.4f} acc {train_stats['acc']:.1f}"
            + (f" | val Acc@QA {scores['qa_acc']:.2f}" if scores else "")
            + (f" Acc@GQA ({t.select_readout}) {row['Acc@GQA']:.2f} mIoP {row['mIoP']:.2f}" if row else "")
            + (" *" if improved else "")
        )
        return record
