"""Blind (language-only) answerers: hand-checked scores, tie handling, a learnable shortcut."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cra import blind


def table(rows) -> pd.DataFrame:
    """rows: (question, [5 candidates], index of the right one)."""
    return pd.DataFrame(
        [{"question": q, **{f"a{k}": c for k, c in enumerate(cands)}, "answer_idx": a} for q, cands, a in rows]
    )


HAND = table(
    [
        ("why did the baby cry", ["the baby is hungry", "dog barks", "rain", "she sings", "play"], 0),
        ("what is the man holding", ["cup", "a red ball", "man's hat", "nothing", "phone"], 4),
        ("how does the girl react", ["laughs", "cries", "runs", "jumps", "claps"], 3),
    ]
)


def test_words_and_overlap_scores_by_hand():
    assert blind.words("The baby's Hungry baby!") == frozenset({"baby", "s", "hungry"})
    scores = blind.overlap_scores(HAND)
    # Q1: only "the baby is hungry" repeats a question word ("baby"; "the", "is" are stop words)
    # Q2: "man's hat" repeats "man"; Q3: no candidate repeats "girl" or "react"
    assert scores.tolist() == [[1, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]


def test_expected_accuracy_breaks_ties_uniformly():
    scores = blind.overlap_scores(HAND)
    # Q1 right (1), Q2 wrong (0), Q3 a five-way tie holding the answer (1/5)
    assert blind.expected_accuracy(scores, HAND["answer_idx"]) == pytest.approx((1 + 0 + 0.2) / 3)
    assert blind.expected_accuracy(np.array([[2.0, 2.0, 0.0]]), [1]) == 0.5
    with pytest.raises(ValueError, match="answer_idx"):
        blind.expected_accuracy(np.zeros((2, 5)), [0])


def test_choice_features_by_hand():
    X, vocab = blind.choice_features(HAND, min_count=1)
    assert X.shape == (15, 3 + len(vocab))
    first = X[0].toarray()[0]  # "the baby is hungry" in Q1
    assert first[0] == 1 and first[1] == pytest.approx(2 / 5) and first[2] == 0  # shares no word with the others
    assert first[3 + vocab["baby"]] == 1 and first[3 + vocab["hungry"]] == 1 and first[3:].sum() == 2
    _, vocab2 = blind.choice_features(HAND, min_count=2)
    assert vocab2 == {}  # no candidate word appears twice


def test_classifier_learns_a_planted_shortcut_and_transfers():
    rng = np.random.default_rng(0)
    fillers = ["walk", "sit", "jump", "wave", "look", "eat", "sleep", "read"]

    def world(n):
        rows = []
        for _ in range(n):
            right = int(rng.integers(5))
            cands = [f"{rng.choice(fillers)} {rng.choice(fillers)}" for _ in range(5)]
            cands[right] = f"smile {rng.choice(fillers)}"  # the shortcut: the right answer says "smile"
            rows.append(("what does the person do", cands, right))
        return table(rows)

    train, test = world(200), world(100)
    model = blind.BlindAnswerer(C=1.0, min_count=1).fit(train)
    assert blind.expected_accuracy(model.scores(test), test["answer_idx"]) > 0.95
    assert model.top_words(1)["word"].iloc[0] == "smile"
    assert model.predict(test).shape == (100,)
    assert blind.cross_validated_accuracy(train, C=1.0, folds=4, min_count=1) > 0.95
    with pytest.raises(RuntimeError, match="fit"):
        blind.BlindAnswerer().scores(test)


def test_bad_table_is_a_clear_error():
    with pytest.raises(ValueError, match="answer_idx"):
        blind.overlap_scores(pd.DataFrame({"question": ["q"], "a0": ["x"]}))


@pytest.mark.real_data
def test_blind_baselines_on_real_annotations(nextgqa_dir):
    from cra.bias import load_qa_tables

    val = load_qa_tables({"val": nextgqa_dir / "val.csv"})
    test = load_qa_tables({"test": nextgqa_dir / "test.csv"})
    overlap = blind.expected_accuracy(blind.overlap_scores(test), test["answer_idx"])
    model = blind.BlindAnswerer(C=0.1).fit(val)
    learned = blind.expected_accuracy(model.scores(test), test["answer_idx"])
    # measured: 0.255 (overlap) and 0.284 (classifier fitted on val) on test; chance 0.2
    assert 0.22 < overlap < 0.30 and 0.24 < learned < 0.35
