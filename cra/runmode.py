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
