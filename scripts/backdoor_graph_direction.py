"""How much the back-door graph's direction changes the dictionary Z_l the model attends over.

Z_l = flatten(A_hat Z W + b), one GCN layer over each entry's 8-node semantic graph
(:class:`cra.model.causal.GraphConv`), computed with the same weights for ``graph="undirected"``
(ours) and ``graph="directed"`` (released: torch_geometric's GCNConv on the one-way edge list).
Prints the relative difference ||Z_dir - Z_und|| / ||Z_und|| over the whole dictionary and the
median per entry, for a built confounder file (``python -m cra build-confounders``) or, without one,
for a N(0, 1) dictionary.

Usage::

    python scripts/backdoor_graph_direction.py --confounders runs/confounders/nextgqa_train.pt
    python scripts/backdoor_graph_direction.py --entries 512 --dim 768
"""

from __future__ import annotations

import argparse

import torch

from cra.model.causal import GraphConv


def direction_gap(Z: torch.Tensor, gcn_dim: int, seed: int = 0) -> dict[str, float]:
    """Relative differences of Z_l (K, 8 * gcn_dim) between the directed and undirected graphs."""
    torch.manual_seed(seed)
    undirected = GraphConv(Z.shape[-1], gcn_dim, graph="undirected")
    directed = GraphConv(Z.shape[-1], gcn_dim, graph="directed")
    directed.linear.load_state_dict(undirected.linear.state_dict())  # the same weights
    with torch.no_grad():
        z_und = undirected(Z.float()).flatten(1)  # (K, 8 * gcn_dim)
        z_dir = directed(Z.float()).flatten(1)
    per_entry = (z_dir - z_und).norm(dim=1) / z_und.norm(dim=1)
    return {
        "relative": ((z_dir - z_und).norm() / z_und.norm()).item(),
        "median_per_entry": per_entry.median().item(),
        "entries": Z.shape[0],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--confounders", help="a confounder file of build-confounders (its Z_l)")
    parser.add_argument("--entries", type=int, default=512, help="without --confounders: K of the N(0, 1) dictionary")
    parser.add_argument("--dim", type=int, default=768, help="without --confounders: node size")
    parser.add_argument("--gcn-dim", type=int, default=96, help="GCN output per node (released: 768 // 8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.confounders:
        from cra.confounders.format import load_confounders

        Z = load_confounders(args.confounders).Z_l
        if Z is None:
            parser.error(f"{args.confounders} has no Z_l")
        source = args.confounders
    else:
        Z = torch.randn(args.entries, 8, args.dim, generator=torch.Generator().manual_seed(args.seed))
        source = f"N(0, 1) dictionary {args.entries} x 8 x {args.dim}"
    gap = direction_gap(Z, args.gcn_dim, args.seed)
    print(
        f"{source}: {gap['entries']} entries; ||Z_dir - Z_und|| / ||Z_und|| = {gap['relative']:.3f}, "
        f"median per entry {gap['median_per_entry']:.3f} (gcn_dim {args.gcn_dim}, seed {args.seed})"
    )


if __name__ == "__main__":
    main()
