"""Deliberate faults and bad inputs (issue 17): each gets a clear message naming the file, the key or
row and what was expected, a non-zero exit where nothing useful was done, and no partial output.

Sections: evaluate (items 1, 5, 6) · data readers (item 5) · feature files (items 2, 5) ·
extract-features (items 2, 6, 7) · download and info (items 6, 7). Training-side faults (run-folder
lock, crash consistency, checkpoints; items 3, 4, 6, 8) live in their own section/file, added by the
training work. The table of checks is docs/input_checks.md.
"""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from test_metrics_golden import CORRECT, GSUB, SPANS

from cra import cli, data, metrics
from cra.data import DataFormatError, FeatureStore, feature_path, write_feature_file


def write_json(path: Path, content) -> Path:
    path.write_text(json.dumps(content))
    return path


@pytest.fixture
def golden(tmp_path):
    res = {k: {"prediction": 1, "answer": 1 if ok else 0} for k, ok in CORRECT.items()}
    return {
        "gsub": write_json(tmp_path / "gsub.json", GSUB),
        "qa": write_json(tmp_path / "qa.json", res),
        "pred": write_json(tmp_path / "pred.json", SPANS),
    }


def evaluate(files, pred, *extra):
    return cli.main(["evaluate", "--gsub", str(files["gsub"]), "--qa", str(files["qa"]), "--pred", str(pred), *extra])


def weights_for(keys, t=32):
    rng = np.random.default_rng(0)
    return {k: rng.random(t).tolist() for k in keys}


# ============================================================================================
# evaluate
# ============================================================================================
def test_weights_file_is_not_scored_as_spans(golden, tmp_path, capsys):
    pred = write_json(tmp_path / "val_ground_gs.json", weights_for(SPANS))
    assert evaluate(golden, pred) == 2  # default --pred-format seconds
    out = capsys.readouterr()
    assert out.out == ""  # no table at all
    first = next(iter(SPANS))
    assert (
        f"{pred}: --pred (first key {first}): 32 per-frame weights per key; expected [start, end] (2 numbers) "
        "per key for --pred-format seconds; score weights with --pred-format window"
    ) in out.err
    assert evaluate(golden, pred, "--pred-format", "normalized") == 2
    assert "for --pred-format normalized" in capsys.readouterr().err
    assert evaluate(golden, pred, "--pred-format", "window", "--json") == 0  # read as what it is


def test_spans_file_is_not_read_as_weights(golden, capsys):
    assert evaluate(golden, golden["pred"], "--pred-format", "window") == 2
    err = capsys.readouterr().err
    assert (
        f"{golden['pred']}: --pred (first key v1_0): [start, end] spans (2 numbers per key); expected T per-frame "
        "weights per key for --pred-format window; score spans with --pred-format seconds or normalized" in err
    )


@pytest.mark.parametrize(
    "content, where, problem",
    [
        ({"v1_0": {"span": [1, 2]}}, "key v1_0", "{'span': [1, 2]}"),
        ({"v1_0": [1.0, 2.0, 3.0], "v1_1": [1.0, 2.0, 3.0, 4.0]}, "key v1_1", "4 numbers where key v1_0 has 3"),
        ({"v1_0": [1.0, float("nan")]}, "key v1_0", "[1.0, nan]"),
        ([[1, 2]], "top level", "a json list"),
    ],
)
def test_other_prediction_structures_are_refused(golden, tmp_path, capsys, content, where, problem):
    pred = tmp_path / "p.json"
    pred.write_text(json.dumps(content))
    assert evaluate(golden, pred) == 2
    err = capsys.readouterr().err
    assert f"{pred}: {where}: {problem}" in err and "expected" in err


def test_empty_predictions_file_is_an_error(golden, tmp_path, capsys):
    pred = write_json(tmp_path / "empty.json", {})
    assert evaluate(golden, pred) == 2
    assert f"{pred}: top level: no predictions in {pred}" in capsys.readouterr().err


@pytest.mark.parametrize("strict", [False, True])
def test_all_unknown_predictions_score_nothing_and_exit_2(golden, tmp_path, capsys, strict):
    pred = write_json(tmp_path / "other.json", {"x9_0": [1.0, 2.0], "x9_1": [0.0, 3.0]})
    assert evaluate(golden, pred, *(["--strict"] if strict else [])) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert (
        f"error: nothing was scored: none of the 2 predictions in {pred} has a key of the 10 ground-truth "
        f"questions in {golden['gsub']}; expected keys '<video_id>_<qid>' such as 'v1_0'; first prediction key: "
        "'x9_0'"
    ) in out.err


def test_reversed_spans_are_counted_and_printed(golden, capsys):
    assert evaluate(golden, golden["pred"]) == 0
    out = capsys.readouterr().out
    assert (
        "note: 1 reversed spans (end before start) scored IoU = IoP = 0 as the official script does; first: v2_1" in out
    )
    assert evaluate(golden, golden["pred"], "--json") == 0
    assert json.loads(capsys.readouterr().out)["reversed"] == 1


def test_qa_results_without_ground_truth_get_a_counted_note(golden, tmp_path, capsys):
    res = json.loads(golden["qa"].read_text())
    res.update({"v7_0": {"prediction": 0, "answer": 0}, "v7_1": {"prediction": 0, "answer": 1}})
    write_json(golden["qa"], res)
    assert evaluate(golden, golden["pred"]) == 0
    out = capsys.readouterr().out
    assert (
        "note: 2 QA results (1 videos) have no ground truth in gsub.json and are not scored, as in the official "
        "script; first: v7_0, v7_1" in out
    )
    # the scores themselves are those of the official script (the extra QA rows change nothing)
    assert "9 of 10 questions scored" in out


def test_subset_keys_without_ground_truth_are_reported():
    report = metrics.evaluate_grounding(GSUB, SPANS, CORRECT, subset=[*SPANS, "v9_0"])
    assert report.no_ground_truth == ["v9_0"]
    assert any("1 questions have no ground truth in the GT file and are not scored" in line for line in report.notes())


@pytest.mark.parametrize("value, shown", [("-3", "-3"), ("0", "0"), ("two", "'two'")])
def test_invalid_seeds_are_rejected_by_the_parser(golden, capsys, value, shown):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["evaluate", "--gsub", str(golden["gsub"]), "--baselines", "--seeds", value])
    assert exit_.value.code == 2
    assert f"argument --seeds: expected a whole number >= 1, got {shown}" in capsys.readouterr().err


def test_released_gs_weights_refused_by_default(capsys):
    from cra import paths

    root = paths.data_dir()
    need = ["nextgqa/gsub_val.json", "cra_released/val-res.json", "cra_released/val_ground_gs.json"]
    if not paths.has_data(*need, root=root):
        pytest.skip(f"real data absent under {root}")
    gsub, qa, gs = (str(root / p) for p in need)
    assert cli.main(["evaluate", "--gsub", gsub, "--qa", qa, "--pred", gs]) == 2
    err = capsys.readouterr().err
    assert "val_ground_gs.json: --pred (first key" in err and "32 per-frame weights per key" in err


# ============================================================================================
# data readers
# ============================================================================================
HEADER = "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"


def test_header_only_csv_is_refused_at_read_time(tmp_path):
    path = tmp_path / "val.csv"
    path.write_text(HEADER)
    with pytest.raises(
        DataFormatError,
        match=rf"{path}: data rows: no questions in {path} \(a header and no rows\); "
        r"expected at least one question row",
    ):
        data.read_qa_csv(path)


def test_reversed_frame2time_is_refused(tmp_path):
    times = [round(0.5 * i, 1) for i in range(32)]
    path = write_json(tmp_path / "frame2time_val.json", {"v1": times, "v2": times[::-1]})
    with pytest.raises(
        DataFormatError,
        match=rf"{path}: video v2: time 15.0 at frame 1 is before 15.5 at frame 0; "
        r"expected non-decreasing frame times in seconds",
    ):
        data.read_frame2time(path)
    write_json(path, {"v1": [-1.0] + times[1:]})
    with pytest.raises(DataFormatError, match=r"video v1: negative time -1.0"):
        data.read_frame2time(path)
    repeated = sorted(times[:16] * 2)  # short videos repeat stamps (official files do)
    write_json(path, {"v1": repeated})
    assert data.read_frame2time(path)["v1"] == repeated


def test_frame2time_in_other_units_is_refused_against_gsub(tmp_path):
    gsub = {"v1": {"duration": 31, "location": {"0": [[1.0, 5.0]]}}}
    times = [round(0.2 + i * 0.95, 1) for i in range(32)]  # ends at 29.6 s in a 31 s video
    path = write_json(tmp_path / "frame2time_val.json", {"v1": [t * 100 for t in times]})
    with pytest.raises(
        DataFormatError,
        match=rf"{path}: video v1: last frame time 2960.0 s, but the video lasts 31 s "
        r"\(gsub\); expected times in seconds within the duration \(\+3.1 s\)",
    ):
        data.read_frame2time(path, gsub=gsub)
    data.read_frame2time(path)  # without gsub the units cannot be checked
    write_json(path, {"v1": times[:-1] + [31.7]})  # official files end up to 0.7 s after the integer duration
    assert data.read_frame2time(path, gsub=gsub)["v1"][-1] == 31.7


def test_evaluate_attention_with_x100_frame2time_exits_2(tmp_path, capsys):
    gsub = write_json(tmp_path / "g.json", {"v": {"duration": 10, "location": {"0": [[8.0, 10.0]]}}})
    att = write_json(tmp_path / "a.json", {"v_0": [float(i) for i in range(32)]})
    f2t = write_json(tmp_path / "f.json", {"v": [round(30 * (i + 1), 1) for i in range(32)]})
    assert (
        cli.main(
            [
                "evaluate",
                "--gsub",
                str(gsub),
                "--pred",
                str(att),
                "--pred-format",
                "attention",
                "--frame2time",
                str(f2t),
            ]
        )
        == 2
    )
    assert (
        f"{f2t}: video v: last frame time 960 s, but the video lasts 10 s (gsub); expected times in seconds "
        f"within the duration (+2 s)" in capsys.readouterr().err
    )


def test_empty_gsub_is_refused(tmp_path):
    path = write_json(tmp_path / "gsub_val.json", {})
    with pytest.raises(DataFormatError, match=rf"{path}: top level: no videos in {path}; expected at least one video"):
        data.read_gsub(path)


def test_ground_truth_far_outside_the_video_is_refused(tmp_path):
    ok = {"v1": {"duration": 30, "location": {"0": [[-0.2, 5.0]], "1": [[20.0, 30.5]]}}}  # official-sized overruns
    assert data.read_gsub(write_json(tmp_path / "gsub_val.json", ok))["v1"]["location"]["1"] == [[20.0, 30.5]]
    bad = {"v1": {"duration": 30, "location": {"0": [[1.0, 5.0]], "3": [[2000.0, 2500.0]]}}}
    path = write_json(tmp_path / "gsub_val.json", bad)
    with pytest.raises(
        DataFormatError,
        match=rf"{path}: video v1, question 3: segment \[2000.0, 2500.0\] lies outside "
        r"the video \[0, 30\] by more than 3 s; expected segments in seconds",
    ):
        data.read_gsub(path)
    write_json(path, {"v1": {"duration": 30, "location": {"0": [[-5.0, 5.0]]}}})
    with pytest.raises(DataFormatError, match=r"question 0: segment \[-5.0, 5.0\] lies outside"):
        data.read_gsub(path)


# ============================================================================================
# feature files
# ============================================================================================
def test_feature_frames_must_match_frame2time(tmp_path):
    path = write_feature_file(feature_path(tmp_path, "val"), ["v1", "v2"], np.ones((2, 16, 8)))
    store = FeatureStore(path, feature_dim=8)
    times = {"v1": [0.5 * i for i in range(32)], "v2": [0.5 * i for i in range(32)]}
    with pytest.raises(
        DataFormatError,
        match=rf"{path}: video v1 \(dataset 'CLIPL_I', shape \(2, 16, 8\)\): 16 stored "
        r"frames but 32 frame times in frame2time_val.json; expected one stored "
        r"frame per frame time",
    ):
        store.check_frame_times(times, "frame2time_val.json")
    FeatureStore(
        write_feature_file(feature_path(tmp_path / "b", "val"), ["v1"], np.ones((1, 32, 8))), feature_dim=8
    ).check_frame_times(times)  # 32 and 32: fine


def test_feature_provenance_is_shown_and_checked(tmp_path):
    attrs = {"model": "ViT-L-14", "weights": "random", "num_frames": 32, "sampling": "nextgqa-uniC"}
    path = write_feature_file(feature_path(tmp_path, "val"), ["v1"], np.ones((1, 32, 8)), attrs=attrs)
    store = FeatureStore(path, feature_dim=8, expect={"model": "ViT-L-14"})
    assert store.provenance == attrs
    with pytest.raises(
        DataFormatError,
        match=rf"{path}: attribute 'weights': features made with weights 'random'; "
        r"expected weights 'openai'",
    ):
        FeatureStore(path, feature_dim=8, expect={"model": "ViT-L-14", "weights": "openai"})
    with pytest.raises(
        DataFormatError, match=r"attribute 'model': features made with model 'ViT-L-14'; expected model 'RN50'"
    ):
        FeatureStore(path, feature_dim=8, expect={"model": "RN50"})
    # the official files record nothing: nothing to check
    bare = write_feature_file(feature_path(tmp_path / "b", "val"), ["v1"], np.ones((1, 32, 8)))
    assert FeatureStore(bare, feature_dim=8, expect={"model": "RN50"}).provenance == {}


def test_grounding_files_are_checked_together(tmp_path):
    from tiny_nextgqa import write_tiny_nextgqa

    root = write_tiny_nextgqa(tmp_path / "d", videos={"val": 3}, num_frames=32, feature_dim=8)
    ann = root / "nextgqa"
    qa = data.read_qa_csv(ann / "val.csv")
    vids = [r.video_id for r in qa.records]
    store = FeatureStore(feature_path(root / "features", "val"), feature_dim=8)
    gsub, f2t = data.read_grounding_files(ann, "val", vids, features=store)
    assert sorted(gsub) == sorted(f2t) == sorted(set(vids))
    # 16 stored frames against 32 frame times: refused, not padded
    short = FeatureStore(
        write_feature_file(feature_path(tmp_path / "f16", "val"), sorted(set(vids)), np.ones((3, 16, 8))), feature_dim=8
    )
    with pytest.raises(DataFormatError, match=r"16 stored frames but 32 frame times in .*frame2time_val.json"):
        data.read_grounding_files(ann, "val", vids, features=short)
    # a video of the csv without ground truth: counted, not silently dropped
    g = json.loads((ann / "gsub_val.json").read_text())
    dropped = vids[0]
    del g[dropped]
    write_json(ann / "gsub_val.json", g)
    with pytest.warns(
        UserWarning, match=rf"gsub_val.json: 1 of the 3 videos of val have no ground truth; .*first: {dropped}"
    ):
        data.read_grounding_files(ann, "val", vids, features=store)
    # a video without frame times
    f = json.loads((ann / "frame2time_val.json").read_text())
    del f[vids[-1]]
    write_json(ann / "frame2time_val.json", f)
    with pytest.raises(
        DataFormatError,
        match=rf"frame2time_val.json: video\(s\) \['{vids[-1]}'\]: absent \(1 videos\); "
        r"expected frame times for every video of val",
    ):
        data.read_grounding_files(ann, "val", vids)


# ============================================================================================
# extract-features
# ============================================================================================
def extract(videos: Path, out: Path, *extra: str) -> int:
    return cli.main(
        [
            "extract-features",
            "--videos",
            str(videos),
            "--out",
            str(out),
            "--split",
            "val",
            "--device",
            "cpu",
            "--no-progress",
            *extra,
        ]
    )


def test_extract_requires_weights_or_random_weights(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        extract(tmp_path, tmp_path / "o", "--model", "cra-tiny-clip")
    assert exit_.value.code == 2
    assert "one of the arguments --pretrained --random-weights is required" in capsys.readouterr().err


def test_extract_offline_fails_fast_naming_the_weights(tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants as hub

    import cra.extract

    monkeypatch.setattr(cra.extract, "_hub_reachable", lambda timeout=3.0: False)  # as offline
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", hub.HF_HUB_OFFLINE)  # restored after the test
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "1001.mp4").write_bytes(b"never decoded")
    cache = tmp_path / "empty-cache"
    assert (
        extract(tmp_path / "v", tmp_path / "o", "--model", "RN50", "--pretrained", "openai", "--cache-dir", str(cache))
        == 2
    )
    err = capsys.readouterr().err
    assert (
        "could not fetch the RN50 weights 'openai' (timm/resnet50_clip.openai/): no network and not in the cache "
        f"({cache}" in err
    )
    assert "pass --pretrained /path/to/open_clip_pytorch_model.bin" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    assert extract(tmp_path / "v", tmp_path / "o", "--model", "RN50", "--pretrained", "./nowhere/w.bin") == 2
    assert "--pretrained ./nowhere/w.bin: no such weights file" in capsys.readouterr().err


@pytest.fixture
def videos(tmp_path):
    pytest.importorskip("av")
    from test_extract import write_video

    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "1001.mp4", 2.0)
    (folder / "1002.mp4").write_bytes(b"\x00corrupt video\x00" * 64)
    write_video(folder / "1003.mp4", 3.0)
    return folder


def test_extract_skips_a_corrupt_video_and_records_provenance(videos, tmp_path, capsys, monkeypatch):
    out = tmp_path / "features"
    assert extract(videos, out, "--model", "cra-tiny-clip", "--random-weights") == 0
    err = capsys.readouterr().err
    assert "skipped 1002: " in err and "1002.mp4" in err and "skipped 1 of 3 videos" in err
    store = FeatureStore(feature_path(out, "val"), feature_dim=16)
    assert store.video_ids == ["1001", "1003"]
    assert store.provenance["model"] == "cra-tiny-clip" and store.provenance["weights"] == "random"
    assert store.provenance["num_frames"] == 32 and store.provenance["sampling"] == "nextgqa-uniC"
    assert json.loads(store.provenance["skipped_videos"]) == ["1002"]
    assert sorted(data.read_frame2time(out / "frame2time_val.json")) == ["1001", "1003"]
    with pytest.raises(DataFormatError, match="attribute 'weights': features made with weights 'random'"):
        FeatureStore(feature_path(out, "val"), feature_dim=16, expect={"weights": "openai"})
    monkeypatch.setenv("CRA_DATA_DIR", str(tmp_path))  # info shows the recorded provenance
    assert cli.main(["info"]) == 0
    assert (
        "CLIPL_I_val.h5: 2 videos x 32 frames x 16; model cra-tiny-clip, weights random, 32 frames (nextgqa-uniC)"
        in capsys.readouterr().out
    )


def test_extract_strict_aborts_and_writes_nothing(videos, tmp_path, capsys):
    out = tmp_path / "feats"
    assert extract(videos, out, "--model", "cra-tiny-clip", "--random-weights", "--strict") == 2
    assert "1002.mp4" in capsys.readouterr().err
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]


def test_extract_refuses_to_overwrite_frame2time(videos, tmp_path, capsys):
    out = tmp_path / "feats"
    out.mkdir()
    f2t = write_json(out / "frame2time_val.json", {"keep": "me"})
    assert extract(videos, out, "--model", "cra-tiny-clip", "--random-weights") == 2
    assert f"{f2t} already exist(s); pass --overwrite to replace" in capsys.readouterr().err
    assert json.loads(f2t.read_text()) == {"keep": "me"} and not feature_path(out, "val").exists()
    assert extract(videos, out, "--model", "cra-tiny-clip", "--random-weights", "--overwrite") == 0
    assert sorted(json.loads(f2t.read_text())) == ["1001", "1003"]


def test_ctrl_c_in_extract_says_what_happened_without_traceback(videos, tmp_path, capsys, monkeypatch):
    import cra.extract

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cra.extract, "sample_video", interrupt)
    out = tmp_path / "feats"
    assert extract(videos, out, "--model", "cra-tiny-clip", "--random-weights") == 130
    err = capsys.readouterr().err
    assert "python -m cra extract-features: interrupted (Ctrl-C). Nothing was written" in err and "Traceback" not in err
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]


# ============================================================================================
# download and info
# ============================================================================================
def test_download_offline_names_the_url_and_the_file(tmp_path, capsys, monkeypatch):
    from cra import paths

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    assert cli.main(["download", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    first = paths.ANNOTATION_FILES["nextgqa/val.csv"]
    assert (
        f"download: error: could not download {first.url} to {tmp_path / 'nextgqa' / 'val.csv'}: "
        "[Errno -2] Name or service not known; check the network" in err
    )
    assert "Traceback" not in err and not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_info_verify_fails_on_missing_or_corrupt_files(tmp_path, capsys, monkeypatch):
    from cra import paths

    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    assert cli.main(["info", "--verify"]) == 1
    err = capsys.readouterr().err
    assert (
        f"info: error: {len(paths.ANNOTATION_FILES)} annotation file(s) under {tmp_path} failed verification: "
        "nextgqa/val.csv (missing)" in err
    )
    (tmp_path / "nextgqa").mkdir()
    (tmp_path / "nextgqa" / "val.csv").write_text("tampered")
    assert cli.main(["info", "--verify"]) == 1
    assert "nextgqa/val.csv (sha256 mismatch)" in capsys.readouterr().err
    assert cli.main(["info"]) == 0  # without --verify: a listing, not a check
