"""Building the dictionaries: semantic graphs of the QA pairs -> ``Z_l``, frame features -> ``X_hat``.

* ``Z_l`` (linguistic, back-door): every training QA pair becomes an 8-node semantic structure graph
  (:mod:`cra.text.semantic_graph`); each node's text is encoded to a D-vector, giving
  ``node_emb`` of shape ``(N_qa, 8, D)``. Mini-batch k-means over the flattened graphs
  ``(N_qa, 8*D)`` gives ``K_z`` centres, reshaped to ``Z_l`` ``(K_z, 8, D)``. The cluster sizes
  ``n_k`` give the empirical prior of the back-door formula,
  $P(z_k) = n_k / N_{qa}$ in $P(a \\mid do(L)) = \\sum_k P(a \\mid L, z_k) P(z_k)$.
* ``X_hat`` (visual, front-door): mini-batch k-means over all frame features of the training
  videos ``(N_videos * T, D_v)`` gives ``K_v`` centres ``X_hat`` ``(K_v, D_v)`` and their sizes,
  $P(\\hat v_j) = n_j / (N_{videos} T)$ in $\\sum_{\\hat v} P(\\hat v) P(a \\mid \\hat v, m)$.

The QA csv files and the HDF5 features are read by :mod:`cra.data` (the same checks and errors as
``train``). The text encoder is anything with this duck-typed protocol (:class:`TextEncoder`)::

    encoder.dim                      # int, D
    encoder.encode(texts: list[str]) # -> torch.Tensor of shape (len(texts), D)
    encoder.name                     # optional str, recorded in the file's metadata
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from cra import __version__, paths
from cra.confounders.config import BuildConfig
from cra.confounders.format import Confounders
from cra.text.semantic_graph import QAComponents


@runtime_checkable
class TextEncoder(Protocol):
    """What the dictionary builder needs from a text encoder (``cra.text.encoders`` provides them)."""

    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor:  # (N, D)
        ...


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


def nearest_centre(points: np.ndarray | torch.Tensor, centres: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Index of the nearest centre (Euclidean) of every point, the assignment :func:`kmeans` counts:
    ``(N, ...)``, ``(k, ...)`` -> ``(N,)`` int64. Graphs ``(N, 8, D)`` and ``Z_l`` ``(k, 8, D)`` are
    compared flattened, as :func:`cluster_graphs` clusters them."""
    from sklearn.metrics import pairwise_distances_argmin

    def flat(a):
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        return np.ascontiguousarray(a.reshape(len(a), -1), dtype=np.float32)

    return torch.from_numpy(pairwise_distances_argmin(flat(points), flat(centres)).astype(np.int64))


def cluster_graphs(node_emb: torch.Tensor, k: int, *, seed: int, **kmeans_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """``node_emb`` ``(N_qa, 8, D)`` -> ``Z_l`` ``(k, 8, D)`` and cluster sizes ``(k,)``.

    Each graph is one point of dimension 8*D, so a centre is a whole graph (the node order and
    the 12 edges are shared by every entry)."""
    n, nodes, dim = node_emb.shape
    centres, sizes = kmeans(node_emb.reshape(n, nodes * dim), k, seed=seed, **kmeans_kwargs)  # (k, 8*D)
    return centres.reshape(k, nodes, dim), sizes


def cluster_frames(
    frames: np.ndarray | torch.Tensor, k: int, *, seed: int, **kmeans_kwargs
) -> tuple[torch.Tensor, torch.Tensor]:
    """All frame features ``(N_frames, D_v)`` -> ``X_hat`` ``(k, D_v)`` and cluster sizes ``(k,)``."""
    return kmeans(frames, k, seed=seed, **kmeans_kwargs)


def _source(role: str, path: Path) -> dict:
    """Where an input came from, for the metadata (called after :mod:`cra.data` has read it)."""
    return {"role": role, "path": str(path), "sha256": paths.sha256_of(path)}


@dataclass
class TextDictionary:
    """``Z_l`` with what it was built from, one row per QA pair (for inspecting the clusters)."""

    records: list  # the QA pairs' cra.data.QARecord, in the order of the rows below
    components: list[QAComponents]  # their semantic structure graphs
    node_emb: torch.Tensor  # (N_qa, 8, D) encoded node texts
    Z_l: torch.Tensor  # (K_z, 8, D) cluster centres
    sizes: torch.Tensor  # (K_z,) QA pairs per cluster
    labels: torch.Tensor  # (N_qa,) the cluster of each QA pair (its nearest centre)
    metadata: dict
    sources: list[dict]


def select_qa(records: Sequence, max_qa: int | None, seed: int) -> list:
    """All ``records``, or a seeded random subset of ``max_qa`` of them kept in file order."""
    if max_qa is None or max_qa >= len(records):
        return list(records)
    keep = np.sort(np.random.default_rng(seed).choice(len(records), size=max_qa, replace=False))
    return [records[i] for i in keep]


def build_text_dictionary(
    config: BuildConfig,
    encoder_factory: Callable[..., TextEncoder],
    *,
    nlp=None,
    reuse: TextDictionary | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> TextDictionary:
    """``Z_l`` from ``config.qa_csv``: read (by :mod:`cra.data`), optionally subsample
    (``config.max_qa``), parse into semantic graphs, encode the node texts, cluster.

    ``reuse`` is an earlier result on the same QA pairs (same ``qa_csv``, ``max_qa``, ``seed`` and
    ``parse_rules``): its parses are taken instead of parsing again, so only the encoder differs.
    """
    from cra.data import read_qa_csv
    from cra.text.semantic_graph import load_parser, parse_qa_batch, parser_name

    csv_paths = [config.resolve(p) for p in config.qa_csv]
    records = select_qa(
        [r for p in csv_paths for r in read_qa_csv(p).records], config.max_qa, config.seed
    )  # the checks of `train`
    sources = [_source("qa_csv", p) for p in csv_paths]
    pairs = [(r.question, r.candidates[r.answer]) for r in records]  # (question, correct answer)
    log(f"{len(pairs)} QA pairs from {len(csv_paths)} csv file(s)")
    kwargs = {k: v for k, v in config.text_encoder.items() if k != "name"}
    encoder = encoder_factory(config.text_encoder["name"], **kwargs)
    if reuse is not None:
        if [(r.key, r.question) for r in reuse.records] != [(r.key, r.question) for r in records] or reuse.metadata.get(
            "parse_rules"
        ) != config.parse_rules:
            raise ValueError(
                "build_text_dictionary: `reuse` was built on other QA pairs or parse rules than this config's"
            )
        components, parser = reuse.components, reuse.metadata["parser"]
    else:
        nlp = nlp if nlp is not None else load_parser()
        start = time.perf_counter()
        components = parse_qa_batch(
            pairs, nlp, rules=config.parse_rules, batch_size=config.parse_batch_size,
            n_process=config.parse_processes, progress=progress,
        )  # fmt: skip
        parse_s = time.perf_counter() - start
        parser = parser_name(nlp)
        log(
            f"parsed {len(pairs)} QA pairs in {parse_s:.1f} s ({len(pairs) / max(parse_s, 1e-9):.0f} pairs/s, {parser})"
        )
    node_emb = encode_graph_nodes(components, encoder, batch_size=config.encode_batch_size, progress=progress)
    log(f"clustering {len(pairs)} graphs of shape (8, {node_emb.shape[-1]}) into {config.text_clusters} clusters")
    kmeans_kwargs = dict(
        batch_size=config.kmeans_batch_size, max_iter=config.kmeans_max_iter, n_init=config.kmeans_n_init
    )
    Z_l, sizes = cluster_graphs(node_emb, config.text_clusters, seed=config.seed, **kmeans_kwargs)
    metadata = dict(
        encoder=encoder_name(encoder),
        encoder_config=dict(config.text_encoder),
        parser=parser,
        parse_rules=config.parse_rules,
        num_qa=len(pairs),
        text_clusters=config.text_clusters,
        empty_text_clusters=int((sizes == 0).sum()),
    )
    return TextDictionary(records, components, node_emb, Z_l, sizes, nearest_centre(node_emb, Z_l), metadata, sources)


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
    from cra.data import FeatureStore

    kmeans_kwargs = dict(
        batch_size=config.kmeans_batch_size, max_iter=config.kmeans_max_iter, n_init=config.kmeans_n_init
    )
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
        if encoder_factory is None:
            raise ValueError("build_confounders: qa_csv is set but no text encoder factory was given")
        text = build_text_dictionary(config, encoder_factory, nlp=nlp, progress=progress, log=log)
        result.Z_l, result.Z_l_sizes = text.Z_l, text.sizes
        sources.extend(text.sources)
        metadata.update(text.metadata)
    if config.features_h5:
        h5_paths = [config.resolve(p) for p in config.features_h5]
        files = h5_paths
        if progress:
            from tqdm.auto import tqdm

            files = tqdm(h5_paths, desc="read frame features", unit="file")
        frames = np.concatenate(
            [FeatureStore(p, feature_dim=None, dataset=config.features_dataset).all_frames() for p in files]
        )  # (N_frames, D_v)
        sources.extend(_source("features_h5", p) for p in h5_paths)
        log(f"clustering {len(frames)} frame features of size {frames.shape[1]} into {config.visual_clusters} clusters")
        result.X_hat, result.X_hat_sizes = cluster_frames(
            frames, config.visual_clusters, seed=config.seed, **kmeans_kwargs
        )
        metadata.update(
            features_dataset=config.features_dataset,
            num_frames=int(len(frames)),
            visual_clusters=config.visual_clusters,
            empty_visual_clusters=int((result.X_hat_sizes == 0).sum()),
        )
    result.metadata = metadata
    return result
