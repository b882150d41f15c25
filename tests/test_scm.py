"""cra.scm: exact values on hand-computed SCMs, estimators that converge to the truth, clear errors."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from cra.scm import (
    DiscreteSCM,
    PositivityError,
    UnknownVariableError,
    backdoor_adjustment,
    frontdoor_adjustment,
    is_backdoor_set,
    is_frontdoor_set,
    max_abs_error,
    mutilate,
    naive_conditional,
    videoqg_scm_panels,
)

N_LARGE = 200_000


def confounded_scm() -> DiscreteSCM:
    """Z -> X, Z -> Y, X -> Y, all binary; the numbers below are worked out by hand."""
    scm = DiscreteSCM()
    scm.add("Z", [0, 1], [0.5, 0.5])
    scm.add("X", [0, 1], [[0.8, 0.2], [0.2, 0.8]], parents=["Z"])
    # P(Y=1 | Z, X): (0,0) 0.1, (0,1) 0.5, (1,0) 0.4, (1,1) 0.8
    scm.add("Y", [0, 1], [[[0.9, 0.1], [0.5, 0.5]], [[0.6, 0.4], [0.2, 0.8]]], parents=["Z", "X"])
    return scm


def frontdoor_scm(u_to_m: bool = False) -> DiscreteSCM:
    """U (latent) -> X, U -> Y, X -> M -> Y; with ``u_to_m`` also U -> M (front-door violated)."""
    scm = DiscreteSCM()
    scm.add("U", [0, 1], [0.5, 0.5], observed=False)
    scm.add("X", [0, 1], [[0.8, 0.2], [0.2, 0.8]], parents=["U"])
    if u_to_m:
        scm.add("M", [0, 1], [[[0.9, 0.1], [0.1, 0.9]], [[0.6, 0.4], [0.02, 0.98]]], parents=["U", "X"])
    else:
        scm.add("M", [0, 1], [[0.9, 0.1], [0.1, 0.9]], parents=["X"])
    # P(Y=1 | U, M): (0,0) 0.1, (0,1) 0.5, (1,0) 0.4, (1,1) 0.9
    scm.add("Y", [0, 1], [[[0.9, 0.1], [0.5, 0.5]], [[0.6, 0.4], [0.1, 0.9]]], parents=["U", "M"])
    return scm


def exact_data(scm: DiscreteSCM, n: int) -> pd.DataFrame:
    """A data set whose empirical distribution *is* the model's observed joint (counts = n P(v))."""
    observed = scm.observed
    joint = scm.marginal(observed)
    counts = joint * n
    assert np.allclose(counts, np.round(counts)), "pick n so that every n P(v) is an integer"
    rows = []
    for idx in np.ndindex(joint.shape):
        values = [scm.values(v)[i] for v, i in zip(observed, idx)]
        rows.extend([values] * int(round(counts[idx])))
    return pd.DataFrame(rows, columns=observed)


# ---- exact values --------------------------------------------------------------------------------


def test_hand_computed_interventional_and_conditional():
    scm = confounded_scm()
    # P(Y=1 | do(X=x)) = sum_z P(z) P(Y=1 | x, z): 0.5*0.1 + 0.5*0.4 and 0.5*0.5 + 0.5*0.8
    truth = scm.interventional("X", "Y")
    assert truth.loc[0, 1] == pytest.approx(0.25) and truth.loc[1, 1] == pytest.approx(0.65)
    # P(Z=0 | X=0) = 0.8, P(Z=0 | X=1) = 0.2: P(Y=1 | X=0) = 0.8*0.1 + 0.2*0.4, P(Y=1 | X=1) = 0.2*0.5 + 0.8*0.8
    seen = scm.conditional("X", "Y")
    assert seen.loc[0, 1] == pytest.approx(0.16) and seen.loc[1, 1] == pytest.approx(0.74)
    assert list(truth.index) == [0, 1] and list(truth.columns) == [0, 1]
    assert truth.index.name == "X" and truth.columns.name == "Y"


def test_hand_computed_frontdoor_truth():
    truth = frontdoor_scm().interventional("X", "Y")
    # sum_u P(u) sum_m P(m | x) P(Y=1 | u, m)
    assert truth.loc[1, 1] == pytest.approx(0.5 * (0.1 * 0.1 + 0.9 * 0.5) + 0.5 * (0.1 * 0.4 + 0.9 * 0.9))
    assert truth.loc[0, 1] == pytest.approx(0.5 * (0.9 * 0.1 + 0.1 * 0.5) + 0.5 * (0.9 * 0.4 + 0.1 * 0.9))


def test_estimators_are_exact_on_the_exact_joint():
    scm = confounded_scm()
    data = exact_data(scm, 1000)
    truth = scm.interventional("X", "Y")
    assert max_abs_error(backdoor_adjustment(data, "X", "Y", "Z"), truth) < 1e-12
    assert max_abs_error(naive_conditional(data, "X", "Y"), scm.conditional("X", "Y")) < 1e-12
    # P(z | x) weights give back the naive conditional (law of total probability)
    conditional = backdoor_adjustment(data, "X", "Y", ["Z"], weights="conditional")
    assert max_abs_error(conditional, scm.conditional("X", "Y")) < 1e-12

    fd = frontdoor_scm()
    fd_data = exact_data(fd, 1000)
    assert "U" not in fd_data.columns
    assert max_abs_error(frontdoor_adjustment(fd_data, "X", "Y", "M"), fd.interventional("X", "Y")) < 1e-12
    collapsed = frontdoor_adjustment(fd_data, "X", "Y", "M", weights="conditional")
    assert max_abs_error(collapsed, fd.conditional("X", "Y")) < 1e-12


def test_do_is_graph_surgery():
    scm = confounded_scm()
    cut = scm.do({"X": 1})
    assert ("Z", "X") not in cut.graph.edges and ("Z", "Y") in cut.graph.edges
    assert cut.parents("X") == () and np.allclose(cut.cpt("X"), [0.0, 1.0])
    assert np.allclose(scm.cpt("X"), [[0.8, 0.2], [0.2, 0.8]])  # the original is untouched
    # sampling the mutilated model gives P(Y | do(X=1))
    data = cut.sample(N_LARGE, seed=3)
    assert (data["X"] == 1).all()
    assert (data["Y"] == 1).mean() == pytest.approx(0.65, abs=0.005)


def test_sampling_matches_the_joint():
    scm = DiscreteSCM.random(nx.DiGraph([("A", "B"), ("A", "C"), ("B", "C")]), {"A": 3, "B": 2, "C": 4}, seed=5)
    data = scm.sample(N_LARGE, seed=1)
    freq = data.value_counts(normalize=True)
    joint = scm.joint()
    worst = max(abs(freq.get((a, b, c), 0.0) - joint[a, b, c]) for a, b, c in np.ndindex(joint.shape))
    assert worst < 0.005
    assert np.isclose(joint.sum(), 1.0)
    assert list(data.columns) == ["A", "B", "C"]


def test_latent_variables_are_hidden_unless_asked():
    scm = frontdoor_scm()
    assert scm.latent == ["U"] and scm.observed == ["X", "M", "Y"]
    assert list(scm.sample(10).columns) == ["X", "M", "Y"]
    assert list(scm.sample(10, include_latent=True).columns) == ["U", "X", "M", "Y"]


def test_custom_labels_flow_through():
    scm = DiscreteSCM()
    scm.add("scene", ["park", "home"], [0.6, 0.4])
    scm.add("mentions_baby", ["no", "yes"], [[0.9, 0.1], [0.3, 0.7]], parents=["scene"])
    scm.add(
        "answer",
        ["run", "hold", "cry"],
        [[[0.6, 0.3, 0.1], [0.3, 0.5, 0.2]], [[0.2, 0.6, 0.2], [0.1, 0.7, 0.2]]],
        parents=["scene", "mentions_baby"],
    )
    data = scm.sample(50_000, seed=2)
    est = backdoor_adjustment(data, "mentions_baby", "answer", "scene")
    truth = scm.interventional("mentions_baby", "answer")
    # tables follow the model's value order, not the alphabet
    assert list(est.index) == ["no", "yes"] and list(est.columns) == ["run", "hold", "cry"]
    assert list(naive_conditional(data, "answer", "scene").index) == ["run", "hold", "cry"]
    assert max_abs_error(est, truth) < 0.02
    assert np.allclose(est.sum(axis=1), 1.0)


# ---- convergence on random SCMs -------
# Random CPTs can be nearly unconfounded by chance; each seed below was picked so that the exact
# confounding bias max |P(y|x) - P(y|do(x))| exceeds 0.05 (asserted in the
# test).-----------------------------------------------------------

BACKDOOR_CASES = [
    # (edges, cardinalities, valid adjustment sets for X -> Y, seed)
    ([("Z", "X"), ("Z", "Y"), ("X", "Y")], {"Z": 2, "X": 2, "Y": 2}, [["Z"]], 11),
    ([("Z", "X"), ("Z", "Y"), ("X", "Y")], {"Z": 4, "X": 3, "Y": 3}, [["Z"]], 12),
    (
        [("Z1", "Z2"), ("Z1", "X"), ("Z2", "Y"), ("X", "W"), ("W", "Y")],
        {"Z1": 3, "Z2": 2, "X": 2, "W": 3, "Y": 2},
        [["Z1"], ["Z2"], ["Z1", "Z2"]],
        16,
    ),
]


@pytest.mark.parametrize("edges, cards, valid_sets, seed", BACKDOOR_CASES)
def test_backdoor_converges_where_the_criterion_holds(edges, cards, valid_sets, seed):
    graph = nx.DiGraph(edges)
    scm = DiscreteSCM.random(graph, cards, seed=seed, concentration=1.0)
    data = scm.sample(N_LARGE, seed=seed)
    truth = scm.interventional("X", "Y")
    for adjustment in valid_sets:
        assert is_backdoor_set(graph, "X", "Y", adjustment)
        assert max_abs_error(backdoor_adjustment(data, "X", "Y", adjustment), truth) < 0.01, adjustment
    # no adjustment: the naive conditional is measurably off, and it is the right conditional
    assert not is_backdoor_set(graph, "X", "Y", [])
    assert max_abs_error(scm.conditional("X", "Y"), truth) > 0.05  # the seed gives a confounded model
    naive = naive_conditional(data, "X", "Y")
    assert max_abs_error(naive, scm.conditional("X", "Y")) < 0.01
    assert max_abs_error(naive, truth) > 0.03


def test_backdoor_with_an_invalid_set_is_biased():
    """A descendant of X (the mediator W) is not a valid adjustment set: adjusting for it is off."""
    edges, cards, _, seed = BACKDOOR_CASES[2]
    graph = nx.DiGraph(edges)
    scm = DiscreteSCM.random(graph, cards, seed=seed)
    data = scm.sample(N_LARGE, seed=seed)
    assert not is_backdoor_set(graph, "X", "Y", ["Z1", "W"])
    assert max_abs_error(backdoor_adjustment(data, "X", "Y", ["Z1", "W"]), scm.interventional("X", "Y")) > 0.03


def test_m_bias_empty_set_is_valid_and_the_collider_is_not():
    graph = nx.DiGraph([("A", "X"), ("A", "C"), ("B", "C"), ("B", "Y"), ("X", "Y")])
    assert is_backdoor_set(graph, "X", "Y", []) and not is_backdoor_set(graph, "X", "Y", ["C"])
    assert is_backdoor_set(graph, "X", "Y", ["C", "A"])
    scm = DiscreteSCM.random(graph, {"A": 2, "B": 2, "C": 2, "X": 2, "Y": 2}, seed=4, concentration=0.3)
    data = scm.sample(N_LARGE, seed=4)
    truth = scm.interventional("X", "Y")
    assert max_abs_error(naive_conditional(data, "X", "Y"), truth) < 0.01
    assert max_abs_error(backdoor_adjustment(data, "X", "Y", ["C", "A"]), truth) < 0.01


@pytest.mark.parametrize(
    "cards, seed",
    [
        ({"U": 2, "X": 2, "M": 2, "Y": 2}, 21),
        ({"U": 3, "X": 3, "M": 3, "Y": 2}, 22),
        ({"U": 2, "X": 2, "M": 4, "Y": 3}, 24),
    ],
)
def test_frontdoor_converges_with_an_unobserved_confounder(cards, seed):
    graph = nx.DiGraph([("U", "X"), ("U", "Y"), ("X", "M"), ("M", "Y")])
    scm = DiscreteSCM.random(graph, cards, seed=seed, concentration=0.7, latent=["U"])
    data = scm.sample(N_LARGE, seed=seed)
    assert "U" not in data.columns
    truth = scm.interventional("X", "Y")
    assert is_frontdoor_set(graph, "X", "Y", "M") and not is_backdoor_set(graph, "X", "Y", [])
    assert max_abs_error(scm.conditional("X", "Y"), truth) > 0.05  # the seed gives a confounded model
    assert max_abs_error(frontdoor_adjustment(data, "X", "Y", "M"), truth) < 0.01
    assert max_abs_error(naive_conditional(data, "X", "Y"), truth) > 0.03
    with pytest.raises(UnknownVariableError, match="'U'"):
        backdoor_adjustment(data, "X", "Y", "U")  # the only valid back-door set is not observed


def test_frontdoor_fails_when_the_confounder_reaches_the_mediator():
    scm = frontdoor_scm(u_to_m=True)
    assert not is_frontdoor_set(scm.graph, "X", "Y", "M")
    data = scm.sample(N_LARGE, seed=8)
    assert max_abs_error(frontdoor_adjustment(data, "X", "Y", "M"), scm.interventional("X", "Y")) > 0.02


def test_frontdoor_criterion_parts():
    g = nx.DiGraph([("U", "X"), ("U", "Y"), ("X", "M"), ("M", "Y")])
    assert not is_frontdoor_set(nx.DiGraph([*g.edges, ("X", "Y")]), "X", "Y", "M")  # (i) a direct edge
    assert not is_frontdoor_set(nx.DiGraph([*g.edges, ("U", "M")]), "X", "Y", "M")  # (ii) X <- U -> M
    assert not is_frontdoor_set(nx.DiGraph([*g.edges, ("W", "M"), ("W", "Y")]), "X", "Y", "M")  # (iii) M <- W -> Y
    assert not is_frontdoor_set(g, "X", "Y", [])


def test_mutilate_removes_exactly_the_named_edges():
    g = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y"), ("X", "W")])
    assert set(mutilate(g, incoming="X").edges) == {("Z", "Y"), ("X", "Y"), ("X", "W")}
    assert set(mutilate(g, outgoing="X").edges) == {("Z", "X"), ("Z", "Y")}
    assert set(mutilate(g, incoming=["Y"], outgoing=["Z"]).edges) == {("X", "W")}
    assert len(g.edges) == 4  # the input is untouched
    with pytest.raises(UnknownVariableError):
        mutilate(g, incoming="Q")


def test_videoqg_panels():
    panels = videoqg_scm_panels()
    assert [len(g.edges) for _, g in panels] == [5, 5, 7, 7]
    cuts = [{(u, v) for u, v, d in g.edges(data=True) if d["cut"]} for _, g in panels]
    assert cuts == [set(), {("Z", "L")}, {("Z", "L")}, {("Z", "L"), ("Z", "V")}]
    # back-door for L -> a holds in the original graph when Z is available (the dictionary Z_l)
    assert is_backdoor_set(panels[0][1], "L", "a", ["Z"]) and not is_backdoor_set(panels[0][1], "L", "a", [])


# ---- errors --------------------------------------------------------------------------------------


def test_unknown_variables_are_named():
    scm = confounded_scm()
    data = scm.sample(1000)
    with pytest.raises(UnknownVariableError, match=r"\['W'\].*columns are \['Z', 'X', 'Y'\]"):
        backdoor_adjustment(data, "X", "Y", ["W"])
    with pytest.raises(UnknownVariableError, match="'T'"):
        frontdoor_adjustment(data, "T", "Y", "Z")
    with pytest.raises(UnknownVariableError, match="'Q'"):
        naive_conditional(data, "X", "Q")
    with pytest.raises(UnknownVariableError, match="'Q'"):
        scm.interventional("Q", "Y")
    with pytest.raises(UnknownVariableError, match="'Q'"):
        scm.do({"Q": 1})
    with pytest.raises(UnknownVariableError, match="parent 'P'"):
        DiscreteSCM().add("A", [0, 1], [[0.5, 0.5]] * 2, parents=["P"])
    with pytest.raises(UnknownVariableError):
        is_backdoor_set(scm.graph, "X", "Y", ["nope"])


def test_positivity_violation_is_reported():
    data = pd.DataFrame({"Z": [0, 0, 1, 1, 1], "X": [0, 1, 0, 0, 0], "Y": [0, 1, 1, 0, 1]})
    with pytest.raises(PositivityError, match=r"X=1 never occurs with Z=1"):
        backdoor_adjustment(data, "X", "Y", "Z")
    # the P(z | x) weighting gives an empty cell zero weight: no error, and it equals the naive conditional
    assert (
        max_abs_error(
            backdoor_adjustment(data, "X", "Y", "Z", weights="conditional"), naive_conditional(data, "X", "Y")
        )
        < 1e-12
    )
    fd = pd.DataFrame({"X": [0, 0, 1, 1], "M": [0, 1, 1, 1], "Y": [0, 1, 1, 0]})
    with pytest.raises(PositivityError, match=r"X=1 never occurs with M=0"):
        frontdoor_adjustment(fd, "X", "Y", "M")


def test_bad_input_is_rejected():
    scm = confounded_scm()
    data = scm.sample(100)
    with pytest.raises(ValueError, match="shape"):
        DiscreteSCM().add("A", [0, 1], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="probability vector"):
        DiscreteSCM().add("A", [0, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="already"):
        confounded_scm().add("Z", [0, 1], [0.5, 0.5])
    with pytest.raises(ValueError, match="not a value"):
        scm.do({"X": 7})
    with pytest.raises(ValueError, match="must not repeat"):
        backdoor_adjustment(data, "X", "Y", ["X"])
    with pytest.raises(ValueError, match="both"):
        naive_conditional(data, "X", "X")
    with pytest.raises(ValueError, match="weights"):
        backdoor_adjustment(data, "X", "Y", "Z", weights="prior")
    with pytest.raises(ValueError, match="missing"):
        backdoor_adjustment(data.assign(Z=[None] + data.Z.tolist()[1:]), "X", "Y", "Z")
    with pytest.raises(TypeError, match="DataFrame"):
        naive_conditional(data.to_numpy(), "X", "Y")
