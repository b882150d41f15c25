"""The architecture of CRA drawn by code: the paper's Fig. 2 (arXiv 2503.07635) redrawn with the
book's notation (book/notation.md) and the name of the ``cra`` object that implements each block.

``architecture_figure()`` returns a matplotlib figure; ``ARCHITECTURE_BLOCKS`` is the data it draws,
so tests can check that every named object exists in the package.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Block", "ARCHITECTURE_BLOCKS", "ARCHITECTURE_EDGES", "architecture_figure"]

# colours by role: inputs, backbone, GSG, ECI (causal), CMA / loss, outputs
_COLOURS = {
    "input": "#eeeeee",
    "backbone": "#dbe9f6",
    "gsg": "#fde3c8",
    "eci": "#dff2d8",
    "cma": "#f4dcef",
    "output": "#fff5b8",
}


@dataclass(frozen=True)
class Block:
    key: str
    col: int  # column 0..5, left to right
    row: int  # 0 = video row, 1 = middle, 2 = text row
    title: str
    symbol: str  # the notation page's symbols (matplotlib mathtext)
    code: str  # the ``cra`` object, or the batch key / attribute name
    role: str


ARCHITECTURE_BLOCKS: tuple[Block, ...] = (
    Block("text", 0, 2, "candidate texts", r"$q \oplus a_k$  or  $q_c$", "qa_texts / question_candidates", "input"),
    Block("text_head", 1, 2, "text encoder", r"$l_k$", "cra.model.backbone.TextHead", "backbone"),
    Block(
        "backdoor",
        2,
        2,
        "back-door (ECI)",
        r"$l' = \mathrm{LN}(l + \mathrm{Attn}(l, Z_l))$",
        "cra.model.causal.BackDoor",
        "eci",
    ),
    Block(
        "l_global",
        3,
        2,
        "text features",
        "$l_k'$ (candidates)\n$l = \\max_k l_k'$  or  $l_{true}$",
        "text_emb, l_global",
        "backbone",
    ),
    Block("frames", 0, 0, "frame features", r"$V$: $T \times D_{in}$ (CLIP)", "frames", "input"),
    Block("temporal", 1, 0, "temporal encoder", r"$\bar x_i$", "cra.model.backbone.TemporalEncoder", "backbone"),
    Block("gsg", 2, 1, "GSG", r"$g_i,\ w^0,\ w \propto k_\sigma * w^0$", "cra.model.gsg.GSG", "gsg"),
    Block(
        "readout",
        3,
        1,
        "interval read-outs",
        r"$\Phi_a, \Phi_b, \Phi_c \to t^*$",
        "cra.readouts.interval_readouts",
        "output",
    ),
    Block(
        "pool",
        2,
        0,
        "pooling",
        "$M$: $v_t = W_p \\sum_i w_i \\bar x_i$\n$X$: $\\bar v = W_p\\,\\mathrm{mean}_i\\,\\bar x_i$",
        "pool_proj",
        "backbone",
    ),
    Block(
        "frontdoor",
        3,
        0,
        "front-door (ECI)",
        r"$m' = \mathrm{LN}(m + W_o[h_1; h_2])$",
        "cra.model.causal.FrontDoor",
        "eci",
    ),
    Block("answer", 4, 0, "answer scores", r"$\langle l_k, W_a m' \rangle \to a^*$", "answer_proj", "output"),
    Block("cma", 4, 2, "CMA", r"InfoNCE$(l, v_{final})$", "cra.model.cma.cma_loss", "cma"),
    Block("loss", 5, 1, "loss", r"$CE^{VQA} + CE^{VQ} + w\,CMA$", "cra.model.CRA.losses", "cma"),
)

#: (from, to, label, curvature); the label is drawn at the middle of the arrow
ARCHITECTURE_EDGES: tuple[tuple[str, str, str, float], ...] = (
    ("text", "text_head", "", 0.0),
    ("text_head", "backdoor", r"$l_k$", 0.0),
    ("backdoor", "l_global", r"$l_k'$", 0.0),
    ("frames", "temporal", "", 0.0),
    ("temporal", "gsg", r"$\bar x$", 0.0),
    ("l_global", "gsg", r"$l$", 0.0),
    ("gsg", "readout", r"$w$", 0.0),
    ("gsg", "pool", r"$w$", 0.0),
    ("temporal", "pool", r"$\bar x$", 0.0),
    ("pool", "frontdoor", "", 0.0),
    ("frontdoor", "answer", r"$m'$", 0.0),
    ("l_global", "cma", r"$l$", 0.0),
    ("answer", "cma", r"$v_{final}$", -0.25),
    ("answer", "loss", "logits", 0.0),
    ("cma", "loss", "", 0.0),
    ("l_global", "answer", r"$l_k'$", 0.0),
)

_W, _H, _DX, _DY = 2.55, 1.45, 2.95, 2.55  # box size and grid spacing (data units)


def _box(block: Block) -> tuple[float, float]:
    """Lower-left corner of a block."""
    return 0.2 + block.col * _DX, 0.3 + block.row * _DY


def architecture_figure(width: float = 11.0):
    """The whole model, one pass, with the dictionaries Z_l and X_hat and the two passes noted: a Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    blocks = {b.key: b for b in ARCHITECTURE_BLOCKS}
    fig, ax = plt.subplots(figsize=(width, width * 0.62))
    ax.set_xlim(0, 0.2 + 6 * _DX)
    ax.set_ylim(-0.9, 0.3 + 2 * _DY + _H + 0.6)
    ax.set_axis_off()

    for b in ARCHITECTURE_BLOCKS:
        x, y = _box(b)
        dashed = b.role == "eci"
        ax.add_patch(
            FancyBboxPatch(
                (x, y),
                _W,
                _H,
                boxstyle="round,pad=0.04,rounding_size=0.12",
                fc=_COLOURS[b.role],
                ec="0.25",
                lw=1.6 if dashed else 1.0,
                ls="--" if dashed else "-",
            )
        )
        ax.text(x + _W / 2, y + _H - 0.28, b.title, ha="center", va="center", fontsize=9.5, weight="bold")
        ax.text(x + _W / 2, y + _H / 2 - 0.06, b.symbol, ha="center", va="center", fontsize=7.5, linespacing=1.5)
        code = b.code.replace("cra.model.", "")
        ax.text(
            x + _W / 2,
            y + 0.22,
            code,
            ha="center",
            va="center",
            fontsize=6.5 if len(code) <= 24 else 5.5,
            family="monospace",
            color="0.2",
        )

    def anchor(b: Block, toward: Block) -> tuple[float, float]:
        x, y = _box(b)
        if toward.row == b.row:
            return (x + _W, y + _H / 2) if toward.col > b.col else (x, y + _H / 2)
        if toward.col == b.col:
            return (x + _W / 2, y + _H) if toward.row > b.row else (x + _W / 2, y)
        return (x + _W if toward.col > b.col else x, y + _H if toward.row > b.row else y)

    for src, dst, label, rad in ARCHITECTURE_EDGES:
        a, b = blocks[src], blocks[dst]
        p, q = anchor(a, b), anchor(b, a)
        ax.add_patch(
            FancyArrowPatch(
                p,
                q,
                arrowstyle="-|>",
                mutation_scale=11,
                lw=1.1,
                color="0.3",
                connectionstyle=f"arc3,rad={rad}",
                shrinkA=2,
                shrinkB=2,
            )
        )
        if label:
            mx, my = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
            ax.text(
                mx,
                my + 0.12,
                label,
                ha="center",
                va="bottom",
                fontsize=8,
                color="0.15",
                bbox=dict(fc="white", ec="none", pad=0.5, alpha=0.85),
            )

    # the two dictionaries feeding the causal blocks
    bx, by = _box(blocks["backdoor"])
    ax.text(
        bx + _W / 2,
        by + _H + 0.25,
        r"dictionary $Z_l$ and prior $P(z)$: Z_l, Z_prior",
        ha="center",
        va="bottom",
        fontsize=8,
        color="#2d6a1f",
    )
    fx, fy = _box(blocks["frontdoor"])
    ax.text(
        fx + _W / 2, fy - 0.12, r"visual clusters $\hat V$: X_hat", ha="center", va="top", fontsize=8, color="#2d6a1f"
    )
    ax.text(
        0.2,
        -0.75,
        "One pass, drawn. The model runs it twice with shared weights: the VQA pass scores the answers "
        r"($q \oplus a_k$, loss $CE^{VQA}$), the VQ pass picks the true question among negatives "
        r"($q_c$, loss $CE^{VQ}$). Dashed: ECI, explicit causal intervention.",
        fontsize=8,
        ha="left",
        va="center",
        wrap=True,
    )
    fig.tight_layout()
    return fig
