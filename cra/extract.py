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
``<out>/frame2time_<split>.json``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from cra.data import feature_path, write_feature_file
from cra.paths import atomic_write_bytes

__all__ = ["DECODE_FPS", "KEEP_EVERY", "CLIP_LENGTH", "TINY_CLIP_MODEL", "nextgqa_sample_indices", "frame_time",
           "sample_video", "load_image_model", "extract_features", "find_videos"]

DECODE_FPS = 6  # NExT-GQA decodes videos at 6 fps
KEEP_EVERY = 3  # ... and keeps every 3rd frame (2 fps)
CLIP_LENGTH = 4  # frames per clip; the clip's middle frame is the sample
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")

#: A tiny random-weight open_clip model for tests and offline demos (``--model cra-tiny-clip``).
TINY_CLIP_MODEL = "cra-tiny-clip"
TINY_CLIP_CFG = {"embed_dim": 16,
                 "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def nextgqa_sample_indices(num_available: int, num_frames: int = 32, clip_length: int = CLIP_LENGTH) -> list[int]:
    """Indices (into the 2 fps frame list of length ``num_available``) of the ``num_frames`` sampled frames."""
    if num_available < 1:
        raise ValueError("a video needs at least one decoded frame")
    centres = np.linspace(0, num_available, num_frames + 2).astype(np.int32)[1: num_frames + 1]
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


def load_image_model(model: str = "ViT-L-14", pretrained: str | None = None, device: str | torch.device = "cpu",
                     cache_dir: str | None = None):
    """An open_clip model (eval mode) and its evaluation preprocessing. ``pretrained=None``: random
    weights (offline); ``model="cra-tiny-clip"``: :data:`TINY_CLIP_CFG`, random weights."""
    from cra.text.clip import import_open_clip

    open_clip = import_open_clip()
    if model == TINY_CLIP_MODEL and open_clip.get_model_config(model) is None:
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / f"{TINY_CLIP_MODEL}.json").write_text(json.dumps(TINY_CLIP_CFG))
            open_clip.add_model_config(folder)
    if open_clip.get_model_config(model) is None:
        raise ValueError(f"unknown open_clip model {model!r}; see open_clip.list_models() (or use {TINY_CLIP_MODEL!r})")
    net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=pretrained, device=device,
                                                               cache_dir=cache_dir)
    return net.eval(), preprocess


def find_videos(folder: Path | str, video_ids: Iterable[str] | None = None, mapping: dict | None = None) -> dict[str, Path]:
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
    for vid in (video_ids if video_ids is not None else list(mapping)):
        name = str(mapping.get(vid, vid)) if mapping else vid
        if name in by_name:
            out[vid] = by_name[name]
        else:
            missing.append(vid)
    if missing:
        raise FileNotFoundError(f"{len(missing)} video(s) not found under {folder}: {missing[:5]} "
                                f"(looked for <name>{'|'.join(VIDEO_SUFFIXES)}{' with names from the map' if mapping else ''})")
    return out


@torch.no_grad()
def extract_features(videos: dict[str, Path], out_root: Path | str, split: str, *, model: str = "ViT-L-14",
                     pretrained: str | None = None, feat_type: str = "CLIPL", num_frames: int = 32,
                     device: str | torch.device = "cpu", batch_size: int = 64, progress: bool = False,
                     cache_dir: str | None = None) -> tuple[Path, Path]:
    """Encode the sampled frames of every video; write the HDF5 file and ``frame2time_<split>.json``.

    Returns (feature file, frame2time file). Both are written atomically, after every video succeeded.
    """
    from tqdm.auto import tqdm

    net, preprocess = load_image_model(model, pretrained, device, cache_dir)
    features, frame2time = [], {}
    for vid, path in tqdm(videos.items(), desc=f"extract {split}", disable=not progress):
        images, times = sample_video(path, num_frames)
        pixels = torch.stack([preprocess(img) for img in images]).to(device)  # (T, 3, H, W)
        chunks = [net.encode_image(pixels[s: s + batch_size]) for s in range(0, len(pixels), batch_size)]
        features.append(torch.cat(chunks).float().cpu().numpy())  # (T, D)
        frame2time[vid] = times
    if not features:
        raise ValueError("no videos to extract")
    h5 = write_feature_file(feature_path(out_root, split, feat_type), list(videos), np.stack(features))
    f2t = Path(out_root) / f"frame2time_{split}.json"
    atomic_write_bytes(f2t, json.dumps(frame2time).encode())
    return h5, f2t
