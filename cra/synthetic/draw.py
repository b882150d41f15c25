"""The world's SCM as a graph (:func:`scm_graph`) and its drawing (:func:`draw_scm`)."""

from __future__ import annotations

from cra.synthetic.config import WorldConfig

#: node -> (label, meaning, observed by the model?)
SCM_NODES = {
    "Z": ("Z", "situation (latent confounder)", False),
    "A": ("A", "action of the queried event (the answer)", False),
    "E": ("E", "subject entity (word in Q, entity in V)", False),
    "S": ("S", "scene (background frames)", False),
    "R": ("R", "other events (entities, actions)", False),
    "T": ("T", "time layout of events, distractor, decoy", False),
    "D": ("D", "distractor: A done by another entity outside the events", False),
    "K": ("K", "decoys: actions of R repeated by other entities", False),
    "Q": ("Q", "question text", True),
    "C": ("C", "candidate answers a0..a4", True),
    "V": ("V", "frame features (32 x D)", True),
    "G": ("G", "evidence segment (gsub, seconds)", False),
    "Y": ("Y", "answer index", False),
}
#: (cause, effect, mechanism)
SCM_EDGES = (
    ("Z", "A", "action(Z) w.p. p_a"),
    ("Z", "E", "partner w.p. s_l"),
    ("Z", "S", "partner w.p. s_v"),
    ("E", "R", "other entities != E"),
    ("A", "R", "other actions != A"),
    ("A", "D", "distractor action = A"),
    ("E", "D", "distractor entity not in events"),
    ("R", "D", "distractor entity not in events"),
    ("R", "K", "decoy actions from R, entities not in events"),
    ("E", "K", "decoy entities not in events"),
    ("D", "K", "decoy entities != distractor entity"),
    ("K", "V", "repeated non-answer actions"),
    ("E", "Q", "subject word"),
    ("R", "Q", "reference event words"),
    ("T", "Q", "after / before"),
    ("A", "C", "answer"),
    ("E", "C", "word partner added"),
    ("S", "C", "scene partner added"),
    ("R", "C", "other events' actions added"),
    ("S", "V", "scene vector, background (or all) frames"),
    ("E", "V", "entity vector in its event"),
    ("A", "V", "action vector in its event"),
    ("R", "V", "other events' vectors"),
    ("D", "V", "action A outside the evidence"),
    ("T", "V", "where each vector is"),
    ("T", "G", "seconds of A's event"),
    ("A", "Y", "position of A"),
    ("C", "Y", "position of A"),
)
_SCM_POS = {
    "Z": (0, 3),
    "E": (-2, 2),
    "A": (0, 2),
    "S": (2, 2),
    "R": (-1.6, 1),
    "K": (0.3, 0.7),
    "D": (1.2, 1.1),
    "T": (3, -1),
    "Q": (-2.8, 0),
    "C": (-1, 0),
    "V": (1.5, 0),
    "G": (3, 0.3),
    "Y": (-0.4, -1),
}
#: edges that only say "distinct from" (other entities != E, ...): drawn only with ``detail=True``
_DISTINCTNESS = {("E", "R"), ("A", "R"), ("E", "D"), ("R", "D"), ("E", "K"), ("D", "K")}


def scm_graph(config: WorldConfig | None = None):
    """The world's SCM as a ``networkx.DiGraph`` (node attrs: label, meaning, observed; edge attr:
    mechanism, with the strengths of ``config`` filled in when given)."""
    import networkx as nx

    graph = nx.DiGraph()
    for node, (label, meaning, observed) in SCM_NODES.items():
        graph.add_node(node, label=label, meaning=meaning, observed=observed)
    for cause, effect, mechanism in SCM_EDGES:
        if config is not None:
            mechanism = (
                mechanism.replace("p_a", f"p_a={config.answer_prob:g}")
                .replace("s_l", f"s_l={config.lang_strength:g} (OOD {config.lang_strength_ood:g})")
                .replace("s_v", f"s_v={config.vis_strength:g} (OOD {config.vis_strength_ood:g})")
            )
        graph.add_edge(
            cause,
            effect,
            mechanism=mechanism,
            confounding=cause == "Z" and effect in ("E", "S"),
            distinctness=(cause, effect) in _DISTINCTNESS,
        )
    return graph


def draw_scm(ax=None, config: WorldConfig | None = None, legend: bool = True, detail: bool = False):
    """Draw the SCM: grey nodes are what a model sees, red dashed edges the confounding mechanisms
    whose strength differs between train and test-OOD. ``detail`` adds the edges that only keep
    entities and actions distinct (e.g. other entities != E). Returns the matplotlib axes."""
    import matplotlib.pyplot as plt
    import networkx as nx

    graph = scm_graph(config)
    if not detail:
        graph.remove_edges_from([(u, v) for u, v, d in graph.edges(data=True) if d["distinctness"]])
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5.5))
    colors = ["#d9d9d9" if graph.nodes[n]["observed"] else "white" for n in graph]
    nx.draw_networkx_nodes(graph, _SCM_POS, ax=ax, node_color=colors, edgecolors="black", node_size=900)
    nx.draw_networkx_labels(graph, _SCM_POS, ax=ax, labels={n: graph.nodes[n]["label"] for n in graph}, font_size=12)
    red = [(u, v) for u, v, d in graph.edges(data=True) if d["confounding"]]
    plain = [(u, v) for u, v, d in graph.edges(data=True) if not d["confounding"]]
    common = dict(ax=ax, node_size=900, arrows=True, arrowsize=14, connectionstyle="arc3,rad=0.08")
    nx.draw_networkx_edges(graph, _SCM_POS, edgelist=plain, edge_color="#444444", **common)
    nx.draw_networkx_edges(graph, _SCM_POS, edgelist=red, edge_color="#c0392b", width=2.5, style="dashed", **common)
    labels = {(u, v): d["mechanism"] for u, v, d in graph.edges(data=True) if d["confounding"]}
    nx.draw_networkx_edge_labels(
        graph, _SCM_POS, edge_labels=labels, ax=ax, font_size=8, font_color="#c0392b", label_pos=0.4, bbox={"alpha": 0}
    )
    if legend:
        text = "\n".join(f"{graph.nodes[n]['label']}: {graph.nodes[n]['meaning']}" for n in graph)
        ax.text(1.02, 0.5, text, transform=ax.transAxes, va="center", fontsize=8, family="monospace")
    ax.set_axis_off()
    return ax
