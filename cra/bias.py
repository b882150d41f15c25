"""Language bias in the QA annotations: which question words predict which answers.

This is the evidence behind the linguistic confounder ``Z_l``: if "baby" and "woman" in a question
make one answer far more likely, whatever the video shows, a model can be right for the wrong
reason (the paper's Figure 1b). Everything here reads only the QA text.

* :func:`analyse_questions` parses every question (spaCy) into the eight graph components of
  :mod:`cra.text.semantic_graph`, plus the question's *entities* (lemmas of its nouns) and the
  *answer words* (lower-case words of the correct answer, without English stop words).
* :func:`answer_distribution`: the correct answers of the questions that mention given entities.
* :func:`entity_answer_shortcuts`: rules "if the question mentions entity e, choose the candidate
  that contains word w", scored on the multiple-choice data itself (see its docstring).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import pandas as pd

from cra.data import candidate_columns, read_qa_csv
from cra.text.semantic_graph import NODE_NAMES, WH_TAGS, components_from_docs, parse_texts

if TYPE_CHECKING:
    from spacy.language import Language

ENTITY_UPOS = frozenset({"NOUN", "PROPN"})
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def load_qa_tables(csv_paths: Mapping[str, Path | str]) -> pd.DataFrame:
    """The QA csv files ``{split: path}``, read and checked by :func:`cra.data.read_qa_csv`, stacked into
    one table (the columns of :meth:`cra.data.QAFile.to_frame` and ``split``)."""
    tables = [read_qa_csv(Path(path)).to_frame().assign(split=split) for split, path in csv_paths.items()]
    return pd.concat(tables, ignore_index=True)


def _stop_words(nlp: "Language") -> frozenset[str]:
    return frozenset(w.lower() for w in nlp.Defaults.stop_words)


def answer_words(text: str, stop_words: Iterable[str]) -> tuple[str, ...]:
    """Distinct lower-case words (two letters or more) of an answer, in order, without stop words."""
    stop = stop_words if isinstance(stop_words, (set, frozenset)) else set(stop_words)
    return tuple(dict.fromkeys(w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in stop))


def analyse_questions(
    table: pd.DataFrame,
    nlp: "Language | None" = None,
    *,
    rules: str = "wh",
    batch_size: int = 256,
    progress: bool = False,
) -> pd.DataFrame:
    """``table`` (from :func:`load_qa_tables`) plus, for every question, its eight components
    (strings, lists joined by spaces), ``entities`` (tuple of noun lemmas of the question, wh-words
    excluded) and ``answer_words`` / ``candidate_words`` (tuples; the latter one tuple per candidate)."""
    from cra.text.semantic_graph import load_parser

    nlp = nlp if nlp is not None else load_parser()
    stop = _stop_words(nlp)
    docs = parse_texts(list(table["question"]) + list(table["answer"]), nlp, batch_size=batch_size, progress=progress)
    rows = []
    for question, answer in zip(table["question"], table["answer"]):
        q_doc = docs[question]
        components = components_from_docs(q_doc, docs[answer], rules)
        entities = tuple(
            dict.fromkeys(t.lemma_.lower() for t in q_doc if t.pos_ in ENTITY_UPOS and t.tag_ not in WH_TAGS)
        )
        rows.append([*components.node_texts(), entities, answer_words(answer, stop)])
    extra = pd.DataFrame(rows, columns=[*(f"c_{n}" for n in NODE_NAMES), "entities", "answer_words"], index=table.index)
    out = pd.concat([table, extra.drop(columns=["c_question", "c_answer"])], axis=1)
    out = out.rename(columns={f"c_{n}": n for n in NODE_NAMES})
    columns = candidate_columns(table)
    out["candidate_words"] = [
        tuple(answer_words(str(row[c]), stop) for c in columns) for row in table.to_dict("records")
    ]
    return out


def component_coverage(analysed: pd.DataFrame) -> pd.Series:
    """Share of questions whose component is not empty, for each of the eight nodes."""
    return pd.Series(
        {name: float((analysed[name].astype(str) != "").mean()) for name in NODE_NAMES}, name="non-empty share"
    )


def questions_mentioning(analysed: pd.DataFrame, entities: Sequence[str]) -> pd.DataFrame:
    """The rows whose question mentions every one of ``entities`` (noun lemmas, e.g. "woman")."""
    wanted = {e.lower() for e in entities}
    return analysed[[wanted <= set(found) for found in analysed["entities"]]]


def answer_distribution(analysed: pd.DataFrame, entities: Sequence[str], top: int = 10) -> pd.DataFrame:
    """The correct answers of the questions that mention all ``entities`` (Figure 1b of the paper):
    columns ``answer``, ``count``, ``share``, most frequent first; ``attrs["num_questions"]``."""
    subset = questions_mentioning(analysed, entities)
    counts = subset["answer"].value_counts()
    out = pd.DataFrame({"answer": counts.index, "count": counts.values})
    out["share"] = out["count"] / max(len(subset), 1)
    out = out.head(top).reset_index(drop=True)
    out.attrs["num_questions"] = len(subset)
    out.attrs["entities"] = tuple(entities)
    return out


def answer_word_distribution(analysed: pd.DataFrame, entities: Sequence[str], top: int = 10) -> pd.DataFrame:
    """Like :func:`answer_distribution` but over answer words, for the questions mentioning all
    ``entities``: ``word``, ``count`` (questions whose correct answer contains it), ``share`` (of
    those questions), ``share_distractors`` (share of their wrong candidates that contain it: the
    fair baseline in a multiple-choice test) and ``share_all`` (correct answers of all questions)."""
    subset = questions_mentioning(analysed, entities)
    inside = Counter(w for words in subset["answer_words"] for w in words)
    overall = Counter(w for words in analysed["answer_words"] for w in words)
    distractors = Counter()
    num_distractors = 0
    for candidate_words, answer_idx in zip(subset["candidate_words"], subset["answer_idx"]):
        for k, words in enumerate(candidate_words):
            if k != answer_idx:
                distractors.update(words)
                num_distractors += 1
    rows = [
        (w, n, n / max(len(subset), 1), distractors[w] / max(num_distractors, 1), overall[w] / len(analysed))
        for w, n in inside.most_common(top)
    ]
    out = pd.DataFrame(rows, columns=["word", "count", "share", "share_distractors", "share_all"])
    out.attrs["num_questions"] = len(subset)
    out.attrs["entities"] = tuple(entities)
    return out


def wilson_lower_bound(successes: int, trials: int, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval of a proportion (95% for z=1.96): a ranking that
    does not reward a 3-out-of-3 rule over a 60-out-of-100 one."""
    if trials == 0:
        return 0.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * ((p * (1 - p) + z * z / (4 * trials)) / trials) ** 0.5
    return (centre - spread) / (1 + z * z / trials)


def _rule_counts(analysed: pd.DataFrame) -> dict[str, Counter]:
    """Counts behind :func:`entity_answer_shortcuts`, one pass over the questions."""
    counts = {name: Counter() for name in ("n_entity", "n_word", "n_both", "applicable", "correct")}
    for entities, words, candidate_words, answer_idx in zip(
        analysed["entities"], analysed["answer_words"], analysed["candidate_words"], analysed["answer_idx"]
    ):
        counts["n_entity"].update(entities)
        counts["n_word"].update(words)
        counts["n_both"].update((e, w) for e in entities for w in words)
        holders = Counter(w for cand in candidate_words for w in cand)  # how many candidates contain w
        owner = {w: k for k, cand in enumerate(candidate_words) for w in cand if holders[w] == 1}
        for e in entities:
            for w, k in owner.items():  # the rule (e, w) applies: exactly one candidate contains w
                counts["applicable"][e, w] += 1
                counts["correct"][e, w] += k == answer_idx
    return counts


_RULE_COLUMNS = ["entity", "answer_word", "applicable", "correct", "accuracy", "accuracy_lb", "n_entity", "n_both",
                 "p_word_given_entity", "p_word", "lift"]  # fmt: skip


def _rule_rows(counts: dict[str, Counter], pairs: Iterable[tuple[str, str]], n_total: int) -> list[tuple]:
    rows = []
    for e, w in pairs:
        n_app, n_ok = counts["applicable"][e, w], counts["correct"][e, w]
        n_e = counts["n_entity"][e]
        p_w_e = counts["n_both"][e, w] / n_e if n_e else float("nan")
        p_w = counts["n_word"][w] / n_total if n_total else float("nan")
        rows.append((e, w, n_app, n_ok, n_ok / n_app if n_app else float("nan"), wilson_lower_bound(n_ok, n_app),
                     n_e, counts["n_both"][e, w], p_w_e, p_w, p_w_e / p_w if p_w else float("nan")))  # fmt: skip
    return rows


def entity_answer_shortcuts(
    analysed: pd.DataFrame,
    *,
    min_applicable: int = 20,
    top: int = 20,
    exclude_same_word: bool = True,
) -> pd.DataFrame:
    r"""The most predictive rules "question mentions entity e -> choose the candidate containing w".

    For a question that mentions ``e`` and has exactly one candidate containing ``w``, the rule picks
    that candidate; ``applicable`` counts those questions and ``correct`` how often the pick is the
    right answer, so ``accuracy = correct / applicable`` is the rule's multiple-choice accuracy
    (chance: 1/5) and ``accuracy_lb`` the lower end of its 95% Wilson interval. Also reported:
    ``n_entity`` (questions mentioning ``e``), ``n_both`` (of them, those whose correct answer
    contains ``w``), $P(w \mid e)$ = ``n_both / n_entity``, the overall $P(w)$ and
    ``lift`` $= P(w \mid e) / P(w)$. Rules applicable to fewer than ``min_applicable`` questions are
    dropped; the rest are sorted by ``accuracy_lb``. ``exclude_same_word`` drops ``w == e`` (an answer
    repeating the question's own noun).
    """
    counts = _rule_counts(analysed)
    pairs = [
        (e, w) for (e, w), n in counts["applicable"].items()
        if n >= min_applicable and not (exclude_same_word and e == w)
    ]  # fmt: skip
    out = pd.DataFrame(_rule_rows(counts, pairs, len(analysed)), columns=_RULE_COLUMNS)
    return out.sort_values(["accuracy_lb", "applicable"], ascending=False).head(top).reset_index(drop=True)


def evaluate_shortcuts(analysed: pd.DataFrame, rules: pd.DataFrame | Iterable[tuple[str, str]]) -> pd.DataFrame:
    """The same statistics for given ``(entity, answer_word)`` rules on another set of questions,
    for example rules found on val, scored on test: does the shortcut carry over?"""
    if isinstance(rules, pd.DataFrame):
        rules = zip(rules["entity"], rules["answer_word"])
    return pd.DataFrame(_rule_rows(_rule_counts(analysed), list(rules), len(analysed)), columns=_RULE_COLUMNS)


def overlap_shortcut(analysed: pd.DataFrame) -> dict[str, float]:
    """The rule "choose the only candidate that repeats a noun of the question" (lexical overlap).

    ``applicable``: questions where exactly one candidate contains one of the question's entities;
    ``correct``: how often that candidate is the right answer; ``accuracy`` (chance: 0.2)."""
    applicable = correct = 0
    for entities, candidate_words, answer_idx in zip(
        analysed["entities"], analysed["candidate_words"], analysed["answer_idx"]
    ):
        entity_set = set(entities)
        hits = [k for k, words in enumerate(candidate_words) if entity_set & set(words)]
        if len(hits) == 1:
            applicable += 1
            correct += hits[0] == answer_idx
    return {
        "applicable": applicable,
        "correct": correct,
        "accuracy": correct / applicable if applicable else float("nan"),
    }


def entity_answer_cooccurrence(analysed: pd.DataFrame, entities: Sequence[str], words: Sequence[str]) -> pd.DataFrame:
    """Counts of questions mentioning entity (rows) whose correct answer contains word (columns)."""
    counts = Counter(
        (e, w) for ents, ws in zip(analysed["entities"], analysed["answer_words"]) for e in ents for w in ws
    )
    return pd.DataFrame([[counts[e, w] for w in words] for e in entities], index=list(entities), columns=list(words))


def plot_answer_words(words: pd.DataFrame, ax=None, *, title: str | None = None):
    """Bar chart of :func:`answer_word_distribution`: each word's share among the correct answers
    next to its share among the distractors (the paper's Figure 1b, by words). Returns the axes."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(words))
    ax.bar(x - 0.2, words["share"], width=0.4, label="correct answers", color="#3d85c6")
    ax.bar(x + 0.2, words["share_distractors"], width=0.4, label="distractors", color="#bbbbbb")
    ax.set_xticks(x, words["word"], rotation=45, ha="right")
    ax.set_ylabel("share containing the word")
    ax.legend(frameon=False)
    entities = words.attrs.get("entities")
    default = (
        f"{words.attrs.get('num_questions', '?')} questions mentioning {' + '.join(entities)}" if entities else None
    )
    ax.set_title(title or default or "", fontsize=9)
    return ax
