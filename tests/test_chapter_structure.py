"""Every chapter teaches the same way: learning goals at the top, a summary, and at least two
exercises, each with a collapsed solution (sphinx-exercise); no page uses internal wording."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from book_toc import is_notebook, source_of, toc_entries  # noqa: E402

# pages that are not chapters: the preface, the course plan and the back matter
NOT_CHAPTERS = {"book/intro", "book/course", "book/notation", "book/sources", "book/references"}
CHAPTERS = [e for e in toc_entries() if e not in NOT_CHAPTERS and is_notebook(source_of(e))]


def test_the_chapter_list_is_not_empty():
    assert len(CHAPTERS) >= 10


@pytest.mark.parametrize("entry", CHAPTERS)
def test_chapter_has_goals_summary_and_exercises_with_hidden_solutions(entry):
    text = source_of(entry).read_text()
    goals = text.find("Learning goals")
    assert 0 <= goals < text.find("\n## "), f"{entry}: learning goals must come before the first section"
    assert "\n## Summary\n" in text, f"{entry}: no summary"
    exercises = re.findall(r"```\{exercise\}[^\n]*\n:label: ([\w-]+)", text)
    assert len(exercises) >= 2, f"{entry}: {len(exercises)} exercises"
    for label in exercises:
        solution = re.search(r"`{3,4}\{solution(?:-start)?\} " + re.escape(label) + r"\n:class: dropdown\n", text)
        assert solution, f"{entry}: exercise {label} has no collapsed solution"
        if "solution-start" in solution.group(0):
            assert text.find("{solution-end}", solution.end()) > 0, f"{entry}: {label} is never closed"


def test_exercise_labels_are_unique_across_the_book():
    labels = [
        label
        for e in CHAPTERS
        for label in re.findall(r"\{exercise\}[^\n]*\n:label: ([\w-]+)", source_of(e).read_text())
    ]
    assert len(labels) == len(set(labels))


INTERNAL = re.compile(r"paper[ _]digest|digest section|the issue's|confounder issue|\bsessions? that\b", re.I)


# pages being rewritten elsewhere that still carry internal wording; strict: the mark fails once fixed
PENDING_REWRITE: set[str] = set()


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(e, marks=pytest.mark.xfail(strict=True, reason="internal wording, pending rewrite"))
        if e in PENDING_REWRITE
        else e
        for e in toc_entries()
    ],
)
def test_no_internal_wording(entry):
    found = [line for line in source_of(entry).read_text().splitlines() if INTERNAL.search(line)]
    assert found == [], f"{entry}: {found}"
