"""Load a state dict saved by the authors' released code (WissingChen/CRA-GQA, Temp[CLIP] CRA) into a
:class:`cra.model.cra.CRA` built with the released-code preset (:meth:`CRAConfig.released_code`).

Their parameter names map onto ours by :data:`KEY_MAP` (regular expressions, tried in order). Tensors
that their model builds but its forward pass never uses are dropped by :data:`IGNORED`, each with the
reason. Any other key is an error, and so is any of our tensors left without a value, a shape that
differs, or a model whose config changes what a weight means (:data:`REQUIRED_CONFIG`).

    model = CRA(CRAConfig.released_code(...sizes...))
    report = load_released_state_dict(model, torch.load("model_best.pth")["state_dict"])

``tests/test_compat.py`` checks, against a fixture made by running their code
(``scripts/released_parity/make_fixture.py``), that the mapped model reproduces their answer logits,
frame weights and CMA loss: :func:`fixture_model` builds and loads the model at the fixture's sizes,
:func:`fixture_differences` measures the largest difference of each output.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import nn

from cra.model.config import RELEASED_CODE, CRAConfig
from cra.paths import REPO_ROOT

__all__ = [
    "KEY_MAP",
    "IGNORED",
    "REQUIRED_CONFIG",
    "CompatError",
    "LoadReport",
    "map_released_state_dict",
    "load_released_state_dict",
    "FIXTURE",
    "load_fixture",
    "fixture_config",
    "fixture_model",
    "fixture_differences",
]

#: Their name (regex) -> ours (``re.sub`` replacement). Layout of their model: ``lang_model`` (RoBERTa,
#: linear_text, word_attn), ``video_model`` (input embedding), ``decoder`` (encoder layers, final norm,
#: video_proj, grounding_module = GSG, do = visual front-door).
KEY_MAP: list[tuple[str, str]] = [
    (r"lang_model\.bert\.bert\.(.+)", r"text.encoder.model.\1"),
    (r"lang_model\.linear_text\.(weight|bias)", r"text.proj.\1"),
    (r"lang_model\.word_attn\.0\.(weight|bias)", r"text.word_score.\1"),
    (r"video_model\.proj\.(weight|bias)", r"backbone.input_proj.\1"),
    (r"video_model\.norm\.(weight|bias)", r"backbone.input_norm.\1"),
    (r"video_model\.position_embedding\.pe", r"backbone.positions"),  # (1, T, D) -> (T, D), checked, not learned
    (r"decoder\.layers\.(\d+)\.self_attn\.linears\.0\.(weight|bias)", r"backbone.layers.\1.query.\2"),
    (r"decoder\.layers\.(\d+)\.self_attn\.linears\.1\.(weight|bias)", r"backbone.layers.\1.key.\2"),
    (r"decoder\.layers\.(\d+)\.self_attn\.linears\.2\.(weight|bias)", r"backbone.layers.\1.value.\2"),
    (r"decoder\.layers\.(\d+)\.self_attn\.linears\.3\.(weight|bias)", r"backbone.layers.\1.out.\2"),
    (r"decoder\.layers\.(\d+)\.sublayer_self\.norm\.gamma", r"backbone.layers.\1.attention_norm.weight"),
    (r"decoder\.layers\.(\d+)\.sublayer_self\.norm\.beta", r"backbone.layers.\1.attention_norm.bias"),
    (r"decoder\.layers\.(\d+)\.feed_forward\.w_1\.(weight|bias)", r"backbone.layers.\1.ff_in.\2"),
    (r"decoder\.layers\.(\d+)\.feed_forward\.w_2\.(weight|bias)", r"backbone.layers.\1.ff_out.\2"),
    (r"decoder\.layers\.(\d+)\.sublayer_ff\.norm\.gamma", r"backbone.layers.\1.ff_norm.weight"),
    (r"decoder\.layers\.(\d+)\.sublayer_ff\.norm\.beta", r"backbone.layers.\1.ff_norm.bias"),
    (r"decoder\.norm\.gamma", r"backbone.final_norm.weight"),
    (r"decoder\.norm\.beta", r"backbone.final_norm.bias"),
    (r"decoder\.video_proj\.1\.(weight|bias)", r"pool_proj.1.\1"),
    (r"decoder\.grounding_module\.v_proj\.(0|1)\.(weight|bias)", r"grounding.video_proj.\1.\2"),
    (r"decoder\.grounding_module\.qa_proj\.(0|1)\.(weight|bias)", r"grounding.text_proj.\1.\2"),
    (r"decoder\.grounding_module\.grounding\.(0|1)\.(weight|bias)", r"grounding.score.\1.\2"),
    (r"decoder\.grounding_module\.grounding\.3\.weight", r"grounding.score.3.weight"),
    (r"decoder\.grounding_module\.gs_filter\.sigma", r"grounding.smoothing.sigma_param"),
    (r"decoder\.do\.visual_clusters", r"frontdoor.X_hat"),
    (r"decoder\.do\.do\.prob_m\.(weight|bias)", r"frontdoor.query_m.\1"),  # W_m
    (r"decoder\.do\.do\.prob_x\.(weight|bias)", r"frontdoor.key_x.\1"),  # W_x, also the cross-sample query
    (r"decoder\.do\.do\.prob_x_hat\.(weight|bias)", r"frontdoor.key_hat.\1"),  # W_xhat
    (r"decoder\.do\.do\.prob_x_m\.(weight|bias)", r"frontdoor.in_out.\1"),  # W_1
    (r"decoder\.do\.do\.prob_x_hat_x\.(weight|bias)", r"frontdoor.cross_out.\1"),  # W_2
    (r"decoder\.do\.do\.fc\.(weight|bias)", r"frontdoor.out.\1"),  # W_o
    (r"decoder\.do\.norm\.(weight|bias)", r"frontdoor.norm.\1"),
]

#: Their tensors with no counterpart, and why dropping them changes no output.
IGNORED: list[tuple[str, str]] = [
    (r"do\..+", "the linguistic back-door (LinguisticInterventionGraph): built, but its call is commented out"),
    (r"lang_model\.bert\.bert\.pooler\..+", "RoBERTa's pooler: they read the token states (outs[0]) only"),
    (r"lang_model\.bert\.bert\.embeddings\.(position_ids|token_type_ids)", "RoBERTa index buffers, rebuilt by ours"),
    (
        r"decoder\.layers\.\d+\.self_attn\.(selector|time_reparam)\..+",
        "layers of the attention base class that the refined attention never calls",
    ),
    (
        r"decoder\.attention_video_feature\..+",
        "an attention pooling built but never called (its call is commented out)",
    ),
    (
        r"decoder\.grounding_module\.grounding\.3\.bias",
        "the bias of the last GSG score layer: the same for every frame, so the softmax over frames ignores it",
    ),
]

#: Config fields that decide which weights exist or what they mean: the model must match the preset.
REQUIRED_CONFIG = ("temporal_encoder", "answer_projection", "frontdoor_tied_query", "sigma_param", "use_backdoor")


class CompatError(ValueError):
    """A state dict that does not map onto the model; the message names every offending key."""


@dataclass
class LoadReport:
    mapped: dict[str, str] = field(default_factory=dict)  # their key -> our key
    ignored: dict[str, str] = field(default_factory=dict)  # their key -> reason


def _unwrap(state: Mapping) -> Mapping:
    """Accept their checkpoint file ({"state_dict": ...}) and DataParallel's "module." prefix."""
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def map_released_state_dict(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Their names -> ours: (our state dict, report). Unknown keys raise :class:`CompatError`."""
    state = _unwrap(state)
    out, report, unknown = {}, LoadReport(), []
    for key, value in state.items():
        reason = next((why for pattern, why in IGNORED if re.fullmatch(pattern, key)), None)
        if reason is not None:
            report.ignored[key] = reason
            continue
        target = next((re.sub(pattern, repl, key) for pattern, repl in KEY_MAP if re.fullmatch(pattern, key)), None)
        if target is None:
            unknown.append(key)
            continue
        if target == "backbone.positions":
            value = value.reshape(value.shape[-2], value.shape[-1])  # (1, T, D) -> (T, D)
        out[target] = value
        report.mapped[key] = target
    if unknown:
        raise CompatError(f"released state dict: {len(unknown)} keys with no mapping in cra.compat.KEY_MAP: {unknown}")
    return out, report


def load_released_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> LoadReport:
    """Copy the authors' weights into ``model`` (a :class:`cra.model.cra.CRA`); returns what was mapped
    and what was ignored. Raises :class:`CompatError` naming any unmapped, missing or mis-shaped key."""
    cfg = model.config
    wrong = {k: getattr(cfg, k) for k in REQUIRED_CONFIG if getattr(cfg, k) != RELEASED_CODE[k]}
    if wrong:
        raise CompatError(
            f"the model's config differs from the released preset in {wrong} (released: "
            f"{ {k: RELEASED_CODE[k] for k in wrong} }); build it with CRAConfig.released_code()"
        )
    differs = {
        k: getattr(cfg, k) for k in RELEASED_CODE if k not in REQUIRED_CONFIG and getattr(cfg, k) != RELEASED_CODE[k]
    }
    if differs:
        warnings.warn(
            f"released weights in a model that does not compute as the release does: {differs} "
            f"(released: { {k: RELEASED_CODE[k] for k in differs} })",
            stacklevel=2,
        )
    mapped, report = map_released_state_dict(state)
    ours = model.state_dict()
    missing = sorted(set(ours) - set(mapped))
    extra = sorted(set(mapped) - set(ours))
    shapes = [
        f"{k}: released {tuple(mapped[k].shape)} vs cra {tuple(ours[k].shape)}"
        for k in sorted(set(mapped) & set(ours))
        if mapped[k].shape != ours[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"cra tensors with no released value: {missing}")
    if extra:
        their = {v: k for k, v in report.mapped.items()}
        problems.append(f"released tensors with no cra counterpart: {[f'{their[k]} -> {k}' for k in extra]}")
    if shapes:
        problems.append("shape mismatches: " + "; ".join(shapes))
    if problems:
        raise CompatError(
            "released state dict does not fit the model (sizes come from the config: d_model, "
            "feature_dim, num_layers, d_ff, max_frames, num_x_entries, the RoBERTa config): " + " | ".join(problems)
        )
    positions = getattr(model.backbone, "positions", None)
    if positions is not None and not torch.allclose(mapped["backbone.positions"].float(), positions.float(), atol=1e-5):
        raise CompatError(
            "video_model.position_embedding.pe: not the fixed sinusoidal table cra.model.released_encoder computes"
        )
    model.load_state_dict(mapped, strict=True)
    return report


# --------------------------------------------------------------------------------------------
# The golden fixture (tests/fixtures/released_parity): their inputs, weights and outputs
# --------------------------------------------------------------------------------------------

#: Made by ``scripts/released_parity/make_fixture.py`` (tiny sizes, random weights, their code).
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "released_parity" / "released_parity.pt"


def load_fixture(path=FIXTURE) -> dict:
    """{"meta", "inputs", "state_dict", "outputs"}, plain tensors and strings (``weights_only``)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def fixture_config(fixture: dict, **changes) -> CRAConfig:
    """The released preset at the fixture's sizes, with their tiny random RoBERTa (byte-level ids, one
    per character, as the fixture's stand-in for the BPE tokenizer), then ``changes``."""
    meta = fixture["meta"]
    s = meta["sizes"]
    return CRAConfig.released_code(
        **{
            **dict(
                feature_dim=s["feature_dim"],
                d_model=s["d_model"],
                d_ff=s["d_model"],
                num_layers=2,
                num_heads=8,
                max_frames=s["T"],
                num_x_entries=s["KV"],
                text_encoder="roberta",
                text_encoder_kwargs=dict(
                    pretrained=None, config=meta["tiny_roberta"], max_length=s["qa_length"], byte_length_factor=1
                ),
            ),
            **changes,
        }
    )


def fixture_model(fixture: dict, **changes) -> nn.Module:
    """A :class:`cra.model.cra.CRA` of :func:`fixture_config` holding their weights, in eval mode."""
    from cra.model.cra import CRA

    model = CRA(fixture_config(fixture, **changes))
    state = dict(fixture["state_dict"])
    for key, shape in fixture["meta"]["ignored_keys"].items():  # left out of the fixture for size
        state[key] = torch.zeros(shape)
    load_released_state_dict(model, state)
    return model.eval()


@torch.no_grad()
def fixture_differences(model: nn.Module, fixture: dict) -> dict[str, float]:
    """Largest absolute difference between ``model``'s outputs on the fixture's inputs and theirs, per
    output: answer logits, frame weights ``key`` (w) and ``ori_key`` (w0), the grounded feature m', the
    two cross-entropies, the CMA loss (with the negatives their sampler drew) and the total."""
    from cra.model.cma import cma_loss

    x, ref = fixture["inputs"], fixture["outputs"]
    batch = {
        "frames": x["frames"],
        "qa_texts": x["qa_texts"],
        "answer": x["answer"],
        "question_candidates": x["question_candidates"],
        "question_answer": x["question_answer"],
    }
    out = model(batch)
    losses = model.losses(batch, out)
    diff = {}
    for name, p in (("vqa", out.vqa), ("vq", out.vq)):
        for ours, theirs in ((p.logits, "logits"), (p.w, "key"), (p.w0, "ori_key"), (p.v_final, "grounding_feature")):
            diff[f"{name}_{theirs}"] = (ours - ref[f"{name}_{theirs}"]).abs().max().item()
    cfg, rows = model.config, torch.arange(len(x["answer"]))
    cma = sum(
        cma_loss(
            p.text_emb[rows, target],
            p.v_final,
            cfg.temperature,
            cfg.cma_directions,
            "sampled",
            negative_index=ref[f"{name}_negatives"],
        )["total"]
        for name, p, target in (("vq", out.vq, x["question_answer"]), ("vqa", out.vqa, x["answer"]))
    )
    total = losses["loss_vqa"] + losses["loss_vq"] + cfg.weight_cma * cma
    for name, ours, theirs in (
        ("vqa_loss", losses["loss_vqa"], "vqa_loss"),
        ("vq_loss", losses["loss_vq"], "vq_loss"),
        ("cma_loss", cma, "ag_loss"),
        ("total_loss", total, "total_loss"),
    ):
        diff[name] = abs(float(ours) - float(ref[theirs]))
    return diff
