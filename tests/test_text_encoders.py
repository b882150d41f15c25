"""Text encoders: the shared interface, dynamic padding, and the offline fallbacks."""

from __future__ import annotations

import warnings

import pytest
import torch

from cra.text import WordEncoder, build_text_encoder
from cra.text.base import ensure_torchvision_importable
from cra.text.roberta import ROBERTA_TINY_CONFIG, ByteTokenizer
from cra.text.word import split_words

TEXTS = ["why did the boy cry at the end </s> he fell off the bike", "", "what is on the table </s> a cup"]


def check_interface(encoder):
    out = encoder(TEXTS)
    lengths = out.mask.sum(1)
    assert out.pooled.shape == (3, encoder.dim)
    assert out.tokens.shape == (3, out.mask.shape[1], encoder.token_dim)
    assert out.mask.dtype == torch.bool and int(lengths.max()) == out.mask.shape[1]  # padded to the longest
    assert bool((lengths >= 1).all())  # the empty string still has tokens
    encoder.train()
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (3, encoder.dim) and not vectors.requires_grad
    assert encoder.training  # encode() restores the mode
    # padding must not change a text's vectors: alone vs in a batch with a longer text
    alone = encoder.encode(TEXTS[2:])
    torch.testing.assert_close(alone, vectors[2:], atol=1e-5, rtol=1e-4)
    assert encoder.encode([]).shape == (0, encoder.dim)
    chunked = encoder.encode(TEXTS * 3, batch_size=2)  # chunks grouped by length, returned in order
    torch.testing.assert_close(chunked, vectors.repeat(3, 1), atol=1e-5, rtol=1e-4)
    with pytest.raises(TypeError):
        encoder.encode("one string")
    with pytest.raises(TypeError):
        encoder.encode(["ok", 3])


def test_word_encoder():
    torch.manual_seed(0)
    encoder = build_text_encoder("word", dim=32, num_heads=2)
    check_interface(encoder)
    assert split_words("Why did he go? </s> To eat") == ["why", "did", "he", "go", "?", "</s>", "to", "eat"]
    ids, mask = encoder.tokenize(["a b c", "a"])
    assert ids.shape == (2, 3) and ids[1, 1:].tolist() == [0, 0] and ids[0, 0] == ids[1, 0]
    vocab_encoder = WordEncoder(dim=8, num_heads=2, vocab=["a", "b"])
    assert vocab_encoder.tokenize(["a zzz"])[0].tolist() == [[3, WordEncoder.UNK]]


def test_word_encoder_is_trainable():
    torch.manual_seed(0)
    encoder = WordEncoder(dim=16, num_heads=2)
    (encoder(["a man runs"]).pooled * torch.randn(1, 16)).sum().backward()  # (a plain sum of LN outputs is constant)
    assert encoder.embedding.weight.grad.abs().sum() > 0


def test_factory_rejects_unknown_names():
    with pytest.raises(ValueError, match="word"):
        build_text_encoder("bert")


def test_roberta_offline_random_with_byte_tokenizer():
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder = build_text_encoder("roberta", pretrained="no-such-local-model-cra-test", config=ROBERTA_TINY_CONFIG)
    assert any("random weights" in str(w.message) for w in caught)
    assert encoder.hf_tokenizer is None and encoder.dim == ROBERTA_TINY_CONFIG["hidden_size"]
    check_interface(encoder)
    ids = ByteTokenizer()("hi </s> yo", max_length=100)
    assert ids == [0, ord("h") + 3, ord("i") + 3, 2, ord("y") + 3, ord("o") + 3, 2]
    assert len(ByteTokenizer()("x" * 500, max_length=20)) == 20
    with pytest.raises(OSError):
        build_text_encoder("roberta", pretrained="no-such-local-model-cra-test", allow_random=False)


def test_clip_tiny_tower_dynamic_padding_is_exact():
    pytest.importorskip("open_clip")
    torch.manual_seed(0)
    encoder = build_text_encoder("clip", model_name="tiny").eval()
    check_interface(encoder)
    # trimmed to the longest text == the tower's own 77-token forward (causal mask, end-of-text pooling)
    full_ids = encoder.tokenizer(TEXTS)
    with torch.no_grad():
        reference = encoder.tower(full_ids)
    torch.testing.assert_close(encoder.encode(TEXTS), reference, atol=1e-5, rtol=1e-4)


def test_torchvision_workaround_is_idempotent():
    ensure_torchvision_importable()
    ensure_torchvision_importable()  # a second call must be a no-op, not a second schema definition


def test_wordllama_pretrained_offline_matches_the_package():
    wordllama = pytest.importorskip("wordllama", reason="the 'wordllama' extra is not installed")
    import logging
    from pathlib import Path

    root = logging.getLogger()
    handlers_before = list(root.handlers)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # the wheel's own files only
        encoder = build_text_encoder("wordllama")
    assert root.handlers == handlers_before  # importing wordllama left the logging set-up alone
    assert encoder.dim == encoder.token_dim == 256
    assert not any(p.requires_grad for p in encoder.parameters())  # frozen
    check_interface(encoder)
    # the pooled vectors are wordllama's own embed(): the mean of the token vectors
    reference = wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    texts = [t for t in TEXTS if t]
    torch.testing.assert_close(encoder.encode(texts), torch.from_numpy(reference.embed(texts)), atol=1e-5, rtol=1e-5)
    assert encoder.encode([""]).abs().max() == 0  # a missing graph node: the zero vector, like embed("")
    # pretrained, not random: a cup is nearer a mug than a dog, and a word repeated is the word
    cup, mug, dog = torch.nn.functional.normalize(encoder.encode(["a cup", "a mug", "a dog"]), dim=-1)
    assert float(cup @ mug) > float(cup @ dog) + 0.1
    torch.testing.assert_close(encoder.encode(["cup cup"]), encoder.encode(["cup"]))


def test_roberta_activation_checkpointing_gives_the_same_outputs_and_gradients():
    from cra.text.roberta import ROBERTA_TINY_CONFIG, RobertaTextEncoder

    torch.manual_seed(0)
    config = {**ROBERTA_TINY_CONFIG, "num_hidden_layers": 3}
    encoder = RobertaTextEncoder(pretrained=None, config=config).train()  # dropout on
    texts = ["why did the boy run </s> to catch the ball", "a", "what is on the table </s> a cup"]
    results = []
    for on in (False, 1, 2, True):  # none, the first n of 3 layers, all
        encoder.activation_checkpointing(on)
        encoder.zero_grad()
        torch.manual_seed(1)
        out = encoder(texts)
        (out.tokens * out.mask[..., None]).pow(2).sum().backward()
        results.append((out.tokens.detach(), {n: p.grad.clone() for n, p in encoder.named_parameters()}))
    assert encoder.model.is_gradient_checkpointing
    for tokens, grads in results[1:]:
        assert torch.equal(tokens, results[0][0])
        for name, grad in results[0][1].items():
            torch.testing.assert_close(grads[name], grad, rtol=1e-5, atol=1e-6, msg=name)
    with pytest.raises(NotImplementedError, match="word"):
        build_text_encoder("word", dim=16, num_heads=2).activation_checkpointing()


def test_roberta_packed_forward_equals_the_padded_module():
    """The padding-free path (the default) against Hugging Face's own padded forward: the same token
    states at real tokens and the same gradients (dropout off: the two draw dropout masks in another
    order), zeros at padding; two layers, texts of very different lengths, an empty one."""
    from cra.text.roberta import RobertaTextEncoder

    config = {**ROBERTA_TINY_CONFIG, "num_hidden_layers": 2, "hidden_dropout_prob": 0.0}
    config["attention_probs_dropout_prob"] = 0.0
    torch.manual_seed(0)
    packed = RobertaTextEncoder(pretrained=None, config=config).train()
    padded = RobertaTextEncoder(pretrained=None, config=config, packed=False).train()
    padded.load_state_dict(packed.state_dict())
    assert packed.packs_tokens and not padded.packs_tokens
    packed.bucket_size = 2  # attention in buckets of two texts of similar length (tokens stay packed)
    texts = ["why did the boy run </s> to catch the ball that rolled away", "", "a </s> b", "what is on it"]
    results = []
    for encoder in (packed, padded):
        out = encoder(texts)
        weights = torch.randn(out.tokens.shape, generator=torch.Generator().manual_seed(1))
        ((out.tokens * out.mask[..., None] * weights).sum() + out.pooled.pow(2).sum()).backward()
        results.append((out, {n: p.grad for n, p in encoder.named_parameters()}))
    (a, grads_a), (b, grads_b) = results
    assert torch.equal(a.mask, b.mask)
    torch.testing.assert_close(a.tokens[a.mask], b.tokens[b.mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.pooled, b.pooled, atol=1e-5, rtol=1e-5)
    assert a.tokens[~a.mask].abs().max() == 0
    for name, grad in grads_b.items():
        if grad is not None:  # float32 sums in another order, relative to the gradient's size (up to ~250
            # here); the key bias's true gradient is 0 (softmax ignores a shift shared by all keys): both ~1e-9
            assert float((grads_a[name] - grad).norm()) < 1e-5 * float(grad.norm()) + 1e-6, name
    assert {n for n, g in grads_a.items() if g is not None} == {n for n, g in grads_b.items() if g is not None}
    # attention in buckets of texts of similar length: the same outputs (eval: no dropout)
    packed.eval()
    with torch.no_grad():
        whole = packed(texts).tokens
        for size in (1, 2, 3):
            packed.bucket_size = size
            torch.testing.assert_close(packed(texts).tokens, whole, atol=1e-5, rtol=1e-5)
    # and one encode_ids call, whatever bucket_size says: the buckets are inside the packed forward
    packed.bucket_size = 1
    calls = []
    packed.encode_ids = lambda ids, mask: calls.append(ids.shape) or RobertaTextEncoder.encode_ids(packed, ids, mask)
    packed(texts)
    assert len(calls) == 1


def test_roberta_checkpointing_some_layers_is_checked():
    from cra.config import ConfigError, load_run_config
    from cra.run import build_model
    from cra.text.roberta import RobertaTextEncoder

    config = {**ROBERTA_TINY_CONFIG, "num_hidden_layers": 3}
    encoder = RobertaTextEncoder(pretrained=None, config=config)
    for bad in (4, -1, "2"):
        with pytest.raises(ValueError, match="checkpointing"):
            encoder.activation_checkpointing(bad)
    with pytest.raises(ValueError, match="packed"):
        RobertaTextEncoder(pretrained=None, config=config, packed=False).activation_checkpointing(1)
    # the config: a number of layers goes through to the encoder, a bad one is refused
    kwargs = "model.text_encoder_kwargs={pretrained: null, config: {vocab_size: 260, hidden_size: 32, "
    kwargs += "num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64}}"
    base = [kwargs, "data.confounders=null", "model.text_encoder=roberta"]
    run, _ = load_run_config([], [*base, "train.text_checkpointing=1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert build_model(run).text.encoder._checkpointed_layers == 1
        with pytest.raises(ConfigError, match="text_checkpointing"):
            build_model(load_run_config([], [*base, "train.text_checkpointing=3"])[0])
    with pytest.raises((ConfigError, ValueError), match="text_checkpointing"):
        load_run_config([], [*base, "train.text_checkpointing=-1"])


@pytest.mark.parametrize("rows", [1024, 2])  # one chunk; chunks of 2, 2 and 1 tokens
def test_feed_forward_that_recomputes_gelu_has_the_true_gradients(monkeypatch, rows):
    from cra.text import roberta
    from cra.text.roberta import FeedForward

    monkeypatch.setattr(roberta, "FEED_FORWARD_ROWS", rows)
    g = torch.Generator().manual_seed(0)
    args = [
        torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
        for shape in ((5, 4), (16, 4), (16,), (4, 16), (4,))
    ]  # h, W_1, b_1, W_2, b_2
    assert torch.autograd.gradcheck(FeedForward.apply, args)
    h, w1, b1, w2, b2 = args
    expected = torch.nn.functional.linear(torch.nn.functional.gelu(torch.nn.functional.linear(h, w1, b1)), w2, b2)
    torch.testing.assert_close(FeedForward.apply(*args), expected)


def test_packed_dropout_keeps_a_byte_mask_and_is_dropout():
    """The packed forward's dropout: nn.Dropout's values and gradients (kept/p-scaled, zeros elsewhere,
    identity in eval), its mask stored as bool, and used by the encoder in training (outputs vary)."""
    from cra.text.roberta import RobertaTextEncoder, dropout

    module = torch.nn.Dropout(0.3).train()
    x = torch.ones(200, 50, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x, module)
    assert y.unique().tolist() == pytest.approx([0.0, 1 / 0.7])
    assert abs(float((y == 0).float().mean()) - 0.3) < 0.02  # 10,000 draws: ~4 standard deviations
    assert y.grad_fn.name() == "NativeDropoutBackward0"
    assert y.grad_fn._saved_result1.dtype == torch.bool  # 1 byte a value, not a float32 mask
    y.backward(torch.full_like(y, 2.0))
    torch.testing.assert_close(x.grad, 2.0 * y.detach())  # d(mask * x / (1 - p)) / dx
    assert dropout(x, module.eval()) is x
    encoder = RobertaTextEncoder(pretrained=None, config={**ROBERTA_TINY_CONFIG, "hidden_dropout_prob": 0.5})
    texts = ["why did the boy run", "a cup"]
    first, second = encoder.train()(texts).tokens, encoder(texts).tokens
    assert not torch.equal(first, second)
    with torch.no_grad():
        assert torch.equal(encoder.eval()(texts).tokens, encoder(texts).tokens)
