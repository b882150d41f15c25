"""Run the authors' released CRA model (WissingChen/CRA-GQA) at tiny sizes with random weights and
save a golden fixture for ``tests/test_compat.py``: inputs, their state dict, their outputs.

This script imports THEIR code from a checkout given with ``--authors`` (nothing of it is copied
into this repository) and must run in an environment that has their dependencies (torch,
transformers 4.47.1, torch_geometric); ``cra`` is not imported. Runtime patches, each only where
their code hard-codes something that cannot run here:

* CUDA: ``Tensor.cuda()`` and ``Tensor.to("cuda")`` return the tensor itself (CPU run);
* pretrained RoBERTa: ``RobertaConfig/RobertaModel.from_pretrained`` build a tiny random RoBERTa
  (:data:`TINY_ROBERTA`) instead of reading ``/data2/.../roberta-base``;
* the dictionary files they read from ``causal_feature_path`` are written here with random
  contents at tiny sizes (their ``torch.load`` of a pickled ``torch_geometric`` graph needs
  ``weights_only=False``, the default of the torch 2.5 they used);
* sizes: the ``768`` defaults of ``refine.Decoder``, ``grounding.GroundingModule`` and
  ``only_trans.LanModel`` are replaced by ``D`` (their config's ``d_model`` does not reach them).

The tokenizer: their RoBERTa BPE vocabulary is not available offline, so token ids come from a
byte-level stand-in with RoBERTa's layout (``<s>``=0, ``<pad>``=1, ``</s>``=2, byte b -> b + 3):
``<s> question </s> answer </s>`` padded with ``<pad>`` to 38 (QA) or 30 (questions) tokens, as their
dataset does (``padding="max_length"``). The texts and ids are both saved.

The linguistic back-door (their ``model.do``, a ``LinguisticInterventionGraph``) is built by their
model but never called in its forward pass; its layers are hard-coded to 768, so its tensors are
left out of the saved state dict and only their names and shapes are recorded (``ignored_keys``).

Usage (from the repository root)::

    python scripts/released_parity/make_fixture.py --authors /path/to/CRA-GQA
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import torch

B, T, FEAT, D, K, KQ, KV = (
    4,
    8,
    24,
    32,
    5,
    5,
    6,
)  # batch, frames, feature dim, d_model, candidates, questions, visual clusters
QA_LEN, Q_LEN = 38, 30  # their amax_words, qmax_words
NUM_NEG = 32  # their align loss draws 32 negatives per sample
SEED, CMA_SEED = 2024, 7
SCHEDULE = (3, 20)  # warm-up steps, total steps for the recorded learning-rate schedule
TINY_ROBERTA = dict(
    vocab_size=260,
    hidden_size=D,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
)
OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "released_parity" / "released_parity.pt"

# Short invented texts: byte-level ids spend one token per character, so QA texts must fit 38 tokens;
# the last answer of sample 2 is longer on purpose (truncated, keeping the final </s>).
QUESTIONS = ["why pick up ball", "what after sit", "how man react", "where cat sleep"]
ANSWERS = [
    ["to throw", "to kick", "bored", "give dog", "to clean"],
    ["reads", "stands up", "waves", "eats apple", "sleeps"],
    ["laughs", "runs away", "pets dog", "sits", "shouts at the dog very loudly"],
    ["sofa", "under table", "in a box", "on bed", "window"],
]


def byte_ids(text: str, length: int) -> list[int]:
    """RoBERTa-layout byte ids of one text, truncated (keeping the final </s>) and padded to ``length``."""
    ids = [0]
    for i, part in enumerate(text.split("</s>")):
        if i:
            ids.append(2)
        ids.extend(b + 3 for b in part.strip().encode("utf-8"))
    ids = ids[: length - 1] + [2]
    return ids + [1] * (length - len(ids))


class ByteTokenizerStandIn:
    pad_token_id, sep_token = 1, "</s>"


def load_by_path(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def patch_cuda_and_pretrained(roberta: dict = TINY_ROBERTA):
    """CPU run and a random RoBERTa built from ``RobertaConfig(**roberta)`` (see the module docstring)."""
    import transformers

    torch.Tensor.cuda = lambda self, *a, **k: self
    original_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        if args and isinstance(args[0], str) and args[0].startswith("cuda"):
            return self
        return original_to(self, *args, **kwargs)

    torch.Tensor.to = to
    transformers.RobertaConfig.from_pretrained = classmethod(
        lambda cls, path, **kw: transformers.RobertaConfig(**roberta, **kw)
    )
    transformers.RobertaModel.from_pretrained = classmethod(lambda cls, path, config=None, **kw: cls(config))


def write_dictionaries(folder: Path):
    from torch_geometric.data import Data

    edges = torch.tensor(
        [[0, 5], [0, 1], [0, 2], [0, 3], [0, 4], [2, 4], [2, 3], [4, 3], [5, 6], [5, 7], [6, 7], [2, 5]]
    ).T
    torch.save({"k_center": Data(x=torch.randn(2 * 8, 768), edge_index=edges)}, folder / "qa_graphs.npy")
    torch.save({"k_center": torch.randn(KV, FEAT)}, folder / "visual_clusters.npy")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors", required=True, type=Path, help="checkout of WissingChen/CRA-GQA (commit aaf4da4)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    sys.path.insert(0, str(args.authors.resolve()))
    torch.manual_seed(SEED)
    patch_cuda_and_pretrained()

    from modules.m_cra import grounding, only_trans, refine

    refine.Decoder.__init__.__defaults__ = (
        D,
        2,
        8,
        D,
        0.1,
        None,
    )  # embed_dim, num_layer, num_heads, ff_dim, dropout, cfgs
    grounding.GroundingModule.__init__.__defaults__ = (D, 0.3)  # d_model, dropout
    only_trans.LanModel.__init__.__defaults__ = (D, 512)  # word_dim (= RoBERTa hidden = d_model), out_dim
    cra_module = load_by_path("authors_cra_model", args.authors / "models" / "cra.py")
    loss_module = load_by_path("authors_loss", args.authors / "utils" / "optim" / "loss.py")
    schedule_module = load_by_path("authors_lr_scheduler", args.authors / "utils" / "optim" / "lr_scheduler.py")

    cfgs = {
        "dataset": {"qmax_words": Q_LEN, "amax_words": QA_LEN, "max_feats": T, "batch_size": B},
        "model": {
            "baseline": "refine",
            "lan": "RoBERTa",
            "d_model": D,
            "feature_dim": FEAT,
            "n_negs": 1,
            "num_layers": 2,
            "dropout": 0.3,
            "do": True,
            "window_sizes": [1, 3, 5],
            "prop_num": 1,
        },
        "optim": {"loss": {"ce": {"vq": 1, "vqa": 1}, "align": {"g": 0.5}}},
    }
    with tempfile.TemporaryDirectory() as tmp:
        write_dictionaries(Path(tmp))
        cfgs["dataset"]["causal_feature_path"] = tmp
        original_load = torch.load
        torch.load = lambda *a, **k: original_load(*a, **{**k, "weights_only": False})
        try:
            model = cra_module.CRA(cfgs, ByteTokenizerStandIn())
        finally:
            torch.load = original_load
    with torch.no_grad():  # move every 1-d parameter (biases, norms, sigma) off its default init
        for name, p in model.named_parameters():
            if p.ndim <= 1:
                p.add_(0.1 * torch.randn_like(p))
    model.eval()

    # ---- inputs, shaped as their collate gives them ----
    frames = torch.randn(B, T, FEAT)
    video_mask = torch.ones(B, T, dtype=torch.long)  # their model never reads it
    answer_id = torch.randint(0, K, (B,))
    qsns_id = torch.randint(0, KQ, (B,))
    qa_texts = [[f"{q} </s> {a}" for a in answers] for q, answers in zip(QUESTIONS, ANSWERS)]
    question_candidates = []
    for b in range(B):  # the true question at position qsns_id[b] among 4 other questions
        negatives = [QUESTIONS[(b + j) % B] for j in (1, 2, 3)] + [f"what happens at the end of the clip number {b}"]
        question_candidates.append(negatives[: int(qsns_id[b])] + [QUESTIONS[b]] + negatives[int(qsns_id[b]) :])
    qa_ids = torch.tensor([[byte_ids(t, QA_LEN) for t in row] for row in qa_texts])  # (B, K, 38)
    q_ids = torch.tensor([[byte_ids(t, Q_LEN) for t in row] for row in question_candidates])  # (B, KQ, 30)

    # ---- their two passes and loss, as pipeline/cra_pipeline.py get_loss wires them ----
    with torch.no_grad():
        vq_video, vq_answer, vq_outs = model(frames, video_mask, q_ids, qsns_id, mode="VQ")
        vqa_video, vqa_answer, vqa_outs = model(frames, video_mask, qa_ids, answer_id, mode="VQA")
        vq_logits = torch.bmm(vq_answer, vq_video.unsqueeze(2)).squeeze(2)  # (B, KQ)
        vqa_logits = torch.bmm(vqa_answer, vqa_video.unsqueeze(2)).squeeze(2)  # (B, K)
        pred = {
            "vq_pred": vq_logits,
            "vq_align_pred": vq_outs["time_param"]["grounding_feature"],
            "vqa_pred": vqa_logits,
            "vqa_align_pred": vqa_outs["time_param"]["grounding_feature"],
        }
        target = {
            "vq_target": qsns_id,
            "vq_align_gt": vq_outs["align_gt"],
            "vqa_target": answer_id,
            "vqa_align_gt": vqa_outs["align_gt"],
        }
        draws, original_randint = [], torch.randint

        def recording_randint(*a, **k):  # records the negatives their sampler draws; same values
            out = original_randint(*a, **k)
            draws.append(out.clone())
            return out

        torch.manual_seed(CMA_SEED)
        torch.randint = recording_randint
        try:
            losses = loss_module.BuildLossFunc(cfgs)(pred, target)
        finally:
            torch.randint = original_randint
    assert len(draws) == 2 * B and all(d.shape == (NUM_NEG,) for d in draws), [d.shape for d in draws]
    rows = torch.arange(B)[:, None]
    draws = torch.stack(draws).view(2, B, NUM_NEG)  # (pass: vq then vqa, B, k) indices into the B-1 others
    negatives = draws + (draws >= rows).long()  # their neg_indices = [0..B-1] without i

    # their "warmup" schedule (get_linear_schedule_with_warmup): the lr factor before each of the steps
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = schedule_module.get_linear_schedule_with_warmup(optimizer, SCHEDULE[0], SCHEDULE[1])
    lr_factors = []
    for _ in range(SCHEDULE[1] + 1):
        lr_factors.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()

    state = model.state_dict()
    ignored = {k: list(v.shape) for k, v in state.items() if k.startswith("do.")}
    fixture = {
        "meta": {
            "authors_commit": "aaf4da4",
            "sizes": dict(
                B=B,
                T=T,
                feature_dim=FEAT,
                d_model=D,
                K=K,
                KQ=KQ,
                KV=KV,
                qa_length=QA_LEN,
                question_length=Q_LEN,
                num_negatives=NUM_NEG,
            ),
            "tiny_roberta": TINY_ROBERTA,
            "seed": SEED,
            "cma_seed": CMA_SEED,
            "ignored_keys": ignored,
            "torch": str(torch.__version__),
            "transformers": str(__import__("transformers").__version__),
        },
        "inputs": {
            "frames": frames,
            "qa_texts": qa_texts,
            "question_candidates": question_candidates,
            "qa_ids": qa_ids,
            "question_ids": q_ids,
            "answer": answer_id,
            "question_answer": qsns_id,
        },
        "state_dict": {k: v.clone() for k, v in state.items() if k not in ignored},
        "outputs": {
            "vqa_logits": vqa_logits,
            "vq_logits": vq_logits,
            "vqa_key": vqa_outs["time_param"]["key"],
            "vqa_ori_key": vqa_outs["time_param"]["ori_key"],
            "vq_key": vq_outs["time_param"]["key"],
            "vq_ori_key": vq_outs["time_param"]["ori_key"],
            "vqa_grounding_feature": pred["vqa_align_pred"],
            "vq_grounding_feature": pred["vq_align_pred"],
            "vq_negatives": negatives[0],
            "vqa_negatives": negatives[1],
            "vq_loss": losses["vq_loss"],
            "vqa_loss": losses["vqa_loss"],
            "ag_loss": losses["ag_loss"],
            "total_loss": losses["total_loss"],
            "schedule_warmup_total": torch.tensor(SCHEDULE),
            "schedule_lr_factors": torch.tensor(lr_factors),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    torch.save(fixture, tmp)
    os.replace(tmp, args.out)
    torch.load(args.out, weights_only=True)  # the fixture must load safely
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB); "
        f"vqa logits {tuple(vqa_logits.shape)}, ag_loss {losses['ag_loss'].item():.6f}, "
        f"{len(fixture['state_dict'])} tensors saved, {len(ignored)} ignored"
    )


if __name__ == "__main__":
    main()
