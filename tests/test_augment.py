"""The released training-data options (cra.data.augment): paraphrases, resampled distractors,
question-word groups; each off by default and seeded."""

from __future__ import annotations

import json
import shutil

import pytest

from cra import data
from cra.config import load_run_config
from cra.data import DataFormatError, FeatureStore, NextGQADataset
from cra.data.augment import (
    Augmentation,
    question_word,
    read_paraphrases,
    training_augmentation,
)
from cra.paths import DataNotFoundError, samples_dir
from cra.run import load_split

DIM = 8
HEADER = "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
STEMS = [
    "what did the man do",
    "what is the girl holding",
    "why did the dog run",
    "how many people are there",
    "where is the cat",
    "who is talking",
    "what colour is the car",
    "how does the boy climb",
]


@pytest.fixture()
def world(tmp_path):
    """48 questions on 12 videos, 8 question words, each row's right answer unique to it."""
    rows, videos = [], [str(v) for v in range(100, 112)]
    for i in range(48):
        v, q = videos[i % 12], i // 12
        rows.append(
            f"{v},90,640,480,{STEMS[i % 8]} {i},{i % 5},{q},{('CW', 'TN', 'CH')[i % 3]},"
            + ",".join(f"ans{i}_{k}" for k in range(5))
            + "\n"
        )
    (tmp_path / "train.csv").write_text(HEADER + "".join(rows))
    qa = data.read_qa_csv(tmp_path / "train.csv")
    store = FeatureStore(
        data.write_synthetic_features(tmp_path, "train", videos, num_frames=4, feature_dim=DIM),
        feature_dim=DIM,
        num_frames=4,
    )
    return qa, store


def paraphrase_file(path, records, n=3):
    """A hand-made file in the released format, for every other question."""
    entries = {r.key: {"ori": r.question, "gen": [f"para{k} of {r.question}?" for k in range(n)]} for r in records[::2]}
    path.write_text(json.dumps(entries))
    return path


def test_question_word_groups():
    cases = {
        "what did he do": "whata",
        "What is it": "whatb",
        "what colour": "whato",
        "how many cats": "howm",
        "how does it": "how",
        "why did": "why",
        "who": "who",
        "which one": "which",
        "where": "where",
        "when did": "other",
        "is it": "other",
        "": "other",
    }
    assert {q: question_word(q) for q in cases} == cases


def test_paraphrase_file_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="train_gpt4_sub.json.*paraphrase_prob"):
        read_paraphrases(tmp_path / "train_gpt4_sub.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"1_0": {"ori": "q", "gen": []}}))
    with pytest.raises(DataFormatError, match="'1_0'"):
        read_paraphrases(bad)
    with pytest.raises(ValueError, match="paraphrase_prob"):
        Augmentation(paraphrase_prob=0.3)


def test_paraphrases_replace_the_question_everywhere(world, tmp_path):
    qa, store = world
    para = read_paraphrases(paraphrase_file(tmp_path / "p.json", qa.records))
    ds = NextGQADataset(qa, store, augment=Augmentation(para, paraphrase_prob=1.0))
    for i, r in enumerate(qa.records):
        item = ds[i]
        if r.key in para:
            assert item["question"] in [g.rstrip("?") for g in para[r.key]] and "?" not in item["question"]
        else:
            assert item["question"] == r.question
        assert item["question_candidates"][item["question_answer"]] == item["question"]
        assert r.question not in [q for k, q in enumerate(item["question_candidates"]) if k != item["question_answer"]]
        assert all(t.startswith(item["question"] + "? ") for t in item["qa_texts"])
    # p = 0.3: about 30 % of the 24 covered questions, over 10 epochs (seeds)
    ds = NextGQADataset(qa, store, augment=Augmentation(para, paraphrase_prob=0.3))
    hits = 0
    for seed in range(10):
        ds.seed = seed
        hits += sum(ds[i]["question"] != r.question for i, r in enumerate(qa.records))
    assert 0.2 < hits / 240 < 0.4


def test_resampled_distractors_come_from_the_group(world):
    qa, store = world
    ds = NextGQADataset(qa, store, negative_groups="question_word", augment=Augmentation(answer_resample_prob=1.0))
    right = {r.candidates[r.answer]: question_word(r.question) for r in qa.records}
    for i, r in enumerate(qa.records):
        item = ds[i]
        assert item["candidates"][item["answer"]] == r.candidates[r.answer]
        distractors = [a for k, a in enumerate(item["candidates"]) if k != item["answer"]]
        assert len(set(distractors)) == 4 and r.candidates[r.answer] not in distractors
        assert all(right[a] == question_word(r.question) for a in distractors)  # 6 right answers per group
        assert item["qa_texts"][item["answer"]].endswith(r.candidates[r.answer])
    assert ds[3]["candidates"] == ds[3]["candidates"]  # seeded


def test_question_word_negatives(world):
    qa, store = world
    ds = NextGQADataset(qa, store, same_video_prob=0.0, negative_groups="question_word")
    for i in range(len(ds)):
        item = ds[i]
        assert all(question_word(q) == question_word(item["question"]) for q in item["question_candidates"])
    with pytest.raises(ValueError, match="negative_groups"):
        NextGQADataset(qa, store, negative_groups="csv")


def test_off_draws_nothing(world):
    """Options off (or an Augmentation with zero probabilities): the very same items as before."""
    qa, store = world
    plain = NextGQADataset(qa, store)
    zero = NextGQADataset(qa, store, augment=Augmentation({}, 0.0, 0.0))
    for i in range(0, len(plain), 5):
        a, b = plain[i], zero[i]
        assert {k: v for k, v in a.items() if k not in ("frames", "frame_mask")} == {
            k: v for k, v in b.items() if k not in ("frames", "frame_mask")
        }


def test_released_preset_reads_the_file_for_training_only(tmp_path):
    root = tmp_path / "synthetic"
    shutil.copytree(samples_dir() / "synthetic", root)
    config, _ = load_run_config(["synthetic", "variants/released_code"], [f"data.root={root}"])
    assert config.data.paraphrase_prob == 0.3 and config.data.negative_groups == "question_word"
    assert training_augmentation(load_run_config(["synthetic"], [])[0].data, root) is None  # default: off
    with pytest.raises(DataNotFoundError, match=str(root / "train_gpt4_sub.json")):
        load_split(config, "train", grounding=False)
    paraphrase_file(root / "train_gpt4_sub.json", data.read_qa_csv(root / "train.csv").records)
    train = load_split(config, "train", grounding=False).dataset
    assert train.augment.paraphrase_prob == 0.3 and train.augment.answer_resample_prob == 0.3
    assert load_split(config, "val", grounding=True).dataset.augment is None
    questions = [train[i]["question"] for i in range(len(train))]
    assert sum(q.startswith("para") for q in questions) > 0


def test_the_real_paraphrase_file_reads_when_present():
    from cra.paths import data_dir, has_data

    if not has_data("nextgqa/train_gpt4_sub.json"):
        pytest.skip(f"real data absent: nextgqa/train_gpt4_sub.json not under {data_dir()} (set CRA_DATA_DIR)")
    paraphrases = read_paraphrases(data_dir() / "nextgqa" / "train_gpt4_sub.json")
    assert len(paraphrases) > 1000 and all(len(g) >= 1 for g in paraphrases.values())
    assert all("_" in key for key in paraphrases)  # "<video_id>_<qid>"
