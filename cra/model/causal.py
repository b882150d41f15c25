r"""ECI, Explicit Causal Intervention: a linguistic back-door and a visual front-door adjustment,
both approximated with NWGM (normalised weighted geometric mean: the expectation of a softmax is
replaced by the softmax of an expectation, so an expectation over a dictionary becomes an
attention-weighted sum of its entries). Derived and checked in the book's back-door, front-door and
NWGM chapters; the formulas are our reading of the paper (arXiv:2503.07635, Fig. 2), see book/sources.md.

Back-door over the linguistic confounder $Z_l$ (:class:`BackDoor`):

.. math::

    P(a \mid do(L)) = \sum_z P(a \mid L, z) P(z)
    \overset{NWGM}{\approx} \mathrm{softmax}\, f\big(l, \mathbb E_z[z]\big),\qquad
    l' = \mathrm{LN}\Big(l + W_o \sum_k \mathrm{softmax}_k\big(\tfrac{(W_q l)^\top W_k z_k}{\sqrt D} + \log
    P(z_k)\big) W_v z_k\Big)

where $z_k$ is entry k of $Z_l$ (an 8-node semantic structure graph) after one graph convolution over
the fixed 12-edge graph, flattened to one vector. Without a prior, $P(z)$ is uniform.

The attention above is **conditioned on l**: its weights estimate $P(z \mid l)$, not $P(z)$
(``mode="conditional"``, the paper). The textbook NWGM of the back-door sum takes the expectation under
the prior, $\mathbb E_{P(z)}[z] = \sum_k P(z_k)\, W_v z_k$ (``mode="prior"``): one vector, the same for
every $l$. :meth:`BackDoor.attention` returns the weights either way (for :mod:`cra.diagnostics`).

Front-door through the mediator $M$ = grounded video $v_t$, treatment $X$ = mean-pooled video
$\bar v$, and the visual dictionary $\hat X$ (:class:`FrontDoor`):

.. math::

    P(a \mid do(X)) = \sum_m P(m \mid x) \sum_{\hat x} P(\hat x) P(a \mid \hat x, m)
    \overset{NWGM}{\approx} \mathrm{softmax}\, g\big(\underbrace{\mathbb E[m \mid x]}_{h_1},
                                                   \underbrace{\mathbb E_{\hat x}[\hat x]}_{h_2}\big),\qquad
    m' = \mathrm{LN}(m + W_o [h_1; h_2])

* ``mode="in_sample"`` (default, our reading of "in-sample": the paper's method text was not
  available to us, and its numbers come from the released ``"batch"`` model): $h_1$ attends over the
  **frames of the same video**, the values the mediator can take given this video, $h_1 = W_1 \sum_i
  \mathrm{softmax}_i((W_m m)^\top W_x \bar x_i / \sqrt D)\, W_x \bar x_i$. A sample's output does
  not depend on the other samples of the batch.
* ``mode="batch"`` (the released code): the same attention runs over the pooled $\bar v_j$ of the
  **B samples of the mini-batch** (a B x B attention), so a sample's answer depends on which other
  videos share its batch, and the "expectation over m given x" mixes other videos' content.

$h_2 = W_2 \sum_j \mathrm{softmax}_j((W_q \bar v)^\top W_{\hat x} \hat x_j / \sqrt D)\, W_{\hat x} \hat x_j$
in both modes. The released code has no separate $W_q$: its query is $W_x \bar v$, the in-sample
key/value map (``tied_query=True``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cra.model.ops import masked_softmax
from cra.text.semantic_graph import EDGES, NODE_NAMES

__all__ = [
    "SEMANTIC_GRAPH_NODES",
    "SEMANTIC_GRAPH_EDGES",
    "GRAPH_DIRECTIONS",
    "normalized_adjacency",
    "GraphConv",
    "BackDoor",
    "FrontDoor",
]

#: Node order and the 12 edges of a semantic structure graph (undirected unless ``graph="directed"``); their
#: one home is :mod:`cra.text.semantic_graph`, which builds the graphs from parsed QA pairs.
SEMANTIC_GRAPH_NODES = NODE_NAMES
SEMANTIC_GRAPH_EDGES = EDGES


GRAPH_DIRECTIONS = ("undirected", "directed")


def normalized_adjacency(num_nodes: int = 8, edges=SEMANTIC_GRAPH_EDGES, graph: str = "undirected") -> torch.Tensor:
    r"""$\hat A = D^{-1/2}(A + I)D^{-1/2}$, $D = \mathrm{diag}((A + I)\mathbf 1)$: (N, N); row = receiving node.

    ``"undirected"`` (ours): $A_{ij} = A_{ji} = 1$ for each edge, so related nodes exchange messages
    both ways. ``"directed"`` (released): $A_{ji} = 1$ for an edge $(i, j)$ only, node $j$ gathering
    from $i$ and not back, with $D$ the in-degree plus the self-loop: what torch_geometric's
    ``GCNConv`` computes on an ``edge_index`` that lists each pair once (its convention for an
    undirected graph is to list both directions). On the semantic graph the question node then hears
    from nobody and the answer node only from the question and the subject. Ours is the default because
    nothing in the graph's construction gives its pairs a direction: the notebook wrote each relation
    once, and we read the graph as a relation graph (our reading; the paper's method text was not
    available to us).
    """
    if graph not in GRAPH_DIRECTIONS:
        raise ValueError(f"graph={graph!r}: expected one of {GRAPH_DIRECTIONS}")
    a = torch.eye(num_nodes)
    for i, j in edges:  # edge i -> j: row j (receiver), column i (sender)
        a[j, i] = 1.0
        if graph == "undirected":
            a[i, j] = 1.0
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


class GraphConv(nn.Module):
    r"""One graph convolution $H' = \hat A H W + b$ over a fixed graph: (..., N, D_in) -> (..., N, D_out)."""

    def __init__(
        self, in_dim: int, out_dim: int, num_nodes: int = 8, edges=SEMANTIC_GRAPH_EDGES, graph: str = "undirected"
    ):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.register_buffer("adjacency", normalized_adjacency(num_nodes, edges, graph), persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        hw = h @ self.linear.weight.T  # (..., N, D_out)
        return torch.einsum("ij,...jd->...id", self.adjacency.to(hw.dtype), hw) + self.linear.bias


def _dictionary(tensor: torch.Tensor, learn: bool, module: nn.Module, name: str) -> None:
    tensor = tensor.detach().clone().float()
    if learn:
        module.register_parameter(name, nn.Parameter(tensor))
    else:
        module.register_buffer(name, tensor)


class BackDoor(nn.Module):
    """l (..., D) -> l' (..., D), attending over the GCN-encoded confounder dictionary Z_l."""

    def __init__(
        self,
        d_model: int,
        Z_l: torch.Tensor,
        gcn_dim: int | None = None,
        prior: torch.Tensor | None = None,
        learn_dictionary: bool = True,
        mode: str = "conditional",
        graph: str = "undirected",
    ):
        super().__init__()
        if mode not in ("conditional", "prior"):
            raise ValueError(f"mode={mode!r}: expected 'conditional' or 'prior'")
        self.mode = mode
        if Z_l.ndim != 3 or Z_l.shape[1] != len(SEMANTIC_GRAPH_NODES):
            raise ValueError(f"Z_l: expected (K_l, {len(SEMANTIC_GRAPH_NODES)}, D_z), got {tuple(Z_l.shape)}")
        _dictionary(Z_l, learn_dictionary, self, "Z_l")  # (K_l, 8, D_z)
        gcn_dim = gcn_dim or max(1, d_model // 8)
        self.gcn = GraphConv(Z_l.shape[-1], gcn_dim, graph=graph)  # graph: normalized_adjacency
        flat = gcn_dim * Z_l.shape[1]
        self.flat_proj = nn.Linear(flat, d_model) if flat != d_model else nn.Identity()
        if prior is None:
            self.log_prior = None
        else:
            if prior.shape != (Z_l.shape[0],) or bool((prior <= 0).any()):
                raise ValueError(f"prior: expected {Z_l.shape[0]} positive numbers, got shape {tuple(prior.shape)}")
            self.register_buffer("log_prior", (prior / prior.sum()).log().float())
        self.query, self.key, self.value = (nn.Linear(d_model, d_model) for _ in range(3))
        self.out = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model)

    def dictionary(self) -> torch.Tensor:
        """z_k = flatten(GCN(Z_l[k])): (K_l, D)."""
        return self.flat_proj(self.gcn(self.Z_l).flatten(1))

    def prior_log(self, like: torch.Tensor) -> torch.Tensor:
        """log P(z): (K_l,) (uniform without a prior)."""
        if self.log_prior is not None:
            return self.log_prior.to(like.dtype)
        k = self.Z_l.shape[0]
        return torch.full((k,), -math.log(k), dtype=like.dtype, device=like.device)

    def scores(self, l: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """(W_q l)^T W_k z_k / sqrt(D), before the prior: (..., K_l)."""
        z = self.dictionary() if z is None else z
        return self.query(l) @ self.key(z).T / math.sqrt(l.shape[-1])

    def attention(self, l: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Weights over Z_l: softmax(scores + log P(z)) ~ P(z | l) (conditional) or P(z) (prior): (..., K_l)."""
        if self.mode == "prior":
            return self.prior_log(l).exp().expand(*l.shape[:-1], -1)
        scores = self.scores(l, z)
        if self.log_prior is not None:
            scores = scores + self.log_prior
        return scores.softmax(-1)

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        z = self.dictionary()  # (K_l, D)
        expected_z = self.attention(l, z) @ self.value(z)  # (..., D)  NWGM: E_z[z] inside f
        return self.norm(l + self.out(expected_z))


class FrontDoor(nn.Module):
    """m (B, D) -> m' (B, D): in-sample term over frames (default) or the batch, cross-sample term over X_hat."""

    def __init__(
        self,
        d_model: int,
        X_hat: torch.Tensor,
        mode: str = "in_sample",
        learn_dictionary: bool = True,
        tied_query: bool = False,
    ):
        super().__init__()
        if X_hat.ndim != 2:
            raise ValueError(f"X_hat: expected (K_v, D_x), got {tuple(X_hat.shape)}")
        if mode not in ("in_sample", "batch"):
            raise ValueError(f"mode={mode!r}: expected 'in_sample' or 'batch'")
        self.mode = mode
        _dictionary(X_hat, learn_dictionary, self, "X_hat")  # (K_v, D_x)
        self.query_m, self.key_x, self.in_out = (nn.Linear(d_model, d_model) for _ in range(3))  # W_m, W_x, W_1
        # W_q: with tied_query (released) the cross-sample query is W_x x, the in-sample key map itself
        self.query_x = None if tied_query else nn.Linear(d_model, d_model)
        self.cross_out = nn.Linear(d_model, d_model)  # W_2
        self.key_hat = nn.Linear(X_hat.shape[1], d_model)  # W_xhat
        self.out = nn.Linear(2 * d_model, d_model)  # W_o
        self.norm = nn.LayerNorm(d_model)

    def in_sample_attention(self, m, x, frame_states, frame_mask, items=None):
        """alpha over the frames of the video (B, T) or over the batch (B, B), and the items (.., D).
        ``items``: ``key_x(frame_states)`` computed once by the caller (in-sample mode)."""
        q = self.query_m(m)  # (B, D)
        scale = math.sqrt(m.shape[-1])
        if self.mode == "in_sample":
            items = self.key_x(frame_states) if items is None else items  # (B, T, D) the mediator values of this video
            return masked_softmax(torch.einsum("bd,btd->bt", q, items) / scale, frame_mask), items  # (B, T)
        items = self.key_x(x)  # (B, D) the other videos of the batch
        return (q @ items.T / scale).softmax(-1), items  # (B, B)

    def in_sample(self, m, x, frame_states, frame_mask, items=None):
        """h_1 ~ E[m | x]: (B, D)."""
        alpha, items = self.in_sample_attention(m, x, frame_states, frame_mask, items)
        if self.mode == "in_sample":
            return self.in_out(torch.einsum("bt,btd->bd", alpha, items))
        return self.in_out(alpha @ items)

    def cross_attention(self, x):
        """beta over X_hat (B, K_v) and the keys (K_v, D)."""
        keys = self.key_hat(self.X_hat)  # (K_v, D)
        query = self.key_x(x) if self.query_x is None else self.query_x(x)  # (B, D); released: tied to key_x
        return (query @ keys.T / math.sqrt(x.shape[-1])).softmax(-1), keys

    def cross_sample(self, x):
        """h_2 ~ E_{x_hat}[x_hat]: (B, D)."""
        beta, keys = self.cross_attention(x)  # (B, K_v)
        return self.cross_out(beta @ keys)

    def forward(
        self,
        m: torch.Tensor,
        x: torch.Tensor,
        frame_states: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        items: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``items``: ``key_x(frame_states)`` (B, T, D), computed once by a caller with several passes."""
        if self.mode == "in_sample" and frame_states is None:
            raise ValueError("FrontDoor(mode='in_sample') needs frame_states (B, T, D)")
        h1 = self.in_sample(m, x, frame_states, frame_mask, items)
        h2 = self.cross_sample(x)
        return self.norm(m + self.out(torch.cat([h1, h2], -1)))
