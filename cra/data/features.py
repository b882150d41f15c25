"""Video features in the official NExT-GQA HDF5 layout, and a writer of synthetic files in it.

Layout: ``<root>/<feat_type>/<feat_type>_I_<split>.h5`` (``CLIPL/CLIPL_I_val.h5``) holding

* ``vid``: the video ids, shape ``(N,)`` (strings or integers);
* ``<feat_type>_I`` (``CLIPL_I``): frame features, shape ``(N, F, D)`` (D = 768 for CLIP ViT-L/14).

A video with more than ``num_frames`` (T = 32) frames is sampled uniformly,
``linspace(0, F - 1, T)`` truncated to integers; one with fewer is zero-padded and its ``mask``
marks the real frames. Where frame times are used (grounding), the stored frames must match them
one to one: :meth:`FeatureStore.check_frame_times` refuses a file whose frame count differs.

Provenance: files written by ``extract-features`` carry HDF5 attributes (:data:`PROVENANCE_KEYS`:
``model``, ``weights``, the sampling); :attr:`FeatureStore.provenance` shows them and
``FeatureStore(..., expect={"model": ..., "weights": ...})`` refuses a file recorded with another
model. The official NExT-GQA files carry no attributes; nothing is checked then.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from cra.data.errors import DataFormatError
from cra.paths import DataNotFoundError

FEAT_TYPE = "CLIPL"
FEATURE_DIM = 768
#: HDF5 attributes that say how a feature file was made (written by ``extract-features``).
PROVENANCE_KEYS = (
    "model",
    "weights",
    "num_frames",
    "sampling",
    "decode_fps",
    "keep_every",
    "clip_length",
    "created_by",
)


def feature_path(root: Path | str, split: str, feat_type: str = FEAT_TYPE) -> Path:
    """``<root>/<feat_type>/<feat_type>_I_<split>.h5``."""
    return Path(root) / feat_type / f"{feat_type}_I_{split}.h5"


def uniform_indices(num_available: int, num_frames: int) -> np.ndarray:
    """Indices of ``num_frames`` frames spread uniformly over ``num_available`` (all when fewer)."""
    if num_available <= num_frames:
        return np.arange(num_available)
    return np.linspace(0, num_available - 1, num_frames, dtype=int)


class FeatureStore:
    """Read-only access to one split's feature file, validated on opening.

    The HDF5 file is opened lazily in each process (so a ``DataLoader`` with workers works) and
    rows are read one video at a time. ``get(video_id)`` returns ``(frames (T, D) float32,
    mask (T,) bool)``; a video whose features contain NaN or inf raises :class:`DataFormatError`.
    ``expect``: provenance the caller needs (e.g. ``{"model": "ViT-L-14", "weights": "openai"}``);
    a key recorded in the file with another value raises :class:`DataFormatError`.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        feature_dim: int | None = FEATURE_DIM,
        num_frames: int = 32,
        dataset: str | None = None,
        expect: Mapping[str, Any] | None = None,
    ):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise DataNotFoundError(
                f"missing feature file {self.path}: expected the official layout "
                f"<root>/CLIPL/CLIPL_I_<split>.h5 with datasets 'vid' and 'CLIPL_I'"
            )
        # CLIPL/CLIPL_I_val.h5 -> dataset "CLIPL_I"
        self.dataset = dataset or self.path.stem.rsplit("_", 1)[0]
        self.num_frames = num_frames
        try:
            with h5py.File(self.path, "r") as f:
                for name in ("vid", self.dataset):
                    if name not in f:
                        raise DataFormatError(
                            self.path,
                            f"dataset {name!r}",
                            f"absent (found {sorted(f.keys())})",
                            f"datasets 'vid' and {self.dataset!r}",
                        )
                shape = f[self.dataset].shape
                raw_ids = f["vid"][()]
                attrs = {k: _plain(v) for k, v in f.attrs.items()}
        except OSError as e:
            raise DataFormatError(self.path, "whole file", f"not readable as HDF5 ({e})", "an HDF5 file") from None
        if len(shape) != 3:
            raise DataFormatError(self.path, f"dataset {self.dataset!r}", f"shape {shape}", "(videos, frames, dim)")
        if feature_dim is not None and shape[2] != feature_dim:
            raise DataFormatError(
                self.path,
                f"dataset {self.dataset!r}",
                f"feature dimension {shape[2]} (shape {shape})",
                f"dimension {feature_dim}",
            )
        self.stored_ids = np.asarray(raw_ids).reshape(-1)  # (N,) as stored: integers or bytes
        ids = [x.decode() if isinstance(x, bytes) else str(x) for x in self.stored_ids]
        if len(ids) != shape[0]:
            raise DataFormatError(
                self.path, "dataset 'vid'", f"{len(ids)} ids for {shape[0]} feature rows", "one id per row"
            )
        self.index = {}
        for row, vid in enumerate(ids):
            if vid in self.index:
                raise DataFormatError(
                    self.path,
                    f"dataset 'vid', row {row}",
                    f"video {vid} already on row {self.index[vid]}",
                    "each video once",
                )
            self.index[vid] = row
        self.shape = tuple(shape)
        self.feature_dim = shape[2]
        #: how the file was made (HDF5 attributes; empty for the official files)
        self.provenance: dict[str, Any] = attrs
        for key, wanted in (expect or {}).items():
            if wanted is not None and key in attrs and str(attrs[key]) != str(wanted):
                raise DataFormatError(
                    self.path,
                    f"attribute {key!r}",
                    f"features made with {key} {attrs[key]!r}",
                    f"{key} {wanted!r} (re-extract the features, or change the run's expectation)",
                )
        self._file = None
        self._pid = None
        self._memory: np.ndarray | None = None  # (N, F, D) after load_into_memory()

    def load_into_memory(self) -> "FeatureStore":
        """Read every video's frames once (``(N, F, D)`` float32 in RAM); later reads touch no file.
        ``DataLoader`` workers started by fork share the array."""
        import h5py

        if self._memory is None:
            with h5py.File(self.path, "r") as f:
                self._memory = np.asarray(f[self.dataset][()], dtype=np.float32)
        return self

    def __contains__(self, video_id: str) -> bool:
        return str(video_id) in self.index

    def __len__(self) -> int:
        return len(self.index)

    @property
    def video_ids(self) -> list[str]:
        return list(self.index)

    def __getstate__(self):  # h5py handles do not pickle; each worker reopens the file
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, None
        return state

    def _handle(self):
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file

    def raw(self, video_id: str) -> np.ndarray:
        """All stored frames of a video, ``(F, D)``."""
        if video_id not in self.index:
            raise KeyError(f"{self.path}: no features for video {video_id!r} in dataset 'vid'")
        if self._memory is not None:
            return self._memory[self.index[video_id]]
        return np.asarray(self._handle()[self.dataset][self.index[video_id]], dtype=np.float32)

    def get(self, video_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(frames (T, D), mask (T,))``: uniformly sampled, zero-padded, finite-checked."""
        stored = self.raw(video_id)  # (F, D)
        if not np.isfinite(stored).all():
            raise DataFormatError(
                self.path,
                f"video {video_id} (row {self.index[video_id]} of {self.dataset!r})",
                "NaN or inf in its features",
                "finite values",
            )
        picked = stored[uniform_indices(len(stored), self.num_frames)]  # (min(F, T), D)
        frames = np.zeros((self.num_frames, self.feature_dim), dtype=np.float32)  # (T, D)
        frames[: len(picked)] = picked
        mask = np.zeros(self.num_frames, dtype=bool)  # (T,)
        mask[: len(picked)] = True
        return frames, mask

    def all_frames(self) -> np.ndarray:
        """Every stored frame of every video, in file order: ``(N * F, D)`` float32 (no sampling, no
        padding; what the visual dictionary is clustered from). NaN or inf raises, naming the video."""
        import h5py

        with h5py.File(self.path, "r") as f:  # read once and closed: no handle stays open
            stored = np.asarray(f[self.dataset][()])  # (N, F, D)
        finite = np.isfinite(stored).reshape(len(stored), -1).all(1)  # (N,)
        if not finite.all():
            row = int(np.argmin(finite))
            raise DataFormatError(
                self.path,
                f"video {self.video_ids[row]} (row {row} of {self.dataset!r})",
                "NaN or inf in its features",
                "finite values",
            )
        return stored.reshape(-1, stored.shape[-1]).astype(np.float32, copy=False)

    def check_frame_times(
        self,
        frame2time: Mapping[str, Sequence[float]],
        source: Path | str = "frame2time",
        video_ids: Iterable[str] | None = None,
    ) -> None:
        """Refuse features whose stored frame count differs from the frame times of their videos.

        Padding 16 stored frames to 32 would give frame i the time of frame i of 32, squeezing every
        span into the first half of the video; so the counts must agree (``source`` names the
        frame-times file in the message).
        """
        stored = self.shape[1]
        for vid in video_ids if video_ids is not None else self.index:
            times = frame2time.get(vid)
            if times is not None and len(times) != stored:
                raise DataFormatError(
                    self.path,
                    f"video {vid} (dataset {self.dataset!r}, shape {self.shape})",
                    f"{stored} stored frames but {len(times)} frame times in {source}",
                    "one stored frame per frame time (re-extract the features with the same sampling)",
                )

    def non_finite(self, video_ids: Iterable[str] | None = None) -> list[str]:
        """The videos (of ``video_ids``, default all) whose stored features contain NaN or inf."""
        wanted = sorted(
            {self.index[v] for v in (video_ids if video_ids is not None else self.index) if v in self.index}
        )
        data = self._handle()[self.dataset]
        ids = {row: vid for vid, row in self.index.items()}
        bad = []
        for start in range(0, len(wanted), 256):  # chunked: the train file is ~0.4 GB
            rows = wanted[start : start + 256]
            block = data[rows[0] : rows[-1] + 1]
            bad += [ids[r] for r in rows if not np.isfinite(block[r - rows[0]]).all()]
        return bad


def _plain(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_feature_file(
    path: Path | str,
    video_ids: Sequence,
    features: np.ndarray,
    *,
    dataset: str | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``features`` ``(N, F, D)`` and ``video_ids`` in the official layout, atomically.

    Integer ids are stored as integers, others as UTF-8 strings (both occur in the wild). ``attrs``
    (strings and numbers, e.g. :data:`PROVENANCE_KEYS`) become the file's HDF5 attributes.
    """
    import h5py

    path = Path(path)
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 3 or features.shape[0] != len(video_ids):
        raise ValueError(
            f"features must be (videos, frames, dim) with one row per id; got {features.shape} for {len(video_ids)} ids"
        )
    dataset = dataset or path.stem.rsplit("_", 1)[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with h5py.File(tmp, "w") as f:
            if all(isinstance(v, (int, np.integer)) for v in video_ids):
                f.create_dataset("vid", data=np.asarray(video_ids, dtype=np.int64))
            else:
                f.create_dataset("vid", data=[str(v) for v in video_ids], dtype=h5py.string_dtype())
            f.create_dataset(dataset, data=features)
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_synthetic_features(
    root: Path | str,
    split: str,
    video_ids: Sequence,
    *,
    num_frames: int = 32,
    feature_dim: int = FEATURE_DIM,
    seed: int = 0,
    feat_type: str = FEAT_TYPE,
) -> Path:
    """Random unit-norm frame features (like CLIP's) for ``video_ids``, at ``feature_path(root, split)``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(video_ids), num_frames, feature_dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return write_feature_file(feature_path(root, split, feat_type), video_ids, x)
