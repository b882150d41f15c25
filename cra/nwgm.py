"""The normalised weighted geometric mean (NWGM) approximation, in numpy.

A causal adjustment over a dictionary $\\{z_1..z_N\\}$ with weights $p_n$ asks for the expectation of a
softmax, $\\mathbb E_z[\\mathrm{softmax}(f_z)] = \\sum_n p_n\\,\\mathrm{softmax}(f_n)$, which needs one
forward pass per entry. The NWGM replaces this arithmetic mean of probability vectors by their
normalised weighted *geometric* mean, which is exactly a softmax of the expected logits:

$$
\\mathrm{NWGM}_k = \\frac{\\prod_n \\mathrm{softmax}(f_n)_k^{p_n}}{\\sum_j \\prod_n \\mathrm{softmax}(f_n)_j^{p_n}}
= \\mathrm{softmax}\\Big(\\sum_n p_n f_n\\Big)_k .
$$

Shapes: ``logits`` is ``(..., N, K)`` (N dictionary entries, K classes), ``weights`` is ``(..., N)``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "expected_softmax",
    "nwgm",
    "nwgm_explorer",
    "nwgm_gap",
    "nwgm_panel",
    "random_logits",
    "softmax",
    "softmax_of_mean",
    "total_variation",
]


def softmax(f: np.ndarray, axis: int = -1) -> np.ndarray:
    """$\\mathrm{softmax}(f)_k = e^{f_k} / \\sum_j e^{f_j}$, computed stably."""
    f = np.asarray(f, dtype=float)
    e = np.exp(f - f.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _check(logits: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits, weights = np.asarray(logits, dtype=float), np.asarray(weights, dtype=float)
    if logits.ndim < 2 or weights.shape != logits.shape[:-1]:
        raise ValueError(f"logits must be (..., N, K) and weights (..., N); got {logits.shape} and {weights.shape}")
    if (weights < 0).any() or not np.allclose(weights.sum(axis=-1), 1.0, atol=1e-9):
        raise ValueError("weights must be non-negative and sum to 1 over the dictionary axis")
    return logits, weights


def expected_softmax(logits: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The exact $\\sum_n p_n\\,\\mathrm{softmax}(f_n)$: ``(..., N, K), (..., N) -> (..., K)``."""
    logits, weights = _check(logits, weights)
    return np.einsum("...n,...nk->...k", weights, softmax(logits))


def nwgm(logits: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The normalised weighted geometric mean of the $N$ softmax vectors, from its definition."""
    logits, weights = _check(logits, weights)
    log_geo = np.einsum("...n,...nk->...k", weights, np.log(softmax(logits)))  # sum_n p_n log softmax(f_n)_k
    return softmax(log_geo)  # normalise prod_n softmax(f_n)_k^{p_n} over k


def softmax_of_mean(logits: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """$\\mathrm{softmax}(\\sum_n p_n f_n)$: one forward pass at the expected logits."""
    logits, weights = _check(logits, weights)
    return softmax(np.einsum("...n,...nk->...k", weights, logits))


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """$\\tfrac12 \\sum_k |p_k - q_k|$ over the last axis."""
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(axis=-1)


def random_logits(
    spread: float, dict_size: int, num_classes: int = 5, trials: int = 1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Random problems: logits $f_{n,k} = \\text{spread}\\cdot\\varepsilon_{n,k}$ with
    $\\varepsilon \\sim \\mathcal N(0, 1)$, and weights $p \\sim \\mathrm{Dirichlet}(1)$.

    Returns ``logits`` of shape ``(trials, dict_size, num_classes)`` and ``weights`` ``(trials, dict_size)``.
    """
    if dict_size < 1 or num_classes < 2 or trials < 1 or spread < 0:
        raise ValueError(
            f"need dict_size >= 1, num_classes >= 2, trials >= 1, spread >= 0; got {dict_size}, {num_classes}, "
            f"{trials}, {spread}"
        )
    rng = np.random.default_rng(seed)
    logits = spread * rng.standard_normal((trials, dict_size, num_classes))
    weights = rng.dirichlet(np.ones(dict_size), size=trials)
    return logits, weights


def nwgm_gap(spread: float, dict_size: int, num_classes: int = 5, trials: int = 500, seed: int = 0) -> float:
    """Mean total-variation distance between $\\mathbb E[\\mathrm{softmax}(f)]$ and
    $\\mathrm{softmax}(\\mathbb E[f])$ over ``trials`` random problems (see :func:`random_logits`)."""
    logits, weights = random_logits(spread, dict_size, num_classes, trials, seed)
    return float(total_variation(expected_softmax(logits, weights), softmax_of_mean(logits, weights)).mean())


def nwgm_panel(spread: float = 2.0, dict_size: int = 4, num_classes: int = 5, seed: int = 0, ax=None) -> dict:
    """The NWGM widget's callback: one random problem, its exact expectation against the NWGM.

    Draws grouped bars on ``ax`` (a new figure if ``None``) and returns the two distributions and
    their total-variation distance, so that tests can call it without a widget.
    """
    logits, weights = random_logits(spread, dict_size, num_classes, 1, seed)
    exact, approx = expected_softmax(logits, weights)[0], softmax_of_mean(logits, weights)[0]
    tv = float(total_variation(exact, approx))
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3))
    k = np.arange(num_classes)
    ax.bar(k - 0.2, exact, width=0.4, label=r"exact $\mathbb{E}_z[\mathrm{softmax}(f_z)]$")
    ax.bar(k + 0.2, approx, width=0.4, label=r"NWGM $\mathrm{softmax}(\mathbb{E}_z[f_z])$")
    ax.set_xticks(k, [f"a{i}" for i in k])
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"spread {spread:g}, {dict_size} entries: TV distance {tv:.3f}", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    return {"exact": exact, "nwgm": approx, "tv": tv}


def nwgm_explorer(spreads=(0.5, 2.0, 8.0), dict_sizes=(2, 8, 64), num_classes: int = 5, seed: int = 0, dpi: int = 72):
    """The NWGM widget: sliders for the logit spread and the number of entries over pictures drawn in
    advance by :func:`nwgm_panel`. Nested ``Stack`` widgets whose indices are jslinked to the sliders
    switch between the pictures in the browser, so the widget also works in the static book.
    Returns ``(widget, results)`` with ``results[(spread, dict_size)]`` the panel's dictionary."""
    import io

    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    layout = {"style": {"description_width": "80px"}, "layout": widgets.Layout(width="min(560px, 100%)")}
    spread_slider = widgets.SelectionSlider(
        options=[(f"{s:g}", i) for i, s in enumerate(spreads)],
        value=min(range(len(spreads)), key=lambda i: abs(spreads[i] - 2.0)),
        description="spread",
        **layout,
    )
    size_slider = widgets.SelectionSlider(
        options=[(f"{n}", i) for i, n in enumerate(dict_sizes)],
        value=min(range(len(dict_sizes)), key=lambda i: abs(dict_sizes[i] - 8)),
        description="entries",
        **layout,
    )
    results, per_spread = {}, []
    for spread in spreads:
        pictures = []
        for size in dict_sizes:
            fig, ax = plt.subplots(figsize=(6, 3))
            results[(spread, size)] = nwgm_panel(spread, size, num_classes, seed, ax=ax)
            fig.tight_layout()
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=dpi)
            plt.close(fig)
            pictures.append(
                widgets.Image(value=buffer.getvalue(), format="png", layout=widgets.Layout(max_width="100%"))
            )
        stack = widgets.Stack(pictures, selected_index=size_slider.index)
        widgets.jslink((size_slider, "index"), (stack, "selected_index"))
        per_spread.append(stack)
    pages = widgets.Stack(per_spread, selected_index=spread_slider.index)
    widgets.jslink((spread_slider, "index"), (pages, "selected_index"))
    return widgets.VBox([spread_slider, size_slider, pages]), results
