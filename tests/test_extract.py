"""extract-features: NExT-GQA's frame sampling, and tiny generated videos through a random tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cra.extract import frame_time, nextgqa_sample_indices

av = pytest.importorskip("av")


def write_video(path: Path, seconds: float, fps: int = 10, size: int = 48) -> Path:
    """A small mpeg4 video whose frame i is a flat grey of level (8 * i) % 256 (so frames are identifiable)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(round(seconds * fps)):
            img = np.full((size, size, 3), (8 * i) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_sampling_matches_official_frame2time_patterns():
    # 69 frames at 2 fps (a 34.5 s video): the official frame2time of video 10001787725 (duration 34)
    times = [frame_time(i) for i in nextgqa_sample_indices(69)]
    assert times[:4] == [1.2, 2.2, 3.2, 4.2] and times[10:12] == [11.7, 12.7] and times[-2:] == [32.2, 33.2]
    # short videos repeat frames (10082798964, 14 s: 28 frames at 2 fps)
    short = [frame_time(i) for i in nextgqa_sample_indices(28)]
    assert short[:7] == [0.2, 0.7, 1.2, 1.7, 2.2, 2.7, 2.7] and short[-1] == 13.7 and len(short) == 32
    # tiny N: start padding wins, as in the official clip code ([0, 1] padded to [0, 0, 0, 1], middle = 0)
    assert nextgqa_sample_indices(1) == [0] * 32 and nextgqa_sample_indices(2, 4) == [0, 0, 0, 0]


def test_sampling_matches_the_real_frame2time_file_when_present():
    from cra import paths

    path = paths.data_dir() / "nextgqa" / "frame2time_val.json"
    if not path.is_file():
        pytest.skip(f"real data absent: {path}")
    frame2time = json.loads(path.read_text())
    # Each video's list must be reproducible from some 2 fps frame count N (the exact N needs the video).
    reproduced = 0
    vids = sorted(frame2time)[:200]
    for vid in vids:
        target = frame2time[vid]
        guess = round(target[-1] * 2 * 33 / 32)
        if any(
            [frame_time(i) for i in nextgqa_sample_indices(n)] == target for n in range(max(1, guess - 6), guess + 7)
        ):
            reproduced += 1
    assert reproduced == len(vids)


def test_extract_features_cli_writes_the_official_layout(tmp_path):
    from cra.cli import main
    from cra.data import FeatureStore, feature_path, read_frame2time

    videos = tmp_path / "videos"
    videos.mkdir()
    for name, seconds in (("1001", 3.0), ("1002", 7.5), ("1003", 2.0)):
        write_video(videos / f"{name}.mp4", seconds)
    out = tmp_path / "features"
    assert (
        main(
            [
                "extract-features",
                "--videos",
                str(videos),
                "--out",
                str(out),
                "--split",
                "val",
                "--model",
                "cra-tiny-clip",
                "--random-weights",
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    store = FeatureStore(feature_path(out, "val"), feature_dim=16)
    assert sorted(store.video_ids) == ["1001", "1002", "1003"] and store.shape == (3, 32, 16)
    frames, mask = store.get("1002")
    assert mask.all() and np.isfinite(frames).all()
    f2t = read_frame2time(out / "frame2time_val.json")
    assert f2t["1002"] == [frame_time(i) for i in nextgqa_sample_indices(15)]  # 7.5 s -> 45 frames at 6 fps -> 15
    # a 2 s video has 4 frames at 2 fps: the 32 samples repeat them, and so do the features
    picked = nextgqa_sample_indices(4)
    short, _ = store.get("1003")
    assert sorted(set(picked)) == [0, 1, 2, 3]
    for i in range(32):
        assert np.allclose(short[i], short[picked.index(picked[i])])
    assert not np.allclose(short[0], short[-1])


def test_sampled_frames_are_the_right_ones(tmp_path):
    from cra.extract import sample_video

    path = write_video(tmp_path / "v.mp4", 4.0, fps=10)  # 40 frames; 2 fps grid = frames 0, 5, 10, ...
    images, times = sample_video(path, num_frames=8)
    n = 8  # 4 s at 2 fps
    expected_grid = nextgqa_sample_indices(n, 8)
    levels = [int(np.asarray(img).mean().round()) for img in images]
    expected = [(8 * (5 * i)) % 256 for i in expected_grid]
    assert np.allclose(levels, expected, atol=6)  # mpeg4 is lossy
    assert times == [frame_time(i) for i in expected_grid]


def test_missing_videos_and_unreadable_files_are_clear_errors(tmp_path, capsys):
    from cra.cli import main

    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    assert (
        main(
            [
                "extract-features",
                "--videos",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
                "--model",
                "cra-tiny-clip",
                "--random-weights",
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 2
    )
    assert "bad.mp4" in capsys.readouterr().err
    from cra.extract import find_videos

    with pytest.raises(FileNotFoundError, match="not found"):
        find_videos(tmp_path, ["123"])
