"""Run folders: one writer at a time, one commit per epoch, and a check of both at every start.

A training run folder holds ``config.yaml``, ``last.pt``, ``best.pt`` and ``metrics.jsonl``
(:mod:`cra.train`). This module keeps it consistent whatever stops the process:

* **Lock** (:class:`RunLock`): ``train.lock`` in the folder, held with ``fcntl.flock`` while a
  trainer works in it, and holding the holder's pid, host, start time and command. A second
  ``train --run`` on the same folder is refused naming the holder (:class:`RunFolderBusy`). The
  kernel drops the lock of a killed process, so a lock left behind is stale by construction: it is
  taken over with a note.
* **One commit per epoch**: ``last.pt`` carries the whole metrics history (one record per epoch) and
  is written first, atomically; ``best.pt`` and ``metrics.jsonl`` are derived from it afterwards. A
  kill between the writes loses nothing: :func:`repair` rewrites ``metrics.jsonl`` (and, when the
  last epoch was the best one, ``best.pt``) from ``last.pt`` on ``--resume``, and says so.
* **Orphans**: a kill inside an atomic write (:func:`cra.paths.atomic_write_bytes`) leaves a
  ``.<name>.<random>.part`` file; :func:`remove_orphans` deletes them at the next start, under the lock.
* **Environment** (:func:`environment`): torch's thread count and the library versions go into every
  checkpoint. CPU kernels sum in an order that depends on the thread count, so a run resumed with
  another count is not bit-identical to an uninterrupted one (measured: the selected epoch can
  change); :func:`environment_changes` names the difference, and the trainer warns.

Test hook: with ``$CRA_FAULT=after-last-checkpoint`` (or ``...@<epoch>``) a training process kills
itself with SIGKILL right after ``last.pt`` of that epoch is committed, before ``best.pt`` and
``metrics.jsonl`` (:func:`fault_point`), as a power cut or the OOM killer would.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Callable

try:
    import fcntl
except ImportError:  # not POSIX: no lock (see RunLock)
    fcntl = None

__all__ = [
    "LOCK_FILE",
    "RunFolderBusy",
    "RunWriteError",
    "RunLock",
    "write_file",
    "check_history",
    "history_from_metrics",
    "metrics_bytes",
    "repair",
    "remove_orphans",
    "environment",
    "environment_changes",
    "fault_point",
    "FAULT_ENV",
]

LOCK_FILE = "train.lock"
FAULT_ENV = "CRA_FAULT"


class RunFolderBusy(RuntimeError):
    """Another process trains in this run folder; the message names it."""


class RunWriteError(OSError):
    """A file of the run folder could not be written (``filename``: that file); nothing was half-written."""


# --------------------------------------------------------------------------------------------
# The lock
# --------------------------------------------------------------------------------------------
def _holder_text(info: dict) -> str:
    return f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, started {info.get('started', '?')}" + (
        f" ({info['command']})" if info.get("command") else ""
    )


def _read_info(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 1 << 16)
    try:
        info = json.loads(raw) if raw.strip() else {}
    except ValueError:
        info = {"pid": "?", "command": f"unreadable lock content {raw[:60]!r}"}
    return info if isinstance(info, dict) else {}


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


class RunLock:
    """An exclusive lock on a run folder (``<run_dir>/train.lock``), for one process at a time.

    :meth:`acquire` creates the folder if needed, takes ``fcntl.flock`` on the lock file without
    waiting, and writes the holder's pid, host, start time (UTC) and command into it; a folder
    locked by a live process raises :class:`RunFolderBusy` naming that holder. :meth:`release`
    deletes the lock file (and the folder, if this lock created it and it is still empty).
    Without ``fcntl`` (not POSIX) there is no lock, and a note says so.
    """

    def __init__(self, run_dir: Path | str, log: Callable | None = print):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.log = log or (lambda *args: None)
        self._fd: int | None = None
        self._created: Path | None = None  # the topmost folder that acquire() created

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        if self.held:
            return self
        top = None
        for folder in (self.run_dir, *self.run_dir.parents):
            if folder.exists():
                break
            top = folder
        try:
            self.run_dir.mkdir(parents=True)
            self._created = top
        except FileExistsError:
            pass
        if fcntl is None:
            self.log(f"note: no fcntl on this platform: {self.run_dir} is not locked against a second trainer")
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held by a live process
                info = _read_info(fd)
                for _ in range(20):  # it may have the lock but not yet have written who it is
                    if info:
                        break
                    time.sleep(0.05)
                    info = _read_info(fd)
                os.close(fd)
                self._remove_created_dir()
                holder = _holder_text(info) if info else "a process that is just starting"
                raise RunFolderBusy(
                    f"{self.run_dir} is in use by another training run: {holder}; its lock is "
                    f"{self.path}. Wait for it to end, or train into another --run folder"
                ) from None
            try:  # the holder may have released (and deleted) the file between our open and flock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_info(fd)
        if previous:  # its process ended without releasing: killed, or the machine stopped
            state = (
                "no longer holding it"
                if previous.get("host") != socket.gethostname() or _alive(previous.get("pid"))
                else "no longer running"
            )
            self.log(f"note: {self.path}: took over a stale lock of {_holder_text(previous)}, {state}")
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Delete the lock file, then drop the lock (in this order, so a waiting process that opened
        the old file sees it gone and retries on a fresh one)."""
        if self._fd is None:
            return
        try:
            try:
                if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                    self.path.unlink()
            except FileNotFoundError:
                pass
        finally:
            os.close(self._fd)
            self._fd = None
        self._remove_created_dir()

    def _remove_created_dir(self) -> None:
        """Folders this lock created and nothing else filled are removed: a failed start leaves nothing."""
        if self._created is not None:
            folder = self.run_dir
            try:
                while True:
                    folder.rmdir()  # fails when not empty: the run wrote something
                    if folder == self._created:
                        break
                    folder = folder.parent
            except OSError:
                pass
            self._created = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def write_file(path: Path, content: dict | bytes) -> None:
    """A checkpoint (a dict: :func:`cra.checkpoint.save_checkpoint`) or bytes, atomically. A failed
    write (disk full, permissions) is a :class:`RunWriteError` naming ``path``; the old file stays
    whole and no temporary is left."""
    from cra.checkpoint import save_checkpoint
    from cra.paths import atomic_write_bytes

    try:
        if isinstance(content, dict):
            save_checkpoint(path, content)
        else:
            atomic_write_bytes(path, content)
    except OSError as err:
        raise RunWriteError(err.errno, err.strerror or str(err), str(path)) from err


# --------------------------------------------------------------------------------------------
# The metrics history
# --------------------------------------------------------------------------------------------
def _epochs_text(epochs: list[int]) -> str:
    return (
        "none"
        if not epochs
        else ", ".join(map(str, epochs))
        if len(epochs) <= 12
        else f"{', '.join(map(str, epochs[:10]))}, ... ({len(epochs)} in all)"
    )


def check_history(history: list, epoch: int, source: Path | str) -> None:
    """Raise :class:`~cra.checkpoint.CheckpointError` unless ``history`` holds one record for each
    epoch 1..``epoch``, in order, with no gap."""
    from cra.checkpoint import CheckpointError

    epochs = [r.get("epoch") if isinstance(r, dict) else None for r in history]
    if epochs != list(range(1, epoch + 1)):
        raise CheckpointError(
            f"{source}: the metrics history holds epochs [{_epochs_text(epochs)}]; expected "
            f"1..{epoch} with no gap (the checkpoint is at epoch {epoch})"
        )


def _metrics_lines(path: Path) -> list[dict | None]:
    """The records of ``metrics.jsonl`` (``None`` for a damaged line)."""
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            out.append(record if isinstance(record, dict) else None)
    return out


def history_from_metrics(path: Path, epoch: int, checkpoint: Path | str) -> list[dict]:
    """The history of a checkpoint written before histories were stored in it (cra <= 0.1.0 main):
    the first ``epoch`` records of ``metrics.jsonl``, which must be epochs 1..``epoch``."""
    from cra.checkpoint import CheckpointError

    records = _metrics_lines(path)[:epoch] if path.is_file() else []
    epochs = [r.get("epoch") if r else None for r in records]
    if epochs != list(range(1, epoch + 1)):
        raise CheckpointError(
            f"{checkpoint} holds no metrics history (written by an older cra) and {path} holds epochs "
            f"[{_epochs_text(epochs)}], not 1..{epoch}: the history of this run cannot be completed"
        )
    return records


def metrics_bytes(history: list[dict]) -> bytes:
    """``metrics.jsonl``: one JSON line per epoch record."""
    return "".join(json.dumps(record) + "\n" for record in history).encode()


def repair(
    run_dir: Path, history: list[dict], best_from_last: Callable[[], dict] | None, best_epoch: int | None, log: Callable
) -> list[Path]:
    """Bring ``metrics.jsonl`` and ``best.pt`` of ``run_dir`` in line with the committed ``last.pt``.

    ``history``: the checked records of ``last.pt`` (epochs 1..n). ``best_epoch``: the epoch whose
    weights ``best.pt`` must hold (``None``: no selection yet); when it is ``n`` and ``best.pt`` holds
    another epoch (a stop between the two writes), ``best_from_last()`` rebuilds it from ``last.pt``.
    Each repair is logged as a note; returns the files rewritten.
    """
    from cra.checkpoint import load_checkpoint

    written = []
    n = len(history)
    path = run_dir / "metrics.jsonl"
    want = metrics_bytes(history)
    if not path.is_file() or path.read_bytes() != want:
        records = _metrics_lines(path) if path.is_file() else []
        have = [r.get("epoch") for r in records if r]
        lacking = [e for e in range(1, n + 1) if e not in have]
        extra = sorted({e for e in have if not (isinstance(e, int) and 1 <= e <= n)})
        problems = (
            ([f"it lacked epoch(s) {_epochs_text(lacking)}"] if lacking else [])
            + ([f"it had line(s) of epoch(s) {_epochs_text(extra)}, which last.pt does not hold"] if extra else [])
            + ([f"{records.count(None)} damaged line(s)"] if None in records else [])
        )
        write_file(path, want)
        written.append(path)
        log(
            f"note: {path}: rewritten from last.pt (epochs 1..{n}): "
            f"{'; '.join(problems) or 'its lines differed from the committed records'}"
        )
    best = run_dir / "best.pt"
    if best_epoch is not None and best_from_last is not None:
        try:
            held = load_checkpoint(best, "cpu", require=("model",)).get("epoch") if best.is_file() else None
        except (ValueError, OSError):
            held = "unreadable"
        if held != best_epoch:
            if best_epoch == n:
                write_file(best, best_from_last())
                written.append(best)
                log(
                    f"note: {best}: rebuilt from last.pt (the best epoch, {n}); it held "
                    f"{'no checkpoint' if held is None else f'epoch {held}'}"
                )
            else:
                log(
                    f"warning: {best} holds {'no checkpoint' if held is None else f'epoch {held}'}, but the run "
                    f"selected "
                    f"epoch {best_epoch}: it was changed outside training and cannot be rebuilt"
                )
    return written


def remove_orphans(run_dir: Path, log: Callable) -> list[Path]:
    """Delete the ``.<name>.<random>.part`` files of atomic writes that a kill interrupted (call it
    under the run's lock: no live writer then); each is logged as a note."""
    removed = []
    for part in sorted(Path(run_dir).glob(".*.part")):
        target = part.name[1:].rsplit(".", 2)[0]
        size = part.stat().st_size
        part.unlink()
        removed.append(part)
        log(
            f"note: removed {part} ({size:,} bytes): an unfinished write of {target}, left by a process that "
            f"was stopped"
        )
    return removed


# --------------------------------------------------------------------------------------------
# Environment and fault injection
# --------------------------------------------------------------------------------------------
def environment() -> dict:
    """What decides the bits of a CPU run besides the config: torch's thread count and the versions."""
    import numpy
    import torch

    from cra import __version__

    return {
        "threads": int(torch.get_num_threads()),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": str(numpy.__version__),
        "cra": str(__version__),
    }  # plain str: torch's version is a str subclass


def environment_changes(saved: dict | None, now: dict, source: Path | str) -> list[str]:
    """Warnings for a resume whose environment differs from the one that wrote ``source``."""
    if not saved:
        return [
            f"{source} does not record its thread count and library versions (an older cra); a resumed "
            f"run may not be bit-identical to an uninterrupted one"
        ]
    out = []
    if saved.get("threads") != now["threads"]:
        out.append(
            f"{source} was written with {saved.get('threads')} torch threads, this process uses {now['threads']}: "
            f"the resumed run will not be bit-identical to an uninterrupted one (sums are taken in another "
            f"order; the selected epoch can change). To match, set OMP_NUM_THREADS={saved.get('threads')}"
        )
    changed = [f"{k} {saved.get(k)} -> {now[k]}" for k in ("python", "torch", "numpy", "cra") if saved.get(k) != now[k]]
    if changed:
        out.append(
            f"{source} was written with other versions ({', '.join(changed)}): the resumed run may not be "
            f"bit-identical to an uninterrupted one"
        )
    return out


def fault_point(name: str, epoch: int) -> None:
    """Test hook: SIGKILL this process here when ``$CRA_FAULT`` is ``name`` or ``name@epoch``."""
    wanted = os.environ.get(FAULT_ENV)
    if wanted and wanted in (name, f"{name}@{epoch}"):
        os.kill(os.getpid(), signal.SIGKILL)
