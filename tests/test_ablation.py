"""The ablation study on the synthetic world: a tiny study end to end writes the expected files and
columns, runs are deterministic for a seed, each variant switches off exactly its part, the
dictionaries come from the world's train split, and the faithfulness measures count what they say."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from cra import study as ablation
from cra.cli import main
from cra.config import ConfigError
from cra.confounders import load_confounders
from cra.data import collate, question_key, split_key
from cra.data.features import feature_path
from cra.model import RELEASED_CODE
from cra.model.gsg import GSG, AttentionPooling
from cra.synthetic import SPLITS as WORLD_SPLITS
from cra.synthetic import WorldConfig, load_truth
from cra.synthetic import load_split as load_world_split

TINY = [
    "world.train_videos=24",
    "world.val_videos=8",
    "world.val_ood_videos=8",
    "world.test_id_videos=8",
    "world.test_ood_videos=8",
    "clusters=4",
    "train.epochs=1",
    "train.batch_size=8",
    "seeds=[0]",
]


@pytest.fixture(scope="module")
def tiny_study():
    return ablation.study_config("fast", TINY)


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory, tiny_study):
    root = tmp_path_factory.mktemp("world")
    world, conf = ablation.prepare_world(root, tiny_study.world_config(), tiny_study.world_seed, tiny_study.clusters)
    return world, conf


def job(world: Path, conf: Path, variant: str, seed: int, study, run_dir: Path) -> dict:
    return {
        "key": f"{variant}/{seed}",
        "world": str(world),
        "truth": str(world),
        "confounders": str(conf),
        "variant": variant,
        "seed": seed,
        "run_dir": str(run_dir),
        "study": asdict(study),
        "threads": 1,
        "keep_answers": True,
        "keep_runs": False,
    }


def build(variant: str, world: Path, conf: Path, study):
    from cra.run import build_model

    config = ablation.run_config(world, conf, variant, 0, study)
    torch.manual_seed(0)
    return config, build_model(config)


# --------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------
def test_tiny_study_writes_every_file_with_the_expected_columns(tmp_path):
    out = tmp_path / "out"
    argv = ["ablation", "--out", str(out), "--mode", "fast"]
    for item in TINY + ["variants=[posthoc,cra,blind]", "sweep_strengths=[0.0,0.8]", "sweep_variants=[posthoc]"]:
        argv += ["--set", item]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(ablation.OUTPUT_FILES)
    stats = [f"{c}_{s}" for c in ablation.METRICS + ablation.FAITH + ablation.DIAG for s in ("mean", "std")]
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["variant", "split", "readout", "seeds", *stats]
    assert {(r["variant"], r["split"]) for r in rows} == {
        (v, s) for v in ("posthoc", "cra", "blind", ablation.RANDOM_SPAN) for s in ("test-id", "test-ood")
    }
    assert {r["readout"] for r in rows} == {"window", "posthoc", "merge"}
    for r in rows:
        assert 0.0 <= float(r["Acc@QA_mean"]) <= 100.0 and r["seeds"] == "1"
    with open(out / "sweep.csv") as f:
        sweep = list(csv.DictReader(f))
    assert list(sweep[0]) == list(ablation.SWEEP_COLUMNS)
    assert {(float(r["strength"]), r["split"]) for r in sweep} == {
        (s, sp) for s in (0.0, 0.8) for sp in ("test-id", "test-ood")
    }
    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["models_trained"] == 4  # posthoc, cra, blind at 0.8 (the main world); posthoc at 0.0
    assert results["meta"]["world"]["lang_strength"] == 0.8  # the documented default, untouched
    assert len(results["runs"]) == 4 * 2 * 3  # (3 variants + random span) x 2 splits x 3 read-outs
    for name in ("ablation.png", "sweep.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_study_resumes_from_its_work_folder(tmp_path):
    study = ablation.study_config("fast", TINY + ["variants=[cra]", "sweep_strengths=[]"])
    logs = []
    first = ablation.run_study(tmp_path / "a", study, work=tmp_path / "work", log=logs.append)
    assert any(line.startswith("  [1/1] w0/cra/seed0") for line in logs)
    logs.clear()
    again = ablation.run_study(tmp_path / "b", study, work=tmp_path / "work", log=logs.append)
    assert any("1 model(s) already trained" in line for line in logs) and not any("[1/1]" in line for line in logs)
    for key in ("summary", "runs"):  # as text: NaN (the std of one seed) is not equal to itself
        assert json.dumps(again[key]) == json.dumps(first[key])
    logs.clear()
    study.readout = "window"  # a reporting setting: the model is read back
    ablation.run_study(tmp_path / "c", study, work=tmp_path / "work", log=logs.append)
    assert any("1 model(s) already trained" in line for line in logs)
    logs.clear()
    study.run = [*study.run, "train.lr=0.002"]  # a setting of the model: trained again, not read back
    ablation.run_study(tmp_path / "d", study, work=tmp_path / "work", log=logs.append)
    assert any(line.startswith("  [1/1] w0/cra/seed0") for line in logs)


def test_a_study_cut_short_writes_the_rows_it_has(tmp_path):
    """Seed-major training order, then --finished-only: the tables of the finished models, labelled partial."""
    study = ablation.study_config("fast", TINY + ["variants=[cra]", "sweep_strengths=[]", "seeds=[0]"])
    ablation.run_study(tmp_path / "a", study, work=tmp_path / "work", log=lambda *_: None)
    study.seeds = [0, 1]  # the planned study: seed 1 is not trained yet
    written = (tmp_path / "work" / "world0" / "world" / "world.json").stat().st_mtime_ns
    logs = []
    cut = ablation.run_study(tmp_path / "b", study, work=tmp_path / "work", finished_only=True, log=logs.append)
    assert any("1 model(s) not trained yet" in line for line in logs)
    assert cut["meta"]["partial"] == {"models_finished": 1, "models_planned": 2, "seeds": {"cra": [0]}}
    assert {r["seed"] for r in cut["runs"]} == {0} and all(r["seeds"] == 1 for r in cut["summary"])
    assert not (tmp_path / "work" / "results" / "w0_cra_seed1.pkl").exists()  # nothing was trained
    world_json = tmp_path / "work" / "world0" / "world" / "world.json"
    assert world_json.stat().st_mtime_ns == written  # nor the world rewritten (a study may be training there)
    with pytest.raises(ValueError, match="--work"):
        ablation.run_study(tmp_path / "c", study, finished_only=True)
    from cra.study.worlds import existing_world

    with pytest.raises(ValueError, match="another world"):
        existing_world(tmp_path / "work" / "world0", study.world_config(), study.world_seed + 1)
    with pytest.raises(FileNotFoundError, match="no prepared world"):
        existing_world(tmp_path / "work" / "world9", study.world_config(), study.world_seed)
    full = ablation.run_study(tmp_path / "d", study, work=tmp_path / "work", log=lambda *_: None)
    assert full["meta"]["partial"] is None and full["meta"]["models_trained"] == 2


def test_a_run_is_deterministic_for_its_seed_and_differs_across_seeds(tiny_world, tiny_study, tmp_path):
    world, conf = tiny_world
    first = ablation.train_and_score(job(world, conf, "cra", 0, tiny_study, tmp_path / "a"))
    again = ablation.train_and_score(job(world, conf, "cra", 0, tiny_study, tmp_path / "b"))
    other = ablation.train_and_score(job(world, conf, "cra", 1, tiny_study, tmp_path / "c"))
    assert first["splits"] == again["splits"] and first["answers"] == again["answers"]
    assert first["splits"] != other["splits"]
    assert not (tmp_path / "a").exists()  # checkpoints are work files, removed


def test_the_world_and_its_dictionaries_are_deterministic(tiny_world, tiny_study, tmp_path):
    world, conf = tiny_world
    world2, conf2 = ablation.prepare_world(
        tmp_path, tiny_study.world_config(), tiny_study.world_seed, tiny_study.clusters
    )
    a, b = load_confounders(conf), load_confounders(conf2)
    assert torch.equal(a.Z_l, b.Z_l) and torch.equal(a.X_hat, b.X_hat) and torch.equal(a.Z_l_sizes, b.Z_l_sizes)
    assert (world / "train.csv").read_bytes() == (world2 / "train.csv").read_bytes()


def test_dictionaries_are_built_from_the_train_split(tiny_world, tiny_study):
    world, conf = tiny_world
    c = load_confounders(conf, text_dim=64, visual_dim=64)
    sources = {Path(s["path"]).name for s in c.metadata["sources"]}
    assert sources == {"train.csv", "CLIPL_I_train.h5"}
    assert c.metadata["num_qa"] == tiny_study.world_config().train_videos
    assert c.metadata["num_frames"] == 32 * tiny_study.world_config().train_videos
    assert c.Z_l.shape == (tiny_study.clusters, 8, 64) and c.X_hat.shape == (tiny_study.clusters, 64)
    with h5py.File(feature_path(world, "train"), "r") as f:  # X_hat is not random: its centres lie among the frames
        frames = torch.as_tensor(f["CLIPL_I"][()]).reshape(-1, 64)
    assert c.X_hat.norm(dim=1).max() <= frames.norm(dim=1).max()
    config = ablation.run_config(world, conf, "cra", 0, tiny_study)
    assert config.data.confounders == str(conf)


# --------------------------------------------------------------------------------------------
# Each variant switches off its part, and only that
# --------------------------------------------------------------------------------------------
def parts(model) -> dict:
    names = {n for n, _ in model.named_parameters()}
    return {
        "gsg": isinstance(model.grounding, GSG),
        "smoothing": any(n.startswith("grounding.smoothing.") for n in names),
        "backdoor": any(n.startswith("backdoor.") for n in names),
        "frontdoor": any(n.startswith("frontdoor.") for n in names),
        "cma": model.config.use_cma,
    }


EXPECTED = {
    "posthoc": dict(gsg=False, smoothing=False, backdoor=False, frontdoor=False, cma=False),
    "cra": dict(gsg=True, smoothing=True, backdoor=True, frontdoor=True, cma=True),
    "no_gsg": dict(gsg=False, smoothing=False, backdoor=True, frontdoor=True, cma=True),
    "no_smoothing": dict(gsg=True, smoothing=False, backdoor=True, frontdoor=True, cma=True),
    "no_cma": dict(gsg=True, smoothing=True, backdoor=True, frontdoor=True, cma=False),
    "no_backdoor": dict(gsg=True, smoothing=True, backdoor=False, frontdoor=True, cma=True),
    "no_frontdoor": dict(gsg=True, smoothing=True, backdoor=True, frontdoor=False, cma=True),
    "released_code": dict(gsg=True, smoothing=True, backdoor=False, frontdoor=True, cma=True),
    "blind": dict(gsg=True, smoothing=True, backdoor=True, frontdoor=True, cma=True),
    "ng_plus": dict(gsg=False, smoothing=False, backdoor=False, frontdoor=False, cma=False),
    **{
        v: dict(gsg=True, smoothing=True, backdoor=True, frontdoor=True, cma=True)
        for v in (
            "ceiling",
            "true_grounding",
            "whole_video",
            "backdoor_prior",
            "reweight_scene",
            "reweight_xhat",
            "gsg_supervised",
            "released_gate",
        )
    },
}
#: the one setting each study option changes (on top of CRA)
OPTION = {
    "ng_plus": ("model", "gaussian_mask", True),
    "true_grounding": ("model", "mediator", "true_evidence"),
    "whole_video": ("model", "mediator", "whole_video"),
    "backdoor_prior": ("model", "backdoor_mode", "prior"),
    "reweight_scene": ("data", "reweight", "scene"),
    "reweight_xhat": ("data", "reweight", "xhat"),
    "gsg_supervised": ("model", "gsg_supervision", 0.25),
    "blind": ("train", "text_mode", "finetune"),
    "released_gate": ("model", "gate_norm", "after_gate"),
}


@pytest.mark.parametrize("variant", list(ablation.VARIANTS))
def test_each_variant_switches_off_its_part(variant, tiny_world, tiny_study):
    world, conf = tiny_world
    config, model = build(variant, world, conf, tiny_study)
    assert parts(model) == EXPECTED[variant]
    if isinstance(model.grounding, AttentionPooling):
        assert not any(n.startswith("grounding.") for n, _ in model.named_parameters())
    if variant in OPTION:
        section, key, value = OPTION[variant]
        assert getattr(getattr(config, section), key) == value
    if variant in ("released_gate", "released_code"):
        assert model.grounding.norm == "after_gate" and model.grounding.gate_scale == 1.0
    if variant == "released_code":
        assert {k: getattr(config.model, k) for k in RELEASED_CODE} == RELEASED_CODE
        assert model.frontdoor.mode == "batch" and model.grounding.renorm == "softmax"
    elif variant not in ("posthoc", "ng_plus"):
        assert config.model.frontdoor_mode == "in_sample" and config.model.renorm == "l1"
    # the dictionaries in the model are the world's, not random ones
    dictionaries = load_confounders(conf)
    if model.backdoor is not None:
        assert torch.equal(model.backdoor.Z_l.detach(), dictionaries.Z_l)
    if model.frontdoor is not None:
        assert torch.equal(model.frontdoor.X_hat.detach(), dictionaries.X_hat)


def test_no_cma_drops_the_alignment_loss_and_cra_has_it(tiny_world, tiny_study):
    world, conf = tiny_world
    batch = collate([load_world_split(world, "train", seed=0)[i] for i in range(4)])
    for variant, has_cma in (("cra", True), ("no_cma", False), ("posthoc", False)):
        _, model = build(variant, world, conf, tiny_study)
        losses = model.losses(batch, model(batch))
        assert ("loss_cma" in losses) == has_cma, variant


def test_the_blind_world_has_zero_features_and_the_same_questions(tiny_world, tmp_path):
    world, _ = tiny_world
    blind = ablation.blind_copy(world, tmp_path / "blind")
    for split in WORLD_SPLITS:
        with h5py.File(feature_path(world, split), "r") as f, h5py.File(feature_path(blind, split), "r") as g:
            assert np.array_equal(f["vid"][()], g["vid"][()])
            assert g["CLIPL_I"].shape == f["CLIPL_I"].shape and not np.any(g["CLIPL_I"][()])
        assert (world / f"{split}.csv").read_bytes() == (blind / f"{split}.csv").read_bytes()


# --------------------------------------------------------------------------------------------
# Measures and settings
# --------------------------------------------------------------------------------------------
def test_faithfulness_counts_what_it_says(tiny_world):
    world, _ = tiny_world
    truth = load_truth(world, "test-ood")
    from cra.data.nextgqa import read_qa_csv

    records = read_qa_csv(world / "test-ood.csv").records
    candidates = {r.key: r.candidates for r in records}
    # weights and span exactly on the evidence, every answer right
    qa = {r.key: {"prediction": r.answer, "answer": r.answer} for r in records}
    weights, spans = {}, {}
    for key, entry in truth.items():
        w = np.zeros(32)
        first, last = entry["evidence_frames"]
        w[first : last + 1] = 1.0
        weights[key], spans[key] = w.tolist(), entry["evidence_seconds"]
    f = ablation.faithfulness(qa, weights, spans, candidates, truth)
    assert f["mass_evidence"] == pytest.approx(100.0) and f["mass_distractor"] == pytest.approx(0.0)
    assert f["right_on_evidence"] == pytest.approx(100.0) and f["right_on_distractor"] == 0.0
    misleading = [r for r in records if truth[r.key]["word_partner"] not in (None, truth[r.key]["answer"])]
    if misleading:
        assert f["follows_word"] == 0.0
    else:
        assert np.isnan(f["follows_word"])
    # now always answer with the word's partner where it is a wrong candidate
    follow = {
        r.key: {
            "prediction": r.candidates.index(truth[r.key]["word_partner"]) if r in misleading else r.answer,
            "answer": r.answer,
        }
        for r in records
    }
    g = ablation.faithfulness(follow, weights, spans, candidates, truth)
    if misleading:
        assert g["follows_word"] == pytest.approx(100.0)


def test_random_spans_are_seeded_and_inside_the_video(tiny_world):
    from cra.data.nextgqa import read_frame2time

    world, _ = tiny_world
    frame2time = read_frame2time(world / "frame2time_test-id.json")
    qa = {question_key(v, 0): {} for v in frame2time}
    a, b = ablation.random_spans(qa, frame2time, 0), ablation.random_spans(qa, frame2time, 0)
    assert a == b and a != ablation.random_spans(qa, frame2time, 1)
    for key, (start, end) in a.items():
        times = frame2time[split_key(key)[0]]
        assert start in times and end in times and start <= end


def test_study_settings_and_their_errors():
    fast, full = ablation.study_config("fast"), ablation.study_config("full")
    assert len(full.seeds) > len(fast.seeds) >= 2
    assert full.world_config().train_videos > fast.world_config().train_videos
    documented = {**asdict(WorldConfig()), "question_form": "subject"}
    for study in (fast, full):  # only split sizes and the question form differ from the documented world
        world = asdict(study.world_config())
        assert {k: v for k, v in world.items() if not k.endswith("_videos")} == {
            k: v for k, v in documented.items() if not k.endswith("_videos")
        }
    study = ablation.study_config("fast", ["train.epochs=2", "seeds=[3]", "world.train_videos=50"])
    assert study.seeds == [3] and study.world_config().train_videos == 50
    assert ablation.run_config(Path("w"), None, "cra", 3, study).train.epochs == 2
    with pytest.raises(ValueError, match="unknown key 'bogus'"):
        ablation.study_config("fast", ["bogus=1"])
    with pytest.raises(ConfigError, match=r"--set world\.no_such=1: unknown key 'world\.no_such'"):
        ablation.study_config("fast", ["world.no_such=1"])
    with pytest.raises(Exception, match="learning_rate"):
        ablation.study_config("fast", ["train.learning_rate=1"])
    with pytest.raises(ValueError, match="unknown variant"):
        ablation.study_config("fast", ["variants=[cra,nope]"])
    assert main(["ablation", "--out", "/nonexistent/x", "--set", "bogus=1"]) == 2


def test_reported_columns_are_named_by_cra_metrics():
    from cra.metrics import DIAGNOSTIC_KEYS, METRIC_KEYS

    assert set(ablation.METRICS) <= set(METRIC_KEYS + DIAGNOSTIC_KEYS) and "UF@0.5" in ablation.METRICS
    assert {"Acc@QA", "Acc@GQA", "mIoP", "IoP@0.5", "mIoU", "IoU@0.5"} <= set(ablation.METRICS)


def test_summarise_gives_mean_and_sample_std():
    rows = [{"v": "a", "x": 1.0}, {"v": "a", "x": 3.0}, {"v": "b", "x": 5.0}]
    out = {r["v"]: r for r in ablation.summarise(rows, ("v",), ("x",))}
    assert out["a"]["x_mean"] == 2.0 and out["a"]["x_std"] == pytest.approx(np.sqrt(2.0))
    assert out["b"]["seeds"] == 1 and np.isnan(out["b"]["x_std"])
