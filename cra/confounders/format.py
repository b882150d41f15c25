"""The confounder file: one ``torch.save`` file holding both dictionaries, checked on loading.

File format (version 1): only tensors and plain Python values (so ``torch.load(weights_only=True)``
reads it), written atomically::

    {"format": "cra-confounders", "version": 1,
     "Z_l": (K_z, 8, D) float32 or None,  "Z_l_sizes": (K_z,) int64 or None,
     "X_hat": (K_v, D_v) float32 or None, "X_hat_sizes": (K_v,) int64 or None,
     "metadata": {encoder, text_dim, visual_dim, text_clusters, visual_clusters, seed, sources
                  [{role, path, sha256}], node_names, edges, parser, payload_sha256, ...}}

``payload_sha256`` is the digest of the four arrays' bytes; :func:`load_confounders` recomputes it,
so a damaged file is an error, never a silently wrong dictionary.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from cra import __version__, paths
from cra.text.semantic_graph import EDGES, NODE_NAMES

FORMAT_NAME = "cra-confounders"
FORMAT_VERSION = 1
_ARRAYS = ("Z_l", "Z_l_sizes", "X_hat", "X_hat_sizes")


class ConfounderFileError(ValueError):
    """A confounder file is missing, damaged, of another format, or does not fit the model."""


class ConfounderDimensionError(ConfounderFileError):
    """A dictionary's vector size D differs from what the model expects."""


@dataclass
class Confounders:
    """Both dictionaries and their metadata (either dictionary may be absent)."""

    Z_l: torch.Tensor | None = None  # (K_z, 8, D)
    Z_l_sizes: torch.Tensor | None = None  # (K_z,)
    X_hat: torch.Tensor | None = None  # (K_v, D_v)
    X_hat_sizes: torch.Tensor | None = None  # (K_v,)
    metadata: dict = field(default_factory=dict)

    @property
    def prior(self) -> torch.Tensor:
        """$P(z_k) = n_k / N_{qa}$, the empirical prior of the ``Z_l`` entries ``(K_z,)``."""
        return _shares(self.Z_l_sizes, "Z_l")

    @property
    def visual_prior(self) -> torch.Tensor:
        """$P(\\hat v_j) = n_j / N_{frames}$ of the ``X_hat`` entries ``(K_v,)``."""
        return _shares(self.X_hat_sizes, "X_hat")

    @property
    def text_dim(self) -> int | None:
        return None if self.Z_l is None else int(self.Z_l.shape[-1])

    @property
    def visual_dim(self) -> int | None:
        return None if self.X_hat is None else int(self.X_hat.shape[-1])


def _shares(sizes: torch.Tensor | None, name: str) -> torch.Tensor:
    if sizes is None:
        raise ConfounderFileError(f"there is no {name} dictionary, so no prior")
    return sizes.double().div(sizes.sum()).float()


def _payload_sha256(arrays: Mapping[str, torch.Tensor | None]) -> str:
    digest = hashlib.sha256()
    for name in _ARRAYS:
        value = arrays.get(name)
        digest.update(name.encode())
        if value is not None:
            digest.update(str(tuple(value.shape)).encode() + str(value.dtype).encode())
            digest.update(value.contiguous().numpy().tobytes())
    return digest.hexdigest()


def _check_consistent(c: Confounders, where: str) -> None:
    if c.Z_l is None and c.X_hat is None:
        raise ConfounderFileError(f"{where}: holds neither Z_l nor X_hat")
    for centres, sizes, name, rank in ((c.Z_l, c.Z_l_sizes, "Z_l", 3), (c.X_hat, c.X_hat_sizes, "X_hat", 2)):
        if centres is None:
            if sizes is not None:
                raise ConfounderFileError(f"{where}: {name}_sizes without {name}")
            continue
        if centres.dim() != rank or (name == "Z_l" and centres.shape[1] != len(NODE_NAMES)):
            expected = "(K, 8, D)" if name == "Z_l" else "(K, D)"
            raise ConfounderFileError(f"{where}: {name} has shape {tuple(centres.shape)}; expected {expected}")
        if sizes is None or tuple(sizes.shape) != (centres.shape[0],) or bool((sizes < 0).any()):
            raise ConfounderFileError(f"{where}: {name}_sizes must be {centres.shape[0]} non-negative counts")
        finite = torch.isfinite(centres)
        if not bool(finite.all()):  # would end, much later, in "the loss is nan"
            bad = (~finite).nonzero()[0].tolist()
            raise ConfounderFileError(
                f"{where}: {name} holds {int((~finite).sum())} non-finite values (NaN or inf), "
                f"the first at index {bad}; expected finite cluster centres (rebuild the file "
                f"with `python -m cra build-confounders`)"
            )


def _drop_empty_clusters(c: Confounders, path: Path) -> None:
    """Files written before :func:`cra.confounders.build.kmeans` refilled empty clusters may hold
    entries with 0 points (prior 0): drop them, with a warning naming them, so that a model can still
    be built."""
    for name in ("Z_l", "X_hat"):
        centres, sizes = getattr(c, name), getattr(c, f"{name}_sizes")
        if centres is None or not bool((sizes == 0).any()):
            continue
        empty = torch.nonzero(sizes == 0).flatten().tolist()
        if len(empty) == len(sizes):
            raise ConfounderFileError(f"{path}: every {name} cluster is empty")
        warnings.warn(
            f"{path}: {name} clusters {empty} hold no point (prior 0); dropped, {len(sizes) - len(empty)} "
            f"remain (rebuild the file with `python -m cra build-confounders` to avoid this)",
            stacklevel=3,
        )
        keep = sizes > 0
        setattr(c, name, centres[keep])
        setattr(c, f"{name}_sizes", sizes[keep])


def save_confounders(path: Path, confounders: Confounders) -> Path:
    """Write ``confounders`` to ``path`` atomically (readers see the old file or the whole new one)."""
    path = Path(path)
    _check_consistent(confounders, str(path))
    arrays = {name: getattr(confounders, name) for name in _ARRAYS}
    arrays = {k: None if v is None else v.detach().to("cpu").contiguous() for k, v in arrays.items()}
    metadata = dict(confounders.metadata)
    metadata.update(
        text_dim=confounders.text_dim,
        visual_dim=confounders.visual_dim,
        node_names=list(NODE_NAMES),
        edges=[list(e) for e in EDGES],
        payload_sha256=_payload_sha256(arrays),
    )
    buffer = io.BytesIO()
    torch.save({"format": FORMAT_NAME, "version": FORMAT_VERSION, **arrays, "metadata": metadata}, buffer)
    paths.atomic_write_bytes(path, buffer.getvalue())
    return path


def load_confounders(path: Path, *, text_dim: int | None = None, visual_dim: int | None = None) -> Confounders:
    """Read a confounder file, checking format, version, integrity and (if given) dimensions.

    ``text_dim`` / ``visual_dim`` are the sizes the model expects for ``Z_l`` / ``X_hat``; giving one
    also requires that dictionary to be present. Every problem raises :class:`ConfounderFileError`
    (:class:`ConfounderDimensionError` for a size mismatch) naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfounderFileError(
            f"confounder file {path} does not exist; build it with `python -m cra build-confounders`"
        )
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, garbage bytes, pickled objects that are not allowed
        raise ConfounderFileError(
            f"{path}: not a readable confounder file, it may be damaged ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise ConfounderFileError(f"{path}: not a {FORMAT_NAME} file")
    if raw.get("version") != FORMAT_VERSION:
        raise ConfounderFileError(
            f"{path}: format version {raw.get('version')!r}; this cra {__version__} reads version {FORMAT_VERSION}"
        )
    metadata = raw.get("metadata")
    if not isinstance(metadata, dict):
        raise ConfounderFileError(f"{path}: metadata missing")
    arrays = {name: raw.get(name) for name in _ARRAYS}
    for name, value in arrays.items():
        if value is not None and not isinstance(value, torch.Tensor):
            raise ConfounderFileError(f"{path}: {name} is a {type(value).__name__}, expected a tensor")
    if _payload_sha256(arrays) != metadata.get("payload_sha256"):
        raise ConfounderFileError(f"{path}: the stored arrays do not match their sha256 (the file is damaged)")
    confounders = Confounders(**arrays, metadata=metadata)
    _check_consistent(confounders, str(path))
    _drop_empty_clusters(confounders, path)
    for expected, actual, name in (
        (text_dim, confounders.text_dim, "Z_l"),
        (visual_dim, confounders.visual_dim, "X_hat"),
    ):
        if expected is None:
            continue
        if actual is None:
            raise ConfounderFileError(f"{path}: the model needs {name} (D={expected}) but the file has no {name}")
        if actual != expected:
            source = f"text encoder {metadata.get('encoder')!r}" if name == "Z_l" else "the frame features"
            raise ConfounderDimensionError(
                f"{path}: {name} has D={actual} (from {source}) but the model expects D={expected}; "
                f"rebuild the dictionary with a matching encoder/features or change the model's dimension"
            )
    return confounders


def describe(confounders: Confounders) -> str:
    """A few lines on what a confounder file holds (for the CLI and the book)."""
    m = confounders.metadata
    lines = []
    if confounders.Z_l is not None:
        prior = confounders.prior
        entropy = float(-(prior[prior > 0] * prior[prior > 0].log()).sum())
        lines.append(
            f"Z_l {tuple(confounders.Z_l.shape)} from {m.get('num_qa')} QA pairs, encoder {m.get('encoder')!r}, "
            f"parser {m.get('parser')}; largest cluster P(z)={float(prior.max()):.3f}, "
            f"prior entropy {entropy:.2f} nats (uniform: {math.log(len(prior)):.2f}), "
            f"{m.get('empty_text_clusters')} empty"
        )
    if confounders.X_hat is not None:
        prior = confounders.visual_prior
        lines.append(
            f"X_hat {tuple(confounders.X_hat.shape)} from {m.get('num_frames')} frames; "
            f"largest cluster P(v)={float(prior.max()):.3f}, {m.get('empty_visual_clusters')} empty"
        )
    return "\n".join(lines)
