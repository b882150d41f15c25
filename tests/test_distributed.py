"""Data-parallel training (cra.distributed): 2 gloo processes on CPU equal one process with the same
global batch; every val question is scored once; a run whose rank is killed mid-epoch resumes.

Tolerance of the equivalence: the two runs compute the same sums in another order (each rank sums
its share of the batch, the gradients are then averaged by an all-reduce; matrix products see other
batch sizes), so float32 results differ by rounding. Measured: the losses agree to ~1e-7 relative
(we allow 1e-5) and the weights to 1.2e-7 (one float32 ulp near 1; we allow 1e-6), except for the
parameters whose gradient is zero in exact arithmetic because a softmax ignores them (attention key
biases, the bias of a score before a softmax): their gradient is pure rounding noise, which Adam's
g / sqrt(v) turns into steps of up to ~lr, so they may drift by up to steps * lr (measured 2e-3 for
9 steps at lr 1e-3). The back-door LayerNorm's bias is nearly such a parameter: it shifts every
candidate text alike, so the answer softmax ignores it and its only gradient is the small one through
l = max_k l_k into GSG's gate (measured drift 3e-6 in the accumulation test; bound steps * lr too).
A gradient not averaged, CMA negatives from one rank only or a question seen
twice would move the losses by far more than 1e-5 (see the CMA test below).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cra import distributed
from cra.distributed import DistInfo, GlobalBatchSampler, gather_predictions, shard_indices, shares

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC = REPO / "data_samples" / "synthetic"
# 21 questions in batches of 8: the last global batch (5) splits 3 + 2, val (21) splits 11 + 10.
EPOCHS = 3
TINY = [
    f"train.epochs={EPOCHS}",
    "model.d_model=16",
    "model.num_heads=2",
    "model.d_ff=16",
    "model.num_z_entries=4",
    "model.num_x_entries=4",
    "model.z_node_dim=8",
    "model.text_encoder_kwargs={dim: 16, num_heads: 2, num_buckets: 256}",
    "model.dropout=0",
    "model.pos_dropout=0",
    "model.proj_dropout=0",
    "data.limit=21",
    "train.batch_size=8",
    "train.progress=false",
    "eval.batch_size=8",
    f"data.root={SYNTHETIC}",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def train_cmd(run: Path, nproc: int, *extra: str, sets=()) -> list[str]:
    launcher = (
        [sys.executable, "-m", "cra"]
        if nproc == 1
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(nproc),
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(free_port()),
            "-m",
            "cra",
        ]
    )
    args = [*launcher, "train", "--run-dir" if nproc > 1 else "--run", str(run), *extra]
    if "--resume" not in extra:
        args += ["--config", "synthetic"]
        for item in [*TINY, *sets]:
            args += ["--set", item]
    return args


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(a: Path, b: Path) -> None:
    ma, mb = metrics(a), metrics(b)
    assert len(ma) == len(mb) == EPOCHS
    for x, y in zip(ma, mb):
        assert x["train"]["n"] == y["train"]["n"] == 21
        for key, value in x["train"].items():
            assert y["train"][key] == pytest.approx(value, rel=1e-5), key
        assert x["val"]["n"] == y["val"]["n"] == 21  # every val question scored, once
        assert x["val"]["qa_acc"] == y["val"]["qa_acc"]
        assert x["val"]["diagnostics"].keys() == y["val"]["diagnostics"].keys()  # gathered over the ranks' shares
        for key, value in x["val"]["diagnostics"].items():
            assert y["val"]["diagnostics"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    wa = torch.load(a / "last.pt", weights_only=True)["model"]
    wb = torch.load(b / "last.pt", weights_only=True)["model"]
    steps, lr = EPOCHS * 3, 1e-3  # 3 global batches of 8 per epoch of 21 questions; synthetic lr
    for key in wa:
        x, y = wa[key], wb[key]
        if key.endswith(("key.bias", "word_score.bias")) or key == "backdoor.norm.bias":  # Adam walks on noise
            torch.testing.assert_close(y, x, rtol=0, atol=steps * lr, msg=key)
            continue
        if key.endswith("in_proj_bias"):  # [query; key; value] biases: the key third is like key.bias
            n = len(x) // 3
            torch.testing.assert_close(y[n : 2 * n], x[n : 2 * n], rtol=0, atol=steps * lr, msg=key)
            x, y = torch.cat([x[:n], x[2 * n :]]), torch.cat([y[:n], y[2 * n :]])
        torch.testing.assert_close(y, x, rtol=0, atol=1e-6, msg=key)


@pytest.fixture(scope="module")
def single_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("single") / "run"
    subprocess.run(train_cmd(run, 1), env=env(), check=True, capture_output=True)
    return run


def test_two_processes_equal_one_with_the_same_global_batch(single_run, tmp_path):
    run = tmp_path / "ddp"
    done = subprocess.run(train_cmd(run, 2), env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("epoch 1:") == 1  # logs from rank 0 only
    assert_same_run(single_run, run)


def test_a_run_killed_mid_epoch_resumes(single_run, tmp_path):
    run = tmp_path / "killed"
    proc = subprocess.Popen(
        train_cmd(run, 2), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.time() + 180
        while not (run / "last.pt").is_file():  # epoch 1 saved: the ranks are now in epoch 2
            assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
            time.sleep(0.02)
        rank1 = [pid for pid in _children(proc.pid) if _environ(pid).get("RANK") == "1"]
        assert rank1, "no rank-1 process"
        os.kill(rank1[0], signal.SIGKILL)
        assert proc.wait(timeout=120) != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert len(metrics(run)) < EPOCHS  # killed before the end
    done = subprocess.run(train_cmd(run, 2, "--resume"), env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_run(single_run, run)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _environ(pid: int) -> dict:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


# --------------------------------------------------------------------------------------------
# The pieces, in one process
# --------------------------------------------------------------------------------------------
def test_one_rank_draws_the_batches_of_the_previous_single_process_loop():
    from tqdm.auto import tqdm

    seed = 2024 * 1009 + 3
    loader = torch.utils.data.DataLoader(
        list(range(37)), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    before = [b.tolist() for b in tqdm(loader, disable=True)]  # how train_epoch iterated until now
    assert list(GlobalBatchSampler(37, 8, seed)) == before


def test_ranks_split_each_global_batch_without_padding_or_repeats():
    n, batch = 37, 8
    per_rank = [list(GlobalBatchSampler(n, batch, 5, DistInfo(r, 3))) for r in range(3)]
    single = list(GlobalBatchSampler(n, batch, 5))
    for step, whole in enumerate(single):
        assert [i for r in range(3) for i in per_rank[r][step]] == whole  # rank order = the global batch
    assert shares(5, 3) == [2, 2, 1]
    assert sorted(i for r in range(3) for i in shard_indices(10, DistInfo(r, 3))) == list(range(10))
    with pytest.raises(ValueError, match="last batch"):
        GlobalBatchSampler(33, 8, 5, DistInfo(0, 2))  # a last batch of 1 for 2 processes


def test_gather_predictions_refuses_a_question_scored_twice_or_never():
    part = {"qa": {"a": {"prediction": 0, "answer": 0}}, "weights": {"a": [1.0]}, "spans": {"posthoc": {"a": [0, 1]}}}
    assert gather_predictions(part, ["a"], distributed.SINGLE)["qa"] == part["qa"]
    with pytest.raises(RuntimeError, match=r"never \['b'\]"):
        gather_predictions(part, ["a", "b"], distributed.SINGLE)


def test_cma_with_gathered_negatives_equals_the_global_batch_loss():
    """A rank's share of anchors against the gathered batch gives, weighted by its share, the global loss."""
    from cra.model.cma import cma_loss

    torch.manual_seed(0)
    text, video = torch.randn(7, 5), torch.randn(7, 5)
    whole = cma_loss(text, video)["total"]
    sizes = shares(7, 2)
    parts = []
    for start, size in zip([0, sizes[0]], sizes):
        rows = slice(start, start + size)

        def gather(x, rows=rows, start=start):  # what gather_with_grad returns on this rank
            return (text if torch.equal(x, text[rows]) else video), start

        parts.append(cma_loss(text[rows], video[rows], gather=gather)["total"] * size / 7)
    torch.testing.assert_close(sum(parts), whole)
    # negatives from the local rows only would give another loss: the choice matters
    local = sum(cma_loss(text[s], video[s])["total"] * (s.stop - s.start) / 7 for s in (slice(0, 4), slice(4, 7)))
    assert abs(float(local - whole)) > 1e-3


def test_diagnostics_of_the_shares_merge_into_the_split_s():
    from cra.diagnostics import Diagnostics

    whole, first, second = Diagnostics(), Diagnostics(), Diagnostics()
    values = torch.arange(10.0)
    whole._add("w_entropy", values)
    first._add("w_entropy", values[:3])
    second._add("w_entropy", values[3:])
    second._add("cos_vt_vbar", values[3:])  # a measure only one share has
    merged = Diagnostics.merged([first, second]).summary()
    assert merged["w_entropy"] == whole.summary()["w_entropy"] == 4.5  # not the mean of the shares' means
    assert merged["cos_vt_vbar"] == second.summary()["cos_vt_vbar"]
    assert first.gathered(distributed.SINGLE) is first


def test_gradient_accumulation_equals_one_step_without_cma(tmp_path):
    """train.accumulate=3 (micro-batches of one optimiser step) gives the losses and weights of one
    batch when no term couples the samples (CMA off: its negatives would come from one micro-batch)."""
    from cra.config import load_run_config
    from cra.train import Trainer

    records, weights = [], []
    for accumulate in (1, 3):
        config, _ = load_run_config(
            ["synthetic"], [*TINY, "train.epochs=1", "model.use_cma=false", f"train.accumulate={accumulate}"]
        )
        trainer = Trainer.from_config(config, tmp_path / f"acc{accumulate}", log=None)
        records.append(trainer.fit()[0]["train"])
        weights.append(trainer.model.state_dict())
    for key, value in records[0].items():
        assert records[1][key] == pytest.approx(value, rel=1e-5), key
    steps, lr = 3, 3e-3  # one epoch of 21 questions in batches of 8; synthetic.yaml's lr
    for key in weights[0]:
        if key.endswith(("key.bias", "word_score.bias", "in_proj_bias")):
            continue  # zero true gradient (see the module docstring)
        near_zero = key == "backdoor.norm.bias"  # a tiny true gradient (see the module docstring)
        atol = steps * lr if near_zero else 1e-6
        torch.testing.assert_close(weights[1][key], weights[0][key], rtol=0, atol=atol, msg=key)
    with pytest.raises(ValueError, match="micro-batch"):
        GlobalBatchSampler(21, 8, 0, parts_per_rank=6)  # the last batch (5) cannot feed 6 micro-batches


def test_a_non_finite_loss_still_stops_training(tmp_path):
    """The loop reads the losses every CHECK_EVERY steps and at the end of the epoch (no sync per step)."""
    import numpy as np

    from cra.config import load_run_config
    from cra.train import Trainer

    config, _ = load_run_config(["synthetic"], [*TINY, "train.epochs=1"])
    trainer = Trainer.from_config(config, tmp_path / "nan", log=None)
    store = trainer.train_data.features
    clean = store.get
    store.get = lambda vid: (np.full_like(clean(vid)[0], np.nan), clean(vid)[1])
    with pytest.raises(FloatingPointError, match="epoch 1"):
        trainer.fit()
