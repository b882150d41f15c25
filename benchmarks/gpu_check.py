"""The GPU check (``benchmarks/gpu_check.sh``): does this package train CRA correctly and fast on CUDA?

    PYTHONPATH=$PWD python benchmarks/gpu_check.py [--out benchmarks/results/gpu_check_<date>.json]
    PYTHONPATH=$PWD python benchmarks/gpu_check.py --cpu-dry-run --out gpu_check_dry.json   # tiny, on CPU

Sections (each a key of the JSON written to ``--out``, with the date, torch version and GPU name):

* ``parity``: one forward of the same CRA (random RoBERTa-base text encoder, paper shapes) on CPU
  and on CUDA in fp32 with TF32 off: largest difference of the answer logits and of the grounding
  weights ``w``.
* ``steps``: training steps at the paper's shapes (B = 64, T = 32 frames of 768, K = 5, a
  fine-tuned RoBERTa-base built from ``RobertaConfig()`` with random weights: the machine has no hub
  access), in fp32, TF32 and bf16 autocast: median step time, peak memory, and the projected time
  of one NExT-GQA epoch (34,132 training questions / B steps).
* ``torchrun``: the synthetic world trained end to end for 2 epochs with
  ``torchrun --nproc-per-node <GPUs> -m cra train``: wall time and the last metrics line.

``--cpu-dry-run`` runs every section on CPU with tiny shapes (B = 4, a 1-layer RoBERTa, 2 gloo
processes on 21 synthetic questions) to check the script itself; its numbers say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
NEXTGQA_TRAIN_QUESTIONS = 34_132


def build(device: torch.device, dry: bool):
    """(model, config) at the paper's shapes (dry run: tiny), on ``device``, random weights from seed 0."""
    from train_step import word_tokenizer

    from cra.config import load_run_config
    from cra.run import build_model

    kwargs = (
        "{pretrained: null, max_length: 38, config: {vocab_size: 50265, hidden_size: 32, num_hidden_layers: 1, "
        "num_attention_heads: 2, intermediate_size: 64}}"
        if dry
        else "{pretrained: null, max_length: 38}"
    )
    overrides = [f"model.text_encoder_kwargs={kwargs}", "data.confounders=null", f"train.device={device}"]
    if dry:
        overrides += [
            "model.d_model=32",
            "model.d_ff=32",
            "model.num_heads=2",
            "model.num_z_entries=4",
            "model.num_x_entries=4",
            "model.z_node_dim=32",
        ]
    config, _ = load_run_config([], overrides)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(config)
    model.text.encoder.tokenize = word_tokenizer(model.text.encoder, fixed=False)
    return model.to(device), config


def set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def parity(device: torch.device, dry: bool) -> dict:
    from train_step import load_texts, make_batch

    set_tf32(False)
    model, _ = build(torch.device("cpu"), dry)
    model.eval()
    batch = make_batch(load_texts(), 4 if dry else 16, random.Random(0))
    with torch.no_grad():
        ref = model(batch)
        other = model.to(device)({k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()})
    logits = (other.vqa.logits.cpu() - ref.vqa.logits).abs().max().item()
    w = (other.vqa.w.cpu() - ref.vqa.w).abs().max().item()
    scale = ref.vqa.logits.abs().max().item()
    return {
        "device": str(device),
        "max_abs_diff_logits": logits,
        "max_abs_logit": scale,
        "max_abs_diff_w": w,
        "ok": logits <= 1e-3 * max(1.0, scale) and w <= 1e-4,
    }


def steps(device: torch.device, dry: bool, precision: str, repeats: int) -> dict:
    from train_step import load_texts, make_batch

    from cra.train import make_optimizer

    set_tf32(precision == "tf32")
    model, config = build(device, dry)
    model.train()
    optimizer = make_optimizer(model, config.train)
    params = [p for p in model.parameters() if p.requires_grad]
    B = 4 if dry else 64
    rng = random.Random(0)
    pairs = load_texts()
    batches = [make_batch(pairs, B, rng) for _ in range(repeats + 1)]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, losses = [], []
    for i, batch in enumerate(batches):
        model.check_inputs(batch)
        batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(batch, checked=True)
            loss = model.losses(batch, out, checked=True)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 12.0)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first step warms up (allocator, kernels)
            times.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    step = statistics.median(times)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    set_tf32(False)
    return {
        "precision": precision,
        "B": B,
        "step_s": step,
        "steps_timed": len(times),
        "losses": losses,
        "finite": all(math.isfinite(x) for x in losses),
        "peak_mib": None if peak is None else peak / 2**20,
        "projected_nextgqa_epoch_s": step * -(-NEXTGQA_TRAIN_QUESTIONS // B),
        "trainable_params": sum(p.numel() for p in params),
    }


def torchrun(dry: bool, nproc: int) -> dict:
    run = Path(tempfile.mkdtemp(prefix="cra_gpu_check_")) / "run"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sets = [
        f"data.root={REPO / 'data_samples' / 'synthetic'}",
        "train.epochs=2",
        "train.progress=false",
        f"train.device={'cpu' if dry else 'auto'}",
    ]
    if dry:
        sets += [
            "data.limit=21",
            "train.batch_size=8",
            "model.d_model=16",
            "model.d_ff=16",
            "model.num_heads=2",
            "model.text_encoder_kwargs={dim: 16, num_heads: 2, num_buckets: 256}",
        ]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(nproc),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        "-m",
        "cra",
        "train",
        "--config",
        "synthetic",
        "--run-dir",
        str(run),
    ]
    for item in sets:
        cmd += ["--set", item]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - start
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").is_file() else []
    last = json.loads(lines[-1]) if lines else None
    return {
        "nproc": nproc,
        "returncode": done.returncode,
        "wall_s": wall,
        "epochs_written": len(lines),
        "last_train": last and last["train"],
        "last_val_qa_acc": last and last["val"]["qa_acc"],
        "val_n": last and last["val"]["n"],
        "stderr_tail": done.stderr[-2000:] if done.returncode else "",
        "command": " ".join(cmd),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON results (default benchmarks/results/gpu_check_<date>.json)"
    )
    parser.add_argument("--cpu-dry-run", action="store_true", help="tiny shapes on CPU: check the script, not a GPU")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per precision (after one warm-up)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["parity", "steps", "torchrun"])
    args = parser.parse_args()
    dry = args.cpu_dry_run
    if not dry and not torch.cuda.is_available():
        print("gpu_check: no CUDA device; run with --cpu-dry-run to check the script on CPU", file=sys.stderr)
        return 2
    device = torch.device("cpu" if dry else "cuda")
    now = datetime.datetime.now(datetime.timezone.utc)
    out = args.out or REPO / "benchmarks" / "results" / f"gpu_check_{now:%Y-%m-%d}.json"
    result = {
        "date": now.isoformat(timespec="seconds"),
        "dry_run": dry,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpu_count": torch.cuda.device_count(),
        "host_cpus": os.cpu_count(),
    }

    def section(name, fn):
        start = time.perf_counter()
        try:
            value = fn()
        except Exception as err:  # record and go on: one failing section must not hide the others
            value = {"error": f"{type(err).__name__}: {err}"}
        value["section_s"] = time.perf_counter() - start
        result[name] = value
        print(f"{name}: {json.dumps(value)[:600]}", flush=True)

    if "parity" not in args.skip:
        section("parity", lambda: parity(device, dry))
    if "steps" not in args.skip:
        result["steps"] = []
        for precision in ("fp32", "tf32", "bf16"):
            section("_step", lambda p=precision: steps(device, dry, p, args.repeats))
            result["steps"].append(result.pop("_step"))
    if "torchrun" not in args.skip:
        section("torchrun", lambda: torchrun(dry, 2 if dry else max(1, torch.cuda.device_count())))
    from cra.paths import atomic_write_bytes

    atomic_write_bytes(Path(out), (json.dumps(result, indent=2) + "\n").encode())
    print(f"wrote {out}")
    failed = [k for k, v in result.items() if isinstance(v, dict) and "error" in v]
    failed += [f"steps[{s['precision']}]" for s in result.get("steps", []) if "error" in s]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
