r"""Blind (language-only) answerers: how much of NExT-GQA's multiple choice the text alone solves.

A blind answerer sees the question and the K candidates, never the video. Two are here:

* :func:`overlap_scores`: the lexical-overlap rule, score of candidate k = the number of distinct
  question words (stop words removed) it repeats; the choice is the highest score.
* :class:`BlindAnswerer`: a logistic regression over (question, candidate) pairs,
  $P(\text{correct} \mid q, a_k) = \sigma(\theta^\top \phi(q, a_k))$, choice $\arg\max_k$ of the
  score. The features $\phi$ (:func:`choice_features`) are the candidate's words (binary bag of
  words), how many question words it repeats, its length, and how many words it shares with the
  other candidates (distractors are often written as variations of the answer).

Accuracies are *expected* accuracies under a uniform tie-break (:func:`expected_accuracy`): a rule
that scores all K candidates equally gets 1/K on that question, never a lucky first pick.

Tables are the QA tables of :func:`cra.bias.load_qa_tables` (the columns of
:meth:`cra.data.QAFile.to_frame`: ``question``, ``a0..a{K-1}``, ``answer_idx``, ...; ``candidate_columns``
is :func:`cra.data.candidate_columns`); train on one split, score on another.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from cra.data import candidate_columns

__all__ = [
    "words",
    "candidate_columns",
    "overlap_scores",
    "expected_accuracy",
    "choice_features",
    "BlindAnswerer",
    "cross_validated_accuracy",
]

_WORD = re.compile(r"[a-z0-9]+")


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def words(text: str, stop_words: frozenset[str] | None = None) -> frozenset[str]:
    """Distinct lower-case words of ``text`` (letters and digits), without ``stop_words``
    (default: scikit-learn's English list)."""
    stop = _stop_words() if stop_words is None else stop_words
    return frozenset(w for w in _WORD.findall(str(text).lower()) if w not in stop)


def _tokenised(table: pd.DataFrame) -> tuple[list[frozenset], list[list[frozenset]]]:
    stop = _stop_words()
    columns = candidate_columns(table)
    questions = [words(q, stop) for q in table["question"]]
    candidates = [[words(row[c], stop) for c in columns] for row in table[columns].to_dict("records")]
    return questions, candidates


def overlap_scores(table: pd.DataFrame) -> np.ndarray:
    """(N, K): how many distinct question words each candidate repeats."""
    questions, candidates = _tokenised(table)
    return np.array([[len(q & c) for c in cands] for q, cands in zip(questions, candidates)], dtype=float)


def expected_accuracy(scores: np.ndarray, answer_idx: Sequence[int]) -> float:
    """Mean over questions of 1[answer among the top-scoring candidates] / (number of them): the
    accuracy of choosing the arg-max, ties broken uniformly at random, in expectation."""
    scores = np.asarray(scores, dtype=float)  # (N, K)
    answer_idx = np.asarray(answer_idx)
    if scores.ndim != 2 or len(answer_idx) != len(scores):
        raise ValueError(f"scores (N, K) and answer_idx (N,) expected, got {scores.shape} and {answer_idx.shape}")
    top = scores >= scores.max(1, keepdims=True)  # (N, K) the tied maxima
    hit = top[np.arange(len(scores)), answer_idx]
    return float((hit / top.sum(1)).mean()) if len(scores) else float("nan")


def choice_features(table: pd.DataFrame, vocabulary: dict[str, int] | None = None, min_count: int = 2):
    """Features of every (question, candidate) pair, rows ordered question by question:
    ``(X (N*K, 3 + V) sparse, vocabulary)``.

    Columns: question words repeated by the candidate, candidate length in words / 5, mean number of
    words shared with each other candidate, then the candidate's words (binary). Without
    ``vocabulary`` it is built from the candidate words seen at least ``min_count`` times here.
    """
    from scipy import sparse

    questions, candidates = _tokenised(table)
    if vocabulary is None:
        counts = pd.Series([w for cands in candidates for c in cands for w in c]).value_counts()
        vocabulary = {w: i for i, w in enumerate(sorted(counts[counts >= min_count].index))}
    dense, rows, cols = [], [], []
    for q, cands in zip(questions, candidates):
        for k, c in enumerate(cands):
            shared = [len(c & other) for j, other in enumerate(cands) if j != k]
            dense.append((len(q & c), len(c) / 5.0, float(np.mean(shared)) if shared else 0.0))
            index = [vocabulary[w] for w in c if w in vocabulary]
            rows.extend([len(dense) - 1] * len(index))
            cols.extend(index)
    bag = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(dense), len(vocabulary)))
    return sparse.hstack([sparse.csr_matrix(np.array(dense).reshape(-1, 3)), bag], format="csr"), vocabulary


class BlindAnswerer:
    """Logistic regression on :func:`choice_features`; ``C`` is the inverse L2 strength."""

    def __init__(self, C: float = 0.5, min_count: int = 2):
        self.C, self.min_count = C, min_count
        self.vocabulary: dict[str, int] | None = None
        self.model = None

    def fit(self, table: pd.DataFrame) -> "BlindAnswerer":
        from sklearn.linear_model import LogisticRegression

        X, self.vocabulary = choice_features(table, min_count=self.min_count)
        K = len(candidate_columns(table))
        y = (np.arange(K)[None, :] == table["answer_idx"].to_numpy()[:, None]).ravel()  # (N*K,)
        self.model = LogisticRegression(C=self.C, max_iter=2000).fit(X, y)
        return self

    def scores(self, table: pd.DataFrame) -> np.ndarray:
        """(N, K) decision values; higher means more likely the correct candidate."""
        if self.model is None:
            raise RuntimeError("BlindAnswerer.scores: call fit(table) first")
        X, _ = choice_features(table, self.vocabulary)
        return self.model.decision_function(X).reshape(len(table), -1)

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """(N,) index of the chosen candidate (first maximum)."""
        return self.scores(table).argmax(1)

    def top_words(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` candidate words with the largest and the smallest weights: ``word``, ``weight``."""
        if self.model is None or self.vocabulary is None:
            raise RuntimeError("BlindAnswerer.top_words: call fit(table) first")
        names = np.array(sorted(self.vocabulary, key=self.vocabulary.get))
        weights = self.model.coef_[0, 3:]
        order = np.argsort(weights)
        pick = np.concatenate([order[::-1][:n], order[:n]])
        return pd.DataFrame({"word": names[pick], "weight": weights[pick]})


def cross_validated_accuracy(table: pd.DataFrame, C: float, folds: int = 5, seed: int = 0, **kwargs) -> float:
    """Mean expected accuracy of :class:`BlindAnswerer` (``C``) over ``folds`` random folds of ``table``
    (each fold scored by a model fitted on the others): a way to choose ``C`` without the test split."""
    if not 2 <= folds <= len(table):
        raise ValueError(f"folds={folds}: expected 2 <= folds <= {len(table)} (rows of the table)")
    fold = np.random.default_rng(seed).permutation(len(table)) % folds  # (N,) fold of each question
    accuracies = []
    for f in range(folds):
        train, held = table[fold != f], table[fold == f]
        model = BlindAnswerer(C=C, **kwargs).fit(train)
        accuracies.append(expected_accuracy(model.scores(held), held["answer_idx"]))
    return float(np.mean(accuracies))
