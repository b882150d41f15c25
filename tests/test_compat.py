"""Weight-level parity with the authors' released code: their state dict, mapped by cra.compat onto a
model built with the released-code preset, reproduces their outputs (fixture made by
scripts/released_parity/make_fixture.py, which runs their code)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cra.compat import CompatError, load_released_state_dict, map_released_state_dict
from cra.model.cma import cma_loss
from cra.model.config import CRAConfig
from cra.model.cra import CRA

pytest.importorskip("transformers")

FIXTURE = Path(__file__).parent / "fixtures" / "released_parity" / "released_parity.pt"
TOL = 1e-4


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIXTURE, weights_only=True)


def released_config(meta, **changes) -> CRAConfig:
    s = meta["sizes"]
    return CRAConfig.released_code(
        feature_dim=s["feature_dim"], d_model=s["d_model"], d_ff=s["d_model"], num_layers=2, num_heads=8,
        max_frames=s["T"], num_x_entries=s["KV"], text_encoder="roberta",
        # their tiny random RoBERTa; byte ids, one per character, as the fixture's stand-in tokenizer
        text_encoder_kwargs=dict(pretrained=None, config=meta["tiny_roberta"], max_length=s["qa_length"],
                                 byte_length_factor=1),
        **changes)


def released_model(fixture, **changes) -> CRA:
    torch.manual_seed(0)
    model = CRA(released_config(fixture["meta"], **changes))
    state = dict(fixture["state_dict"])
    for key, shape in fixture["meta"]["ignored_keys"].items():  # left out of the fixture for size
        state[key] = torch.zeros(shape)
    load_released_state_dict(model, state)
    return model.eval()


def batch_of(fixture) -> dict:
    x = fixture["inputs"]
    return {"frames": x["frames"], "qa_texts": x["qa_texts"], "answer": x["answer"],
            "question_candidates": x["question_candidates"], "question_answer": x["question_answer"]}


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


def test_tokenization_matches_their_ids(fixture):
    model = released_model(fixture)
    x, s = fixture["inputs"], fixture["meta"]["sizes"]
    enc = model.text.encoder
    qa = [t for row in x["qa_texts"] for t in row]
    q = [t for row in x["question_candidates"] for t in row]
    ids, _ = enc.tokenize_to(qa, None, True)
    assert torch.equal(ids, x["qa_ids"].view(-1, s["qa_length"]))
    ids, _ = enc.tokenize_to(q, model.config.question_max_length, True)
    assert torch.equal(ids, x["question_ids"].view(-1, s["question_length"]))


def test_released_weights_reproduce_their_outputs(fixture):
    model = released_model(fixture)
    out_ref = fixture["outputs"]
    batch = batch_of(fixture)
    with torch.no_grad():
        out = model(batch)
        losses = model.losses(batch, out)
    diffs = {}
    for name, p in (("vqa", out.vqa), ("vq", out.vq)):
        diffs[f"{name}_logits"] = max_diff(p.logits, out_ref[f"{name}_logits"])
        diffs[f"{name}_key"] = max_diff(p.w, out_ref[f"{name}_key"])
        diffs[f"{name}_ori_key"] = max_diff(p.w0, out_ref[f"{name}_ori_key"])
        diffs[f"{name}_grounding_feature"] = max_diff(p.v_final, out_ref[f"{name}_grounding_feature"])
    diffs["vqa_loss"] = abs(losses["loss_vqa"].item() - out_ref["vqa_loss"].item())
    diffs["vq_loss"] = abs(losses["loss_vq"].item() - out_ref["vq_loss"].item())
    # CMA with the negatives their sampler drew (recorded by the fixture script)
    rows = torch.arange(batch["frames"].shape[0])
    cma = 0.0
    for name, p, target in (("vq", out.vq, batch["question_answer"]), ("vqa", out.vqa, batch["answer"])):
        parts = cma_loss(p.text_emb[rows, target], p.v_final, model.config.temperature, model.config.cma_directions,
                         "sampled", negative_index=out_ref[f"{name}_negatives"])
        cma = cma + parts["total"]
    diffs["cma_loss"] = abs(cma.item() - out_ref["ag_loss"].item())
    total = losses["loss_vqa"] + losses["loss_vq"] + model.config.weight_cma * cma
    diffs["total_loss"] = abs(total.item() - out_ref["total_loss"].item())
    print("max abs diff per output:", {k: f"{v:.2e}" for k, v in diffs.items()})
    assert max(diffs.values()) < TOL, diffs


def test_sampled_negatives_follow_their_rng_stream(fixture):
    """Our sampler draws the same negatives as theirs from the same torch seed (one (B, k) draw equals
    their B draws of k), so a seeded run samples what theirs samples."""
    out_ref, s = fixture["outputs"], fixture["meta"]["sizes"]
    from cra.model.cma import sample_negatives

    torch.manual_seed(fixture["meta"]["cma_seed"])
    vq = sample_negatives(s["B"], s["num_negatives"])
    vqa = sample_negatives(s["B"], s["num_negatives"])
    assert torch.equal(vq, out_ref["vq_negatives"]) and torch.equal(vqa, out_ref["vqa_negatives"])


# (text_padding="longest" is not among them: each group of the fixture has a text cut at its max
# length, so the longest text of the batch already has the released padded length)
@pytest.mark.parametrize("change", [dict(mask_word_attention=True), dict(question_max_length=None),
                                    dict(renorm="l1"), dict(frontdoor_mode="in_sample")])
def test_each_released_option_matters(fixture, change):
    """Switching one released option back to our default breaks the parity (the loader warns)."""
    ref = fixture["outputs"]
    with pytest.warns(UserWarning, match=next(iter(change))):
        model = released_model(fixture, **change)
    with torch.no_grad():
        out = model(batch_of(fixture))
    diff = max(max_diff(out.vqa.logits, ref["vqa_logits"]), max_diff(out.vq.logits, ref["vq_logits"]),
               max_diff(out.vqa.w, ref["vqa_key"]))
    assert diff > 1e-3, (change, diff)


def test_errors_name_the_keys(fixture):
    state = dict(fixture["state_dict"])
    state["decoder.something_new.weight"] = torch.zeros(3)
    with pytest.raises(CompatError, match="decoder.something_new.weight"):
        map_released_state_dict(state)
    model = CRA(released_config(fixture["meta"]))
    state = dict(fixture["state_dict"])
    del state["decoder.do.do.prob_m.weight"]
    with pytest.raises(CompatError, match="frontdoor.query_m.weight"):
        load_released_state_dict(model, state)
    state = dict(fixture["state_dict"])
    state["decoder.video_proj.1.weight"] = torch.zeros(3, 3)
    with pytest.raises(CompatError, match="pool_proj.1.weight"):
        load_released_state_dict(model, state)
    with pytest.raises(CompatError, match="answer_projection"):
        load_released_state_dict(CRA(released_config(fixture["meta"], answer_projection=True)), fixture["state_dict"])
    wrapped = {"state_dict": {f"module.{k}": v for k, v in fixture["state_dict"].items()}}
    mapped, _ = map_released_state_dict(wrapped)
    assert "frontdoor.key_x.weight" in mapped


def test_cosine_schedule_equals_their_scheduler(fixture):
    """Their get_linear_schedule_with_warmup is a warm-up then a cosine to 0.001 x lr (factors recorded
    from their scheduler by the fixture script); ours is the train.schedule=cosine option."""
    from cra.schedules import warmup_cosine, warmup_linear

    out = fixture["outputs"]
    warmup, total = out["schedule_warmup_total"].tolist()
    ours = torch.tensor([warmup_cosine(s, warmup, total) for s in range(total + 1)])
    assert max_diff(ours, out["schedule_lr_factors"]) < 1e-6
    linear = torch.tensor([warmup_linear(s, warmup, total) for s in range(total + 1)])
    assert max_diff(linear, out["schedule_lr_factors"]) > 0.05  # the name is not what it computes
