"""Fail unless the built site holds a page for every ``_toc.yml`` entry and the vendored JavaScript.

Usage: ``python scripts/check_book.py _build/html``  (a Jupyter Book build can exit 0 having built
nothing, so ``make book`` always runs this after building).
"""

from __future__ import annotations

import sys
from pathlib import Path

from book_toc import toc_entries

REQUIRED_STATIC = ["_static/mathjax/tex-chtml.js", "_static/require.js", "_static/embed-amd.js"]


def missing_pages(html: Path) -> list[str]:
    wanted = [entry + ".html" for entry in toc_entries()] + ["index.html"] + REQUIRED_STATIC
    return [page for page in wanted if not (html / page).is_file()]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    html = Path(sys.argv[1])
    missing = missing_pages(html)
    if missing:
        sys.exit(f"check_book: {html} lacks {missing}")
    print(f"check_book: {html} has every page of _toc.yml and the vendored JavaScript")
