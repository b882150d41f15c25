"""Bias analysis: shortcut statistics on a hand-made table, and on the real annotations."""

from __future__ import annotations

import pandas as pd
import pytest

from cra import bias


def hand_table() -> pd.DataFrame:
    rows = [  # entities, candidate words (5 candidates), index of the correct one
        (("baby", "woman"), (("hold", "hand"), ("run",), ("hold", "cup"), ("sleep",), ("eat",)), 0),
        (("baby",), (("hand",), ("walk",), ("sit",), ("cry",), ("jump",)), 0),
        (("baby", "man"), (("run",), ("hand", "wave"), ("sit",), ("cry",), ("eat",)), 2),
    ]
    return pd.DataFrame(
        {
            "entities": [r[0] for r in rows],
            "candidate_words": [r[1] for r in rows],
            "answer_idx": [r[2] for r in rows],
            "answer_words": [r[1][r[2]] for r in rows],
            "answer": [" ".join(r[1][r[2]]) for r in rows],
        }
    )


def test_shortcut_counts_by_hand():
    table = hand_table()
    rules = bias.entity_answer_shortcuts(table, min_applicable=2, top=50)
    top = rules.iloc[0]
    # baby -> hand: applies to all 3 questions ("hand" in exactly one candidate), right in Q1 and Q2
    assert (top.entity, top.answer_word, top.applicable, top.correct) == ("baby", "hand", 3, 2)
    assert top.n_entity == 3 and top.n_both == 2
    assert top.p_word_given_entity == pytest.approx(2 / 3) and top.lift == pytest.approx(1.0)
    found = {(r.entity, r.answer_word): (r.applicable, r.correct) for r in rules.itertuples()}
    assert found[("baby", "sit")] == (2, 1) and found[("baby", "cry")] == (2, 0)
    assert ("baby", "hold") not in found  # "hold" is in two candidates of Q1: the rule cannot choose
    scored = bias.evaluate_shortcuts(table, [("woman", "hand"), ("baby", "hold")])
    assert scored[["applicable", "correct"]].values.tolist() == [[1, 1], [0, 0]]


def test_overlap_shortcut_by_hand():
    table = hand_table().assign(entities=[("baby", "hand"), ("cup",), ("wave", "sit")])
    # Q1: only candidate 0 contains "hand" -> applies, right; Q2: no candidate has "cup" -> n/a;
    # Q3: candidates 1 ("wave") and 2 ("sit") both overlap -> n/a
    assert bias.overlap_shortcut(table) == {"applicable": 1, "correct": 1, "accuracy": 1.0}
    table.at[2, "entities"] = ("wave",)
    assert bias.overlap_shortcut(table) == {"applicable": 2, "correct": 1, "accuracy": 0.5}


def test_wilson_lower_bound():
    assert bias.wilson_lower_bound(2, 3) == pytest.approx(0.2077, abs=1e-4)
    assert bias.wilson_lower_bound(0, 0) == 0.0
    assert bias.wilson_lower_bound(60, 100) > bias.wilson_lower_bound(3, 3)


def test_mentions_and_answer_distribution():
    table = hand_table()
    assert len(bias.questions_mentioning(table, ["baby", "woman"])) == 1
    dist = bias.answer_distribution(table, ["baby"])
    assert dist.attrs["num_questions"] == 3 and dist["count"].sum() == 3
    words = bias.answer_word_distribution(table, ["baby"])
    hand = words.set_index("word").loc["hand"]
    assert hand["count"] == 2 and hand["share"] == pytest.approx(2 / 3)
    assert hand["share_distractors"] == pytest.approx(1 / 12)  # Q3's candidate 1 of 12 distractors
    assert bias.answer_words("the baby's hand, a cup", {"the", "a"}) == ("baby's", "hand", "cup")


def test_plot_answer_words_headless():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    words = bias.answer_word_distribution(hand_table(), ["baby"])
    ax = bias.plot_answer_words(words)
    assert list(words["word"]) == ["hand", "hold", "sit"]
    assert ax.get_title() == "3 questions mentioning baby" and len(ax.patches) == 2 * 3
    plt.close(ax.figure)


@pytest.mark.real_data
def test_bias_on_real_val(nextgqa_dir):
    from cra.text.semantic_graph import ParserNotAvailableError, load_parser

    try:
        nlp = load_parser()
    except ParserNotAvailableError as err:
        pytest.skip(str(err))
    analysed = bias.analyse_questions(bias.load_qa_tables({"val": nextgqa_dir / "val.csv"}), nlp)
    assert len(analysed) == 3358
    coverage = bias.component_coverage(analysed)
    assert coverage["question"] == 1.0 and coverage["subject"] > 0.9
    words = bias.answer_word_distribution(analysed, ["baby", "woman"]).set_index("word")
    assert words.attrs["num_questions"] >= 20
    # the correct answers of "baby + woman" questions name the baby more often than the distractors do
    assert words.loc["baby", "share"] > words.loc["baby", "share_distractors"]
    overlap = bias.overlap_shortcut(analysed)  # measured: 314 / 866 on val
    assert overlap["applicable"] > 500 and overlap["accuracy"] > 0.3
    rules = bias.entity_answer_shortcuts(analysed, min_applicable=15, top=10)
    assert len(rules) == 10 and (rules["accuracy"] > 0.2).all()
