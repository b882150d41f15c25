"""The study's model and data options (issue 14): back-door modes, mediators, NG+ grounding, GSG
supervision, inverse-propensity resampling, the diagnostics, and the preconditions / gap closed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cra.data.adjust import Resampled, evidence_masks, propensity_weights, supervised_keys
from cra.diagnostics import Diagnostics, recording
from cra.model import CRA, CRAConfig
from cra.model.gaussian_mask import gaussian_mask
from cra.study.preconditions import gap_closed, preconditions

B, T, D = 3, 8, 16


def small(**changes) -> CRA:
    torch.manual_seed(0)
    config = CRAConfig(
        feature_dim=D,
        d_model=D,
        num_heads=4,
        d_ff=D,
        num_layers=1,
        text_encoder="word",
        text_encoder_kwargs={"dim": D, "num_heads": 4, "num_buckets": 64},
        num_z_entries=5,
        z_node_dim=D,
        num_x_entries=4,
        dropout=0.0,
        pos_dropout=0.0,
        proj_dropout=0.0,
        **changes,
    )
    return CRA(config, Z_prior=torch.tensor([0.4, 0.3, 0.1, 0.1, 0.1]))


def batch() -> dict:
    evidence = torch.zeros(B, T, dtype=torch.bool)
    evidence[:, 2:5] = True
    return {
        "frames": torch.randn(B, T, D, generator=torch.Generator().manual_seed(1)),
        "qa_texts": [["what a", "what b", "what c"]] * B,
        "answer": torch.tensor([0, 1, 2]),
        "evidence_mask": evidence,
        "evidence_supervised": torch.tensor([True, False, True]),
    }


def test_prior_backdoor_is_one_vector_for_every_text_and_conditional_is_not():
    l = torch.randn(6, D)
    prior = small(backdoor_mode="prior").backdoor
    attention = prior.attention(l)
    assert torch.allclose(attention, torch.tensor([0.4, 0.3, 0.1, 0.1, 0.1]).expand(6, -1))
    shift = prior(l) - prior.norm(l + prior.out(attention[:1] @ prior.value(prior.dictionary())))
    assert shift.abs().max() < 1e-5  # the same E_{P(z)}[z] added to every l
    conditional = small().backdoor.attention(l)
    assert not torch.allclose(conditional[0], conditional[1])


def test_mediators_true_evidence_and_whole_video():
    b = batch()
    true = small(mediator="true_evidence")(b).vqa.w
    assert torch.allclose(true[:, 2:5], torch.full((B, 3), 1 / 3)) and true[:, :2].abs().max() == 0
    whole = small(mediator="whole_video")(b)
    assert torch.allclose(whole.vqa.w, torch.full((B, T), 1 / T))
    assert torch.allclose(whole.vqa.v_grounded, whole.vqa.v_mean, atol=1e-6)
    with pytest.raises(ValueError, match="evidence_mask"):
        small(mediator="true_evidence")({k: v for k, v in b.items() if k != "evidence_mask"})


def test_ng_plus_weights_are_a_gaussian_times_attention():
    g = gaussian_mask(torch.tensor([0.5]), torch.tensor([0.9]), 9, 9.0)
    assert g.argmax() == 4 and g.max() == 1 and g[0, 0] < 0.1
    model = small(gaussian_mask=True, use_cma=False, use_backdoor=False, use_frontdoor=False)
    w = model(batch()).vqa.w
    assert torch.allclose(w.sum(1), torch.ones(B)) and (w >= 0).all()


def test_gsg_supervision_loss_is_the_cross_entropy_on_the_chosen_questions():
    b = batch()
    model = small(gsg_supervision=0.5, gsg_supervision_weight=2.0)
    out = model(b)
    losses = model.losses(b, out)
    w = out.vqa.w
    expected = -(w[[0, 2]][:, 2:5].log().mean(1)).mean()
    assert torch.allclose(losses["loss_grounding"], expected, atol=1e-6)
    assert "loss_grounding" not in small().losses(b, small()(b))
    assert len(supervised_keys([f"v{i}_0" for i in range(1000)], 0.25)) in range(200, 300)


def test_diagnostics_measure_what_they_say():
    b = batch()
    for mode, kl_is_zero in (("prior", True), ("conditional", False)):
        model = small(backdoor_mode=mode).eval()
        diagnostics = Diagnostics()
        with torch.no_grad(), recording(model, diagnostics):
            out = model(b)
        diagnostics.update(model, out, b["evidence_mask"])
        d = diagnostics.summary()
        assert (abs(d["backdoor_kl"]) < 1e-6) == kl_is_zero
        assert 0 < d["frontdoor_entropy"] <= 1 and 0 < d["frontdoor_xhat_entropy"] <= 1
        assert d["mass_uniform"] == pytest.approx(3 / T)
        w = out.vqa.w
        assert d["mass_evidence"] == pytest.approx(float(w[:, 2:5].sum(1).mean()), abs=1e-6)
    whole = small(mediator="whole_video").eval()
    diagnostics = Diagnostics()
    with torch.no_grad(), recording(whole, diagnostics):
        out = whole(b)
    diagnostics.update(whole, out)
    assert diagnostics.summary()["cos_vt_vbar"] == pytest.approx(1.0, abs=1e-5)


def test_propensity_weights_make_answer_and_proxy_independent():
    answers = ["a"] * 80 + ["b"] * 20 + ["a"] * 20 + ["b"] * 80
    scenes = ["x"] * 100 + ["y"] * 100
    w = propensity_weights(answers, scenes)
    joint = {}
    for a, s, x in zip(answers, scenes, w):
        joint[(a, s)] = joint.get((a, s), 0.0) + x
    total = sum(joint.values())
    p = {k: v / total for k, v in joint.items()}
    assert p[("a", "x")] == pytest.approx((p[("a", "x")] + p[("a", "y")]) * (p[("a", "x")] + p[("b", "x")]))

    class Items:
        records = list(range(200))
        seed = 0

        def __len__(self):
            return 200

        def __getitem__(self, i):
            return i

    data = Resampled(Items(), w)
    first = [data[i] for i in range(200)]
    data.seed = 5
    assert [data[i] for i in range(200)] != first
    data.seed = 0
    assert [data[i] for i in range(200)] == first
    with pytest.raises(ValueError, match="positive weights"):
        Resampled(Items(), np.ones(3))


def test_evidence_masks_from_gsub_and_frame_times():
    class R:
        key, video_id, qid = "v_0", "v", "0"

    masks = evidence_masks([R()], {"v": {"location": {"0": [[1.0, 2.5]]}}}, {"v": [0.5, 1.0, 2.0, 3.0]}, 4)
    assert masks["v_0"].tolist() == [False, True, True, False]


def summary_rows(values: dict) -> list[dict]:
    rows = []
    for (variant, split), cols in values.items():
        rows.append(
            {"variant": variant, "split": split, "readout": "posthoc", **{f"{k}_mean": v for k, v in cols.items()}}
        )
    return rows


def test_preconditions_and_gap_closed():
    rows = summary_rows(
        {
            ("ceiling", "test-ood"): {"Acc@QA": 80.0, "mass_evidence": 40.0, "cos_vt_vbar": 0.6},
            ("blind", "test-id"): {"Acc@QA": 70.0},
            ("blind", "test-ood"): {"Acc@QA": 20.0},
            ("posthoc", "test-ood"): {"Acc@QA": 30.0},
            ("cra", "test-ood"): {"Acc@QA": 40.0},
        }
    )
    checks = preconditions(rows, "posthoc", uniform_mass=15.0)
    assert [c["pass"] for c in checks] == [True, True, True]
    rows[0]["cos_vt_vbar_mean"] = 0.99
    assert [c["pass"] for c in preconditions(rows, "posthoc", 15.0)] == [True, True, False]
    gap = {r["variant"]: r["gap_closed"] for r in gap_closed(rows, "posthoc", ["posthoc", "cra", "ceiling"], "posthoc")}
    assert gap == {"posthoc": 0.0, "cra": pytest.approx(0.2), "ceiling": 1.0}
    assert math.isnan(gap_closed(rows, "posthoc", ["nope"], "posthoc")[0]["gap_closed"])
    # a gap within the seeds' spread, or negative, defines no share
    for row in rows:
        if (row["variant"], row["split"]) in {("ceiling", "test-ood"), ("posthoc", "test-ood")}:
            row["Acc@QA_std"] = 60.0
    assert all(math.isnan(r["gap_closed"]) for r in gap_closed(rows, "posthoc", ["posthoc", "cra"], "posthoc"))
    rows[0]["Acc@QA_std"] = rows[-2]["Acc@QA_std"] = None
    rows[0]["Acc@QA_mean"] = 25.0  # the ceiling below the plain model
    assert all(math.isnan(r["gap_closed"]) for r in gap_closed(rows, "posthoc", ["posthoc", "cra"], "posthoc"))


def test_predict_split_logs_diagnostics_and_the_mass_on_the_gsub_evidence():
    import warnings

    from cra.paths import samples_dir
    from cra.predict import predict_split, score_predictions
    from cra.run import build_model, load_split
    from cra.synthetic import load_truth, weight_mass
    from cra.synthetic.learnability import learn_config

    world = samples_dir() / "synthetic"
    config = learn_config(world, 0)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random dictionaries
        model = build_model(config)
    data = load_split(config, "val", grounding=True)
    predictions = predict_split(model, data, config, torch.device("cpu"))
    d = predictions["diagnostics"]
    assert {"backdoor_kl", "frontdoor_entropy", "cos_vt_vbar", "w_entropy", "mass_evidence"} <= set(d)
    truth = load_truth(world, "val")
    assert d["mass_evidence"] == pytest.approx(weight_mass(predictions["weights"], truth)["evidence"], abs=1e-5)
    assert score_predictions(predictions, data)["diagnostics"] == d  # what metrics.jsonl records each epoch
