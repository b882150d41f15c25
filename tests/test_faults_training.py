"""Training-side faults (issue 17, items 3-7): run-folder lock, crash consistency, resume checks,
config values refused before any epoch, disk full, Ctrl-C, confounder files, unwritable outputs.

Each test checks the exact message (file, key or row, what was expected) and that nothing partial or
inconsistent is left behind. Two use real processes: a SIGKILL between the checkpoint and the metrics
write ($CRA_FAULT hook of cra.runfolder), and two trainings started together on one folder. Runs are
tiny (tests/tiny_nextgqa.py). The table of checks is docs/input_checks.md.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_nextgqa import tiny_overrides, write_tiny_nextgqa

from cra import paths, runfolder
from cra.checkpoint import load_checkpoint, save_checkpoint
from cra.cli import main
from cra.data import feature_path, write_feature_file

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return write_tiny_nextgqa(tmp_path_factory.mktemp("tiny"), videos={"train": 4, "val": 2})


def train_argv(root: Path, run: Path, *extra: str, **overrides) -> list[str]:
    argv = ["train", "--config", "synthetic", "--run", str(run), *extra]
    for item in tiny_overrides(root, **{"model.use_backdoor": False, "model.use_frontdoor": False, **overrides}):
        argv += ["--set", item]
    return argv


def epochs_in(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def leftovers(run: Path) -> list[str]:
    """Temporaries and locks: a consistent, idle run folder has none."""
    return sorted(p.name for p in run.iterdir() if p.name.endswith(".part") or p.name == runfolder.LOCK_FILE)


def subprocess_env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra}
    env.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))  # the same thread count as this process
    return env


@pytest.fixture(scope="module")
def done_run(tiny_root, tmp_path_factory) -> Path:
    """A finished 2-epoch run (copy it before changing it)."""
    run = tmp_path_factory.mktemp("done") / "run"
    assert main(train_argv(tiny_root, run)) == 0
    return run


def copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "copy"))


def copy_root(tiny_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_root, tmp_path / "root"))


# ============================================================================================
# Bad inputs and values: refused before any epoch, nothing written (items 5, 6)
# ============================================================================================
@pytest.mark.parametrize("split", ["train", "val"])
def test_header_only_csv_is_refused_before_training(tiny_root, tmp_path, capsys, split):
    root = copy_root(tiny_root, tmp_path)
    csv = root / "nextgqa" / f"{split}.csv"
    csv.write_text(csv.read_text().splitlines()[0] + "\n")
    run = tmp_path / "runs" / "new" / "run"
    assert main(train_argv(root, run)) == 2
    assert (
        f"train: error: {csv}: data rows: no questions in {csv} (a header and no rows); "
        "expected at least one question row"
    ) in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # no config.yaml, no lock, no folder (nor the folders above it)


def test_val_features_with_fewer_frames_than_frame_times_are_refused(tiny_root, tmp_path, capsys):
    root = copy_root(tiny_root, tmp_path)
    h5 = feature_path(root / "features", "val")
    vids = list(json.loads((root / "nextgqa" / "frame2time_val.json").read_text()))
    write_feature_file(h5, vids, np.zeros((len(vids), 16, 16), np.float32))  # 16 stored frames, 32 frame times
    run = tmp_path / "run"
    assert main(train_argv(root, run)) == 2
    err = capsys.readouterr().err
    assert f"train: error: {h5}: video {vids[0]}" in err
    assert "16 stored frames but 32 frame times in" in err and "frame2time_val.json" in err
    assert not run.exists()


def test_frame_times_in_other_units_and_far_ground_truth_are_refused(tiny_root, tmp_path, capsys):
    root = copy_root(tiny_root, tmp_path)
    ann = root / "nextgqa"
    f2t = json.loads((ann / "frame2time_val.json").read_text())
    first = next(iter(f2t))
    original = dict(f2t)
    f2t[first] = [t * 100 for t in f2t[first]]  # centiseconds
    (ann / "frame2time_val.json").write_text(json.dumps(f2t))
    run = tmp_path / "run"
    assert main(train_argv(root, run)) == 2
    err = capsys.readouterr().err
    assert (
        f"{ann / 'frame2time_val.json'}: video {first}: last frame time" in err and "expected times in seconds" in err
    )
    (ann / "frame2time_val.json").write_text(json.dumps(original))
    gsub = json.loads((ann / "gsub_val.json").read_text())
    gsub[first]["location"]["0"] = [[5.0, 10 * gsub[first]["duration"]]]
    (ann / "gsub_val.json").write_text(json.dumps(gsub))
    assert main(train_argv(root, run)) == 2
    err = capsys.readouterr().err
    assert f"{ann / 'gsub_val.json'}: video {first}" in err
    assert not run.exists()


def test_questions_without_ground_truth_are_counted_in_a_note(tiny_root, tmp_path):
    from cra import config as cfg
    from cra.run import load_split

    root = copy_root(tiny_root, tmp_path)
    ann = root / "nextgqa"
    gsub = json.loads((ann / "gsub_val.json").read_text())
    dropped = sorted(gsub)[0]
    del gsub[dropped]
    (ann / "gsub_val.json").write_text(json.dumps(gsub))
    config, _ = cfg.load_run_config(["synthetic"], tiny_overrides(root))
    split = load_split(config, "val", grounding=True)
    assert len(split.notes) == 2
    assert f"{ann / 'gsub_val.json'}: 1 of the 2 videos of val have no ground truth" in split.notes[0]
    assert split.notes[1].startswith(
        "2 of the 4 questions of val.csv have no ground truth in gsub_val.json: "
        "Acc@QA counts all 4, the grounding metrics skip them"
    )
    assert f"{dropped}_0" in split.notes[1]


@pytest.mark.parametrize(
    "item, message",
    [
        (
            "model.window_sizes=[0,3]",
            "model.window_sizes=[0, 3]: expected one or more window lengths in frames, each a whole number >= 1",
        ),
        ("model.window_sizes=[-2]", "model.window_sizes=[-2]: expected one or more window lengths in frames"),
        (
            "model.temperature=0",
            "model.temperature=0.0: expected a number > 0 (the CMA loss divides the cosine similarities by it)",
        ),
        ("model.temperature=-0.07", "model.temperature=-0.07: expected a number > 0"),
        ("train.device=gpu", "train.device='gpu' is not a device name; valid on this machine: auto, cpu"),
        ("train.device=cuda:7", "train.device='cuda:7' but"),
        ("data.limit=0", "data.limit=0: expected null (every question) or a positive integer"),
    ],
)
def test_bad_config_values_are_refused_before_any_epoch(tiny_root, tmp_path, capsys, item, message):
    run = tmp_path / "run"
    assert main(train_argv(tiny_root, run, "--set", item)) == 2
    err = capsys.readouterr().err
    assert err.startswith("train: error: ") and message in err and "Traceback" not in err
    assert not run.exists()


def nan_confounders(path: Path) -> Path:
    """A confounder file whose X_hat holds a NaN, with a correct sha256 (as a buggy builder would write it)."""
    from cra.confounders import format as fmt

    arrays = {
        "Z_l": None,
        "Z_l_sizes": None,
        "X_hat": torch.randn(4, 16),
        "X_hat_sizes": torch.ones(4, dtype=torch.long),
    }
    arrays["X_hat"][2, 5] = float("nan")
    metadata = {"text_dim": None, "visual_dim": 16, "payload_sha256": fmt._payload_sha256(arrays)}
    torch.save({"format": fmt.FORMAT_NAME, "version": fmt.FORMAT_VERSION, **arrays, "metadata": metadata}, path)
    return path


def test_nan_in_a_confounder_file_is_refused_at_load_time(tiny_root, tmp_path, capsys):
    from cra.confounders import ConfounderFileError, Confounders, load_confounders, save_confounders

    bad = nan_confounders(tmp_path / "nan.pt")
    expected = (
        f"{bad}: X_hat holds 1 non-finite values (NaN or inf), the first at index [2, 5]; "
        "expected finite cluster centres"
    )
    with pytest.raises(ConfounderFileError, match="^" + re.escape(expected)):
        load_confounders(bad)
    run = tmp_path / "run"
    assert main(train_argv(tiny_root, run, **{"model.use_frontdoor": True, "data.confounders": str(bad)})) == 2
    assert expected in capsys.readouterr().err and not run.exists()
    with pytest.raises(ConfounderFileError, match="X_hat holds 6 non-finite"):  # and never written in the first place
        save_confounders(
            tmp_path / "never.pt",
            Confounders(X_hat=torch.full((2, 3), float("inf")), X_hat_sizes=torch.ones(2, dtype=torch.long)),
        )
    assert not (tmp_path / "never.pt").exists()


def test_unwritable_outputs_are_refused_before_the_work(tmp_path, capsys, monkeypatch):
    import cra.confounders
    import cra.study

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")

    def must_not_run(*args, **kwargs):
        raise AssertionError("the long work started before the output was checked")

    monkeypatch.setattr(cra.confounders, "build_confounders", must_not_run)
    out = blocker / "sub" / "conf.pt"
    assert main(["build-confounders", "--config", "nextgqa_valtest_demo", "--set", f"out={out}", "--no-progress"]) == 2
    assert f"build-confounders: error: cannot write {out}: {blocker} is a file, not a folder" in capsys.readouterr().err
    assert main(["build-confounders", "--config", "nextgqa_valtest_demo", "--set", f"out={tmp_path}"]) == 2
    assert f"{tmp_path}: is a folder; expected a file path to write" in capsys.readouterr().err

    monkeypatch.setattr(cra.study, "run_study", must_not_run)
    assert main(["ablation", "--out", str(blocker / "results")]) == 2
    assert (
        f"ablation: error: cannot write {blocker / 'results'}: {blocker} is a file, not a folder"
        in capsys.readouterr().err
    )
    assert main(["ablation", "--out", str(blocker)]) == 2
    assert f"{blocker}: is a file; expected a folder path to write" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


# ============================================================================================
# The run-folder lock (item 3)
# ============================================================================================
def test_a_locked_run_folder_is_refused_naming_the_holder(tiny_root, tmp_path, capsys):
    run = tmp_path / "run"
    with runfolder.RunLock(run, log=None):
        holder = json.loads((run / runfolder.LOCK_FILE).read_text())
        assert main(train_argv(tiny_root, run)) == 2
        err = capsys.readouterr().err
        assert (
            f"train: error: {run} is in use by another training run: pid {os.getpid()} on host {socket.gethostname()}, "
            f"started {holder['started']}"
        ) in err
        assert f"its lock is {run / runfolder.LOCK_FILE}. Wait for it to end, or train into another --run folder" in err
        assert sorted(p.name for p in run.iterdir()) == [runfolder.LOCK_FILE]  # the refused run wrote nothing
    assert not run.exists()  # the lock made the folder and, released, removed it


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_note(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    run.mkdir()
    stale = {
        "pid": dead.pid,
        "host": socket.gethostname(),
        "started": "2026-01-01 00:00:00 UTC",
        "command": "python -m cra train",
    }
    (run / runfolder.LOCK_FILE).write_text(json.dumps(stale))
    notes = []
    with runfolder.RunLock(run, log=notes.append):
        assert json.loads((run / runfolder.LOCK_FILE).read_text())["pid"] == os.getpid()
    assert notes == [
        f"note: {run / runfolder.LOCK_FILE}: took over a stale lock of pid {dead.pid} on host "
        f"{socket.gethostname()}, started 2026-01-01 00:00:00 UTC (python -m cra train), no longer running"
    ]
    assert sorted(p.name for p in run.iterdir()) == []


def test_two_trainings_started_together_on_one_folder(tiny_root, tmp_path):
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "cra", *train_argv(tiny_root, run, **{"train.epochs": 3})]
    procs = [
        subprocess.Popen(
            argv, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(p, *p.communicate(timeout=600)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], results
    (winner, out, _), (_, _, err) = sorted(results, key=lambda r: r[0].returncode)
    assert "wrote" in out
    assert f"{run} is in use by another training run: pid {winner.pid} on host {socket.gethostname()}, started " in err
    assert epochs_in(run) == [1, 2, 3] and leftovers(run) == []
    assert load_checkpoint(run / "last.pt")["epoch"] == 3


# ============================================================================================
# Crash consistency and --resume (item 4)
# ============================================================================================
def test_sigkill_between_checkpoint_and_metrics_then_resume_completes_the_history(tiny_root, tmp_path, capsys):
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "cra", *train_argv(tiny_root, run, **{"train.epochs": 3})]
    killed = subprocess.run(
        argv,
        cwd=tmp_path,
        env=subprocess_env(CRA_FAULT="after-last-checkpoint@2"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -9, killed.stderr  # SIGKILL: no cleanup ran
    last = load_checkpoint(run / "last.pt")
    assert last["epoch"] == 2 and [r["epoch"] for r in last["history"]] == [1, 2]
    assert epochs_in(run) == [1]  # the kill came before epoch 2's metrics line
    assert (run / runfolder.LOCK_FILE).is_file()  # the dead process's lock
    orphan = run / ".last.pt.x1y2z3.part"  # and what a kill inside a checkpoint write leaves
    orphan.write_bytes(b"\0" * 1000)

    assert main(["train", "--run", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"note: {run / runfolder.LOCK_FILE}: took over a stale lock of pid " in out and "no longer running" in out
    assert (
        f"note: removed {orphan} (1,000 bytes): an unfinished write of last.pt, left by a process that was stopped"
        in out
    )
    assert f"note: {run / 'metrics.jsonl'}: rewritten from last.pt (epochs 1..2): it lacked epoch(s) 2" in out
    assert f"resume: {run / 'last.pt'} holds epochs 1..2 (history complete)" in out
    assert epochs_in(run) == [1, 2, 3] and leftovers(run) == []
    final = load_checkpoint(run / "last.pt")
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert final["history"] == lines and final["history"][:2] == last["history"]
    best_epoch = max(r["epoch"] for r in lines if r["selected"])
    assert load_checkpoint(run / "best.pt")["epoch"] == best_epoch == final["best_epoch"]


def test_resume_rebuilds_best_from_last_when_the_kill_came_before_it(done_run, tmp_path, capsys):
    run = copy_of(done_run, tmp_path)
    last = load_checkpoint(run / "last.pt")
    last["history"][1]["selected"] = True  # as if epoch 2 had been the best, and the kill came before best.pt
    save_checkpoint(run / "last.pt", {**last, "best_epoch": 2})
    best = load_checkpoint(run / "best.pt")
    save_checkpoint(run / "best.pt", {**best, "epoch": 1})
    (run / "metrics.jsonl").write_text(runfolder.metrics_bytes(last["history"][:1]).decode())
    assert main(["train", "--run", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"note: {run / 'best.pt'}: rebuilt from last.pt (the best epoch, 2); it held epoch 1" in out
    rebuilt = load_checkpoint(run / "best.pt")
    assert rebuilt["epoch"] == 2 and all(torch.equal(rebuilt["model"][k], last["model"][k]) for k in last["model"])
    assert f"wrote {run / 'metrics.jsonl'}, {run / 'best.pt'}" in out  # the repairs, and nothing else
    assert epochs_in(run) == [1, 2]


def test_resume_refuses_a_history_with_a_gap(done_run, tmp_path, capsys):
    run = copy_of(done_run, tmp_path)
    last = load_checkpoint(run / "last.pt")
    save_checkpoint(run / "last.pt", {**last, "history": last["history"][1:]})
    before = (run / "metrics.jsonl").read_bytes()
    assert main(["train", "--run", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert (
        f"train: error: {run / 'last.pt'}: the metrics history holds epochs [2]; expected 1..2 with no gap "
        "(the checkpoint is at epoch 2)"
    ) in err
    assert (run / "metrics.jsonl").read_bytes() == before and leftovers(run) == []


def test_a_last_checkpoint_without_history_resumes_from_a_complete_metrics_file(done_run, tmp_path, capsys):
    run = copy_of(done_run, tmp_path)
    last = load_checkpoint(run / "last.pt")
    older = {k: v for k, v in last.items() if k not in ("history", "best_epoch", "environment", "format", "version")}
    save_checkpoint(run / "last.pt", older)  # as cra wrote it before histories were kept in last.pt
    assert main(["train", "--run", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"warning: {run / 'last.pt'} does not record its thread count and library versions" in out
    assert f"resume: {run / 'last.pt'} holds epochs 1..2 (history complete)" in out
    (run / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text().splitlines()[1] + "\n")  # epoch 2 only
    assert main(["train", "--run", str(run), "--resume"]) == 2
    assert (
        f"train: error: {run / 'last.pt'} holds no metrics history (written by an older cra) and "
        f"{run / 'metrics.jsonl'} holds epochs [2], not 1..2: the history of this run cannot be completed"
    ) in capsys.readouterr().err


def test_resume_of_a_finished_run_writes_nothing_and_warns_about_threads(done_run, tmp_path, capsys):
    run = copy_of(done_run, tmp_path)
    saved = load_checkpoint(run / "last.pt")["environment"]
    assert saved == runfolder.environment()  # thread count and versions are recorded
    assert set(saved) == {"threads", "python", "torch", "numpy", "cra"}
    threads = torch.get_num_threads()
    other = 1 if threads != 1 else 2
    mtimes = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    try:
        torch.set_num_threads(other)
        assert main(["train", "--run", str(run), "--resume"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert (
        f"warning: {run / 'last.pt'} was written with {threads} torch threads, this process uses {other}: the resumed "
        "run will not be bit-identical to an uninterrupted one"
    ) in out
    assert f"nothing to do: {run / 'last.pt'} already holds all 2 epochs" in out and "wrote" not in out
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == mtimes  # nothing rewritten


def full_disk_for(monkeypatch, name: str, *, at: int = 1):
    """Make the ``at``-th atomic write of a file called ``name`` hit a full disk (writes go to /dev/full)."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full to simulate a full disk")
    real = paths.tempfile.mkstemp
    seen = {"n": 0}

    def mkstemp(*args, prefix="", **kwargs):
        fd, tmp = real(*args, prefix=prefix, **kwargs)
        if prefix == f".{name}.":
            seen["n"] += 1
            if seen["n"] == at:
                os.close(fd)
                fd = os.open("/dev/full", os.O_WRONLY)  # every write: ENOSPC
        return fd, tmp

    monkeypatch.setattr(paths.tempfile, "mkstemp", mkstemp)


def test_disk_full_names_the_file_and_leaves_a_consistent_run(tiny_root, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    with monkeypatch.context() as m:  # epoch 2's metrics.jsonl does not fit
        full_disk_for(m, "metrics.jsonl", at=2)
        assert main(train_argv(tiny_root, run, **{"train.epochs": 3})) == 1
    out, err = capsys.readouterr()
    assert (
        f"train: error: could not write {run / 'metrics.jsonl'}: {os.strerror(errno.ENOSPC)}. "
        "Nothing was half-written; "
        f"{run / 'last.pt'} holds epoch 2. Free space (or fix the folder) and continue with: python -m cra train "
        f"--run {run} --resume"
    ) in err
    assert "wrote" not in out and "Traceback" not in err
    assert epochs_in(run) == [1] and load_checkpoint(run / "last.pt")["epoch"] == 2 and leftovers(run) == []

    with monkeypatch.context() as m:  # resume: metrics repaired, then epoch 3's last.pt does not fit
        full_disk_for(m, "last.pt")
        assert main(["train", "--run", str(run), "--resume"]) == 1
    out, err = capsys.readouterr()
    assert "rewritten from last.pt (epochs 1..2): it lacked epoch(s) 2" in out
    assert (
        f"could not write {run / 'last.pt'}: {os.strerror(errno.ENOSPC)}. Nothing was half-written; "
        f"{run / 'last.pt'} holds epoch 2" in err
    )
    assert epochs_in(run) == [1, 2] and load_checkpoint(run / "last.pt")["epoch"] == 2 and leftovers(run) == []

    assert main(["train", "--run", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {run / 'last.pt'}" in out and f"{run / 'metrics.jsonl'}" in out and "config.yaml" not in out
    assert epochs_in(run) == [1, 2, 3] and leftovers(run) == []


def test_ctrl_c_during_training_says_how_to_resume(tiny_root, tmp_path, capsys, monkeypatch):
    from cra.train import Trainer

    real = Trainer.train_epoch

    def interrupted_in_epoch_2(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted_in_epoch_2)
    run = tmp_path / "run"
    assert main(train_argv(tiny_root, run)) == 130
    err = capsys.readouterr().err
    assert err.strip().endswith(
        f"python -m cra train: interrupted (Ctrl-C). Completed epochs are kept in {run / 'last.pt'}; "
        f"continue with: python -m cra train --run {run} --resume"
    )
    assert "Traceback" not in err
    assert epochs_in(run) == [1] and leftovers(run) == []  # the lock was released


def test_predict_builds_the_model_from_the_checkpoint_not_config_yaml(done_run, tmp_path, capsys):
    run = copy_of(done_run, tmp_path)
    (run / "config.yaml").write_text("model: {d_model: 999}\n")  # a wrong run config is never read by predict
    assert main(["predict", "--run", str(run), "--split", "val", "--no-progress", "--out", str(tmp_path / "pred")]) == 0
    assert len(json.loads((tmp_path / "pred" / "val-res.json").read_text())) == 4
