"""The released-code options beside the parity test: fixed-length text padding (direct and cached),
the released temporal encoder's pieces, the QA text template, and the optional W_a."""

from __future__ import annotations

import math

import torch

from cra.model.config import CRAConfig
from cra.model.cra import CRA
from cra.model.released_encoder import ReleasedTemporalEncoder, StdLayerNorm, sinusoidal_positions
from cra.text.cached import CachedTextEncoder
from cra.text.encoders import WordEncoder


def test_fixed_length_padding_word_encoder():
    enc = WordEncoder(dim=16, num_heads=2, max_length=12).eval()
    texts = ["a b c", "one two three four five six seven eight nine ten eleven twelve thirteen"]
    ids, mask = enc.tokenize_to(texts, 6, True)
    assert ids.shape == (2, 6) and mask.sum(1).tolist() == [3, 6]
    ids, mask = enc.tokenize_to(texts, None, False)
    assert ids.shape == (2, 12)  # dynamic: the longest text, cut at the encoder's limit
    with torch.no_grad():
        assert enc(texts, max_length=6, pad_to_max_length=True).tokens.shape == (2, 6, 16)


def test_cached_encoder_keeps_padding_states():
    torch.manual_seed(0)
    enc = WordEncoder(dim=16, num_heads=2, max_length=12).eval()
    cached = CachedTextEncoder(enc)
    texts = ["a b c", "d e", "a b c"]
    with torch.no_grad():
        direct = enc(texts, max_length=8, pad_to_max_length=True)
        for _ in range(2):  # the second call is served from the cache
            out = cached(texts, max_length=8, pad_to_max_length=True)
            assert torch.allclose(out.tokens, direct.tokens, atol=1e-6) and torch.equal(out.mask, direct.mask)
        dynamic, reference = cached(texts), enc(texts)  # cached apart; padding states are not kept here
        assert torch.allclose(dynamic.tokens[dynamic.mask], reference.tokens[reference.mask], atol=1e-6)
    assert cached.hits > 0


def test_std_layer_norm_and_positions_follow_their_formulas():
    x = torch.randn(3, 10)
    norm = StdLayerNorm(10)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_()
    n = x.shape[-1]
    mu = x.mean(-1, keepdim=True)
    s = ((x - mu) ** 2).sum(-1, keepdim=True).div(n - 1).sqrt()  # unbiased std
    assert torch.allclose(norm(x), norm.weight * (x - mu) / (s + 1e-6) + norm.bias, atol=1e-6)
    P = sinusoidal_positions(5, 6)
    for t in range(5):
        for i in range(3):
            w = 10000 ** (-2 * i / 6)
            assert math.isclose(P[t, 2 * i].item(), math.sin(t * w), abs_tol=1e-6)
            assert math.isclose(P[t, 2 * i + 1].item(), math.cos(t * w), abs_tol=1e-6)


def test_released_encoder_masks_padding_frames_as_keys():
    torch.manual_seed(0)
    enc = ReleasedTemporalEncoder(feature_dim=8, d_model=16, num_layers=2, num_heads=4, d_ff=16, max_frames=6).eval()
    frames = torch.randn(1, 6, 8)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    with torch.no_grad():
        padded = enc(frames, mask)[:, :4]
        other = enc(torch.cat([frames[:, :4], torch.randn(1, 2, 8)], 1), mask)[:, :4]
        short = enc(frames[:, :4])
    assert torch.allclose(padded, other, atol=1e-5) and torch.allclose(padded, short, atol=1e-5)
    assert "positions" in enc.state_dict() and not any(n == "positions" for n, _ in enc.named_parameters())


def tiny(**changes) -> CRAConfig:
    return CRAConfig(
        feature_dim=8,
        d_model=16,
        num_heads=4,
        d_ff=16,
        num_layers=1,
        max_frames=6,
        text_encoder="word",
        text_encoder_kwargs=dict(dim=16, num_heads=2, max_length=12),
        num_z_entries=4,
        z_node_dim=8,
        num_x_entries=4,
        **changes,
    )


def test_answer_projection_and_tied_query_are_optional():
    torch.manual_seed(0)
    model = CRA(tiny(answer_projection=False, frontdoor_tied_query=True, temporal_encoder="released"))
    assert model.answer_proj is None and model.frontdoor.query_x is None
    batch = {
        "frames": torch.randn(2, 6, 8),
        "qa_texts": [["q </s> a", "q </s> b"]] * 2,
        "question_candidates": [["q", "r", "s"]] * 2,
        "question_answer": torch.tensor([0, 1]),
        "answer": torch.tensor([0, 1]),
    }
    model.eval()
    with torch.no_grad():
        out = model(batch)
    assert torch.equal(
        out.vqa.v_final, model.frontdoor(out.vqa.v_grounded, out.vqa.v_mean, out.frame_states, out.frame_mask)
    )
    released = CRA(tiny(text_padding="max_length", question_max_length=30, mask_word_attention=False))
    calls = []
    encoder_forward = released.text.encoder.forward
    released.text.encoder.forward = lambda texts, **kw: calls.append((len(texts), kw)) or encoder_forward(texts, **kw)
    with torch.no_grad():
        released.eval()(batch)
    assert calls == [(4, dict(pad_to_max_length=True)), (6, dict(max_length=30, pad_to_max_length=True))]


def test_qa_template_reaches_the_dataset():
    from cra.config import load_run_config

    config, _ = load_run_config(["synthetic", "variants/released_code"])
    assert config.data.qa_template == "{question} </s> {answer}"
    assert load_run_config(["synthetic"])[0].data.qa_template == "{question}? {answer}"


def test_separate_backbone_passes_differ_only_in_training():
    torch.manual_seed(0)
    batch = {
        "frames": torch.randn(2, 6, 8),
        "qa_texts": [["q a", "q b"]] * 2,
        "question_candidates": [["q", "r"]] * 2,
        "question_answer": torch.tensor([0, 1]),
        "answer": torch.tensor([0, 1]),
    }
    shared, separate = CRA(tiny(use_backdoor=False)), CRA(tiny(use_backdoor=False, shared_backbone_pass=False))
    separate.load_state_dict(shared.state_dict())
    calls = []
    separate.backbone.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        a, b = shared.eval()(batch), separate.eval()(batch)
    assert len(calls) == 2 and torch.allclose(a.vq.logits, b.vq.logits, atol=1e-6)
