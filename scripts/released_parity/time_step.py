"""Time one training step of the authors' released CRA code (WissingChen/CRA-GQA) at the paper's
shapes on CPU: the calibration of ``benchmarks/train_step.py``'s ``reference`` stand-in.

This script imports THEIR code from a checkout given with ``--authors`` (nothing of it is copied)
and must run in an environment with their dependencies (torch, transformers 4.47.1,
torch_geometric); ``cra`` is not imported. It reuses ``make_fixture.py``'s runtime patches (CPU for
``.cuda()``, a random RoBERTa instead of ``from_pretrained``, the byte-level tokenizer stand-in with
their padding to 38 / 30 tokens), here with RoBERTa-base's sizes (``RobertaConfig()``, random
weights: the weights do not change the cost) and the sizes of ``config/CRA/CRA_NextGQA.yml``
(d_model = feature_dim = 768, 2 layers, T = 32 frames, K = 5 candidates, question candidates = 5).
Their dictionary files are written with random contents: 512 visual clusters of 768 features (the
paper's k) and a 512-node text graph (their linguistic back-door is built but never called in the
forward pass, so its size changes only the memory).

One step, as their ``CRAPipeline._train_epoch`` runs it: ``get_loss`` (the VQ pass over the
question candidates, the VQA pass over the QA texts, ``bmm`` logits, their ``BuildLossFunc``),
``zero_grad``, ``backward``, ``clip_grad_norm_`` (12), their optimizer (``build_optimizer``: Adam,
amsgrad, lr 1e-5) and their warm-up schedule's ``step``. Prints one JSON line: the median CPU time
(``time.process_time``) of ``--repeats`` steps after ``--warmup`` steps (default 1), their wall times and the
process's peak resident set size.

    python scripts/released_parity/time_step.py --authors /path/to/CRA-GQA [--batch 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixture import ByteTokenizerStandIn, byte_ids, load_by_path, patch_cuda_and_pretrained  # noqa: E402

T, D, K, KQ = 32, 768, 5, 5  # frames, feature dim = d_model, candidates, question candidates
QA_LEN, Q_LEN = 38, 30  # their amax_words, qmax_words
VISUAL_CLUSTERS, TEXT_NODES = 512, 512
QUESTIONS = [
    "why did the boy pick up the ball after the dog ran to him",
    "what did the woman do after sitting down on the sofa near the table",
    "how did the man react when the baby started to cry loudly",
]
ANSWERS = ["to throw it", "to kick it away", "she was bored", "give it to the dog", "to clean the room"]


def write_dictionaries(folder: Path):
    from torch_geometric.data import Data

    chain = torch.arange(TEXT_NODES - 1)
    edges = torch.stack([chain, chain + 1])  # (2, E)
    torch.save({"k_center": Data(x=torch.randn(TEXT_NODES, 768), edge_index=edges)}, folder / "qa_graphs.npy")
    torch.save({"k_center": torch.randn(VISUAL_CLUSTERS, D)}, folder / "visual_clusters.npy")


def make_batch(B: int, g: torch.Generator) -> dict:
    """Inputs shaped as their collate gives them (ids padded to 38 / 30 tokens)."""
    qsns_id = torch.randint(0, KQ, (B,), generator=g)
    qa = [[f"{QUESTIONS[b % 3]} </s> {a}" for a in ANSWERS] for b in range(B)]
    qs = [[QUESTIONS[(b + j) % 3] for j in range(KQ)] for b in range(B)]
    return {
        "video_frames": torch.randn(B, T, D, generator=g),
        "video_mask": torch.ones(B, T, dtype=torch.long),
        "answer": torch.tensor([[byte_ids(t, QA_LEN) for t in row] for row in qa]),  # (B, K, 38)
        "answer_id": torch.randint(0, K, (B,), generator=g),
        "qsns_token_ids": torch.tensor([[byte_ids(t, Q_LEN) for t in row] for row in qs]),  # (B, KQ, 30)
        "qsns_id": qsns_id,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors", required=True, type=Path, help="checkout of WissingChen/CRA-GQA")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(args.authors.resolve()))
    torch.manual_seed(2024)
    patch_cuda_and_pretrained({})  # RobertaConfig(): RoBERTa-base's sizes, random weights

    B = args.batch
    cra_module = load_by_path("authors_cra_model", args.authors / "models" / "cra.py")
    loss_module = load_by_path("authors_loss", args.authors / "utils" / "optim" / "loss.py")
    optim_module = load_by_path("authors_optimizer", args.authors / "utils" / "optim" / "optimizer.py")
    schedule_module = load_by_path("authors_lr_scheduler", args.authors / "utils" / "optim" / "lr_scheduler.py")
    cfgs = {
        "dataset": {"qmax_words": Q_LEN, "amax_words": QA_LEN, "max_feats": T, "batch_size": B},
        "model": {
            "baseline": "refine",
            "lan": "RoBERTa",
            "d_model": D,
            "feature_dim": D,
            "n_negs": 1,
            "num_layers": 2,
            "dropout": 0.3,
            "do": True,
            "window_sizes": [1, 3, 5],
            "prop_num": 1,
            "vg_loss": 1,
        },
        "optim": {
            "optimizer": "Adam",
            "loss": {"ce": {"vq": 1, "vqa": 1}, "align": {"g": 0.5}},
            "clip": 12,
            "lr": 1e-5,
            "weight_decay": 0,
            "amsgrad": True,
        },
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
    criterion = loss_module.BuildLossFunc(cfgs)
    optimizer = optim_module.build_optimizer(cfgs, model)
    scheduler = schedule_module.get_linear_schedule_with_warmup(optimizer, 100, 1000)
    g = torch.Generator().manual_seed(0)
    batches = [make_batch(B, g) for _ in range(args.repeats + args.warmup)]
    prop = cfgs["model"]["prop_num"]

    model.train()
    cpu, wall = [], []
    for i, batch in enumerate(batches):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        # their get_loss: both passes, logits, loss
        vq = model(batch["video_frames"], batch["video_mask"], batch["qsns_token_ids"], batch["qsns_id"], mode="VQ")
        vq_pred = torch.bmm(vq[1], vq[0].unsqueeze(2)).squeeze().view(B, prop, -1).mean(dim=1)  # (B, KQ)
        vqa = model(batch["video_frames"], batch["video_mask"], batch["answer"], batch["answer_id"], mode="VQA")
        vqa_pred = torch.bmm(vqa[1], vqa[0].unsqueeze(2)).squeeze().view(B, prop, -1).mean(dim=1)  # (B, K)
        pred = {
            "vq_pred": vq_pred,
            "vq_align_pred": vq[2]["time_param"]["grounding_feature"],
            "vqa_pred": vqa_pred,
            "vqa_align_pred": vqa[2]["time_param"]["grounding_feature"],
        }
        target = {
            "vq_target": batch["qsns_id"],
            "vq_align_gt": vq[2]["align_gt"],
            "vqa_target": batch["answer_id"],
            "vqa_align_gt": vqa[2]["align_gt"],
        }
        loss = criterion(pred, target)
        # their _train_epoch
        optimizer.zero_grad()
        loss["total_loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=cfgs["optim"]["clip"])
        optimizer.step()
        scheduler.step()
        if i >= args.warmup:
            cpu.append(time.process_time() - start_cpu)
            wall.append(time.perf_counter() - start_wall)
    print(
        json.dumps(
            {
                "code": "authors (released)",
                "B": B,
                "cpu_s": round(statistics.median(cpu), 3),
                "step_s": round(statistics.median(wall), 3),
                "load": round(os.getloadavg()[0], 2),
                "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "text_tokens_per_step": int(batch["answer"].numel() + batch["qsns_token_ids"].numel()),
                "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "threads": torch.get_num_threads(),
                "repeats": len(cpu),
                "torch": torch.__version__,
                "total_loss": round(loss["total_loss"].item(), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
