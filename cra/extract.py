r"""Frame features from videos, as NExT-GQA made its ``CLIPL`` files: decode, sample, encode, write.

NExT-GQA's sampling (``dataloader/prepare_video.py`` of doc-doc/NExT-GQA, ``uniC`` mode; facts only):

1. videos are decoded at 6 fps and every 3rd of those frames is kept: a 2 fps list of ``N`` frames;
2. ``T`` = 32 clips of 4 frames are centred at ``c_j = int(linspace(0, N, T + 2)[j])``, ``j = 1..T``
   (so about ``j N / (T + 1)``); a clip that runs over either end is padded with the end frame, and
   the clip's middle frame ``clip[2]`` is the sampled frame (it is ``c_j`` whenever ``N >= 4``);
3. short videos repeat frames (``N < T``), which is why some ``frame2time`` lists repeat stamps;
4. the frame's time is its 1-based frame number at 6 fps over 6: ``(3 c + 1) / 6`` seconds, rounded
   to 0.1 s, the convention of the official ``frame2time_<split>.json``.

The 6 fps grid here takes, for each time ``k / 6``, the last decoded frame at or before it (what a
constant-rate resampler does). Each sampled frame goes through the open_clip model's own
preprocessing and image tower; features are written in the official layout
(``<out>/<feat_type>/<feat_type>_I_<split>.h5``, :func:`cra.data.write_feature_file`) together with
``<out>/frame2time_<split>.json``. The HDF5 file records how it was made in its attributes
(:func:`provenance`: model, weights, sampling), which :class:`cra.data.FeatureStore` reads back.

Faults: an unreadable video is skipped and reported (``strict=True`` aborts instead); both files
are written atomically at the end, with the videos that succeeded; existing outputs are replaced
only with ``overwrite=True``. Weights that cannot be had (offline, not cached) fail at once with
:class:`WeightsUnavailableError` naming them, before any video is decoded.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from cra.data import feature_path, write_feature_file
from cra.paths import atomic_write_bytes

__all__ = [
    "DECODE_FPS",
    "KEEP_EVERY",
    "CLIP_LENGTH",
    "TINY_CLIP_MODEL",
    "RANDOM_WEIGHTS",
    "nextgqa_sample_indices",
    "frame_time",
    "sample_video",
    "load_image_model",
    "provenance",
    "extract_features",
    "find_videos",
    "WeightsUnavailableError",
]

DECODE_FPS = 6  # NExT-GQA decodes videos at 6 fps
KEEP_EVERY = 3  # ... and keeps every 3rd frame (2 fps)
CLIP_LENGTH = 4  # frames per clip; the clip's middle frame is the sample
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
SAMPLING = "nextgqa-uniC"  # the name recorded for the sampling above
RANDOM_WEIGHTS = "random"  # the ``weights`` recorded for an untrained image tower

#: A tiny random-weight open_clip model for tests and offline demos (``--model cra-tiny-clip``).
TINY_CLIP_MODEL = "cra-tiny-clip"
TINY_CLIP_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def nextgqa_sample_indices(num_available: int, num_frames: int = 32, clip_length: int = CLIP_LENGTH) -> list[int]:
    """Indices (into the 2 fps frame list of length ``num_available``) of the ``num_frames`` sampled frames."""
    if num_available < 1:
        raise ValueError("a video needs at least one decoded frame")
    centres = np.linspace(0, num_available, num_frames + 2).astype(np.int32)[1 : num_frames + 1]
    half = clip_length // 2
    picked = []
    for c in centres.tolist():
        lo, hi = max(0, c - half), min(num_available, c + half)
        clip = list(range(lo, hi))
        if lo == 0 and len(clip) < clip_length:  # ran over the start: repeat the first frame in front
            clip = [0] * (clip_length - len(clip)) + clip
        if hi == num_available and len(clip) < clip_length:  # ran over the end: repeat the last frame
            clip = clip + [num_available - 1] * (clip_length - len(clip))
        picked.append(clip[len(clip) // 2])
    return picked


def frame_time(index_2fps: int) -> float:
    """Seconds of 2 fps frame ``index_2fps`` in the official ``frame2time`` convention."""
    return round((KEEP_EVERY * index_2fps + 1) / DECODE_FPS, 1)


def import_av():
    """``import av`` (PyAV), or an ImportError saying how to install it."""
    try:
        import av
    except ModuleNotFoundError as err:
        raise ImportError("extract-features decodes videos with PyAV: pip install 'cra-book[video]'") from err
    return av


def _stream_times(path: Path) -> tuple[list[float], float]:
    """Presentation times (s) of every video frame, sorted, and the video's duration (s), without decoding."""
    av = import_av()

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = float(stream.time_base)
        times = sorted(float(p.pts) * base for p in container.demux(stream) if p.pts is not None and p.size)
        rate = float(stream.average_rate or stream.guessed_rate or 0) or None
    if not times:
        raise ValueError(f"{path}: no video frames could be read")
    start = times[0]
    times = [t - start for t in times]
    step = 1.0 / rate if rate else (times[-1] / max(1, len(times) - 1) if len(times) > 1 else 1.0 / 30)
    return times, times[-1] + step


def sample_video(path: Path | str, num_frames: int = 32) -> tuple[list, list[float]]:
    """Decode ``path`` and return its ``num_frames`` sampled frames (PIL RGB images) and their times (s)."""
    av = import_av()

    path = Path(path)
    try:
        times, duration = _stream_times(path)
    except (av.error.FFmpegError, OSError) as err:
        raise ValueError(f"{path}: not a readable video ({err})") from None
    n6 = max(1, round(duration * DECODE_FPS))  # frames on the 6 fps grid
    grid = np.arange(0, n6, KEEP_EVERY) / DECODE_FPS  # the kept 2 fps frames, seconds
    source = np.searchsorted(np.asarray(times), grid + 1e-6, side="right") - 1  # last frame at or before
    source = np.clip(source, 0, len(times) - 1)
    picked = nextgqa_sample_indices(len(grid), num_frames)
    wanted = {int(source[i]) for i in picked}
    images = {}
    try:
        with av.open(str(path)) as container:  # frames come out in presentation order: the i-th is times[i]
            for index, frame in enumerate(container.decode(container.streams.video[0])):
                if index in wanted:
                    images[index] = frame.to_image().convert("RGB")
                if len(images) == len(wanted):
                    break
    except (av.error.FFmpegError, OSError) as err:
        raise ValueError(f"{path}: decoding failed ({err})") from None
    missing = wanted - set(images)
    if missing:
        raise ValueError(f"{path}: could not decode frame(s) {sorted(missing)[:5]}")
    return [images[int(source[i])] for i in picked], [frame_time(i) for i in picked]


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be loaded or fetched; the message names them and the way out."""


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout`` seconds."""
    from huggingface_hub import constants

    host = urllib.parse.urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.startswith(".") or text.endswith((".bin", ".pt", ".pth", ".safetensors"))


def _check_weights(open_clip, model: str, pretrained: str, cache_dir: str | None) -> None:
    """Fail fast (no network retries) when ``pretrained`` can be neither found locally nor fetched."""
    if _looks_like_path(pretrained):
        if not Path(pretrained).expanduser().is_file():
            raise WeightsUnavailableError(f"--pretrained {pretrained}: no such weights file")
        return
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise WeightsUnavailableError(
            f"open_clip has no weights {pretrained!r} for model {model!r}; known tags: "
            f"{tags or 'none'}; or give a local weights file as --pretrained PATH"
        )
    if _hub_reachable():
        return
    # Offline: only a cached copy will do. Make the hub client answer from its cache at once
    # instead of retrying the network, and fetch (= look up) the file here to name it if absent.
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    source = cfg.get("hf_hub") or cfg.get("url") or pretrained
    try:
        if not open_clip.download_pretrained(cfg, cache_dir=cache_dir):
            raise FileNotFoundError("no download location")
    except Exception as err:  # the hub raises its own error classes; all mean "not available here"
        raise WeightsUnavailableError(
            f"could not fetch the {model} weights {pretrained!r} ({source}): no network and not in the cache "
            f"({cache_dir or 'the default Hugging Face cache, $HF_HOME'}; {type(err).__name__}). Download them where "
            f"there is network and pass --pretrained /path/to/open_clip_pytorch_model.bin (open_clip's file for "
            f"{model}), or point --cache-dir / $HF_HOME at a cache that holds them"
        ) from None


def load_image_model(
    model: str = "ViT-L-14",
    pretrained: str | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | None = None,
):
    """An open_clip model (eval mode) and its evaluation preprocessing. ``pretrained``: an open_clip
    weights tag (``"openai"``) or a local weights file; ``None``: random weights (tests, offline
    demos); ``model="cra-tiny-clip"``: :data:`TINY_CLIP_CFG`, random weights. Weights that cannot be
    had raise :class:`WeightsUnavailableError` quickly, naming them."""
    from cra.text.clip import import_open_clip

    open_clip = import_open_clip()
    if model == TINY_CLIP_MODEL and open_clip.get_model_config(model) is None:
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / f"{TINY_CLIP_MODEL}.json").write_text(json.dumps(TINY_CLIP_CFG))
            open_clip.add_model_config(folder)
    if open_clip.get_model_config(model) is None:
        raise ValueError(f"unknown open_clip model {model!r}; see open_clip.list_models() (or use {TINY_CLIP_MODEL!r})")
    if pretrained is not None:
        _check_weights(open_clip, model, pretrained, cache_dir)
    try:
        net, _, preprocess = open_clip.create_model_and_transforms(
            model, pretrained=pretrained, device=device, cache_dir=cache_dir
        )
    except (OSError, RuntimeError) as err:
        if pretrained is None:
            raise
        raise WeightsUnavailableError(f"could not load the {model} weights {pretrained!r}: {err}") from None
    return net.eval(), preprocess


def provenance(model: str, pretrained: str | None, num_frames: int) -> dict[str, Any]:
    """The HDF5 attributes recorded with extracted features (:data:`cra.data.PROVENANCE_KEYS`)."""
    from cra import __version__

    weights = (
        RANDOM_WEIGHTS
        if pretrained is None
        else (str(Path(pretrained).expanduser().resolve()) if _looks_like_path(pretrained) else pretrained)
    )
    return {
        "model": model,
        "weights": weights,
        "num_frames": num_frames,
        "sampling": SAMPLING,
        "decode_fps": DECODE_FPS,
        "keep_every": KEEP_EVERY,
        "clip_length": CLIP_LENGTH,
        "created_by": f"cra {__version__} extract-features",
    }


def find_videos(
    folder: Path | str, video_ids: Iterable[str] | None = None, mapping: dict | None = None
) -> dict[str, Path]:
    """``{video_id: file}``: every video file under ``folder`` (id = file stem), or the given ids, each
    looked up through ``mapping`` (``map_vid_vidorID.json``: ``video_id -> "folder/vidor_id"``) when given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"--videos {folder}: no such folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    by_name = {}
    for p in files:
        by_name.setdefault(str(p.relative_to(folder).with_suffix("")), p)
        by_name.setdefault(p.stem, p)
    if video_ids is None and not mapping:
        stems = [p.stem for p in files]
        twice = sorted({s for s in stems if stems.count(s) > 1})
        if twice:
            raise ValueError(f"--videos {folder}: file names {twice[:5]} occur more than once; give --map")
        return {p.stem: p for p in files}
    out, missing = {}, []
    for vid in video_ids if video_ids is not None else list(mapping):
        name = str(mapping.get(vid, vid)) if mapping else vid
        if name in by_name:
            out[vid] = by_name[name]
        else:
            missing.append(vid)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} video(s) not found under {folder}: {missing[:5]} "
            f"(looked for <name>{'|'.join(VIDEO_SUFFIXES)}{' with names from the map' if mapping else ''})"
        )
    return out


def output_paths(out_root: Path | str, split: str, feat_type: str = "CLIPL") -> tuple[Path, Path]:
    """(feature file, frame2time file) that :func:`extract_features` writes."""
    return feature_path(out_root, split, feat_type), Path(out_root) / f"frame2time_{split}.json"


@torch.no_grad()
def extract_features(
    videos: dict[str, Path],
    out_root: Path | str,
    split: str,
    *,
    model: str = "ViT-L-14",
    pretrained: str | None = None,
    feat_type: str = "CLIPL",
    num_frames: int = 32,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    progress: bool = False,
    cache_dir: str | None = None,
    strict: bool = False,
    overwrite: bool = False,
) -> tuple[Path, Path, dict[str, str]]:
    """Encode the sampled frames of every video; write the HDF5 file and ``frame2time_<split>.json``.

    Returns (feature file, frame2time file, skipped videos ``{video_id: reason}``). A video that
    cannot be decoded is skipped (``strict``: the ``ValueError`` is raised and nothing is written).
    Both files are written atomically at the end, holding the videos that succeeded; existing files
    raise ``FileExistsError`` unless ``overwrite`` (checked before any work).
    """
    from tqdm.auto import tqdm

    h5_path, f2t_path = output_paths(out_root, split, feat_type)
    existing = [p for p in (h5_path, f2t_path) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(map(str, existing))} already exist(s); pass --overwrite to replace "
            "(or choose another --out / --split)"
        )
    if not videos:
        raise ValueError("no videos to extract")
    net, preprocess = load_image_model(model, pretrained, device, cache_dir)
    features, frame2time, done, skipped = [], {}, [], {}
    for vid, path in tqdm(videos.items(), desc=f"extract {split}", disable=not progress):
        try:
            images, times = sample_video(path, num_frames)
        except ValueError as err:
            if strict:
                raise
            skipped[vid] = str(err)
            continue
        pixels = torch.stack([preprocess(img) for img in images]).to(device)  # (T, 3, H, W)
        chunks = [net.encode_image(pixels[s : s + batch_size]) for s in range(0, len(pixels), batch_size)]
        features.append(torch.cat(chunks).float().cpu().numpy())  # (T, D)
        frame2time[vid] = times
        done.append(vid)
    if not features:
        raise ValueError(f"none of the {len(videos)} videos could be read; first: {next(iter(skipped.values()))}")
    attrs = {**provenance(model, pretrained, num_frames), "skipped_videos": json.dumps(sorted(skipped))}
    h5 = write_feature_file(h5_path, done, np.stack(features), attrs=attrs)
    atomic_write_bytes(f2t_path, json.dumps(frame2time).encode())
    return h5, f2t_path, skipped
