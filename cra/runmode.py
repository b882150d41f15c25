"""The book's fast/full switch: one environment variable, the same code path in both modes.

``CRA_BOOK_MODE=fast`` (default) keeps every chapter to about a minute on 2 CPU cores with small
data; ``CRA_BOOK_MODE=full`` runs the chapter at the size its text describes.
"""

from __future__ import annotations

import os

MODE_ENV = "CRA_BOOK_MODE"
MODES = ("fast", "full")


def book_mode() -> str:
    """``"fast"`` or ``"full"``, read from ``$CRA_BOOK_MODE``; anything else is an error."""
    mode = os.environ.get(MODE_ENV, "fast").strip().lower() or "fast"
    if mode not in MODES:
        raise ValueError(f"${MODE_ENV}={mode!r}: expected one of {MODES}")
    return mode


def is_fast() -> bool:
    return book_mode() == "fast"


def mode_settings(book_dir) -> list[dict[str, str]]:
    """Every setting the chapters switch on the mode, read from their sources: one row per switch,
    ``{"chapter", "setting"}``, where ``setting`` is the source line (``X = fast if is_fast() else full``,
    or the body of an ``if not is_fast():`` block). The preface prints them, so the list cannot drift."""
    from pathlib import Path

    rows = []
    for path in sorted(Path(book_dir).glob("*.md")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            text = line.strip()
            if "is_fast()" not in text or text.startswith(("from ", "import ")):
                continue
            if text.startswith(("if not is_fast()", "if is_fast()")):
                indent = len(line) - len(line.lstrip())
                body = []
                for follow in lines[i + 1 :]:
                    if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                        break
                    if follow.strip():
                        body.append(follow.strip())
                text = f"{text} {'; '.join(body)}"
            rows.append({"chapter": path.stem, "setting": text.split("#")[0].strip()})
    return rows
