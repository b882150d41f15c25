"""Self-describing checkpoints: `Predictor.from_checkpoint` on a run made by `python -m cra train`,
from another working directory; checkpoints that would run code, or are damaged, are refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from cra import paths
from cra.checkpoint import CheckpointError, load_checkpoint
from cra.cli import main
from cra.predict import Predictor, config_from_checkpoint, predict_split
from cra.run import load_split

SYNTHETIC = paths.samples_dir() / "synthetic"


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    """A one-epoch CLI run on the committed synthetic world, trained with a *relative* data.root."""
    run = tmp_path_factory.mktemp("predictor") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(SYNTHETIC.parent)
        argv = ["train", "--config", "synthetic", "--run", str(run)]
        for item in (
            "data.root=synthetic",
            "data.limit=48",
            "train.epochs=1",
            "train.batch_size=16",
            "train.progress=false",
        ):
            argv += ["--set", item]
        assert main(argv) == 0
    return run


def test_predictor_answers_and_grounds_one_video_like_predict_split(synthetic_run, tmp_path, monkeypatch):
    from cra import metrics, readouts
    from cra.data import FeatureStore, feature_path, read_frame2time, read_gsub, read_qa_csv

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    import cra.predict
    import cra.run

    def no_data(*args, **kwargs):
        raise AssertionError("the Predictor read a data file")

    with monkeypatch.context() as mp:  # the Predictor needs the checkpoint only
        mp.setattr(cra.run, "load_split", no_data)
        mp.setattr(cra.predict, "load_split", no_data)
        mp.setattr(cra.run, "load_dictionaries", no_data)
        predictor = Predictor.from_checkpoint(synthetic_run / "best.pt", device="cpu")
    assert predictor.config.data.root == str(SYNTHETIC.resolve())  # stored absolute

    record = read_qa_csv(SYNTHETIC / "val.csv").records[3]
    frames, mask = FeatureStore(feature_path(SYNTHETIC, "val"), feature_dim=64, num_frames=32).get(record.video_id)
    times = read_frame2time(SYNTHETIC / "frame2time_val.json", num_frames=32)[record.video_id]
    duration = read_gsub(SYNTHETIC / "gsub_val.json")[record.video_id]["duration"]
    result = predictor(frames[mask], record.question, list(record.candidates), frame_times=times, duration=duration)

    config = predictor.config
    split = load_split(config, "val", grounding=True)
    reference = predict_split(predictor.model, split, config, torch.device("cpu"))
    assert result.answer == reference["qa"][record.key]["prediction"]
    assert result.probabilities.shape == (5,) and float(result.probabilities.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(result.weights, torch.tensor(reference["weights"][record.key]), atol=1e-6, rtol=1e-5)
    assert set(result.intervals) == {"window", "posthoc", "merge"}
    for readout, (start, end) in result.intervals.items():
        assert [start, end] == pytest.approx(reference["spans"][readout][record.key], abs=1e-5)
    assert times[0] <= result.intervals["posthoc"][0] <= result.intervals["posthoc"][1] <= times[-1]
    # without a duration the window scales by t_first + t_last (the released window: round(x d, 1))
    guessed = predictor(frames[mask], record.question, list(record.candidates), frame_times=times)
    assert guessed.duration == pytest.approx(times[0] + times[-1]) and result.duration == duration
    start, end = readouts.window_indices(result.weights.tolist(), predictor.config.model.window_sizes)
    assert list(guessed.intervals["window"]) == metrics.to_seconds([start / 31, end / 31], guessed.duration)
    assert guessed.intervals["posthoc"] == result.intervals["posthoc"]

    # the batched form gives the same reading, and videos of other lengths are padded and masked
    other = read_qa_csv(SYNTHETIC / "val.csv").records[0]
    short = torch.as_tensor(frames[:20])
    results = predictor.batch(
        [frames, short], [record.question, other.question], [list(record.candidates), list(other.candidates)]
    )
    assert results[0].answer == result.answer and results[1].weights.shape == (20,)
    torch.testing.assert_close(results[0].weights, result.weights, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match=r"frames\[0\]: expected a \(T, 64\) array"):
        predictor(frames[:, :10], record.question, list(record.candidates))
    with pytest.raises(ValueError, match=r"duration\[0\] = -1.0: expected a positive number of seconds"):
        predictor(frames, record.question, list(record.candidates), duration=-1)
    with pytest.raises(ValueError, match="2 videos, 2 questions, 2 candidate lists, 1 duration: expected one each"):
        predictor.batch([frames, short], [record.question] * 2, [list(record.candidates)] * 2, duration=[3.0])


def test_predict_command_works_from_another_directory(synthetic_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--run", str(synthetic_run), "--split", "val", "--out", "preds", "--no-progress"]) == 0
    assert (tmp_path / "preds" / "val_ground_posthoc.json").is_file()
    assert "Acc@QA" in capsys.readouterr().out


def test_training_predict_and_evaluate_agree_exactly(synthetic_run, tmp_path, capsys):
    """One read-out convention everywhere: the scores written by training (metrics.jsonl), by
    ``cra predict`` (its table and val_scores.json) and ``cra evaluate`` on predict's own files, with
    the matching --pred-format, are the same numbers for every read-out, exactly."""
    import json

    from cra import metrics

    out = tmp_path / "preds"
    assert main(["predict", "--run", str(synthetic_run), "--split", "val", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    scores = json.loads((out / "val_scores.json").read_text())
    spans = json.loads((out / "val_ground_posthoc.json").read_text())
    assert all(s == round(s, 10) for span in spans.values() for s in span)  # float64 seconds, no float32 noise
    data = SYNTHETIC
    common = ["evaluate", "--gsub", str(data / "gsub_val.json"), "--qa", str(out / "val-res.json"), "--json"]
    att, f2t = str(out / "val_ground_att.json"), str(data / "frame2time_val.json")
    ways = {
        "window": [["--pred", att, "--pred-format", "window"]],
        "posthoc": [["--pred", att, "--pred-format", "attention", "--frame2time", f2t]],
        "merge": [["--pred", att, "--pred-format", "window", "--merge-with", att, "--frame2time", f2t]],
    }
    for readout in ways:  # and each written span file, read as seconds
        ways[readout].append(["--pred", str(out / f"val_ground_{readout}.json"), "--pred-format", "seconds"])
    epoch = [json.loads(line) for line in (synthetic_run / "metrics.jsonl").read_text().splitlines()][-1]
    checked = 0
    for readout, runs in ways.items():
        for extra in runs:
            assert main([*common, *extra]) == 0
            row = json.loads(capsys.readouterr().out)
            for k in (*metrics.METRIC_KEYS, *metrics.DIAGNOSTIC_KEYS, "n"):
                assert row[k] == scores[readout][k], (readout, extra[3], k)
                checked += 1
        # training-time val scores of the selected epoch: the same function, so the same numbers
        assert {k: epoch["val"][readout][k] for k in metrics.METRIC_KEYS} == {
            k: scores[readout][k] for k in metrics.METRIC_KEYS
        }
    assert checked == 6 * (len(metrics.METRIC_KEYS) + len(metrics.DIAGNOSTIC_KEYS) + 1)


def test_checkpoints_are_plain_data(synthetic_run):
    for name in ("best.pt", "last.pt"):
        state = torch.load(synthetic_run / name, weights_only=True)  # raises if anything but plain data
        assert config_from_checkpoint(state).model.d_model == 64
    assert isinstance(torch.load(synthetic_run / "last.pt", weights_only=True)["rng"]["numpy"]["keys"], torch.Tensor)


class _CreatesMarker:
    """Unpickling this calls ``open(marker, "w")``: what a malicious checkpoint could do instead."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_that_would_run_code_is_refused_unexecuted(synthetic_run, tmp_path, capsys):
    marker = tmp_path / "marker"
    bad = tmp_path / "run" / "best.pt"
    bad.parent.mkdir()
    state = torch.load(synthetic_run / "best.pt", weights_only=True)
    torch.save({**state, "extra": _CreatesMarker(marker)}, bad)
    with pytest.raises(CheckpointError, match=rf"{bad}: refused: .*not loaded, so nothing in it ran"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="refused"):
        Predictor.from_checkpoint(bad)
    assert main(["predict", "--run", str(bad.parent), "--split", "val", "--no-progress"]) == 2
    assert f"{bad}: refused" in capsys.readouterr().err
    assert not marker.exists()
    torch.load(bad, weights_only=False)  # the unsafe reader would have run it: the test can fail
    assert marker.exists()


def test_a_truncated_or_foreign_checkpoint_names_the_file(synthetic_run, tmp_path):
    data = (synthetic_run / "best.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"{cut}: not a readable checkpoint, it may be truncated or damaged"):
        Predictor.from_checkpoint(cut)
    foreign = tmp_path / "foreign.pt"
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(2)}, buffer)
    foreign.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match=rf"{foreign}: not a cra checkpoint: missing \['model', 'config'\]"):
        Predictor.from_checkpoint(foreign)
    with pytest.raises(FileNotFoundError, match="absent.pt does not exist"):
        Predictor.from_checkpoint(tmp_path / "absent.pt")


def test_resume_from_a_truncated_last_checkpoint_names_the_file(synthetic_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(synthetic_run, run)
    data = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(data[: len(data) // 3])
    assert main(["train", "--run", str(run), "--resume"]) == 2
    assert f"{run / 'last.pt'}: not a readable checkpoint, it may be truncated or damaged" in capsys.readouterr().err
