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
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import torch
import yaml

from cra import runfolder
from cra.checkpoint import load_checkpoint, rng_state, set_rng_state
from cra.config import RunConfig, TrainConfig, to_dict
from cra.model import CRA
from cra.run import (CONFIG_FILE, METRICS_FILE, autocast_settings, build_model, deterministic_algorithms,
                     dictionary_shapes, json_clean, load_split, resolve_paths, seed_everything, select_device,
                     to_device)

from cra.schedules import schedule_factor, warmup_linear  # noqa: F401  (warmup_linear: public name kept)

__all__ = ["Trainer", "make_optimizer", "warmup_linear", "selection_value"]


def make_optimizer(model: torch.nn.Module, train: TrainConfig) -> torch.optim.Adam:
    """Adam (amsgrad by default) over the trainable parameters, as one fused kernel where torch has
    one for the device (the same update; on CPU the per-tensor loop over RoBERTa-base's 125M
    parameters costs about 3x more)."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=train.lr, weight_decay=train.weight_decay, amsgrad=train.amsgrad,
                            fused=fused or None)


def selection_value(scores: dict, train: TrainConfig) -> float:
    """The val number that picks ``best.pt``: ``train.select_metric`` (of ``train.select_readout``)."""
    metric = train.select_metric
    if metric == "Acc@QA":
        return scores["qa_acc"]  # over every val question, as the released code selects
    value = scores[train.select_readout][metric]
    return -math.inf if value is None or (isinstance(value, float) and math.isnan(value)) else value


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
    hand-made experiment. ``run_config``: what checkpoints record (default: ``model.config`` and
    ``train_config``). ``resume``: continue from ``run_dir/last.pt``. The model stays on its device.

    A hand-made run (the CMA chapter does this)::

        trainer = Trainer(CRA(model_config), lambda epoch: my_batches(), train_config=TrainConfig(epochs=5),
                          lr_factor=None, log=None)
        records = trainer.fit()  # one dict per epoch: {"epoch", "train": {"loss", ..., "acc"}, "val", ...}
    """

    def __init__(self, model: CRA, train_data, evaluate_fn: Callable[[CRA], dict] | None = None,
                 train_config: TrainConfig | None = None, run_dir: Path | str | None = None, *,
                 optimizer: torch.optim.Optimizer | None = None, lr_factor: Callable[[int], float] | None | str = "warmup",
                 reseed_each_epoch: bool = True, run_config: RunConfig | None = None, num_workers: int = 0,
                 resume: bool = False, log: Callable | None = print, lock: runfolder.RunLock | None = None):
        self.model, self.train_data, self.evaluate_fn = model, train_data, evaluate_fn
        self.train_config = t = train_config if train_config is not None else TrainConfig()
        self.run_config = run_config if run_config is not None else RunConfig(model=model.config, train=t)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.reseed_each_epoch, self.num_workers = reseed_each_epoch, num_workers
        self.log = log or (lambda *args: None)
        self.val_data = None  # SplitData when made by from_config (for the log line)
        self.lock = lock if lock is not None or self.run_dir is None else runfolder.RunLock(self.run_dir, self.log).acquire()
        try:
            self._setup(model, t, optimizer, lr_factor, resume)
        except BaseException:
            self.close()
            raise

    def _setup(self, model: CRA, t: TrainConfig, optimizer, lr_factor, resume: bool) -> None:
        """The rest of ``__init__``, under the run folder's lock (released if it fails)."""
        _check_run_dir(self.run_dir, resume)  # under the lock: no other trainer writes here now
        if self.run_dir is not None:
            runfolder.remove_orphans(self.run_dir, self.log)
        self.device = next(model.parameters()).device
        self.amp, self.amp_dtype, use_scaler = autocast_settings(t.amp, self.device)
        self.optimizer = optimizer if optimizer is not None else make_optimizer(model, t)
        data = self.train_data
        self.steps_per_epoch = math.ceil(len(data) / t.batch_size) if not callable(data) else None
        self.total_steps = None if self.steps_per_epoch is None else self.steps_per_epoch * t.epochs
        if lr_factor == "warmup":
            if self.steps_per_epoch is None:
                raise ValueError("lr_factor='warmup' needs train_data with a length (a Dataset); "
                                 "pass lr_factor=None (constant) or a function of the step")
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
    def from_config(cls, config: RunConfig, run_dir: Path | str, *, resume: bool = False,
                    log: Callable = print) -> "Trainer":
        """Data, model and dictionaries of ``config`` (every check before the first step), a run
        folder for it; ``resume`` continues from ``run_dir/last.pt``. Relative data paths are stored
        absolute (:func:`cra.run.resolve_paths`)."""
        from cra.predict import evaluate

        config = resolve_paths(config)
        run_dir = Path(run_dir)
        _check_run_dir(run_dir, resume)
        t = config.train
        device = select_device(t.device)
        lock = runfolder.RunLock(run_dir, log).acquire()  # released by fit(), or here on a failed start
        try:
            if t.deterministic:
                torch.backends.cudnn.benchmark = False
            seed_everything(t.seed)
            train_data = load_split(config, config.data.train_split, grounding=False)
            val_data = load_split(config, config.data.val_split, grounding=True)
            model = build_model(config).to(device)
            trainer = cls(model, train_data.dataset, lambda m: evaluate(m, val_data, config, device), t, run_dir,
                          run_config=config, num_workers=config.data.num_workers, resume=resume, log=log, lock=lock)
        except BaseException:
            lock.release()
            raise
        trainer.val_data = val_data
        for note in val_data.notes:
            trainer.log(f"note: {val_data.name}: {note}")
        return trainer

    # -- checkpoints ---------------------------------------------------------------------------
    def _state(self) -> dict:
        """``last.pt``: everything to continue, and the metrics history (the epoch's one commit)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "epoch": self.epoch,
                "best": self.best, "best_epoch": self.best_epoch, "rng": rng_state(), "config": to_dict(self.run_config),
                "dictionaries": dictionary_shapes(self.model), "history": self.history,
                "environment": runfolder.environment()}

    def _best_state(self, model_state: dict, epoch: int, value: float) -> dict:
        """``best.pt``: the weights of the selected epoch and what predicting needs."""
        return {"model": model_state, "epoch": epoch, "config": to_dict(self.run_config),
                "selection": {self.train_config.select_metric: value}, "dictionaries": dictionary_shapes(self.model),
                "environment": runfolder.environment()}

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
        self.written += runfolder.repair(self.run_dir, self.history, lambda: self._best_state(state["model"], epoch, state["best"]),
                                         self.best_epoch, self.log)
        self.log(f"resume: {path} holds epochs 1..{epoch} (history complete)")

    def _write(self, path: Path, content: dict | bytes) -> None:
        """:func:`cra.runfolder.write_file` (atomic; a failure names the file), remembered in :attr:`written`."""
        runfolder.write_file(path, content)
        if path not in self.written:
            self.written.append(path)

    # -- one epoch -------------------------------------------------------------------------------
    def _batches(self, epoch: int) -> Iterable[dict]:
        if callable(self.train_data):
            return self.train_data(epoch)
        from cra.data import make_loader

        t = self.train_config
        generator = torch.Generator().manual_seed(t.seed * 1009 + epoch)
        if hasattr(self.train_data, "seed"):
            self.train_data.seed = t.seed * 1009 + epoch  # fresh, reproducible VQ negatives each epoch
        return make_loader(self.train_data, batch_size=t.batch_size, shuffle=True, num_workers=self.num_workers,
                           generator=generator)

    def train_epoch(self, epoch: int) -> dict:
        """One pass over the training data; returns the mean losses, the answer accuracy and the count."""
        from tqdm.auto import tqdm

        t = self.train_config
        if self.reseed_each_epoch:
            seed_everything(t.seed * 1009 + epoch)  # dropout etc.: a function of (seed, epoch) only
        self.model.train()
        sums: dict[str, float] = {}
        seen = correct = 0
        bar = tqdm(self._batches(epoch), total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{t.epochs}",
                   disable=not t.progress, file=sys.stderr, dynamic_ncols=True)
        params = [p for p in self.model.parameters() if p.requires_grad]
        for batch in bar:
            batch = to_device(batch, self.device)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                out = self.model(batch)
                losses = self.model.losses(batch, out)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(losses["loss"]).backward()
            if t.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            B = len(batch["answer"])
            seen += B
            correct += int((out.vqa.logits.argmax(1) == batch["answer"]).sum())
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) * B
            if not math.isfinite(sums["loss"]):
                raise FloatingPointError(f"epoch {epoch + 1}: the loss is {float(losses['loss'])}; lower train.lr or check the data")
            bar.set_postfix(loss=f"{sums['loss'] / seen:.4f}", acc=f"{100 * correct / seen:.1f}")
        bar.close()
        return {**{k: v / seen for k, v in sums.items()}, "acc": 100.0 * correct / seen, "n": seen}

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
        if self.run_dir is not None:
            config_yaml = yaml.safe_dump(to_dict(self.run_config), sort_keys=False).encode()
            path = self.run_dir / CONFIG_FILE
            if not path.is_file() or path.read_bytes() != config_yaml:
                self._write(path, config_yaml)
        size = f"train: {len(self.train_data)} questions" if not callable(self.train_data) else "train"
        self.log(f"{size}{f', val: {len(self.val_data.dataset)}' if self.val_data is not None else ''}; "
                 f"device {self.device}{' (' + str(self.amp_dtype).removeprefix('torch.') + ' autocast)' if self.amp else ''}; "
                 f"{sum(p.numel() for p in self.model.parameters() if p.requires_grad):,} trainable parameters; "
                 f"{torch.get_num_threads()} torch threads"
                 f"{f'; run folder {self.run_dir}' if self.run_dir is not None else ''}")
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
        record = {"epoch": self.epoch, "lr_start": lr, "train": train_stats, "val": scores, "selected": improved,
                  "select_metric": t.select_metric, "seconds": time.perf_counter() - start}
        self.history.append(json.loads(json.dumps(json_clean(record))))  # plain data, as metrics.jsonl holds it
        if self.run_dir is not None:  # last.pt is the commit; best.pt and metrics.jsonl follow from it
            self._write(self.run_dir / "last.pt", self._state())
            self.committed = self.epoch
            runfolder.fault_point("after-last-checkpoint", self.epoch)
            if improved:
                self._write(self.run_dir / "best.pt", self._best_state(self.model.state_dict(), self.epoch, value))
            self._write(self.run_dir / METRICS_FILE, runfolder.metrics_bytes(self.history))
        row = (scores or {}).get(t.select_readout, {})
        self.log(f"epoch {self.epoch}: train loss {train_stats['loss']:.4f} acc {train_stats['acc']:.1f}"
                 + (f" | val Acc@QA {scores['qa_acc']:.2f}" if scores else "")
                 + (f" Acc@GQA ({t.select_readout}) {row['Acc@GQA']:.2f} mIoP {row['mIoP']:.2f}" if row else "")
                 + (" *" if improved else ""))
        return record
