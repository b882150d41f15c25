"""The full CRA model: shapes, gradients, switches, loss composition, batch errors, overfitting."""

from __future__ import annotations

import pytest
import torch

from cra.model import CRA, RELEASED_CODE, CRAConfig
from cra.readouts import interval_readouts

COLOURS = ["red", "blue", "green", "yellow", "black"]


def tiny_config(**changes) -> CRAConfig:
    base = dict(
        feature_dim=16,
        d_model=32,
        num_layers=1,
        num_heads=2,
        d_ff=32,
        max_frames=12,
        text_encoder="word",
        text_encoder_kwargs=dict(dim=32, num_heads=2, num_buckets=512),
        num_z_entries=4,
        z_node_dim=8,
        num_x_entries=5,
        dropout=0.0,
        pos_dropout=0.0,
        proj_dropout=0.0,
    )
    return CRAConfig(**{**base, **changes})


def make_batch(B: int, T: int, K: int, Kq: int = 4, D: int = 16, seed: int = 0, pad: bool = True) -> dict:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, T, dtype=torch.bool)
    if pad and B > 1 and T > 2:
        mask[0, T - 2 :] = False  # a shorter video padded at the end
    return dict(
        frames=torch.randn(B, T, D, generator=g),
        frame_mask=mask,
        qa_texts=[[f"what does person {b} do </s> option {k} {'long ' * (k % 3)}" for k in range(K)] for b in range(B)],
        answer=torch.randint(0, K, (B,), generator=g),
        question_candidates=[[f"question {b} number {k}" for k in range(Kq)] for b in range(B)],
        question_answer=torch.randint(0, Kq, (B,), generator=g),
        frame_times=torch.linspace(0.5, 30.0, T).repeat(B, 1),
    )


@pytest.mark.parametrize("B,T,K", [(1, 4, 2), (3, 8, 5), (5, 12, 4)])
def test_shapes_and_dtypes(B, T, K):
    torch.manual_seed(0)
    model = CRA(tiny_config())
    batch = make_batch(B, T, K)
    out = model(batch)
    D = model.config.d_model
    for p, k in ((out.vqa, K), (out.vq, 4)):
        assert p.logits.shape == (B, k) and p.logits.dtype == torch.float32
        assert p.text_emb.shape == (B, k, D)
        assert p.w0.shape == p.w.shape == (B, T)
        assert p.v_grounded.shape == p.v_mean.shape == p.v_final.shape == (B, D)
        torch.testing.assert_close(p.w.sum(1), torch.ones(B))
        assert bool((p.w[~out.frame_mask] == 0).all()) and bool((p.w0[~out.frame_mask] == 0).all())
    losses = model.losses(batch, out)
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    spans = interval_readouts(
        out.vqa.w.detach(),
        batch["frame_times"],
        out.frame_mask,
        window_sizes=model.config.window_sizes,
        thd_weight=model.config.posthoc_thd_weight,
        dis=model.config.posthoc_dis,
        duration=torch.full((B,), 31.0),
    )
    assert all(s.shape == (B, 2) and bool((s[:, 0] <= s[:, 1]).all()) for s in spans.values())


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = CRA(tiny_config())
    batch = make_batch(4, 8, 5)
    model.losses(batch, model(batch))["loss"].backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert silent == []


@pytest.mark.parametrize(
    "switch,absent",
    [
        (dict(use_gsg=False), "grounding."),
        (dict(use_smoothing=False), "grounding.smoothing."),
        (dict(use_backdoor=False), "backdoor."),
        (dict(use_frontdoor=False), "frontdoor."),
    ],
)
def test_switched_off_parts_have_no_parameters(switch, absent):
    torch.manual_seed(0)
    on = {n for n, _ in CRA(tiny_config()).named_parameters()}
    off_model = CRA(tiny_config(**switch))
    off = {n for n, _ in off_model.named_parameters()}
    assert any(n.startswith(absent) for n in on)
    assert not any(n.startswith(absent) for n in off)
    assert off < on
    batch = make_batch(3, 8, 5)
    off_model.losses(batch, off_model(batch))["loss"].backward()  # still trains


def test_cma_switch_changes_loss_only():
    torch.manual_seed(0)
    model_on = CRA(tiny_config())
    model_off = CRA(tiny_config(use_cma=False))
    assert [n for n, _ in model_on.named_parameters()] == [n for n, _ in model_off.named_parameters()]
    model_off.load_state_dict(model_on.state_dict())
    batch = make_batch(4, 8, 5)
    on, off = model_on.losses(batch, model_on(batch)), model_off.losses(batch, model_off(batch))
    assert "loss_cma" in on and "loss_cma" not in off
    torch.testing.assert_close(on["loss"] - off["loss"], 0.5 * on["loss_cma"])


def test_total_loss_uses_config_weights():
    torch.manual_seed(0)
    model = CRA(tiny_config(weight_vqa=2.0, weight_vq=0.25, weight_cma=0.1))
    batch = make_batch(4, 8, 5)
    l = model.losses(batch, model(batch))
    torch.testing.assert_close(
        l["loss"], 2.0 * l["loss_vqa"] + 0.25 * l["loss_vq"] + 0.1 * (l["cma_vq"] + l["cma_vqa"])
    )
    torch.testing.assert_close(l["cma_vqa"], l["cma_vqa_text_to_video"] + l["cma_vqa_video_to_text"])


def test_released_code_preset():
    cfg = CRAConfig.released_code(d_model=64)
    for key, value in RELEASED_CODE.items():
        assert getattr(cfg, key) == value
    assert cfg.d_model == 64 and CRAConfig().renorm == "l1" and CRAConfig().use_backdoor
    with pytest.raises(ValueError, match="renorm"):
        CRAConfig(renorm="l2")
    with pytest.raises(ValueError, match="no fields"):
        CRAConfig().replace(not_a_field=1)
    torch.manual_seed(0)
    model = CRA(tiny_config(**RELEASED_CODE))
    assert model.backdoor is None and model.frontdoor.mode == "batch"
    batch = make_batch(4, 8, 5)
    losses = model.losses(batch, model(batch))
    assert "cma_vqa_video_to_text" not in losses and torch.isfinite(losses["loss"])


def test_without_question_candidates_only_vqa_pass():
    torch.manual_seed(0)
    model = CRA(tiny_config())
    batch = make_batch(3, 8, 5)
    del batch["question_candidates"], batch["question_answer"]
    out = model(batch)
    assert out.vq is None
    assert "loss_vq" not in model.losses(batch, out)


def test_bad_batches_are_named():
    torch.manual_seed(0)
    model = CRA(tiny_config())
    batch = make_batch(3, 8, 5)
    with pytest.raises(ValueError, match="question_answer"):
        model({k: v for k, v in batch.items() if k != "question_answer"})
    with pytest.raises(ValueError, match="qa_texts"):
        model({**batch, "qa_texts": [["a", "b"], ["a"], ["a", "b"]]})
    with pytest.raises(ValueError, match="frames"):
        model({**batch, "frames": torch.randn(3, 8, 7)})
    with pytest.raises(ValueError, match="frame_mask"):
        model({**batch, "frame_mask": torch.zeros(3, 8, dtype=torch.bool)})
    with pytest.raises(ValueError, match="answer"):
        model.losses({**batch, "answer": torch.tensor([0, 1, 9])}, model(batch))


def test_eval_is_deterministic_and_padding_is_ignored():
    torch.manual_seed(0)
    model = CRA(tiny_config()).eval()
    batch = make_batch(2, 8, 5, pad=False)
    batch["frame_mask"][1, 6:] = False
    out = model(batch)
    changed = dict(batch, frames=batch["frames"].clone())
    changed["frames"][1, 6:] = 100.0  # padded frames must not matter
    out2 = model(changed)
    torch.testing.assert_close(out.vqa.logits, out2.vqa.logits)
    torch.testing.assert_close(out.vqa.w, out2.vqa.w)


def synthetic_colour_batch(n: int = 8, T: int = 8, D: int = 16, seed: int = 0) -> dict:
    """Each video shows one colour (a prototype vector in 3 of its frames); the candidates are the 5
    colours in a random order; the answer is where the shown colour sits."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(len(COLOURS), D, generator=g)
    frames = 0.5 * torch.randn(n, T, D, generator=g)
    qa, answer, questions, true_q = [], [], [], []
    for i in range(n):
        colour = i % len(COLOURS)
        start = int(torch.randint(0, T - 3, (1,), generator=g))
        frames[i, start : start + 3] += 2 * prototypes[colour]
        order = torch.randperm(len(COLOURS), generator=g).tolist()
        qa.append([f"what colour is the ball </s> {COLOURS[c]}" for c in order])
        answer.append(order.index(colour))
        questions.append([f"is the ball {COLOURS[(colour + k) % 5]}" for k in range(4)])
        true_q.append(0)
    return dict(
        frames=frames,
        frame_mask=torch.ones(n, T, dtype=torch.bool),
        qa_texts=qa,
        answer=torch.tensor(answer),
        question_candidates=questions,
        question_answer=torch.tensor(true_q),
    )


def test_overfits_eight_examples():
    from cra.config import TrainConfig
    from cra.train import Trainer

    torch.manual_seed(0)
    model = CRA(tiny_config())
    batch = synthetic_colour_batch()
    trainer = Trainer(
        model,
        lambda epoch: [batch],
        train_config=TrainConfig(epochs=200, grad_clip=None, progress=False),
        optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
        lr_factor=None,
        reseed_each_epoch=False,
        log=None,
    )
    for step in range(200):  # one step per epoch, until the answers are right
        accuracy = trainer.fit(stop_after=1)[0]["train"]["acc"]
        if accuracy == 100.0 and step >= 5:
            break
    model.eval()
    with torch.no_grad():
        final = (model(batch).vqa.logits.argmax(1) == batch["answer"]).float().mean().item()
    assert final == 1.0, f"answer accuracy {final} after {step + 1} steps"


@pytest.mark.parametrize(
    "changes",
    [dict(RELEASED_CODE), dict(use_gsg=False, use_frontdoor=False), dict(use_smoothing=False, frontdoor_mode="batch")],
)
def test_gradients_reach_every_parameter_of_other_settings(changes):
    torch.manual_seed(0)
    model = CRA(tiny_config(**changes))
    batch = make_batch(4, 8, 5)
    model.losses(batch, model(batch))["loss"].backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert silent == []


def test_backdoor_switch_changes_answers():
    """Paper (back-door on) vs released code (off): same remaining weights, different logits."""
    torch.manual_seed(0)
    on = CRA(tiny_config()).eval()
    off = CRA(tiny_config(use_backdoor=False)).eval()
    missing, unexpected = off.load_state_dict(on.state_dict(), strict=False)
    assert missing == [] and all(k.startswith("backdoor.") for k in unexpected)
    batch = make_batch(3, 8, 5)
    with torch.no_grad():
        assert not torch.allclose(on(batch).vqa.logits, off(batch).vqa.logits)


def test_given_dictionaries_are_used():
    torch.manual_seed(0)
    Z_l, X_hat = torch.randn(6, 8, 8), torch.randn(3, 16)
    model = CRA(tiny_config(learn_dictionaries=False), Z_l=Z_l, X_hat=X_hat, Z_prior=torch.ones(6))
    torch.testing.assert_close(model.backdoor.Z_l, Z_l)
    torch.testing.assert_close(model.frontdoor.X_hat, X_hat)
    assert "backdoor.Z_l" not in dict(model.named_parameters())


@pytest.mark.parametrize(
    "changes",
    [dict(), dict(RELEASED_CODE), dict(RELEASED_CODE, shared_backbone_pass=True), dict(mask_word_attention=False)],
    ids=["ours", "released", "released-shared-pass", "unmasked-words"],
)
def test_fewer_products_gives_the_same_logits_losses_and_gradients(changes):
    """``fewer_products`` reorders the same math (text head projected after pooling, frame terms once per
    video): logits, losses and gradients equal the plain path's to float32 rounding (1e-5)."""
    torch.manual_seed(0)
    plain = CRA(tiny_config(**changes)).train()
    fast = CRA(tiny_config(**changes)).train()
    fast.load_state_dict(plain.state_dict())
    fast.fewer_products = True
    batch = make_batch(4, 8, 5)
    outputs, grads = [], []
    for model in (plain, fast):
        torch.manual_seed(1)  # the released configs keep dropout: the same masks in both runs
        out = model(batch)
        losses = model.losses(batch, out)
        losses["loss"].backward()
        outputs.append((out, losses))
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    (a, la), (b, lb) = outputs
    for pass_a, pass_b in ((a.vqa, b.vqa), (a.vq, b.vq)):
        torch.testing.assert_close(pass_b.logits, pass_a.logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(pass_b.w, pass_a.w, rtol=1e-5, atol=1e-6)
    for key, value in la.items():
        torch.testing.assert_close(lb[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert grads[0].keys() == grads[1].keys()
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-4, atol=1e-5, msg=name)
    assert fast.frame_terms(a.frame_states) and plain.frame_terms(a.frame_states) is None  # the switch is read
    assert fast.text.pool_first and not plain.text.pool_first
