"""The pieces fit: the committed synthetic world -> confounder dictionaries -> data loader -> CRA
-> read-outs -> the official evaluation. Each issue tests its own module; this test checks the seams."""

from __future__ import annotations

import pytest
import torch

from cra import metrics, paths, readouts
from cra.commands import build_confounders as build_command
from cra.confounders import BuildConfig, build_confounders, load_confounders, save_confounders
from cra.data import collate
from cra.data.nextgqa import read_frame2time, read_gsub
from cra.model import CRA, CRAConfig
from cra.synthetic import load_split

DIM = 64  # feature size of the committed synthetic sample


@pytest.fixture(scope="module")
def world():
    root = paths.samples_dir() / "synthetic"
    if not (root / "train.csv").is_file():
        pytest.skip(f"{root} has no synthetic sample")
    return root


def test_world_to_dictionaries_to_model_to_metrics(world, tmp_path):
    config = BuildConfig(
        data_root=str(world),
        qa_csv=["train.csv"],
        features_h5=["CLIPL/CLIPL_I_train.h5"],
        text_encoder={"name": "word", "dim": DIM},
        text_clusters=8,
        visual_clusters=8,
        seed=0,
        out=str(tmp_path / "conf.pt"),
    )
    built = build_confounders(config, build_command.text_encoder_factory())
    conf = load_confounders(save_confounders(tmp_path / "conf.pt", built), text_dim=DIM, visual_dim=DIM)
    assert conf.Z_l.shape == (8, 8, DIM) and conf.X_hat.shape == (8, DIM)

    torch.manual_seed(0)
    model_config = CRAConfig(
        feature_dim=DIM,
        d_model=DIM,
        num_layers=1,
        num_heads=4,
        d_ff=DIM,
        text_encoder="word",
        text_encoder_kwargs=dict(dim=DIM, num_heads=4),
        z_node_dim=DIM,
    )
    model = CRA(model_config, Z_l=conf.Z_l, X_hat=conf.X_hat, Z_prior=conf.prior)
    dataset = load_split(world, "val", seed=0)
    batch = collate([dataset[i] for i in range(6)])
    out = model(batch)
    losses = model.losses(batch, out)
    assert out.vqa.logits.shape == (6, 5) and torch.isfinite(losses["loss"])
    losses["loss"].backward()

    # Read-outs in seconds from the real frame timestamps, scored by the official evaluation.
    frame2time = read_frame2time(world / "frame2time_val.json")
    times = torch.tensor([frame2time[v] for v in batch["video_id"]], dtype=torch.float32)
    spans = readouts.interval_readouts(
        out.vqa.w.detach(),
        times,
        batch["frame_mask"],
        readouts=("posthoc",),
        thd_weight=model.config.posthoc_thd_weight,
        dis=model.config.posthoc_dis,
    )["posthoc"]
    predictions = {key: span.tolist() for key, span in zip(batch["key"], spans)}
    correct = dict(zip(batch["key"], (out.vqa.logits.argmax(1) == batch["answer"]).tolist()))
    report = metrics.evaluate_grounding(read_gsub(world / "gsub_val.json"), predictions, correct)
    assert report.n == 6
    # the batched read-out agrees with the official per-question rule
    for key, w, t in zip(batch["key"], out.vqa.w.detach(), times):
        assert readouts.posthoc_span(w.tolist(), t.tolist()) == pytest.approx(predictions[key])
