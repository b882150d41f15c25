"""Run torch_geometric's ``GCNConv`` (the layer of the authors' linguistic back-door) on the
semantic graph's twelve edges listed once each, as their ``edge_index`` does, and save its inputs,
weights and output for ``tests/test_causal.py`` (``normalized_adjacency(graph="directed")``).

Runs in an environment with torch_geometric (the authors' venv); ``cra`` is not imported, so the
edge list is written out here in the notebook's order (digest 4.2).

Usage (from the repository root)::

    python scripts/released_parity/make_gcn_fixture.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch_geometric.nn import GCNConv

EDGES = [[0, 5], [0, 1], [0, 2], [0, 3], [0, 4], [2, 4], [2, 3], [4, 3], [5, 6], [5, 7], [6, 7], [2, 5]]
IN_DIM, OUT_DIM, SEED = 12, 4, 0
OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "released_parity" / "gcn_directed.pt"


def main():
    torch.manual_seed(SEED)
    conv = GCNConv(IN_DIM, OUT_DIM)
    x = torch.randn(8, IN_DIM)  # (N, D_in)
    with torch.no_grad():
        out = conv(x, torch.tensor(EDGES).T)  # (N, D_out)
    fixture = {
        "edges": EDGES,
        "x": x,
        "weight": conv.lin.weight.detach().clone(),
        "bias": conv.bias.detach().clone(),
        "out": out,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=OUT.parent, suffix=".part")
    os.close(fd)
    torch.save(fixture, tmp)
    os.replace(tmp, OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
