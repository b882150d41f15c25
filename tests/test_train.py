"""Training pipeline: layered configs, a 2-epoch CPU run whose outputs `evaluate` accepts, exact
resume, and the errors that must come before the first training step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_nextgqa import tiny_overrides, write_tiny_nextgqa

from cra import config as cfg
from cra.cli import main
from cra.model import RELEASED_CODE, CRAConfig


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return write_tiny_nextgqa(tmp_path_factory.mktemp("tiny"))


def train_argv(root: Path, run: Path, *extra: str, **overrides) -> list[str]:
    argv = ["train", "--config", "synthetic", "--run", str(run), *extra]
    for item in tiny_overrides(root, **overrides):
        argv += ["--set", item]
    return argv


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------
def test_base_is_the_paper_setting():
    config, sources = cfg.load_run_config([])
    assert sources[0].endswith("base.yaml")
    t = config.train
    assert (t.lr, t.batch_size, t.epochs, t.amsgrad, t.warmup_epochs, t.grad_clip) == (1e-5, 64, 30, True, 1, 12)
    assert config.model == CRAConfig(text_encoder_kwargs={"pretrained": "roberta-base", "max_length": 38})
    nextgqa, _ = cfg.load_run_config(["nextgqa"])
    assert nextgqa.train == t and nextgqa.data.confounders


def test_every_packaged_layer_loads_and_the_released_variant_matches_the_model_preset():
    names = [n for n in cfg.run_layer_names() if n != "base"]
    assert {"nextgqa", "synthetic", "ablations/no_gsg", "variants/released_code"} <= set(names)
    for name in names:
        cfg.load_run_config([name])
    released, _ = cfg.load_run_config(["variants/released_code"])
    assert {k: getattr(released.model, k) for k in RELEASED_CODE} == RELEASED_CODE
    no_eci, _ = cfg.load_run_config(["synthetic", "ablations/no_eci"])
    assert not no_eci.model.use_backdoor and not no_eci.model.use_frontdoor and no_eci.model.d_model == 64


def test_layers_merge_sections_and_replace_free_form_dicts(tmp_path):
    layer = tmp_path / "mine.yaml"
    layer.write_text("model:\n  text_encoder: word\n  text_encoder_kwargs: {dim: 16, num_heads: 2}\n")
    config, _ = cfg.load_run_config([str(layer)], ["model.text_encoder_kwargs.num_buckets=64", "train.epochs=3"])
    assert config.model.text_encoder_kwargs == {"dim": 16, "num_heads": 2, "num_buckets": 64}  # roberta kwargs gone
    assert config.model.d_model == 768 and config.train.epochs == 3 and config.train.lr == 1e-5


def test_unknown_key_names_the_key_and_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: 2\n  learning_rate: 0.1\n")
    with pytest.raises(cfg.ConfigError, match=r"bad\.yaml: unknown key 'train\.learning_rate'"):
        cfg.load_run_config(["synthetic", str(bad)])
    with pytest.raises(cfg.ConfigError, match=r"--set modle\.d_model=3: unknown key 'modle'"):
        cfg.load_run_config([], ["modle.d_model=3"])
    with pytest.raises(cfg.ConfigError, match="train"):
        cfg.load_run_config([], ["train.amp=fast"])
    with pytest.raises(FileNotFoundError, match="not a packaged config"):
        cfg.load_run_config(["no_such_layer"])


# --------------------------------------------------------------------------------------------
# Errors before the first step
# --------------------------------------------------------------------------------------------
def test_unknown_key_missing_data_and_dimension_mismatch_fail_before_training(tiny_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_argv(tiny_root, run, "--set", "train.bogus=1")) == 2
    assert "unknown key 'train.bogus'" in capsys.readouterr().err
    assert main(train_argv(tiny_root, run, **{"data.root": str(tmp_path / "nowhere")})) == 2
    err = capsys.readouterr().err
    assert "missing file" in err and "nowhere/nextgqa/train.csv" in err
    assert main(train_argv(tiny_root, run, **{"model.feature_dim": 24})) == 2
    err = capsys.readouterr().err
    assert "CLIPL_I_train.h5" in err and "feature dimension 16" in err and "dimension 24" in err
    assert main(train_argv(tiny_root, run, "--set", "model.text_encoder_kwargs.dims=3")) == 2
    err = capsys.readouterr().err
    assert "model.text_encoder_kwargs" in err and "'dims'" in err
    assert not run.exists()  # nothing was written


def write_dictionaries(path: Path, text_dim: int, visual_dim: int) -> Path:
    from cra.confounders import Confounders, save_confounders

    g = torch.Generator().manual_seed(0)
    return save_confounders(
        path,
        Confounders(
            Z_l=torch.randn(3, 8, text_dim, generator=g),
            Z_l_sizes=torch.tensor([5, 2, 1]),
            X_hat=torch.randn(6, visual_dim, generator=g),
            X_hat_sizes=torch.ones(6, dtype=torch.long),
        ),
    )


def test_confounder_files_are_checked_before_training_and_used(tiny_root, tmp_path, capsys):
    assert main(train_argv(tiny_root, tmp_path / "run", **{"data.confounders": str(tmp_path / "absent.pt")})) == 2
    assert "absent.pt does not exist" in capsys.readouterr().err
    wrong = write_dictionaries(tmp_path / "wrong.pt", text_dim=12, visual_dim=16)  # the model's z_node_dim is 8
    assert main(train_argv(tiny_root, tmp_path / "run", **{"data.confounders": str(wrong)})) == 2
    assert "Z_l has D=12" in capsys.readouterr().err and not (tmp_path / "run").exists()

    from cra.run import build_model

    good = write_dictionaries(tmp_path / "good.pt", text_dim=8, visual_dim=16)  # 3 text and 6 visual entries
    assert main(train_argv(tiny_root, tmp_path / "run", **{"data.confounders": str(good)})) == 2  # config: 4 and 4
    assert f"{good}: Z_l has 3 entries but model.num_z_entries=4" in capsys.readouterr().err
    assert (
        main(train_argv(tiny_root, tmp_path / "run", **{"data.confounders": str(good), "model.num_z_entries": 3})) == 2
    )
    assert f"{good}: X_hat has 6 entries but model.num_x_entries=4" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    config, _ = cfg.load_run_config(
        ["synthetic"],
        tiny_overrides(
            tiny_root, **{"data.confounders": str(good), "model.num_z_entries": 3, "model.num_x_entries": 6}
        ),
    )
    model = build_model(config)
    assert model.backdoor.Z_l.shape == (3, 8, 8) and model.frontdoor.X_hat.shape == (6, 16)
    torch.testing.assert_close(model.backdoor.log_prior.exp(), torch.tensor([5, 2, 1]) / 8.0)


# --------------------------------------------------------------------------------------------
# A 2-epoch run, predictions, evaluate; exact resume
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_epoch_run(tiny_root, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "full"
    assert main(train_argv(tiny_root, run)) == 0
    return run


def test_two_epoch_run_writes_metrics_for_every_readout_and_checkpoints(two_epoch_run):
    records = read_metrics(two_epoch_run)
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert r["train"]["n"] == 16 and all(
            k in r["train"] for k in ("loss", "loss_vqa", "loss_vq", "loss_cma", "acc")
        )
        for readout in ("window", "posthoc", "merge"):
            row = r["val"][readout]
            assert row["n"] == 8 and set(("Acc@QA", "Acc@GQA", "mIoP", "IoP@0.5", "mIoU", "IoU@0.5", "FR")) <= set(row)
    assert records[0]["selected"]  # the first epoch always improves on -inf
    assert records[1]["lr_start"] > 0
    best = torch.load(two_epoch_run / "best.pt", weights_only=True)
    last = torch.load(two_epoch_run / "last.pt", weights_only=True)
    assert last["epoch"] == 2 and best["epoch"] in (1, 2)
    assert set(last) >= {"model", "optimizer", "scheduler", "scaler", "rng", "config"}
    assert not list(two_epoch_run.glob(".*.part"))  # atomic writes leave no temporaries


def test_predictions_are_accepted_by_evaluate_and_match_the_training_scores(two_epoch_run, tiny_root, capsys):
    assert (
        main(["predict", "--run", str(two_epoch_run), "--split", "val", "--checkpoint", "last", "--no-progress"]) == 0
    )
    pred = two_epoch_run / "predictions"
    ann = tiny_root / "nextgqa"
    epoch2 = read_metrics(two_epoch_run)[1]["val"]
    capsys.readouterr()
    for readout in ("window", "posthoc", "merge"):
        assert (
            main(
                [
                    "evaluate",
                    "--gsub",
                    str(ann / "gsub_val.json"),
                    "--qa",
                    str(pred / "val-res.json"),
                    "--pred",
                    str(pred / f"val_ground_{readout}.json"),
                    "--json",
                ]
            )
            == 0
        )
        scored = json.loads(capsys.readouterr().out)
        for k in ("Acc@QA", "Acc@GQA", "mIoP", "mIoU", "IoU@0.3"):
            assert scored[k] == pytest.approx(epoch2[readout][k])
    # the per-frame weights through the official post-hoc rule give the same post-hoc numbers
    assert (
        main(
            [
                "evaluate",
                "--gsub",
                str(ann / "gsub_val.json"),
                "--qa",
                str(pred / "val-res.json"),
                "--pred",
                str(pred / "val_ground_att.json"),
                "--pred-format",
                "attention",
                "--frame2time",
                str(ann / "frame2time_val.json"),
                "--json",
            ]
        )
        == 0
    )
    scored = json.loads(capsys.readouterr().out)
    assert scored["mIoP"] == pytest.approx(epoch2["posthoc"]["mIoP"]) and scored["n"] == 8
    # test split too (never read in training)
    assert main(["predict", "--run", str(two_epoch_run), "--split", "test", "--no-progress"]) == 0
    assert len(json.loads((pred / "test-res.json").read_text())) == 8


def test_resume_after_epoch_one_reproduces_epoch_two_exactly(two_epoch_run, tiny_root, tmp_path):
    run = tmp_path / "resumed"
    assert main(train_argv(tiny_root, run, "--stop-after", "1")) == 0
    assert [r["epoch"] for r in read_metrics(run)] == [1]
    assert main(["train", "--run", str(run), "--resume"]) == 0
    full, resumed = read_metrics(two_epoch_run), read_metrics(run)
    for a, b in zip(full, resumed):
        assert a["train"] == b["train"] and a["val"] == b["val"]  # bit-for-bit equal losses and metrics
    sa = torch.load(two_epoch_run / "last.pt", weights_only=True)["model"]
    sb = torch.load(run / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_never_reads_the_test_split(tmp_path):
    root = write_tiny_nextgqa(tmp_path / "no_test", videos={"train": 4, "val": 2})  # no test files at all
    run = tmp_path / "run"
    assert main(train_argv(root, run, **{"train.epochs": 1, "train.select_metric": "Acc@GQA"})) == 0
    assert read_metrics(run)[0]["select_metric"] == "Acc@GQA" and (run / "best.pt").is_file()


def test_a_finished_run_folder_is_not_overwritten(two_epoch_run, tiny_root, capsys):
    assert main(train_argv(tiny_root, two_epoch_run)) == 2
    assert "--resume" in capsys.readouterr().err


def test_frozen_cached_text_mode_trains_the_head_but_not_the_encoder(tiny_root, tmp_path):
    from cra.train import Trainer

    config, _ = cfg.load_run_config(
        ["synthetic", "variants/frozen_text"], tiny_overrides(tiny_root, **{"train.epochs": 1})
    )
    trainer = Trainer.from_config(config, tmp_path / "frozen")
    encoder = trainer.model.text.encoder
    before = {k: v.clone() for k, v in encoder.encoder.state_dict().items()}
    head = trainer.model.text.proj.weight.detach().clone()
    trainer.fit()
    assert all(torch.equal(before[k], v) for k, v in encoder.encoder.state_dict().items())
    assert not torch.equal(head, trainer.model.text.proj.weight)
    assert len(encoder) > 0 and encoder.hits > 0  # texts were encoded once and reused


def test_cached_encoder_returns_what_the_frozen_encoder_computes():
    from cra.text import WordEncoder
    from cra.text.cached import CachedTextEncoder

    torch.manual_seed(0)
    inner = WordEncoder(dim=16, num_heads=2, num_buckets=64)
    cached = CachedTextEncoder(inner, chunk_size=2)
    texts = ["a red ball", "why did the dog run away quickly", "", "a red ball"]
    first, again = cached(texts), cached(texts[::-1])
    ref = inner.eval()(texts)
    torch.testing.assert_close(first.pooled, ref.pooled)
    torch.testing.assert_close(first.tokens[first.mask], ref.tokens[ref.mask])
    torch.testing.assert_close(again.pooled, ref.pooled.flip(0))
    assert len(cached) == 3 and not any(p.requires_grad for p in inner.parameters())


def test_schedule_and_device_helpers():
    from cra.run import autocast_settings, select_device
    from cra.train import warmup_linear

    assert [warmup_linear(s, 2, 6) for s in range(7)] == [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert autocast_settings("auto", torch.device("cpu")) == (False, None, False)
    assert autocast_settings("auto", torch.device("cuda"))[:2] == (True, torch.bfloat16)
    with pytest.raises(ValueError, match="CUDA"):
        autocast_settings("fp16", torch.device("cpu"))


@pytest.mark.parametrize("name", ["word", "roberta"])
def test_length_bucketed_encoding_gives_the_same_outputs_and_gradients(name):
    from cra.text import build_text_encoder
    from cra.text.roberta import ROBERTA_TINY_CONFIG

    torch.manual_seed(0)
    kwargs = (
        dict(dim=16, num_heads=2, num_buckets=64)
        if name == "word"
        else dict(pretrained=None, config=ROBERTA_TINY_CONFIG)
    )
    encoder = build_text_encoder(name, **kwargs).eval()
    texts = [
        "why did the boy pick up the ball </s> to throw it",
        "a",
        "",
        "what is on the table </s> cup",
        "how many dogs are there",
        "the girl waves her hand at the man near the red car",
    ]
    ref = encoder(texts)

    def loss(enc):  # padding positions are masked everywhere downstream, so they are left out
        return (enc.tokens * enc.mask[..., None]).pow(2).sum() + enc.pooled.pow(2).sum()

    loss(ref).backward()
    grads = [p.grad.clone() for p in encoder.parameters() if p.grad is not None]
    encoder.zero_grad()
    encoder.bucket_size = 2
    out = encoder(texts)
    loss(out).backward()
    torch.testing.assert_close(out.pooled, ref.pooled, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.tokens[out.mask], ref.tokens[ref.mask], atol=1e-5, rtol=1e-5)
    assert torch.equal(out.mask, ref.mask)
    for g, p in zip(grads, [p for p in encoder.parameters() if p.grad is not None]):
        torch.testing.assert_close(p.grad, g, atol=1e-4, rtol=1e-4)
