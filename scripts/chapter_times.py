"""Record how long each chapter took to execute in the last book build, for the course page.

Usage (after ``make book``, which executes every chapter into ``_build/.jupyter_cache``)::

    python scripts/chapter_times.py [_build/.jupyter_cache] [book/_data/chapter_times.csv]

Reads the execution time MyST-NB stored with each cached notebook and writes one CSV row per
chapter: ``chapter, seconds, executed_at, mode, cpus``. ``mode`` is ``$CRA_BOOK_MODE`` as this script
sees it (run it in the environment of the build); ``cpus`` is this machine's CPU count.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cra.paths import atomic_write_bytes  # noqa: E402
from cra.runmode import book_mode  # noqa: E402


def chapter_times(cache_dir: Path) -> list[dict]:
    from jupyter_cache import get_cache

    if not (cache_dir / "global.db").is_file():
        raise FileNotFoundError(f"{cache_dir}: no jupyter-cache database (global.db); run `make book` first")
    rows = {}
    for record in get_cache(str(cache_dir)).list_cache_records():
        source = Path(record.uri)
        seconds = (record.data or {}).get("execution_seconds")
        if source.parent.name != "book" or seconds is None:
            continue  # not a chapter, or cached without a time
        previous = rows.get(source.stem)
        if previous is None or record.created.isoformat() > previous["executed_at"]:
            rows[source.stem] = {
                "chapter": source.stem,
                "seconds": round(float(seconds), 1),
                "executed_at": record.created.isoformat(timespec="seconds"),
                "mode": book_mode(),
                "cpus": os.cpu_count(),
            }
    if not rows:
        raise ValueError(f"{cache_dir}: the cache holds no executed chapter of book/")
    return sorted(rows.values(), key=lambda r: r["chapter"])


def main(argv: list[str]) -> None:
    if len(argv) > 2:
        sys.exit(__doc__)
    cache_dir = Path(argv[0]) if argv else ROOT / "_build" / ".jupyter_cache"
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "book" / "_data" / "chapter_times.csv"
    rows = chapter_times(cache_dir)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buffer.getvalue().encode())
    for row in rows:
        print(f"{row['chapter']:20s} {row['seconds']:8.1f} s")
    print(f"wrote {out} ({len(rows)} chapters)")


if __name__ == "__main__":
    main(sys.argv[1:])
