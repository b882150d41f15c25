"""One reader per file: ``build-confounders``, ``bias-report`` and ``train`` read the same QA csv and
the same feature file through :mod:`cra.data`, so a bad file gives each command the same error."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from cra import cli
from cra.data import DataFormatError, FeatureStore, candidate_columns, read_qa_csv
from cra.data.keys import question_key, split_key

HEADER = "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4"
ROWS = [f"{100 + i},100,320,240,what did the man do {i},wave,{i},TN,run,wave,sit,eat,jump" for i in range(4)]
DIM = 64  # the synthetic run config's model.feature_dim


def write_root(root: Path, rows: list[str], *, header: str = HEADER, duplicate_video: bool = False) -> Path:
    """A data root in the official layout: ``nextgqa/train.csv`` and ``features/CLIPL/CLIPL_I_train.h5``."""
    (root / "nextgqa").mkdir(parents=True)
    (root / "nextgqa" / "train.csv").write_text("\n".join([header, *rows]) + "\n")
    (root / "features" / "CLIPL").mkdir(parents=True)
    ids = np.arange(100, 104)
    if duplicate_video:
        ids[1] = ids[0]
    with h5py.File(root / "features" / "CLIPL" / "CLIPL_I_train.h5", "w") as f:
        f["vid"] = ids
        f["CLIPL_I"] = np.random.default_rng(0).normal(size=(4, 32, DIM)).astype(np.float32)
    return root


def error_of(capsys, command: str) -> str:
    """The message a command printed as ``<command>: error: <message>``."""
    err = capsys.readouterr().err.strip().splitlines()[-1]
    prefix = f"{command}: error: "
    assert err.startswith(prefix), err
    return err[len(prefix) :]


def run_build(root: Path, tmp_path: Path, *, qa: bool, capsys) -> str:
    config = tmp_path / "build.yaml"
    config.write_text(yaml.safe_dump({
        "out": str(tmp_path / "conf.pt"), "data_root": str(root), "qa_csv": ["nextgqa/train.csv"] if qa else [],
        "features_h5": ["features/CLIPL/CLIPL_I_train.h5"], "text_encoder": {"name": "word", "dim": 16, "num_heads": 2},
        "text_clusters": 2, "visual_clusters": 2,
    }))  # fmt: skip
    assert cli.main(["build-confounders", "--config", str(config), "--no-progress"]) == 2
    assert not (tmp_path / "conf.pt").exists()  # nothing written
    return error_of(capsys, "build-confounders")


def run_train(root: Path, tmp_path: Path, capsys) -> str:
    args = [
        "train",
        "--config",
        "synthetic",
        "--run",
        str(tmp_path / "run"),
        "--set",
        f"data.root={root}",
        "--set",
        "data.annotations=nextgqa",
        "--set",
        "data.features=features",
    ]
    assert cli.main(args) == 2
    return error_of(capsys, "train")


def run_bias_report(root: Path, monkeypatch, capsys) -> str:
    monkeypatch.setenv("CRA_DATA_DIR", str(root))
    assert cli.main(["bias-report", "--splits", "train"]) == 2
    return error_of(capsys, "bias-report")


BAD_CSVS = {
    "answer not a candidate": (HEADER, [*ROWS[:2], ROWS[2].replace(",wave,2,", ",fly,2,"), ROWS[3]]),
    "missing column": (HEADER.replace(",type", ""), [r.replace(",TN,", ",") for r in ROWS]),
    "duplicate key": (HEADER, [*ROWS, ROWS[1]]),
    "empty candidate": (HEADER, [ROWS[0].replace(",jump", ","), *ROWS[1:]]),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_a_bad_qa_csv_gives_every_command_the_same_error(case, tmp_path, monkeypatch, capsys):
    pytest.importorskip("spacy")
    header, rows = BAD_CSVS[case]
    root = write_root(tmp_path / "data", rows, header=header)
    with pytest.raises(DataFormatError) as caught:
        read_qa_csv(root / "nextgqa" / "train.csv")
    expected = str(caught.value)
    assert str(root / "nextgqa" / "train.csv") in expected and "expected" in expected
    assert run_build(root, tmp_path, qa=True, capsys=capsys) == expected
    assert run_bias_report(root, monkeypatch, capsys) == expected
    assert run_train(root, tmp_path, capsys) == expected


def test_a_bad_feature_file_gives_build_and_train_the_same_error(tmp_path, capsys):
    root = write_root(tmp_path / "data", ROWS, duplicate_video=True)
    with pytest.raises(DataFormatError, match="video 100 already on row 0") as caught:
        FeatureStore(root / "features" / "CLIPL" / "CLIPL_I_train.h5", feature_dim=None)
    expected = str(caught.value)
    assert run_build(root, tmp_path, qa=False, capsys=capsys) == expected
    assert run_train(root, tmp_path, capsys) == expected


def test_non_finite_features_are_named_for_the_dictionary(tmp_path):
    root = write_root(tmp_path / "data", ROWS)
    path = root / "features" / "CLIPL" / "CLIPL_I_train.h5"
    store = FeatureStore(path, feature_dim=None)
    frames = store.all_frames()
    assert frames.shape == (4 * 32, DIM) and frames.dtype == np.float32
    with h5py.File(path, "r+") as f:
        f["CLIPL_I"][2, 5, 0] = np.nan
    with pytest.raises(DataFormatError, match=r"video 102 \(row 2 of 'CLIPL_I'\): NaN or inf"):
        FeatureStore(path, feature_dim=None).all_frames()


def test_qa_frame_has_the_checked_columns(tmp_path):
    root = write_root(tmp_path / "data", [ROWS[0], ROWS[1].replace(",wave,1,", ",3,1,")])
    qa = read_qa_csv(root / "nextgqa" / "train.csv")
    frame = qa.to_frame()
    assert list(frame.columns) == ["key", "video_id", "qid", "question", "type", "a0", "a1", "a2", "a3", "a4",
                                   "answer", "answer_idx"]  # fmt: skip
    assert frame["key"].tolist() == ["100_0", "101_1"]
    assert frame["answer"].tolist() == ["wave", "eat"] and frame["answer_idx"].tolist() == [1, 3]
    assert qa.qa_pairs() == [("what did the man do 0", "wave"), ("what did the man do 1", "eat")]
    assert candidate_columns(frame) == ["a0", "a1", "a2", "a3", "a4"]
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['answer_idx'\]"):
        candidate_columns(frame.drop(columns="answer_idx"))


def test_question_key_round_trips():
    assert question_key(4882821564, 1) == "4882821564_1"
    assert split_key(question_key("4882821564", "12")) == ("4882821564", "12")
    with pytest.raises(ValueError, match="not of the form"):
        split_key("4882821564")
