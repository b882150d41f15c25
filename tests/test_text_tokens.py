"""Candidate texts tokenised by the data loader (cra.model.cra.CandidateTokenizer, in DataLoader
workers) give the same training, bit for bit, as texts tokenised inside the step."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from cra.model import CRA, CRAConfig
from cra.model.cra import TOKENS_KEY

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "train.epochs=1",
    "model.d_model=16",
    "model.num_heads=2",
    "model.d_ff=16",
    "model.num_z_entries=4",
    "model.num_x_entries=4",
    "model.z_node_dim=8",
    "model.text_encoder_kwargs={dim: 16, num_heads: 2, num_buckets: 256}",
    "train.text_bucket_size=4",  # several length buckets per call
    "data.limit=21",
    "train.batch_size=8",
    "train.progress=false",
    "eval.batch_size=8",
    f"data.root={REPO / 'data_samples' / 'synthetic'}",
]


@pytest.mark.parametrize(
    "layers, extra", [([], []), (["variants/released_code"], ["data.paraphrase_prob=0"])], ids=["ours", "released"]
)
def test_training_with_loader_tokenisation_equals_tokenisation_in_the_step(tmp_path, layers, extra):
    """Same losses, weights and val scores: 3 steps of the synthetic world, dropout on; the released
    variant tokenises QA texts and questions in two calls (fixed padding, questions cut at 30)."""
    from cra.config import load_run_config
    from cra.train import Trainer

    runs = {}
    for ahead, workers in ((False, 0), (True, 2)):
        config, _ = load_run_config(["synthetic", *layers], [*TINY, *extra, f"data.num_workers={workers}"])
        trainer = Trainer.from_config(config, tmp_path / f"ahead{ahead}", log=None)
        trainer.tokenize_in_loader = ahead
        assert (TOKENS_KEY in next(iter(trainer._batches(0)[0]))) == ahead
        record = trainer.fit()[0]
        runs[ahead] = record, trainer.model.state_dict()
    (plain, plain_weights), (ahead, ahead_weights) = runs[False], runs[True]
    assert ahead["train"] == plain["train"]
    assert ahead["val"] == plain["val"]
    for key, value in plain_weights.items():
        assert torch.equal(ahead_weights[key], value), key


def test_the_loader_batch_carries_the_calls_of_the_step_and_the_model_uses_them():
    from cra.text.roberta import ROBERTA_TINY_CONFIG

    torch.manual_seed(0)
    config = CRAConfig(
        feature_dim=8,
        d_model=16,
        num_heads=2,
        d_ff=16,
        num_z_entries=4,
        z_node_dim=8,
        num_x_entries=4,
        text_encoder="roberta",
        text_encoder_kwargs=dict(pretrained=None, config=ROBERTA_TINY_CONFIG),
        text_padding="max_length",
        question_max_length=12,
    )
    model = CRA(config).eval()
    tokenizer = pickle.loads(pickle.dumps(model.candidate_tokenizer()))  # what a spawned worker receives
    assert not list(tokenizer.encoder.parameters())  # no weights travel to the workers
    batch = {
        "frames": torch.randn(2, 3, 8),
        "qa_texts": [["why? red", "why? blue"], ["how? a long answer here", "how? no"]],
        "question_candidates": [["why", "how"], ["how", "why did it"]],
        "question_answer": torch.tensor([0, 0]),
    }
    tokenized = tokenizer(dict(batch))[TOKENS_KEY]
    assert list(tokenized) == ["qa_texts", "question_candidates"]  # the released padding: one call per group
    assert tokenized["question_candidates"].ids.shape == (4, 12 * 4)  # byte tokenizer: 4 x the BPE limit
    with torch.no_grad():
        plain, ahead = model(batch), model({**batch, TOKENS_KEY: tokenized})
    assert torch.equal(plain.vqa.logits, ahead.vqa.logits) and torch.equal(plain.vq.logits, ahead.vq.logits)
    wrong = {**tokenized, "qa_texts": tokenized["question_candidates"]._replace(ids=tokenized["qa_texts"].ids[:3])}
    with pytest.raises(ValueError, match=r"text_tokens.*'qa_texts'.*3 rows for 4 texts"):
        model({**batch, TOKENS_KEY: wrong})


def test_cached_text_mode_and_micro_batches_tokenise_in_the_step():
    from cra.text import WordEncoder
    from cra.text.cached import CachedTextEncoder
    from cra.train import slice_batch

    config = CRAConfig(feature_dim=8, d_model=16, num_heads=2, d_ff=16, num_z_entries=4, z_node_dim=8)
    cached = CRA(config, CachedTextEncoder(WordEncoder(dim=16, num_heads=2, num_buckets=64)))
    assert cached.candidate_tokenizer() is None
    assert TOKENS_KEY not in slice_batch({"answer": torch.zeros(4), TOKENS_KEY: {}}, 0, 2)
