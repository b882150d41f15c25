"""The chapters listed in ``_toc.yml`` (shared by the notebook export, the HTML check and tests)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_entries(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Every ``file`` of the table of contents, root first, without extension (``book/intro``)."""
    data = yaml.safe_load(toc.read_text())
    entries = [data["root"]]

    def walk(items):
        for item in items or []:
            if "file" in item:
                entries.append(item["file"])
            walk(item.get("sections"))
            walk(item.get("chapters"))

    for part in data.get("parts", []):
        walk(part.get("chapters"))
    walk(data.get("chapters"))
    return entries


def source_of(entry: str) -> Path:
    """The source file of a toc entry (``.md`` or ``.ipynb``); raises if there is none."""
    for suffix in (".md", ".ipynb"):
        path = ROOT / (entry + suffix)
        if path.is_file():
            return path
    raise FileNotFoundError(f"_toc.yml lists {entry!r} but neither {entry}.md nor {entry}.ipynb exists")


def is_notebook(path: Path) -> bool:
    """A MyST Markdown file is a notebook when its front matter names a jupytext kernel."""
    if path.suffix == ".ipynb":
        return True
    text = path.read_text()
    if not text.startswith("---\n"):
        return False
    front = yaml.safe_load(text.split("---\n", 2)[1]) or {}
    return "kernelspec" in front
