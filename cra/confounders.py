"""Confounder dictionaries for the causal interventions, and their file format.

Two dictionaries, built once from the training data and loaded by the model:

* ``Z_l`` (linguistic, back-door): every training QA pair becomes an 8-node semantic structure graph
  (:mod:`cra.text.semantic_graph`); each node's text is encoded to a D-vector, giving
  ``node_emb`` of shape ``(N_qa, 8, D)``. Mini-batch k-means over the flattened graphs
  ``(N_qa, 8*D)`` gives ``K_z`` centres, reshaped to ``Z_l`` ``(K_z, 8, D)``. The cluster sizes
  ``n_k`` give the empirical prior of the back-door formula,
  $P(z_k) = n_k / N_{qa}$ in $P(a \\mid do(L)) = \\sum_k P(a \\mid L, z_k) P(z_k)$.
* ``X_hat`` (visual, front-door): mini-batch k-means over all frame features of the training
  videos ``(N_videos * T, D_v)`` gives ``K_v`` centres ``X_hat`` ``(K_v, D_v)`` and their sizes,
  $P(\\hat v_j) = n_j / (N_{videos} T)$ in $\\sum_{\\hat v} P(\\hat v) P(a \\mid \\hat v, m)$.

The text encoder is anything with this duck-typed protocol (:class:`TextEncoder`)::

    encoder.dim                      # int, D
    encoder.encode(texts: list[str]) # -> torch.Tensor of shape (len(texts), D)
    encoder.name                     # optional str, recorded in the file's metadata

File format (version 1): one ``torch.save`` file holding only tensors and plain Python values (so
``torch.load(weights_only=True)`` reads it), written atomically::

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
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from cra import __version__, paths
from cra.text.semantic_graph import EDGES, NODE_NAMES, RULES, QAComponents

if TYPE_CHECKING:
    import pandas as pd

FORMAT_NAME = "cra-confounders"
FORMAT_VERSION = 1
_ARRAYS = ("Z_l", "Z_l_sizes", "X_hat", "X_hat_sizes")


@runtime_checkable
class TextEncoder(Protocol):
    """What the dictionary builder needs from a text encoder (``cra.text.encoders`` provides them)."""

    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor:  # (N, D)
        ...


class ConfounderFileError(ValueError):
    """A confounder file is missing, damaged, of another format, or does not fit the model."""


class ConfounderDimensionError(ConfounderFileError):
    """A dictionary's vector size D differs from what the model expects."""


def encoder_name(encoder: Any) -> str:
    """The name recorded in metadata: ``encoder.name`` if it has one, else its class name."""
    return str(getattr(encoder, "name", None) or type(encoder).__name__)


# ---------------------------------------------------------------------------------------- encoding
def encode_graph_nodes(
    components: Sequence[QAComponents],
    encoder: TextEncoder,
    *,
    batch_size: int = 256,
    progress: bool = False,
) -> torch.Tensor:
    """Encode the 8 node texts of every QA pair: returns ``node_emb`` of shape ``(N_qa, 8, D)``.

    Each distinct text is encoded once (node texts repeat a lot: "what", "why", common verbs), in
    batches of ``batch_size`` without gradients and, for a ``torch.nn.Module`` encoder, in eval
    mode (restored afterwards); the empty string (a missing component) is encoded like any other.
    """
    if not components:
        raise ValueError("encode_graph_nodes: no QA pairs to encode")
    dim = int(encoder.dim)
    node_texts = [c.node_texts() for c in components]  # N_qa lists of 8 strings
    unique = list(dict.fromkeys(t for texts in node_texts for t in texts))
    index = {t: i for i, t in enumerate(unique)}
    starts = range(0, len(unique), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"encode {len(unique)} distinct node texts", unit="batch")
    chunks = []
    was_training = isinstance(encoder, torch.nn.Module) and encoder.training
    if was_training:
        encoder.eval()  # no dropout while building the dictionary
    with torch.no_grad():
        for start in starts:
            batch = unique[start : start + batch_size]
            emb = encoder.encode(batch)
            if not isinstance(emb, torch.Tensor) or tuple(emb.shape) != (len(batch), dim):
                shape = tuple(emb.shape) if hasattr(emb, "shape") else type(emb).__name__
                raise ValueError(
                    f"text encoder {encoder_name(encoder)!r} returned {shape} for {len(batch)} texts; "
                    f"expected a torch.Tensor of shape ({len(batch)}, {dim}) (its .dim)"
                )
            chunks.append(emb.detach().to("cpu", torch.float32))
    if was_training:
        encoder.train()
    table = torch.cat(chunks)  # (U, D)
    ids = torch.tensor([[index[t] for t in texts] for texts in node_texts])  # (N_qa, 8)
    return table[ids]  # (N_qa, 8, D)


# -------------------------------------------------------------------------------------- clustering
def kmeans(
    points: np.ndarray | torch.Tensor,
    k: int,
    *,
    seed: int,
    batch_size: int = 1024,
    max_iter: int = 100,
    n_init: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded mini-batch k-means: ``points`` ``(N, F)`` -> centres ``(k, F)`` and sizes ``(k,)``.

    ``sizes[j]`` counts the points whose nearest centre is ``j``. No cluster is left empty (its prior
    would be 0, which the back-door cannot take): an empty centre is moved onto the point farthest
    from its own centre, taken from a cluster with more than one point, until every cluster has one.
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import pairwise_distances_argmin_min

    x = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"kmeans expects points of shape (N, F), got {x.shape}")
    if not 1 <= k <= len(x):
        raise ValueError(f"cannot make {k} clusters from {len(x)} points: choose 1 <= k <= {len(x)}")
    if not np.isfinite(x).all():
        raise ValueError("kmeans: the points contain NaN or infinite values")
    model = MiniBatchKMeans(
        n_clusters=k, random_state=seed, batch_size=batch_size, max_iter=max_iter, n_init=n_init
    ).fit(x)
    if len(np.unique(x, axis=0)) < k:
        raise ValueError(f"kmeans: {k} clusters need at least {k} distinct points, got {len(np.unique(x, axis=0))}")
    centres = model.cluster_centers_.astype(np.float32)
    for _ in range(k):  # each round fills every empty cluster; reassignment may empty others (rare)
        labels, dist = pairwise_distances_argmin_min(x, centres)  # final assignment to the final centres
        sizes = np.bincount(labels, minlength=k)
        empty = np.flatnonzero(sizes == 0)
        if not len(empty):
            break
        for j, i in zip(empty, _farthest_movable(dist, labels, sizes, len(empty))):
            centres[j] = x[i]
    if (sizes == 0).any():
        raise RuntimeError(f"kmeans: clusters {np.flatnonzero(sizes == 0).tolist()} stayed empty after reseeding")
    return torch.from_numpy(centres), torch.from_numpy(sizes.astype(np.int64))


def _farthest_movable(dist: np.ndarray, labels: np.ndarray, sizes: np.ndarray, count: int) -> list[int]:
    """Indices of up to ``count`` points farthest from their centre, never emptying their cluster."""
    left, chosen = sizes.copy(), []
    for i in np.argsort(-dist, kind="stable"):
        if left[labels[i]] > 1:
            left[labels[i]] -= 1
            chosen.append(int(i))
            if len(chosen) == count:
                break
    return chosen


def cluster_graphs(node_emb: torch.Tensor, k: int, *, seed: int, **kmeans_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """``node_emb`` ``(N_qa, 8, D)`` -> ``Z_l`` ``(k, 8, D)`` and cluster sizes ``(k,)``.

    Each graph is one point of dimension 8*D, so a centre is a whole graph (the node order and
    the 12 edges are shared by every entry)."""
    n, nodes, dim = node_emb.shape
    centres, sizes = kmeans(node_emb.reshape(n, nodes * dim), k, seed=seed, **kmeans_kwargs)  # (k, 8*D)
    return centres.reshape(k, nodes, dim), sizes


def cluster_frames(frames: np.ndarray | torch.Tensor, k: int, *, seed: int, **kmeans_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """All frame features ``(N_frames, D_v)`` -> ``X_hat`` ``(k, D_v)`` and cluster sizes ``(k,)``."""
    return kmeans(frames, k, seed=seed, **kmeans_kwargs)


# ------------------------------------------------------------------------------------------ inputs
def read_qa_table(csv_path: Path) -> "pd.DataFrame":
    """A NExT-QA / NExT-GQA csv with the correct answer as text in ``answer``.

    The ``answer`` column holds the answer text (NExT-GQA) or the index of the correct candidate
    ``a0..a4`` (NExT-QA); both are accepted, and ``answer_idx`` gives the index. A row whose answer
    is neither is an error naming the file and line.
    """
    import pandas as pd

    csv_path = Path(csv_path)
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    missing = [c for c in ("question", "answer") if c not in table.columns]
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {missing}; expected NExT-QA columns question, answer, a0..a4")
    candidates = [c for c in table.columns if c[:1] == "a" and c[1:].isdigit()]
    answers, indices = [], []
    for row_number, row in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        answer = row["answer"].strip()
        options = [row[c].strip() for c in candidates]
        if candidates and answer not in options:
            if not (answer.isdigit() and int(answer) < len(options)):
                raise ValueError(f"{csv_path} line {row_number}: answer {answer!r} is neither one of the candidates {options} nor an index into them")
            answer = options[int(answer)]
        answers.append(answer)
        indices.append(options.index(answer) if candidates else -1)
    table["question"] = table["question"].str.strip()
    table["answer"] = answers
    table["answer_idx"] = indices
    return table


def read_qa_pairs(csv_path: Path) -> list[tuple[str, str]]:
    """``(question, correct answer text)`` of every row of a NExT-QA / NExT-GQA csv."""
    table = read_qa_table(csv_path)
    return list(zip(table["question"], table["answer"]))


def read_frame_features(h5_path: Path, dataset: str = "CLIPL_I") -> np.ndarray:
    """All frames of all videos of an official-layout HDF5 file: ``(N_videos * T, D)`` float32.

    The file holds ``vid`` (video ids) and ``dataset`` of shape ``(N_videos, T, D)``.
    """
    import h5py

    h5_path = Path(h5_path)
    try:
        with h5py.File(h5_path, "r") as f:
            if dataset not in f:
                raise ValueError(f"{h5_path}: no dataset {dataset!r} (it holds {sorted(f.keys())})")
            features = f[dataset][()]
    except OSError as err:
        raise ValueError(f"{h5_path}: not a readable HDF5 file ({err})") from err
    if features.ndim != 3:
        raise ValueError(f"{h5_path}:{dataset} has shape {features.shape}; expected (N_videos, T, D)")
    return features.reshape(-1, features.shape[-1]).astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------- file format
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


def _drop_empty_clusters(c: Confounders, path: Path) -> None:
    """Files written before :func:`kmeans` refilled empty clusters may hold entries with 0 points (prior
    0): drop them, with a warning naming them, so that a model can still be built."""
    for name in ("Z_l", "X_hat"):
        centres, sizes = getattr(c, name), getattr(c, f"{name}_sizes")
        if centres is None or not bool((sizes == 0).any()):
            continue
        empty = torch.nonzero(sizes == 0).flatten().tolist()
        if len(empty) == len(sizes):
            raise ConfounderFileError(f"{path}: every {name} cluster is empty")
        warnings.warn(f"{path}: {name} clusters {empty} hold no point (prior 0); dropped, {len(sizes) - len(empty)} "
                      f"remain (rebuild the file with `python -m cra build-confounders` to avoid this)", stacklevel=3)
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
        raise ConfounderFileError(f"confounder file {path} does not exist; build it with `python -m cra build-confounders`")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, garbage bytes, pickled objects that are not allowed
        raise ConfounderFileError(f"{path}: not a readable confounder file, it may be damaged ({type(err).__name__}: {err})") from err
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
    for expected, actual, name in ((text_dim, confounders.text_dim, "Z_l"), (visual_dim, confounders.visual_dim, "X_hat")):
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


# ------------------------------------------------------------------------------ building from config
@dataclass
class BuildConfig:
    """Settings of ``python -m cra build-confounders`` (YAML keys; unknown keys are errors).

    Relative input paths are taken under ``data_root`` (default ``$CRA_DATA_DIR``); ``out`` is
    relative to the working directory. An empty ``qa_csv`` skips ``Z_l``; an empty ``features_h5``
    skips ``X_hat``.
    """

    out: str = ""
    data_root: str | None = None
    qa_csv: list = field(default_factory=list)
    features_h5: list = field(default_factory=list)
    features_dataset: str = "CLIPL_I"
    text_encoder: dict = field(default_factory=lambda: {"name": "clip"})
    text_clusters: int = 512
    visual_clusters: int = 512
    seed: int = 43  # the authors' notebooks use random_state=43
    parse_rules: str = "wh"
    parse_batch_size: int = 256
    parse_processes: int = 1
    encode_batch_size: int = 256
    kmeans_batch_size: int = 1024
    kmeans_max_iter: int = 100
    kmeans_n_init: int = 1

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "config") -> "BuildConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
        config = cls(**dict(values))
        config.validate(where)
        return config

    def validate(self, where: str = "config") -> None:
        def fail(key: str, expected: str) -> None:
            raise ValueError(f"{where}: {key}={getattr(self, key)!r}; expected {expected}")

        if not isinstance(self.out, str) or not self.out:
            fail("out", "the output file path")
        if self.data_root is not None and not isinstance(self.data_root, str):
            fail("data_root", "a folder path, or null for $CRA_DATA_DIR")
        for key in ("qa_csv", "features_h5"):
            value = getattr(self, key)
            if isinstance(value, str):
                setattr(self, key, [value])
            elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                fail(key, "a list of file paths")
        if not self.qa_csv and not self.features_h5:
            raise ValueError(f"{where}: both qa_csv and features_h5 are empty; nothing to build")
        for key in ("text_clusters", "visual_clusters", "parse_batch_size", "parse_processes", "encode_batch_size",
                    "kmeans_batch_size", "kmeans_max_iter", "kmeans_n_init"):  # fmt: skip
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(key, "a positive integer")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            fail("seed", "an integer")
        if self.parse_rules not in RULES:
            fail("parse_rules", f"one of {RULES}")
        if not isinstance(self.text_encoder, dict) or not isinstance(self.text_encoder.get("name"), str):
            fail("text_encoder", "a mapping with a 'name' (and keyword arguments of build_text_encoder)")

    def resolve(self, relpath: str) -> Path:
        path = Path(relpath).expanduser()
        if path.is_absolute():
            return path
        root = Path(self.data_root).expanduser() if self.data_root else paths.data_dir()
        return root / path


def _source(role: str, path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{role} file {path} does not exist")
    return {"role": role, "path": str(path), "sha256": paths.sha256_of(path)}


def build_confounders(
    config: BuildConfig,
    encoder_factory: Callable[..., TextEncoder] | None = None,
    *,
    nlp=None,
    progress: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> Confounders:
    """Build the dictionaries described by ``config`` (nothing is written; see :func:`save_confounders`).

    ``encoder_factory(name, **kwargs)`` builds the text encoder from ``config.text_encoder``; it is
    only called when ``config.qa_csv`` is not empty.
    """
    from cra.text.semantic_graph import load_parser, parse_qa_batch, parser_name

    kmeans_kwargs = dict(batch_size=config.kmeans_batch_size, max_iter=config.kmeans_max_iter, n_init=config.kmeans_n_init)
    result = Confounders()
    sources: list[dict] = []
    metadata: dict[str, Any] = {
        "cra_version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": config.seed,
        "config": asdict(config),
        "sources": sources,
    }
    if config.qa_csv:
        csv_paths = [config.resolve(p) for p in config.qa_csv]
        sources.extend(_source("qa_csv", p) for p in csv_paths)
        pairs = [pair for p in csv_paths for pair in read_qa_pairs(p)]
        log(f"{len(pairs)} QA pairs from {len(csv_paths)} csv file(s)")
        if encoder_factory is None:
            raise ValueError("build_confounders: qa_csv is set but no text encoder factory was given")
        kwargs = {k: v for k, v in config.text_encoder.items() if k != "name"}
        encoder = encoder_factory(config.text_encoder["name"], **kwargs)
        nlp = nlp if nlp is not None else load_parser()
        start = time.perf_counter()
        components = parse_qa_batch(
            pairs, nlp, rules=config.parse_rules, batch_size=config.parse_batch_size,
            n_process=config.parse_processes, progress=progress,
        )  # fmt: skip
        parse_s = time.perf_counter() - start
        log(f"parsed {len(pairs)} QA pairs in {parse_s:.1f} s ({len(pairs) / max(parse_s, 1e-9):.0f} pairs/s, {parser_name(nlp)})")
        node_emb = encode_graph_nodes(components, encoder, batch_size=config.encode_batch_size, progress=progress)
        log(f"clustering {len(pairs)} graphs of shape (8, {node_emb.shape[-1]}) into {config.text_clusters} clusters")
        result.Z_l, result.Z_l_sizes = cluster_graphs(node_emb, config.text_clusters, seed=config.seed, **kmeans_kwargs)
        metadata.update(
            encoder=encoder_name(encoder),
            encoder_config=dict(config.text_encoder),
            parser=parser_name(nlp),
            parse_rules=config.parse_rules,
            num_qa=len(pairs),
            text_clusters=config.text_clusters,
            empty_text_clusters=int((result.Z_l_sizes == 0).sum()),
        )
    if config.features_h5:
        h5_paths = [config.resolve(p) for p in config.features_h5]
        sources.extend(_source("features_h5", p) for p in h5_paths)
        files = h5_paths
        if progress:
            from tqdm.auto import tqdm

            files = tqdm(h5_paths, desc="read frame features", unit="file")
        frames = np.concatenate([read_frame_features(p, config.features_dataset) for p in files])  # (N_frames, D_v)
        log(f"clustering {len(frames)} frame features of size {frames.shape[1]} into {config.visual_clusters} clusters")
        result.X_hat, result.X_hat_sizes = cluster_frames(frames, config.visual_clusters, seed=config.seed, **kmeans_kwargs)
        metadata.update(
            features_dataset=config.features_dataset,
            num_frames=int(len(frames)),
            visual_clusters=config.visual_clusters,
            empty_visual_clusters=int((result.X_hat_sizes == 0).sum()),
        )
    result.metadata = metadata
    return result


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
            f"prior entropy {entropy:.2f} nats (uniform: {math.log(len(prior)):.2f}), {m.get('empty_text_clusters')} empty"
        )
    if confounders.X_hat is not None:
        prior = confounders.visual_prior
        lines.append(
            f"X_hat {tuple(confounders.X_hat.shape)} from {m.get('num_frames')} frames; "
            f"largest cluster P(v)={float(prior.max()):.3f}, {m.get('empty_visual_clusters')} empty"
        )
    return "\n".join(lines)
