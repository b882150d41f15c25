"""Write every chapter notebook of ``_toc.yml`` as ``.ipynb`` under a folder, for ``pytest --nbmake``.

Usage: ``python scripts/export_notebooks.py .nbtest``

Chapters are authored as jupytext MyST Markdown; nbmake only collects ``.ipynb``. The notebooks go
to a separate folder (keeping their relative paths) so the book never sees duplicate documents.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
from book_toc import ROOT, is_notebook, source_of, toc_entries


def main(out: Path) -> None:
    count = 0
    for entry in toc_entries():
        source = source_of(entry)
        if not is_notebook(source):
            continue
        target = out / source.relative_to(ROOT).with_suffix(".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        notebook = jupytext.read(source)
        for cell in notebook.cells:  # outputs are never committed; start clean
            cell.pop("outputs", None) if cell.cell_type != "code" else cell.update(outputs=[], execution_count=None)
        jupytext.write(notebook, target)
        count += 1
    if count == 0:
        sys.exit("export_notebooks: _toc.yml lists no notebook chapters")
    print(f"export_notebooks: {count} notebooks written to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
