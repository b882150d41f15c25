"""The GSG chapter's widget callbacks (cra.viz, section "GSG"), called directly."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cra import metrics, readouts, viz  # noqa: E402
from cra.model.gsg import smooth_weights  # noqa: E402

T = 32
TIMES = list(np.linspace(1.0, 31.0, T))


def curve(peak: int = 10) -> list[float]:
    w = np.full(T, 0.01)
    w[peak - 1 : peak + 2] = [0.2, 0.5, 0.3]
    return list(w)


def test_figure_spans_are_the_official_readouts_and_the_window_is_five_frames():
    w = curve(10)
    spans = readouts.question_readouts(w, TIMES, 32)  # what gsg_figure draws
    start, end = readouts.window_indices(w)
    assert end - start == 5  # the always-largest window
    assert spans["window"] == metrics.to_seconds([start / (T - 1), end / (T - 1)], 32)
    assert spans["posthoc"] == readouts.posthoc_span(w, TIMES)
    assert spans["merge"] == readouts.merge_span(spans["window"], spans["posthoc"])
    fig = viz.gsg_figure(w, TIMES, [[9.0, 12.0]], 32, sigma=1.0)
    drawn = fig.axes[1].texts  # one "IoU .. IoP .." label per read-out, in READOUTS order
    scores = [
        "IoU {:.2f}  IoP {:.2f}".format(*metrics.best_iou_iop([[9.0, 12.0]], s))
        for s in readouts.question_readouts(viz.gsg_smooth(w, 1.0, "l1"), TIMES, 32).values()
    ]
    assert [t.get_text() for t in drawn] == scores


@pytest.mark.parametrize("renorm", ["l1", "softmax"])
def test_smooth_is_the_package_filter(renorm):
    w0 = np.array(curve(20)) * 3  # not normalised: gsg_smooth l1-normalises first
    expected = smooth_weights(torch.tensor(w0 / w0.sum())[None], 1.5, renorm)[0].numpy()
    np.testing.assert_allclose(viz.gsg_smooth(w0, 1.5, renorm), expected)
    flat = viz.gsg_smooth(w0, 1.5, "softmax")
    assert (
        flat.max() / flat.min() < 1.3 < 10 < viz.gsg_smooth(w0, 1.5, "l1").max() / viz.gsg_smooth(w0, 1.5, "l1").min()
    )


def test_figure_and_png():
    fig = viz.gsg_figure(curve(5), TIMES, [[3.0, 8.0]], 32, sigma=2.0, renorm="softmax", title="why?")
    top, bottom = fig.axes
    assert len(top.lines) == 3 and "effective frames" in top.get_title()
    assert [t.get_text() for t in bottom.get_yticklabels()] == ["ground truth", "window", "post-hoc", "merge"]
    assert viz.figure_png(fig, dpi=30)[:8] == b"\x89PNG\r\n\x1a\n"


def test_explorer_prerenders_every_setting_and_links_the_controls():
    import ipywidgets as widgets

    examples = [
        dict(label=f"q{i}", w0=curve(5 + 10 * i), frame_times=TIMES, segments=[[2.0, 9.0]], duration=32)
        for i in range(2)
    ]
    box = viz.gsg_explorer(examples, sigmas=(0.5, 1.0, 3.0), renorms=("l1", "softmax"), dpi=20)
    question, sigma, renorm, pages = box.children
    assert sigma.index == 1 and len(pages.children) == 2
    inner = pages.children[0].children  # renorm stacks
    assert len(inner) == 2 and all(len(s.children) == 3 for s in inner)
    assert all(isinstance(img, widgets.Image) and img.value for s in inner for img in s.children)
    # each picture is the callback's figure: two different sigma settings give different pictures
    assert inner[0].children[0].value != inner[0].children[2].value


def test_evidence_mass_by_hand():
    w = torch.tensor([[0.1, 0.2, 0.3, 0.4], [1.0, 1.0, 1.0, 1.0]])
    times = torch.tensor([[0.0, 1.0, 2.0, 3.0]] * 2)
    mass = viz.evidence_mass(w, times, [[[1.0, 2.0]], [[0.0, 0.5], [3.0, 9.0]]])
    torch.testing.assert_close(mass, torch.tensor([0.5, 0.5]))
