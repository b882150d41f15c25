"""Discrete structural causal models: exact interventions by graph surgery, and estimators.

A :class:`DiscreteSCM` is a DAG (``networkx.DiGraph``) whose nodes carry a finite set of values and
a conditional probability table (CPT) $P(v \\mid \\mathrm{pa}(v))$. It gives

- observational samples (ancestral sampling) as a ``pandas.DataFrame``, one row per sample;
- exact distributions by enumerating the joint, $P(v_1..v_n) = \\prod_i P(v_i \\mid \\mathrm{pa}_i)$;
- the true $P(y \\mid do(X{=}x))$ by *graph surgery*: delete the edges into $X$ and replace its CPT
  by a point mass at $x$ (the truncated factorisation).

The estimators work on a DataFrame of discrete samples only, never on the model:

- :func:`naive_conditional`: $P(y \\mid x)$, seeing;
- :func:`backdoor_adjustment`: $\\sum_z P(y \\mid x, z) P(z)$;
- :func:`frontdoor_adjustment`: $\\sum_m P(m \\mid x) \\sum_{x'} P(y \\mid x', m) P(x')$.

Each returns a table (DataFrame) with one row per treatment value and one column per outcome value.
:func:`is_backdoor_set` and :func:`is_frontdoor_set` check the graphical criteria by d-separation.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import networkx as nx
import numpy as np
import pandas as pd

__all__ = [
    "DiscreteSCM",
    "PositivityError",
    "UnknownVariableError",
    "backdoor_adjustment",
    "draw_dag",
    "frontdoor_adjustment",
    "is_backdoor_set",
    "is_frontdoor_set",
    "max_abs_error",
    "mutilate",
    "naive_conditional",
    "random_cpt",
    "videoqg_scm_panels",
    "VIDEOQG_POS",
]


class UnknownVariableError(KeyError):
    """A variable name that is not in the model or not a column of the data."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


class PositivityError(ValueError):
    """An estimator needs $P(y \\mid x, s)$ for a stratum $s$ in which treatment $x$ never occurs."""


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


def random_cpt(
    rng: np.random.Generator, parent_cards: Sequence[int], card: int, concentration: float = 1.0
) -> np.ndarray:
    """A CPT of shape ``(*parent_cards, card)`` whose rows are Dirichlet(concentration) draws."""
    return rng.dirichlet(np.full(card, concentration), size=tuple(parent_cards))


class DiscreteSCM:
    """A discrete SCM: a DAG, a finite domain per variable, and one CPT per variable.

    Build it with :meth:`add` in any order that adds parents before children::

        scm = DiscreteSCM()
        scm.add("Z", values=[0, 1], cpt=[0.7, 0.3], observed=False)
        scm.add("X", values=[0, 1], parents=["Z"], cpt=[[0.9, 0.1], [0.2, 0.8]])

    ``cpt[i_1, ..., i_k, j]`` $= P(v = \\text{values}[j] \\mid \\mathrm{pa}_1 = \\text{values}_1[i_1], \\dots)$,
    with the parents in the order given. ``observed=False`` marks a latent variable: it is
    simulated but :meth:`sample` leaves it out of the data unless asked.
    """

    def __init__(self) -> None:
        self.graph = nx.DiGraph()
        self._values: dict[str, tuple] = {}
        self._parents: dict[str, tuple[str, ...]] = {}
        self._cpts: dict[str, np.ndarray] = {}
        self._observed: dict[str, bool] = {}

    # ---- construction --------------------------------------------------------------------------
    def add(
        self, name: str, values: Sequence[Hashable], cpt, parents: Sequence[str] = (), observed: bool = True
    ) -> DiscreteSCM:
        """Add variable ``name`` with its domain, parents and CPT; returns ``self`` for chaining."""
        if name in self._values:
            raise ValueError(f"variable {name!r} is already in the model")
        values = tuple(values)
        if len(values) < 1 or len(set(values)) != len(values):
            raise ValueError(f"variable {name!r}: values must be a non-empty list of distinct labels, got {values}")
        parents = tuple(parents)
        for parent in parents:
            if parent not in self._values:
                raise UnknownVariableError(
                    f"variable {name!r}: parent {parent!r} is not in the model (add parents first); known: "
                    f"{list(self._values)}"
                )
        cpt = np.asarray(cpt, dtype=float)
        expected = tuple(len(self._values[p]) for p in parents) + (len(values),)
        if cpt.shape != expected:
            raise ValueError(
                f"variable {name!r}: CPT has shape {cpt.shape}, expected {expected} (parent cardinalities, then "
                f"its own)"
            )
        if (cpt < 0).any() or not np.allclose(cpt.sum(axis=-1), 1.0, atol=1e-9):
            raise ValueError(
                f"variable {name!r}: every CPT row must be a probability vector (non-negative, summing to 1)"
            )
        self.graph.add_node(name)
        self.graph.add_edges_from((p, name) for p in parents)
        self._values[name], self._parents[name], self._cpts[name], self._observed[name] = values, parents, cpt, observed
        return self

    @classmethod
    def random(
        cls,
        graph: nx.DiGraph,
        cards: Mapping[str, int],
        seed: int = 0,
        concentration: float = 1.0,
        latent: Iterable[str] = (),
    ) -> DiscreteSCM:
        """Random CPTs on ``graph``: variable ``v`` takes values ``0..cards[v]-1``."""
        rng = np.random.default_rng(seed)
        latent = set(latent)
        scm = cls()
        for v in nx.topological_sort(graph):
            parents = sorted(graph.predecessors(v))
            cpt = random_cpt(rng, [cards[p] for p in parents], cards[v], concentration)
            scm.add(v, range(cards[v]), cpt, parents=parents, observed=v not in latent)
        return scm

    # ---- inspection ----------------------------------------------------------------------------
    @property
    def variables(self) -> list[str]:
        """All variables in the order they were added (a topological order)."""
        return list(self._values)

    @property
    def observed(self) -> list[str]:
        return [v for v in self._values if self._observed[v]]

    @property
    def latent(self) -> list[str]:
        return [v for v in self._values if not self._observed[v]]

    def values(self, name: str) -> tuple:
        self._check_known([name])
        return self._values[name]

    def parents(self, name: str) -> tuple[str, ...]:
        self._check_known([name])
        return self._parents[name]

    def cpt(self, name: str) -> np.ndarray:
        self._check_known([name])
        return self._cpts[name].copy()

    def _check_known(self, names: Iterable[str]) -> None:
        missing = [n for n in names if n not in self._values]
        if missing:
            raise UnknownVariableError(f"unknown variable(s) {missing}; the model has {self.variables}")

    # ---- graph surgery -------------------------------------------------------------------------
    def do(self, intervention: Mapping[str, Hashable]) -> DiscreteSCM:
        """The mutilated model $M_{x}$: edges into each intervened $X$ deleted, $P(X{=}x) = 1$."""
        self._check_known(intervention)
        out = DiscreteSCM()
        for v in self.variables:
            if v in intervention:
                value = intervention[v]
                if value not in self._values[v]:
                    raise ValueError(
                        f"do({v}={value!r}): {value!r} is not a value of {v}; values are {self._values[v]}"
                    )
                point_mass = np.array([float(u == value) for u in self._values[v]])  # P(X = x) = 1
                out.add(v, self._values[v], point_mass, parents=(), observed=self._observed[v])
            else:
                out.add(v, self._values[v], self._cpts[v], parents=self._parents[v], observed=self._observed[v])
        return out

    # ---- exact distributions -------------------------------------------------------------------
    def joint(self) -> np.ndarray:
        """The joint $\\prod_i P(v_i \\mid \\mathrm{pa}_i)$ as an array with one axis per variable."""
        names = self.variables
        axis = {v: i for i, v in enumerate(names)}
        letters = [chr(ord("a") + i) for i in range(len(names))]
        if len(names) > 26:
            raise ValueError("joint(): at most 26 variables can be enumerated")
        operands, subscripts = [], []
        for v in names:
            operands.append(self._cpts[v])
            subscripts.append("".join(letters[axis[p]] for p in self._parents[v]) + letters[axis[v]])
        return np.einsum(",".join(subscripts) + "->" + "".join(letters), *operands)

    def marginal(self, names: Sequence[str]) -> np.ndarray:
        """$P(\\text{names})$, one axis per name in the order given."""
        names = list(names)
        self._check_known(names)
        if len(set(names)) != len(names):
            raise ValueError(f"marginal(): repeated names in {names}")
        order = self.variables
        joint = self.joint()
        keep = sorted(order.index(n) for n in names)
        drop = tuple(i for i in range(len(order)) if i not in keep)
        m = joint.sum(axis=drop)  # axes now in model order of `keep`
        kept_names = [order[i] for i in keep]
        return np.transpose(m, [kept_names.index(n) for n in names])

    def conditional(self, treatment: str, outcome: str) -> pd.DataFrame:
        """The exact observational $P(\\text{outcome} \\mid \\text{treatment})$ (seeing)."""
        pxy = self.marginal([treatment, outcome])  # (|X|, |Y|)
        px = pxy.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            table = np.where(px > 0, pxy / px, np.nan)
        return _table(table, self._values[treatment], self._values[outcome], treatment, outcome)

    def interventional(self, treatment: str, outcome: str) -> pd.DataFrame:
        """The true $P(\\text{outcome} \\mid do(\\text{treatment}{=}x))$, one row per $x$ (doing)."""
        self._check_known([treatment, outcome])
        if treatment == outcome:
            raise ValueError("treatment and outcome must differ")
        rows = [self.do({treatment: x}).marginal([outcome]) for x in self._values[treatment]]
        return _table(np.stack(rows), self._values[treatment], self._values[outcome], treatment, outcome)

    # ---- sampling ------------------------------------------------------------------------------
    def sample(self, n: int, seed: int | np.random.Generator | None = 0, include_latent: bool = False) -> pd.DataFrame:
        """``n`` i.i.d. samples by ancestral sampling, one categorical column per variable (categories
        in the model's value order); latent variables only if ``include_latent``."""
        if n < 1:
            raise ValueError(f"sample(): n must be positive, got {n}")
        rng = np.random.default_rng(seed)
        codes: dict[str, np.ndarray] = {}
        for v in self.variables:
            cpt = self._cpts[v]
            rows = (
                cpt[tuple(codes[p] for p in self._parents[v])]
                if self._parents[v]
                else np.broadcast_to(cpt, (n, cpt.shape[-1]))
            )  # (n, |v|)
            cdf = np.cumsum(rows, axis=1)
            u = rng.random((n, 1))
            codes[v] = np.minimum((u > cdf).sum(axis=1), cpt.shape[-1] - 1)  # inverse-CDF draw
        columns = self.variables if include_latent else self.observed
        # categorical columns keep the model's value order, which the estimators' tables follow
        return pd.DataFrame({v: pd.Categorical.from_codes(codes[v], categories=list(self._values[v])) for v in columns})


# --------------------------------------------------------------------------------------------------
# Estimators from data
# --------------------------------------------------------------------------------------------------


def _as_list(names: str | Sequence[str] | None) -> list[str]:
    if names is None:
        return []
    return [names] if isinstance(names, str) else list(names)


def _table(array: np.ndarray, x_values, y_values, treatment: str, outcome: str) -> pd.DataFrame:
    table = pd.DataFrame(
        array, index=pd.Index(list(x_values), name=treatment), columns=pd.Index(list(y_values), name=outcome)
    )
    return table


def _check_columns(data: pd.DataFrame, treatment: str, outcome: str, others: list[str], role: str) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame of samples, got {type(data).__name__}")
    missing = [c for c in [treatment, outcome, *others] if c not in data.columns]
    if missing:
        raise UnknownVariableError(f"variable(s) {missing} not in the data; its columns are {list(data.columns)}")
    if treatment == outcome:
        raise ValueError(f"treatment and outcome are both {treatment!r}")
    clash = [c for c in others if c in (treatment, outcome)]
    if clash or len(set(others)) != len(others):
        raise ValueError(f"the {role} set {others} must not repeat a name or contain the treatment/outcome")
    if len(data) == 0:
        raise ValueError("data has no rows")
    nulls = [c for c in [treatment, outcome, *others] if data[c].isna().any()]
    if nulls:
        raise ValueError(f"column(s) {nulls} contain missing values; drop or impute them first")


def _counts(data: pd.DataFrame, columns: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    """The observed levels of each column (sorted, or in category order for a categorical column)
    and the contingency array of counts, one axis per column."""
    codes, levels = [], []
    for c in columns:
        code, uniques = pd.factorize(data[c], sort=True)
        codes.append(code)
        levels.append(np.asarray(uniques))
    shape = tuple(len(u) for u in levels)
    flat = np.ravel_multi_index(codes, shape) if columns else np.zeros(len(data), dtype=int)
    return levels, np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape).astype(float)


def _plain(value):
    """A numpy scalar as the Python value it holds, for readable messages."""
    return value.item() if isinstance(value, np.generic) else value


def _stratum_name(names: list[str], levels: list[np.ndarray], index: int) -> str:
    combo = np.unravel_index(index, tuple(len(level) for level in levels))
    return ", ".join(f"{n}={_plain(level[i])!r}" for n, level, i in zip(names, levels, combo))


def naive_conditional(data: pd.DataFrame, treatment: str, outcome: str) -> pd.DataFrame:
    """$P(y \\mid x) = N(x, y) / N(x)$: what we *see* in the data."""
    _check_columns(data, treatment, outcome, [], "adjustment")
    (xs, ys), c = _counts(data, [treatment, outcome])  # (|X|, |Y|)
    return _table(c / c.sum(axis=1, keepdims=True), xs, ys, treatment, outcome)


def backdoor_adjustment(
    data: pd.DataFrame, treatment: str, outcome: str, adjustment: str | Sequence[str], weights: str = "marginal"
) -> pd.DataFrame:
    """Back-door adjustment $P(y \\mid do(x)) = \\sum_z P(y \\mid x, z)\\,P(z)$ from samples.

    ``adjustment`` is one column name or a list (the set $Z$). ``weights="conditional"`` uses
    $P(z \\mid x)$ instead of $P(z)$ (what an attention over $z$ computed from $x$ can represent);
    by the law of total probability that gives back $P(y \\mid x)$ exactly: no adjustment at all.
    Raises :class:`PositivityError` if some $x$ never occurs in an observed stratum $z$.
    """
    zs = _as_list(adjustment)
    _check_columns(data, treatment, outcome, zs, "adjustment")
    if weights not in ("marginal", "conditional"):
        raise ValueError(f"weights must be 'marginal' (the back-door formula) or 'conditional', got {weights!r}")
    levels, c = _counts(data, [treatment, *zs, outcome])
    xs, ys = levels[0], levels[-1]
    c = c.reshape(len(xs), -1, len(ys))  # (|X|, |Z| strata, |Y|)
    n_xz = c.sum(axis=2)  # (|X|, |Z|)
    n_z = n_xz.sum(axis=0)  # (|Z|,)
    present = n_z > 0
    holes = np.argwhere((n_xz == 0) & present[None, :])
    if weights == "marginal" and len(holes):  # P(z | x) weights give an empty cell weight 0
        x_i, z_i = holes[0]
        raise PositivityError(
            f"positivity violated: {treatment}={_plain(xs[x_i])!r} never occurs with "
            f"{_stratum_name(zs, levels[1:-1], z_i)} ({len(holes)} empty (treatment, stratum) cell(s)); "
            f"P({outcome} | {treatment}, {', '.join(zs)}) is undefined there"
        )
    p_y_given_xz = np.divide(c, n_xz[..., None], out=np.zeros_like(c), where=n_xz[..., None] > 0)  # (|X|, |Z|, |Y|)
    if weights == "marginal":
        p_z = np.broadcast_to(n_z / n_z.sum(), n_xz.shape)  # P(z), the same for every x
    else:
        p_z = n_xz / n_xz.sum(axis=1, keepdims=True)  # P(z | x)
    return _table(np.einsum("xz,xzy->xy", p_z, p_y_given_xz), xs, ys, treatment, outcome)


def frontdoor_adjustment(
    data: pd.DataFrame, treatment: str, outcome: str, mediator: str | Sequence[str], weights: str = "marginal"
) -> pd.DataFrame:
    """Front-door adjustment $P(y \\mid do(x)) = \\sum_m P(m \\mid x) \\sum_{x'} P(y \\mid x', m)\\,P(x')$.

    ``mediator`` is one column name or a list (the set $M$). ``weights="conditional"`` replaces
    $P(x')$ by $P(x' \\mid x) = [x' = x]$, which collapses the formula to $P(y \\mid x)$.
    Raises :class:`PositivityError` if some treatment value never occurs with an observed $m$.
    """
    ms = _as_list(mediator)
    _check_columns(data, treatment, outcome, ms, "mediator")
    if weights not in ("marginal", "conditional"):
        raise ValueError(f"weights must be 'marginal' (the front-door formula) or 'conditional', got {weights!r}")
    levels, c = _counts(data, [treatment, *ms, outcome])
    xs, ys = levels[0], levels[-1]
    c = c.reshape(len(xs), -1, len(ys))  # (|X|, |M| strata, |Y|)
    n_xm = c.sum(axis=2)  # (|X|, |M|)
    n_x = n_xm.sum(axis=1)  # (|X|,)
    present = n_xm.sum(axis=0) > 0
    holes = np.argwhere((n_xm == 0) & present[None, :])
    if weights == "marginal" and len(holes):
        x_i, m_i = holes[0]
        raise PositivityError(
            f"positivity violated: {treatment}={_plain(xs[x_i])!r} never occurs with "
            f"{_stratum_name(ms, levels[1:-1], m_i)} ({len(holes)} empty (treatment, mediator) cell(s)); "
            f"P({outcome} | {treatment}, {', '.join(ms)}) is undefined there"
        )
    p_m_given_x = n_xm / n_x[:, None]  # (|X|, |M|)
    p_y_given_xm = np.divide(c, n_xm[..., None], out=np.zeros_like(c), where=n_xm[..., None] > 0)  # (|X'|, |M|, |Y|)
    if weights == "marginal":
        p_x = n_x / n_x.sum()  # P(x')
        inner = np.einsum("a,amy->my", p_x, p_y_given_xm)  # sum_x' P(y | x', m) P(x')      (|M|, |Y|)
        return _table(p_m_given_x @ inner, xs, ys, treatment, outcome)
    # P(x' | x) = [x' = x]: the inner sum keeps only x' = x
    return _table(np.einsum("xm,xmy->xy", p_m_given_x, p_y_given_xm), xs, ys, treatment, outcome)


def max_abs_error(estimate: pd.DataFrame, truth: pd.DataFrame) -> float:
    """$\\max_{x,y} |\\hat P(y \\mid do(x)) - P(y \\mid do(x))|$ over the cells of ``truth``.

    A treatment or outcome value that the estimate lacks counts as probability 0.
    """
    aligned = estimate.reindex(index=truth.index, columns=truth.columns).fillna(0.0)
    return float(np.abs(aligned.to_numpy(dtype=float) - truth.to_numpy(dtype=float)).max())


# --------------------------------------------------------------------------------------------------
# Graphical criteria (d-separation)
# --------------------------------------------------------------------------------------------------


def _check_graph_nodes(graph: nx.DiGraph, names: Iterable[str]) -> None:
    missing = [n for n in names if n not in graph]
    if missing:
        raise UnknownVariableError(f"variable(s) {missing} not in the graph; its nodes are {list(graph.nodes)}")


def mutilate(graph: nx.DiGraph, incoming: str | Sequence[str] = (), outgoing: str | Sequence[str] = ()) -> nx.DiGraph:
    r"""$G_{\overline{X}\,\underline{Z}}$: a copy of ``graph`` without the edges into ``incoming`` ($X$)
    and without the edges out of ``outgoing`` ($Z$), the graphs in which do-calculus tests apply."""
    into, out_of = _as_list(incoming), _as_list(outgoing)
    _check_graph_nodes(graph, [*into, *out_of])
    g = graph.copy()
    g.remove_edges_from([*graph.in_edges(into), *graph.out_edges(out_of)])
    return g


def is_backdoor_set(graph: nx.DiGraph, treatment: str, outcome: str, adjustment: str | Sequence[str]) -> bool:
    """Pearl's back-door criterion: no $Z$ descends from $X$, and $Z$ blocks every path
    $X \\leftarrow \\dots\\, Y$ (i.e. $Y \\perp X \\mid Z$ in the graph without $X$'s outgoing edges)."""
    zs = set(_as_list(adjustment))
    _check_graph_nodes(graph, [treatment, outcome, *zs])
    if zs & nx.descendants(graph, treatment) or treatment in zs or outcome in zs:
        return False
    return nx.is_d_separator(mutilate(graph, outgoing=treatment), {treatment}, {outcome}, zs)  # in G_{underline X}


def is_frontdoor_set(graph: nx.DiGraph, treatment: str, outcome: str, mediator: str | Sequence[str]) -> bool:
    """Pearl's front-door criterion for $M$: (i) $M$ intercepts every directed path $X \\to Y$;
    (ii) there is no unblocked back-door path from $X$ to $M$; (iii) $X$ blocks every back-door path
    from $M$ to $Y$."""
    ms = _as_list(mediator)
    _check_graph_nodes(graph, [treatment, outcome, *ms])
    if treatment in ms or outcome in ms or not ms:
        return False
    cut = graph.copy()
    cut.remove_nodes_from(ms)
    if nx.has_path(cut, treatment, outcome):  # (i) a directed path that avoids M
        return False
    if not nx.is_d_separator(
        mutilate(graph, outgoing=treatment), {treatment}, set(ms), set()
    ):  # (ii) in G_{underline X}
        return False
    return nx.is_d_separator(mutilate(graph, outgoing=ms), set(ms), {outcome}, {treatment})  # (iii) in G_{underline M}


# --------------------------------------------------------------------------------------------------
# The VideoQG SCM of the paper, and drawing
# --------------------------------------------------------------------------------------------------

#: Node positions for the four panels (L top left, V bottom left, a centre, Z right, M between V and a).
VIDEOQG_POS = {"L": (0.0, 1.0), "V": (0.0, -1.0), "a": (1.5, 0.0), "Z": (3.6, 0.0), "M": (0.75, -0.5)}


def videoqg_scm_panels() -> list[tuple[str, nx.DiGraph]]:
    """The four SCM panels of CRA's Fig. 2 (bottom row), as read from the released figure.

    Edge attributes: ``style`` is ``"solid"`` or ``"dashed"`` (partly unobserved confounding) and
    ``cut=True`` marks an edge removed by the intervention of that panel. Panel 1: $Z \\to L$,
    $Z \\dashrightarrow V$, $Z \\dashrightarrow a$, $V \\to a$, $L \\to a$. Panel 2 cuts $Z \\to L$
    (linguistic back-door). Panel 3 routes the video through the mediator: $V \\to M \\to a$,
    $L \\to M$. Panel 4 also cuts $Z \\dashrightarrow V$ (visual front-door).
    """

    def graph(edges, cuts=()):
        g = nx.DiGraph()
        g.add_nodes_from(["V", "L", "a", "Z"])
        for u, v, style in edges:
            g.add_edge(u, v, style=style, cut=(u, v) in cuts)
        return g

    base = [("Z", "L", "solid"), ("Z", "V", "dashed"), ("Z", "a", "dashed"), ("L", "a", "solid")]
    grounded = [("V", "M", "solid"), ("M", "a", "solid"), ("L", "M", "solid")]
    return [
        ("(1) original", graph([*base, ("V", "a", "solid")])),
        ("(2) linguistic deconfounding", graph([*base, ("V", "a", "solid")], cuts={("Z", "L")})),
        ("(3) video question grounding", graph([*base, *grounded], cuts={("Z", "L")})),
        ("(4) visual deconfounding", graph([*base, *grounded], cuts={("Z", "L"), ("Z", "V")})),
    ]


def draw_dag(
    graph: nx.DiGraph,
    ax,
    pos: Mapping[str, tuple[float, float]] | None = None,
    title: str = "",
    latent: Iterable[str] = (),
) -> None:
    """Draw a DAG on a matplotlib axis: latent nodes and ``style="dashed"`` edges dashed, and a red
    cross on every edge with ``cut=True``."""
    pos = dict(pos) if pos is not None else nx.shell_layout(graph)
    latent = set(latent)
    observed_nodes = [n for n in graph.nodes if n not in latent]
    nx.draw_networkx_nodes(
        graph, pos, nodelist=observed_nodes, node_color="#dbe8f6", edgecolors="#1f4e79", node_size=700, ax=ax
    )
    if latent:
        nx.draw_networkx_nodes(
            graph,
            pos,
            nodelist=sorted(latent),
            node_color="white",
            edgecolors="gray",
            node_size=700,
            linewidths=1.5,
            ax=ax,
        ).set_linestyle("--")
    nx.draw_networkx_labels(graph, pos, font_size=13, ax=ax)
    for style in ("solid", "dashed"):
        edges = [(u, v) for u, v, d in graph.edges(data=True) if d.get("style", "solid") == style]
        nx.draw_networkx_edges(graph, pos, edgelist=edges, style=style, arrows=True, arrowsize=18, node_size=700, ax=ax)
    for u, v, d in graph.edges(data=True):
        if d.get("cut"):
            mx, my = (np.asarray(pos[u]) + np.asarray(pos[v])) / 2
            ax.plot([mx], [my], marker="x", color="red", markersize=16, markeredgewidth=3)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    ax.margins(0.2)
