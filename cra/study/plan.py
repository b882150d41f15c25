"""What the study trains and measures: the variants, the study's settings and each run's config.

The settings are one :class:`StudyConfig`, built by :mod:`cra.config` like every other config:
dataclass defaults (fast mode), the mode's layer ``cra/configs/study/<mode>.yaml``, then ``--set``
items. A ``--set`` of a run-config section (``data.``, ``model.``, ``train.``, ``eval.``) joins
:attr:`StudyConfig.run`, the ``--set`` items given to every trained model's :class:`cra.config.RunConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from cra.config import (
    PACKAGED_CONFIGS,
    ConfigError,
    check_values,
    from_dict,
    load_layers,
    load_run_config,
    overrides_of,
    packaged_names,
)
from cra.metrics import METRIC_KEYS
from cra.readouts import READOUTS
from cra.synthetic import WorldConfig

__all__ = [
    "Variant",
    "VARIANTS",
    "CEILING_WORLD",
    "REFERENCES",
    "DIAG",
    "RANDOM_SPAN",
    "StudyConfig",
    "study_config",
    "run_config",
    "modes",
    "METRICS",
    "FAITH",
    "SPLITS",
    "AXES",
    "STUDY_RUN",
    "STUDY_CONFIGS",
]

#: Official metric columns reported (percent): the protocol's columns at IoP/IoU 0.5, and UF@0.5 =
#: right answer grounded with IoP < 0.5 (names from :mod:`cra.metrics`).
METRICS = (*(k for k in METRIC_KEYS if not k.endswith("@0.3")), "UF@0.5")
#: Ground-truth faithfulness columns (see :func:`cra.study.scoring.faithfulness`).
FAITH = (
    "mass_evidence",
    "mass_distractor",
    "mass_decoy",
    "right_on_evidence",
    "right_on_distractor",
    "right_elsewhere",
    "follows_word",
    "follows_scene",
)
#: Diagnostics columns (:mod:`cra.diagnostics`) of every run, measured on test-ood
DIAG = (
    "backdoor_kl",
    "backdoor_score_std",
    "backdoor_logprior_std",
    "frontdoor_entropy",
    "frontdoor_xhat_entropy",
    "cos_vt_vbar",
    "w_entropy",
)
#: The splits every model is scored on (confounded like train; confounders broken).
SPLITS = ("test-id", "test-ood")
RANDOM_SPAN = "random_span"
#: Where the study's layers are (``fast.yaml``, ``full.yaml``).
STUDY_CONFIGS = PACKAGED_CONFIGS / "study"
RUN_SECTIONS = ("data.", "model.", "train.", "eval.")


@dataclass(frozen=True)
class Variant:
    """One trained model of the study: config layers on top of ``synthetic`` (and the study's settings),
    then ``sets`` (run-config ``--set`` items), on the study's world changed by ``world`` (WorldConfig
    items, e.g. the ceiling's strengths)."""

    layers: tuple[str, ...] = ()
    doc: str = ""
    blind: bool = False  # trained and tested on all-zero video features
    sets: tuple[str, ...] = ()
    world: tuple[tuple[str, float], ...] = ()


#: the unconfounded world of ``cra/configs/worlds/ceiling.yaml``: both confounders at 0 in every split
CEILING_WORLD = (("lang_strength", 0.0), ("vis_strength", 0.0))


#: name -> variant. The layers are the packaged ones of ``cra/configs`` (the same the ``train`` command uses).
VARIANTS: dict[str, Variant] = {
    "posthoc": Variant(
        ("ablations/no_gsg", "ablations/no_cma", "ablations/no_eci"),
        "post-hoc baseline: dot-product attention pooling, no GSG, CMA, back-door or front-door",
    ),
    "cra": Variant((), "CRA, our reading of the paper (GSG + smoothing, CMA, back-door, front-door)"),
    "ceiling": Variant(
        (), "CRA trained on the unconfounded world (both strengths 0 in every split)", world=CEILING_WORLD
    ),
    "blind": Variant(
        (),
        "language only: CRA on all-zero video features, word encoder fine-tuned (can express the shortcut)",
        blind=True,
        sets=("train.text_mode=finetune",),
    ),
    "true_grounding": Variant(
        (),
        "front-door mediator = the true evidence frames (w = e/|e|, train and test)",
        sets=("model.mediator=true_evidence",),
    ),
    "reweight_xhat": Variant(
        (),
        "CRA on train resampled by inverse propensity of the frame-cluster proxy x-hat",
        sets=("data.reweight=xhat",),
    ),
    "reweight_scene": Variant(
        (),
        "CRA on train resampled by inverse propensity of the true scene (data-level adjustment)",
        sets=("data.reweight=scene",),
    ),
    "no_backdoor": Variant(("ablations/no_backdoor",), "CRA without the linguistic back-door"),
    "backdoor_prior": Variant(
        (),
        "back-door as the textbook NWGM: E_{P(z)}[z], one vector for every text",
        sets=("model.backdoor_mode=prior",),
    ),
    "no_frontdoor": Variant(("ablations/no_frontdoor",), "CRA without the visual front-door"),
    "whole_video": Variant(
        (), "front-door mediator = the whole-video mean (w uniform)", sets=("model.mediator=whole_video",)
    ),
    "gsg_supervised": Variant(
        (),
        "BEYOND THE PAPER: GSG weakly supervised by the true spans of 25 % of train questions",
        sets=("model.gsg_supervision=0.25",),
    ),
    "ng_plus": Variant(
        ("ablations/no_cma", "ablations/no_eci"),
        "NG+ (NExT-GQA paper's baseline): a learned Gaussian mask times attention pooling, VQA + VQ losses",
        sets=("model.gaussian_mask=true",),
    ),
    "no_gsg": Variant(("ablations/no_gsg",), "CRA without GSG (attention pooling instead)"),
    "released_gate": Variant(
        (),
        "CRA with the released GSG gate: tanh(<v, l>) unscaled, and the score MLP's LayerNorm after the gate "
        "(which cancels its size)",
        sets=("model.gate_norm=after_gate", "model.scaled_gate=false"),
    ),
    "no_smoothing": Variant(("ablations/no_smoothing",), "CRA without the Gaussian filter (w = w0)"),
    "no_cma": Variant(("ablations/no_cma",), "CRA without the cross-modal alignment loss"),
    "released_code": Variant(
        ("variants/released_code", "variants/without_released_data"),
        "CRA as the released code runs it (RELEASED_CODE; the released data draws off: "
        "the synthetic world has no GPT-4 paraphrases)",
    ),
}

#: the study's references: the gap closed is measured between ``plain`` (CRA trained on the confounded world)
#: and ``ceiling`` (the same CRA trained on the unconfounded one), so it is the damage confounding does
REFERENCES = ("posthoc", "ceiling", "blind")

#: sweep axis -> the WorldConfig keys set to the strength s (train, val, test-id; test-ood keeps its own)
AXES = {"both": ("lang_strength", "vis_strength"), "lang": ("lang_strength",), "vis": ("vis_strength",)}

#: Run-config settings of every trained model (on top of ``synthetic.yaml`` and the variant's layers).
STUDY_RUN = (
    "train.device=cpu",
    "train.progress=false",
    "train.text_mode=frozen_cached",
    "data.annotations=.",
    "data.features=.",
    "data.test_split=test-id",
    "data.val_split=val-ood",
)


@dataclass
class StudyConfig:
    """Settings of the study; the defaults are fast mode. ``world`` holds only :class:`WorldConfig`
    overrides (split sizes, and subject questions: the form CRA's frozen word-level text side can learn,
    data_samples/README.md): the world's causal parameters stay the documented defaults unless changed
    with ``--set world.k=v``."""

    mode: str = "fast"
    world: dict = overrides_of(
        WorldConfig,
        default_factory=lambda: {
            "train_videos": 1000,
            "val_videos": 125,
            "test_id_videos": 300,
            "test_ood_videos": 300,
            "question_form": "subject",
        },
    )
    world_seed: int = 0
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    variants: list = field(default_factory=lambda: list(VARIANTS))
    random_span: bool = True
    clusters: int = 16  # K of Z_l and of X_hat
    readout: str = "posthoc"  # the read-out of the printed table, the plots and the sweep
    plain: str = "cra"  # gap closed = (OOD_variant - OOD_plain) / (OOD_ceiling - OOD_plain): the same CRA, confounded
    sweep_strengths: list = field(default_factory=lambda: [0.0, 0.8])  # fast: the ceiling and the main world
    sweep_axes: list = field(default_factory=lambda: ["both"])  # "both", "lang", "vis"
    sweep_variants: list = field(default_factory=lambda: ["posthoc", "cra"])
    sweep_seeds: list = field(default_factory=lambda: [0])
    threads: int = 1  # torch threads per training process (1: fastest on a shared 2-core machine)
    jobs: int = 1  # training processes in parallel (2 helps on an idle 2-core machine, not on a busy one)
    run: list = field(default_factory=list)  # run-config --set items of every model, "section.key=value"

    def __post_init__(self):
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"study: unknown variant(s) {unknown}; known: {list(VARIANTS)}")
        unknown = sorted(set(self.sweep_variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"study: unknown sweep variant(s) {unknown}; known: {list(VARIANTS)}")
        bad = sorted(set(self.sweep_axes) - set(AXES))
        if bad:
            raise ValueError(f"study: unknown sweep axis {bad}; expected some of {list(AXES)}")
        if self.readout not in READOUTS:
            raise ValueError(f"study.readout={self.readout!r}: expected one of {', '.join(READOUTS)}")
        if "ceiling" in self.variants and self.plain not in self.variants:
            raise ValueError(f"study.plain={self.plain!r}: the gap closed needs it among the variants {self.variants}")
        if self.random_span and "cra" not in self.variants:
            raise ValueError("study: random_span pairs random spans with CRA's answers; keep 'cra' in variants")
        for name in ("seeds", "sweep_seeds"):
            if not getattr(self, name) and (name == "seeds" or self.sweep_strengths):
                raise ValueError(f"study.{name} is empty")
        if any(not -1.0 <= s <= 1.0 for s in self.sweep_strengths):
            raise ValueError(f"study.sweep_strengths={self.sweep_strengths}: strengths must lie in [-1, 1]")
        if self.threads < 1 or self.jobs < 1 or self.clusters < 1:
            raise ValueError("study: threads, jobs and clusters must be >= 1")

    def world_config(self, **strengths) -> WorldConfig:
        """The documented world with ``world`` and then ``strengths`` (sweep keys) set."""
        values = {**self.world, **strengths}
        check_values(values, WorldConfig, "study.world", "world.")
        return from_dict(WorldConfig, values, "world.")


def modes() -> list[str]:
    """The packaged study modes (``cra/configs/study/*.yaml``)."""
    return packaged_names(STUDY_CONFIGS)


def study_config(mode: str = "fast", overrides: Sequence[str] = ()) -> StudyConfig:
    """The study's settings for ``mode`` (its layer ``cra/configs/study/<mode>.yaml``) with ``--set``
    items: ``world.<WorldConfig key>=v``, a :class:`StudyConfig` field (``seeds=[0,1]``), or
    ``<data|model|train|eval>.<key>=v`` (joins ``run``, checked by :func:`cra.config.load_run_config`).
    Values are YAML; a problem is a :class:`cra.config.ConfigError` naming the layer or ``--set``."""
    if mode not in modes():
        raise ConfigError(f"--mode {mode!r}: expected one of {modes()}")
    run_items = [item for item in overrides if item.strip().startswith(RUN_SECTIONS)]
    study_items = [item for item in overrides if item not in run_items]
    for item in study_items:
        if item.partition("=")[0].strip() == "mode":
            raise ConfigError(f"--set {item!r}: the mode is chosen with --mode")
    study, _ = load_layers(StudyConfig, [mode], study_items, folder=STUDY_CONFIGS, first=None)
    study.run = [*study.run, *run_items]
    study.world_config()  # bad world values fail here, before any work
    run_config(Path("world"), None, "cra", 0, study)  # and bad run-config keys
    return study


def run_config(world: Path, confounders: Path | None, variant: str, seed: int, study: StudyConfig):
    """The :class:`cra.config.RunConfig` of ``variant`` with ``seed`` on ``world``: base, ``synthetic``,
    the variant's layers, :data:`STUDY_RUN`, the world's sizes, then ``study.run``."""
    dim = study.world_config().feature_dim
    sets = [
        *STUDY_RUN,
        f"data.root={world}",
        f"data.confounders={confounders if confounders else 'null'}",
        f"model.feature_dim={dim}",
        f"model.z_node_dim={dim}",
        f"model.num_z_entries={study.clusters}",
        f"model.num_x_entries={study.clusters}",
        f"train.seed={seed}",
        *VARIANTS[variant].sets,
        *study.run,
    ]
    config, _ = load_run_config(["synthetic", *VARIANTS[variant].layers], sets)
    return config
