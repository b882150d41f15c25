"""Offer each executed chapter's ``.ipynb`` in the page's download menu.

sphinx-book-theme copies the notebook MyST-NB made from a Markdown chapter into ``_sources`` only
when a launch service (Binder, Colab, ...) is configured; this book has none (it is read offline),
so this extension does that copy itself, before the theme builds its header buttons (priority 501).
"""

from __future__ import annotations

from pathlib import Path
from shutil import copy2


def offer_notebook(app, pagename, templatename, context, doctree):
    notebook = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not notebook.is_file():
        return  # a plain Markdown page (no kernelspec) is not a notebook: nothing to offer
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    copy2(notebook, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    app.connect("html-page-context", offer_notebook, priority=500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
