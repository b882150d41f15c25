"""ECI: the semantic-graph GCN, the back-door and the front-door, against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cra.model.causal import SEMANTIC_GRAPH_EDGES, BackDoor, FrontDoor, GraphConv, normalized_adjacency

D = 16


def layer_norm(module: torch.nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), module.weight, module.bias, module.eps)


def linear(module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return x @ module.weight.T + module.bias


def test_normalized_adjacency_of_the_semantic_graph():
    assert len(SEMANTIC_GRAPH_EDGES) == 12 and len(set(map(frozenset, SEMANTIC_GRAPH_EDGES))) == 12
    a = normalized_adjacency()
    torch.testing.assert_close(a, a.T)
    # degrees with the self-loop: question 6 (answer, type, subject, verbs, objects), answer 5, type 2
    assert a[0, 0].item() == pytest.approx(1 / 6)
    assert a[0, 5].item() == pytest.approx(1 / math.sqrt(6 * 5))
    assert a[1, 1].item() == pytest.approx(1 / 2)
    assert a[1, 7].item() == 0.0  # question type and answer objects are not linked
    assert int((a > 0).sum()) == 8 + 2 * 12


def test_directed_graph_is_the_released_gcnconv():
    """graph="directed" equals torch_geometric's GCNConv on the one-way edge list (fixture made by
    scripts/released_parity/make_gcn_fixture.py); the undirected default does not."""
    from pathlib import Path

    ref = torch.load(Path(__file__).parent / "fixtures" / "released_parity" / "gcn_directed.pt")
    assert [tuple(e) for e in ref["edges"]] == list(SEMANTIC_GRAPH_EDGES)  # same pairs, same direction
    a = normalized_adjacency(graph="directed")
    assert a[0].tolist() == [1.0] + [0.0] * 7  # the question node hears only itself
    assert a[1, 0].item() == pytest.approx(1 / math.sqrt(2))  # type <- question: in-degrees 1 + 1 and 0 + 1
    for graph, close in (("directed", True), ("undirected", False)):
        conv = GraphConv(12, 4, graph=graph)
        with torch.no_grad():
            conv.linear.weight.copy_(ref["weight"])
            conv.linear.bias.copy_(ref["bias"])
            diff = (conv(ref["x"]) - ref["out"]).abs().max().item()
        assert (diff < 1e-5) == close, (graph, diff)
    with pytest.raises(ValueError, match="graph"):
        normalized_adjacency(graph="both")


def test_graph_conv_is_a_hat_h_w():
    torch.manual_seed(0)
    conv = GraphConv(5, 3)
    h = torch.randn(4, 8, 5)
    expected = normalized_adjacency() @ (h @ conv.linear.weight.T) + conv.linear.bias
    torch.testing.assert_close(conv(h), expected)


def test_backdoor_single_entry_closed_form():
    """With one dictionary entry the attention weight is 1 (= P(z)), so
    l' = LN(l + W_o (W_v z + b_v) + b_o), z = W_flat flatten(A_hat Z W_g + b_g)."""
    torch.manual_seed(0)
    Z = torch.randn(1, 8, 6)
    back = BackDoor(D, Z, gcn_dim=3)  # 8 x 3 = 24 != 16: a flattening projection
    l = torch.randn(5, D)
    with torch.no_grad():
        nodes = normalized_adjacency() @ (Z[0] @ back.gcn.linear.weight.T) + back.gcn.linear.bias  # (8, 3)
        z = linear(back.flat_proj, nodes.flatten())  # (D,)
        expected = layer_norm(back.norm, l + linear(back.out, linear(back.value, z)))
        torch.testing.assert_close(back(l), expected)


def test_backdoor_prior_selects_entries():
    """A prior putting (almost) all mass on entry 0 reduces the back-door to the one-entry form."""
    torch.manual_seed(0)
    Z = torch.randn(3, 8, 6)
    with_prior = BackDoor(D, Z, gcn_dim=2, prior=torch.tensor([1.0, 1e-30, 1e-30]))
    single = BackDoor(D, Z[:1], gcn_dim=2)
    state = {k: v for k, v in with_prior.state_dict().items() if k not in ("Z_l", "log_prior")}
    single.load_state_dict({**state, "Z_l": Z[:1]})
    l = torch.randn(4, D)
    torch.testing.assert_close(with_prior(l), single(l))
    uniform = BackDoor(D, Z, gcn_dim=2)
    uniform.load_state_dict({k: v for k, v in with_prior.state_dict().items() if k != "log_prior"})
    assert not torch.allclose(uniform(l), with_prior(l))
    with pytest.raises(ValueError, match="prior"):
        BackDoor(D, Z, prior=torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="Z_l"):
        BackDoor(D, torch.randn(3, 7, 6))


def frontdoor_pair(K_v=1, D_x=12):
    torch.manual_seed(0)
    X_hat = torch.randn(K_v, D_x)
    paper = FrontDoor(D, X_hat, mode="in_sample")
    released = FrontDoor(D, X_hat, mode="batch")
    released.load_state_dict(paper.state_dict())
    return paper, released


def test_frontdoor_single_cluster_single_frame_closed_form():
    """One cluster x_hat and one valid frame x_1: both attentions have a single item (weight 1), so
    m' = LN(m + W_o [W_1 W_x x_1 ; W_2 W_xhat x_hat])."""
    paper, _ = frontdoor_pair(K_v=1)
    B, T = 3, 5
    m, x, frames = torch.randn(B, D), torch.randn(B, D), torch.randn(B, T, D)
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[:, 0] = True
    with torch.no_grad():
        h1 = linear(paper.in_out, linear(paper.key_x, frames[:, 0]))
        h2 = linear(paper.cross_out, linear(paper.key_hat, paper.X_hat[0])).expand(B, D)
        expected = layer_norm(paper.norm, m + linear(paper.out, torch.cat([h1, h2], -1)))
        torch.testing.assert_close(paper(m, x, frames, mask), expected)


def test_frontdoor_released_single_sample_closed_form():
    """The released B x B variant with B = 1: the in-sample item is the sample's own pooled video."""
    _, released = frontdoor_pair(K_v=1)
    m, x = torch.randn(1, D), torch.randn(1, D)
    with torch.no_grad():
        h1 = linear(released.in_out, linear(released.key_x, x))
        h2 = linear(released.cross_out, linear(released.key_hat, released.X_hat))
        expected = layer_norm(released.norm, m + linear(released.out, torch.cat([h1, h2], -1)))
        torch.testing.assert_close(released(m, x), expected)


def test_frontdoor_in_sample_vs_released_batch():
    """Same weights, different answers; and only the released variant lets the other samples of the
    mini-batch change a sample's output."""
    paper, released = frontdoor_pair(K_v=7)
    B, T = 4, 6
    m, x, frames = torch.randn(B, D), torch.randn(B, D), torch.randn(B, T, D)
    mask = torch.ones(B, T, dtype=torch.bool)
    with torch.no_grad():
        a, b = paper(m, x, frames, mask), released(m, x, frames, mask)
        assert not torch.allclose(a, b)
        x2, frames2 = x.clone(), frames.clone()
        x2[1:] += 3.0
        frames2[1:] += 3.0  # change every sample but the first
        torch.testing.assert_close(paper(m, x2, frames2, mask)[0], a[0])
        assert not torch.allclose(released(m, x2, frames2, mask)[0], b[0])


def test_frozen_dictionaries_are_buffers():
    back = BackDoor(D, torch.randn(2, 8, 4), learn_dictionary=False)
    front = FrontDoor(D, torch.randn(3, 5), learn_dictionary=False)
    assert "Z_l" not in dict(back.named_parameters()) and "Z_l" in dict(back.named_buffers())
    assert "X_hat" not in dict(front.named_parameters()) and "X_hat" in dict(front.named_buffers())
    learned = FrontDoor(D, torch.randn(3, 5))
    assert "X_hat" in dict(learned.named_parameters())
    with pytest.raises(ValueError, match="frame_states"):
        FrontDoor(D, torch.randn(3, 5))(torch.randn(2, D), torch.randn(2, D))
