"""Checkpoint files: plain data only, so that loading one never runs code.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts: the model's state dict, the
resolved run config (:func:`cra.config.to_dict`), the dictionary shapes and, in ``last.pt``, the
optimiser, schedule and RNG states (:func:`rng_state`: every generator's state as tensors). It is
read with ``torch.load(weights_only=True)``; a file that needs anything more (a pickled class or
callable) is refused, unexecuted, with a message naming it. Writes are atomic
(:func:`cra.paths.atomic_write_bytes`).
"""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from cra.paths import atomic_write_bytes

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state"]

FORMAT_NAME = "cra-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file."""


def save_checkpoint(path: Path | str, state: dict) -> None:
    """``torch.save`` of ``state`` (plain data) atomically: readers see the old file or the complete new one."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT_NAME, "version": FORMAT_VERSION, **state}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(
    path: Path | str, device: torch.device | str = "cpu", *, require: tuple = ("model", "config")
) -> dict:
    """The dict saved in ``path``, read as plain data (``weights_only=True``).

    Raises :class:`CheckpointError` naming the file when it is missing, truncated or damaged, needs
    more than plain data (it is then not executed), or lacks one of the ``require`` keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: refused: the file holds more than plain data (tensors, numbers, strings, "
            f"lists, dicts) and was not loaded, so nothing in it ran ({first})"
        ) from None
    except Exception as err:  # truncated zip, garbage bytes, wrong file type
        raise CheckpointError(
            f"{path}: not a readable checkpoint, it may be truncated or damaged ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, found {type(state).__name__}")
    missing = [key for key in require if key not in state]
    if missing:
        raise CheckpointError(f"{path}: not a cra checkpoint: missing {missing} (has {sorted(state)})")
    return state


# --------------------------------------------------------------------------------------------
# Random number generators as plain data
# --------------------------------------------------------------------------------------------
def rng_state() -> dict:
    """The state of python's ``random``, numpy's global generator, torch (and CUDA) as tensors and numbers."""
    version, words, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Undo :func:`rng_state`."""
    p, n = state["python"], state["numpy"]
    random.setstate((p["version"], tuple(int(x) for x in p["state"].tolist()), p["gauss"]))
    np.random.set_state(
        (n["name"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
