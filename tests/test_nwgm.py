"""cra.nwgm: the NWGM identity, where the approximation is exact, how its error grows, the widget callback."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cra.nwgm import (
    expected_softmax,
    nwgm,
    nwgm_gap,
    nwgm_panel,
    random_logits,
    softmax,
    softmax_of_mean,
    total_variation,
)  # noqa: E402


def test_softmax_hand_values_and_stability():
    assert np.allclose(softmax([0.0, np.log(3.0)]), [0.25, 0.75])
    assert np.allclose(softmax([1000.0, 1000.0]), [0.5, 0.5])


def test_nwgm_equals_softmax_of_expected_logits():
    logits, weights = random_logits(spread=3.0, dict_size=7, num_classes=5, trials=50, seed=1)
    assert np.allclose(nwgm(logits, weights), softmax_of_mean(logits, weights), atol=1e-12)


def test_expected_softmax_hand_value():
    logits = np.array([[0.0, np.log(3.0)], [np.log(3.0), 0.0]])  # softmax rows (1/4, 3/4) and (3/4, 1/4)
    weights = np.array([0.5, 0.5])
    assert np.allclose(expected_softmax(logits, weights), [0.5, 0.5])
    assert np.allclose(softmax_of_mean(logits, weights), [0.5, 0.5])  # symmetric: exact here
    skewed = np.array([0.8, 0.2])
    assert np.allclose(expected_softmax(logits, skewed), [0.8 * 0.25 + 0.2 * 0.75, 0.8 * 0.75 + 0.2 * 0.25])
    # softmax(0.8*(0, log 3) + 0.2*(log 3, 0)) = softmax(0.2 log 3, 0.8 log 3)
    assert np.allclose(softmax_of_mean(logits, skewed), softmax([0.2 * np.log(3.0), 0.8 * np.log(3.0)]))


def test_exact_cases():
    rng = np.random.default_rng(0)
    f = rng.standard_normal(5)
    shifted = f[None, :] + rng.standard_normal((6, 1)) * 10  # f_n = f + c_n: every softmax is the same
    weights = rng.dirichlet(np.ones(6))
    assert np.allclose(expected_softmax(shifted, weights), softmax_of_mean(shifted, weights))
    one = rng.standard_normal((1, 5))  # a single dictionary entry
    assert np.allclose(expected_softmax(one, [1.0]), softmax_of_mean(one, [1.0]))
    point_mass = np.eye(6)[2]
    many = rng.standard_normal((6, 5))
    assert np.allclose(expected_softmax(many, point_mass), softmax(many[2]))
    assert np.allclose(softmax_of_mean(many, point_mass), softmax(many[2]))
    assert nwgm_gap(0.0, 8) < 1e-15


def test_gap_grows_quadratically_then_saturates():
    small = [nwgm_gap(s, 8, trials=2000) for s in (0.05, 0.1)]
    assert 3.5 < small[1] / small[0] < 4.5  # second order in the spread
    gaps = [nwgm_gap(s, 8) for s in (0.5, 1.0, 2.0, 4.0, 8.0)]
    assert all(a < b for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] > 0.2 and gaps[-1] <= 1.0


def test_widget_callback_draws_and_returns_the_numbers():
    fig, ax = plt.subplots()
    out = nwgm_panel(spread=3.0, dict_size=4, num_classes=5, seed=2, ax=ax)
    logits, weights = random_logits(3.0, 4, 5, 1, 2)
    assert np.allclose(out["exact"], expected_softmax(logits, weights)[0])
    assert np.allclose(out["nwgm"], softmax_of_mean(logits, weights)[0])
    assert out["tv"] == pytest.approx(float(total_variation(out["exact"], out["nwgm"])))
    assert len(ax.patches) == 10 and "TV distance" in ax.get_title()
    plt.close(fig)


def test_bad_shapes_and_weights_are_rejected():
    with pytest.raises(ValueError, match="shape|must be"):
        expected_softmax(np.zeros((3, 4)), np.ones(4) / 4)
    with pytest.raises(ValueError, match="sum to 1"):
        softmax_of_mean(np.zeros((3, 4)), np.ones(3))
    with pytest.raises(ValueError, match="dict_size"):
        random_logits(1.0, 0)


def test_nwgm_explorer_prerenders_every_setting_and_defaults_to_the_middle():
    import matplotlib

    matplotlib.use("Agg")
    from cra.nwgm import nwgm_explorer

    widget, results = nwgm_explorer(spreads=(0.5, 2.0), dict_sizes=(2, 4), num_classes=3, seed=1)
    assert set(results) == {(0.5, 2), (0.5, 4), (2.0, 2), (2.0, 4)}
    spread, size, pages = widget.children
    assert len(pages.children) == 2 and all(len(stack.children) == 2 for stack in pages.children)
    assert pages.selected_index == spread.index == 1 and pages.children[0].selected_index == size.index == 1
    assert all(image.value[:4] == b"\x89PNG" for stack in pages.children for image in stack.children)
