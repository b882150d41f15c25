"""The architecture figure renders, and every block names an object that exists in the package."""

from __future__ import annotations

import importlib
import io

import matplotlib

matplotlib.use("Agg")

from cra.figures import ARCHITECTURE_BLOCKS, ARCHITECTURE_EDGES, architecture_figure  # noqa: E402


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):  # longest importable module prefix, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def test_every_block_names_a_real_object_or_attribute():
    model_source = open(importlib.import_module("cra.model.cra").__file__).read()
    for block in ARCHITECTURE_BLOCKS:
        for name in (n.strip() for n in block.code.replace("/", ",").split(",")):
            if name.startswith("cra."):
                assert _resolve(name) is not None, name
            else:  # a batch key, a model attribute or an output field of cra.model.cra
                assert name in model_source, f"{block.key}: {name!r} does not occur in cra/model/cra.py"


def test_edges_join_known_blocks_and_every_block_is_connected():
    keys = {b.key for b in ARCHITECTURE_BLOCKS}
    used = set()
    for src, dst, _, _ in ARCHITECTURE_EDGES:
        assert src in keys and dst in keys and src != dst
        used |= {src, dst}
    assert used == keys
    cells = {(b.col, b.row) for b in ARCHITECTURE_BLOCKS}
    assert len(cells) == len(ARCHITECTURE_BLOCKS), "two blocks share a grid cell"


def test_architecture_figure_renders_with_every_name():
    fig = architecture_figure()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n" and len(buffer.getvalue()) > 10_000
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for block in ARCHITECTURE_BLOCKS:
        assert block.title in texts and block.code.replace("cra.model.", "") in texts
    for name in ("Z_l", "Z_prior", "X_hat", "VQA", "VQ"):
        assert name in texts
