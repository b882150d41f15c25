"""HDF5 feature layout (synthetic files), uniform sampling, and model-ready batches."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from cra import data
from cra.data import DataFormatError, FeatureStore, NextGQADataset, collate, make_loader
from cra.paths import DataNotFoundError

DIM = 16
HEADER = "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"


def qa_csv(tmp_path, videos=("100", "200", "300"), per_video=3):
    lines = []
    for v in videos:
        for q in range(per_video):
            kind = ("CW", "TN", "CH")[q % 3]
            lines.append(
                f"{v},90,640,480,question {q} about video {v},{q % 5},{q},{kind},a{v}0,a{v}1,a{v}2,a{v}3,a{v}4\n"
            )
    path = tmp_path / "val.csv"
    path.write_text(HEADER + "".join(lines))
    return data.read_qa_csv(path)


def test_layout_and_uniform_sampling(tmp_path):
    assert data.feature_path(tmp_path, "val") == tmp_path / "CLIPL" / "CLIPL_I_val.h5"
    assert data.uniform_indices(64, 32).tolist() == np.linspace(0, 63, 32).astype(int).tolist()
    assert data.uniform_indices(64, 32)[[0, 1, -1]].tolist() == [0, 2, 63]  # floor(63 * i / 31)
    assert data.uniform_indices(20, 32).tolist() == list(range(20))
    feats = np.arange(2 * 64 * DIM, dtype=np.float32).reshape(2, 64, DIM)
    path = data.write_feature_file(data.feature_path(tmp_path, "val"), [100, 200], feats)
    with h5py.File(path, "r") as f:
        assert set(f) == {"vid", "CLIPL_I"} and f["CLIPL_I"].shape == (2, 64, DIM)
    store = FeatureStore(path, feature_dim=DIM)
    assert store.video_ids == ["100", "200"] and "200" in store  # integer ids read as strings
    frames, mask = store.get("200")
    assert frames.shape == (32, DIM) and mask.all()
    np.testing.assert_array_equal(frames, feats[1, data.uniform_indices(64, 32)])


def test_short_videos_are_padded_and_masked(tmp_path):
    path = data.write_feature_file(tmp_path / "CLIPL" / "CLIPL_I_val.h5", ["a", "b"], np.ones((2, 20, DIM)))
    frames, mask = FeatureStore(path, feature_dim=DIM).get("a")
    assert mask.sum() == 20 and not mask[20:].any() and (frames[20:] == 0).all() and (frames[:20] == 1).all()


def test_synthetic_writer(tmp_path):
    path = data.write_synthetic_features(tmp_path, "train", ["1", "2", "3"], num_frames=8, feature_dim=DIM, seed=3)
    store = FeatureStore(path, feature_dim=DIM, num_frames=8)
    frames, _ = store.get("2")
    assert np.allclose(np.linalg.norm(frames, axis=-1), 1.0, atol=1e-5)
    again = data.write_synthetic_features(
        tmp_path / "b", "train", ["1", "2", "3"], num_frames=8, feature_dim=DIM, seed=3
    )
    np.testing.assert_array_equal(FeatureStore(again, feature_dim=DIM, num_frames=8).get("2")[0], frames)
    assert not list(path.parent.glob("*.part"))  # written atomically


def test_feature_file_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"missing feature file .*CLIPL_I_val.h5: expected the official layout"):
        FeatureStore(data.feature_path(tmp_path, "val"))
    path = data.write_feature_file(data.feature_path(tmp_path, "val"), ["1"], np.zeros((1, 4, DIM)))
    with pytest.raises(
        DataFormatError, match=r"CLIPL_I_val.h5: dataset 'CLIPL_I': feature dimension 16 .*expected dimension 768"
    ):
        FeatureStore(path)
    with h5py.File(tmp_path / "CLIPL_I_test.h5", "w") as f:
        f.create_dataset("CLIPL_I", data=np.zeros((1, 4, DIM)))
    with pytest.raises(DataFormatError, match=r"dataset 'vid': absent"):
        FeatureStore(tmp_path / "CLIPL_I_test.h5", feature_dim=DIM)
    (tmp_path / "CLIPL_I_x.h5").write_text("not hdf5")
    with pytest.raises(DataFormatError, match="not readable as HDF5"):
        FeatureStore(tmp_path / "CLIPL_I_x.h5", feature_dim=DIM)
    dup = data.write_feature_file(tmp_path / "d" / "CLIPL_I_val.h5", ["1", "1"], np.zeros((2, 4, DIM)))
    with pytest.raises(DataFormatError, match=r"row 1: video 1 already on row 0"):
        FeatureStore(dup, feature_dim=DIM)


def test_dataset_batches(tmp_path):
    qa = qa_csv(tmp_path)
    store = FeatureStore(
        data.write_synthetic_features(tmp_path, "val", ["100", "200", "300"], feature_dim=DIM), feature_dim=DIM
    )
    ds = NextGQADataset(qa, store)
    assert len(ds) == 9
    batch = next(iter(make_loader(ds, batch_size=4)))
    assert batch["frames"].shape == (4, 32, DIM) and batch["frames"].dtype == torch.float32
    assert (
        batch["frame_mask"].shape == (4, 32) and batch["frame_mask"].dtype == torch.bool and batch["frame_mask"].all()
    )
    assert batch["answer"].tolist() == [0, 1, 2, 0]
    assert batch["key"] == ["100_0", "100_1", "100_2", "200_0"]
    assert len(batch["qa_texts"]) == 4 and len(batch["qa_texts"][0]) == 5
    assert batch["qa_texts"][1][1] == "question 1 about video 100? a1001"
    assert batch["candidates"][1][1] == "a1001" and batch["question"][1] == "question 1 about video 100"
    for b in range(4):
        qc, idx = batch["question_candidates"][b], batch["question_answer"][b].item()
        assert len(qc) == 5 and qc[idx] == batch["question"][b]
        assert len(set(qc)) == 5  # four distinct negatives
    np.testing.assert_array_equal(batch["frames"][3].numpy(), store.get("200")[0])
    # seeded: the same negatives on every access; seed=None: they vary
    assert ds[5]["question_candidates"] == ds[5]["question_candidates"]
    free = NextGQADataset(qa, store, seed=None)
    assert len({tuple(free[5]["question_candidates"]) for _ in range(20)}) > 1


def test_question_negatives_follow_video_or_type(tmp_path):
    qa = qa_csv(tmp_path, videos=[str(v) for v in range(100, 112)], per_video=6)
    store = FeatureStore(
        data.write_synthetic_features(
            tmp_path, "val", [str(v) for v in range(100, 112)], num_frames=4, feature_dim=DIM
        ),
        feature_dim=DIM,
        num_frames=4,
    )
    types = {r.question: r.type for r in qa.records}
    videos = {r.question: r.video_id for r in qa.records}
    for prob, check in ((1.0, "video"), (0.0, "type")):
        ds = NextGQADataset(qa, store, same_video_prob=prob)
        for i in range(0, len(ds), 7):
            item = ds[i]
            negatives = [q for q in item["question_candidates"] if q != item["question"]]
            if check == "video":  # 5 other questions of the same video exist
                assert all(videos[q] == item["video_id"] for q in negatives)
            else:
                assert all(types[q] == item["type"] for q in negatives)


def test_collate_pads_to_the_longest():
    items = [
        {
            "frames": torch.ones(t, 3),
            "frame_mask": torch.ones(t, dtype=torch.bool),
            "answer": 0,
            "question_answer": 1,
            **{
                k: k
                for k in ("question", "candidates", "qa_texts", "question_candidates", "key", "video_id", "qid", "type")
            },
        }
        for t in (2, 4)
    ]
    batch = collate(items)
    assert batch["frames"].shape == (2, 4, 3) and batch["frame_mask"].sum(1).tolist() == [2, 4]


def test_dataset_errors_and_skipping(tmp_path):
    qa = qa_csv(tmp_path)
    feats = np.ones((2, 8, DIM), dtype=np.float32)
    feats[1, 3, 5] = np.nan  # video 200 is broken; video 300 has no features
    store = FeatureStore(
        data.write_feature_file(data.feature_path(tmp_path, "val"), ["100", "200"], feats), feature_dim=DIM
    )
    with pytest.raises(
        DataFormatError, match=r"CLIPL_I_val.h5: video 200 \(csv .*val.csv row 3, key 200_0\): NaN or inf"
    ):
        NextGQADataset(qa, store)
    with pytest.raises(
        DataFormatError, match=r"video 200 \(row 1 of 'CLIPL_I'\): NaN or inf in its features; expected finite"
    ):
        store.get("200")
    with pytest.warns(UserWarning, match=r"skipped 3 bad row\(s\): 300_0, 300_1, 300_2"):
        no_check = NextGQADataset(qa, FeatureStore(store.path, feature_dim=DIM), check_finite=False, skip_bad_rows=True)
    with pytest.raises(DataFormatError, match="NaN or inf"):  # caught lazily on access
        no_check[3]
    only_100 = data.write_feature_file(tmp_path / "b" / "CLIPL_I_val.h5", ["100"], np.ones((1, 8, DIM)))
    with pytest.raises(DataFormatError, match=r"video 200 \(csv .*row 3, key 200_0\): no features in dataset 'vid'"):
        NextGQADataset(qa, FeatureStore(only_100, feature_dim=DIM))
    with pytest.warns(UserWarning, match=r"skipped 6 bad row\(s\): 200_0, 200_1, 200_2, 300_0, 300_1, 300_2"):
        ds = NextGQADataset(qa, store, skip_bad_rows=True)
    assert (
        len(ds) == 3
        and ds.skipped.count == 6
        and "NaN" in ds.skipped.reasons[0]
        and "no features" in ds.skipped.reasons[3]
    )


def test_dataset_with_num_workers_reopens_the_file(tmp_path):
    qa = qa_csv(tmp_path, per_video=2)
    store = FeatureStore(
        data.write_synthetic_features(tmp_path, "val", ["100", "200", "300"], feature_dim=DIM), feature_dim=DIM
    )
    store.get("100")  # open a handle in this process first
    keys = [k for batch in make_loader(NextGQADataset(qa, store), batch_size=2, num_workers=1) for k in batch["key"]]
    assert keys == [r.key for r in qa.records]


def test_real_val_questions_with_synthetic_features(tmp_path, nextgqa_dir):
    qa = data.read_qa_csv(nextgqa_dir / "val.csv")
    videos = sorted({r.video_id for r in qa.records})
    store = FeatureStore(
        data.write_synthetic_features(tmp_path, "val", videos, num_frames=32, feature_dim=8), feature_dim=8
    )
    ds = NextGQADataset(qa, store)
    batch = next(iter(make_loader(ds, batch_size=8)))
    assert batch["frames"].shape == (8, 32, 8) and len(ds) == 3358
    assert batch["key"][0] == qa.records[0].key and batch["answer"][0].item() == qa.records[0].answer
    assert all(len(set(qc)) == 5 for qc in batch["question_candidates"])
