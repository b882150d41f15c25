r"""The CRA ablation study and the confounder-strength sweep on the synthetic world.

What it does (``python -m cra ablation --out <dir> [--mode fast|full] [--set k=v]``):

1. Writes the synthetic world (:mod:`cra.synthetic`, the documented default parameters; only the
   split sizes differ in fast mode) and builds its confounder dictionaries ``Z_l`` and ``X_hat`` from
   the **train split** with :mod:`cra.confounders` (semantic graphs of the train QA pairs and k-means
   over the train frames, ``K = clusters`` entries each).
2. Trains every variant of :data:`VARIANTS` for every seed with the project's trainer
   (:class:`cra.train.Trainer`: checkpoint chosen on val Acc@QA, test splits never read while
   training), then scores the chosen checkpoint on ``test-id`` (confounded like train) and
   ``test-ood`` (confounders broken) with :mod:`cra.metrics`, plus the ground-truth faithfulness
   measures that only a synthetic world has (:func:`faithfulness`). The random-span baseline pairs
   uniformly random spans with the answers of CRA (same seed).
3. Sweep: the post-hoc baseline and CRA trained on worlds whose train/val/test-id confounder
   strength is ``s`` (test-OOD stays broken, ``s = 0``), for each ``s`` of ``sweep_strengths``.
4. Writes into ``--out`` (each file atomically): ``results.csv`` / ``results.json`` (mean and standard
   deviation over seeds per variant, split and read-out), ``runs.csv`` (one row per run), ``sweep.csv``
   / ``sweep.json``, ``ablation.png`` and ``sweep.png``. Worlds, dictionaries and checkpoints go to a
   temporary folder (kept with ``--keep-work``).

Model settings (every variant): ``cra/configs/synthetic.yaml`` (d_model 64, one transformer layer, the
word-level text encoder, 5 epochs, batch 32, lr 1e-3), then the variant's packaged layers, then
:data:`STUDY_RUN`: CPU, and ``train.text_mode=frozen_cached`` (the randomly initialised word encoder
is frozen and cached; its projection and word attention still train). Freezing is not the paper's
setting; it is chosen for CPU time, and it is the same for every variant.

Every number is a function of (study config, seeds); a run on one thread is bit-reproducible.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from cra.paths import atomic_write_bytes

__all__ = ["Variant", "VARIANTS", "RANDOM_SPAN", "StudyConfig", "study_config", "prepare_world", "blind_copy",
           "run_config", "train_and_score", "faithfulness", "random_spans", "summarise", "run_study", "load_results",
           "StaleResultsError",
           "METRICS", "FAITH", "OUTPUT_FILES"]

#: Official metric columns reported (percent; UF@0.5 = right answer grounded with IoP < 0.5).
METRICS = ("Acc@QA", "Acc@GQA", "mIoP", "IoP@0.5", "mIoU", "IoU@0.5", "UF@0.5")
#: Ground-truth faithfulness columns (see :func:`faithfulness`).
FAITH = ("mass_evidence", "mass_distractor", "mass_decoy", "right_on_evidence", "right_on_distractor",
         "right_elsewhere", "follows_word", "follows_scene")
SPLITS = ("test-id", "test-ood")
RUN_SECTIONS = ("data.", "model.", "train.", "eval.")
OUTPUT_FILES = ("results.csv", "results.json", "runs.csv", "sweep.csv", "sweep.json", "ablation.png", "sweep.png")
RANDOM_SPAN = "random_span"
SWEEP_COLUMNS = ("axis", "strength", "variant", "split", "seeds",
                 *(f"{c}_{s}" for c in METRICS + FAITH for s in ("mean", "std")))


@dataclass(frozen=True)
class Variant:
    """One trained model of the study: config layers on top of ``synthetic`` (and the study's settings)."""

    layers: tuple[str, ...] = ()
    doc: str = ""
    blind: bool = False  # trained and tested on all-zero video features


#: name -> variant. The layers are the packaged ones of ``cra/configs`` (the same the ``train`` command uses).
VARIANTS: dict[str, Variant] = {
    "posthoc": Variant(("ablations/no_gsg", "ablations/no_cma", "ablations/no_eci"),
                       "post-hoc baseline: dot-product attention pooling, no GSG, CMA, back-door or front-door"),
    "cra": Variant((), "CRA, the paper's intent (GSG + smoothing, CMA, back-door, front-door)"),
    "no_gsg": Variant(("ablations/no_gsg",), "CRA without GSG (attention pooling instead)"),
    "no_smoothing": Variant(("ablations/no_smoothing",), "CRA without the Gaussian filter (w = w0)"),
    "no_cma": Variant(("ablations/no_cma",), "CRA without the cross-modal alignment loss"),
    "no_backdoor": Variant(("ablations/no_backdoor",), "CRA without the linguistic back-door"),
    "no_frontdoor": Variant(("ablations/no_frontdoor",), "CRA without the visual front-door"),
    "released_code": Variant(("variants/released_code",), "CRA as the released code runs it (RELEASED_CODE)"),
    "blind": Variant((), "language only: CRA trained and tested on all-zero video features", blind=True),
}


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
@dataclass
class StudyConfig:
    """Settings of the study. ``world`` holds only WorldConfig *size* overrides: the world's causal
    parameters stay the documented defaults (data_samples/README.md) unless changed with ``--set world.k=v``."""

    mode: str = "fast"
    world: dict = field(default_factory=lambda: {"train_videos": 500, "val_videos": 125, "test_id_videos": 300,
                                                 "test_ood_videos": 300})
    world_seed: int = 0
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    variants: list = field(default_factory=lambda: list(VARIANTS))
    random_span: bool = True
    clusters: int = 16  # K of Z_l and of X_hat
    readout: str = "posthoc"  # the read-out of the printed table, the plots and the sweep
    sweep_strengths: list = field(default_factory=lambda: [0.0, 0.4, 0.8, 1.0])
    sweep_axes: list = field(default_factory=lambda: ["both"])  # "both", "lang", "vis"
    sweep_variants: list = field(default_factory=lambda: ["posthoc", "cra"])
    sweep_seeds: list = field(default_factory=lambda: [0])
    threads: int = 1  # torch threads per training process (1: fastest on a shared 2-core machine)
    jobs: int = 1  # training processes in parallel (2 helps on an idle 2-core machine, not on a busy one)
    run: list = field(default_factory=list)  # extra run-config overrides "section.key=value"

    def __post_init__(self):
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"study: unknown variant(s) {unknown}; known: {list(VARIANTS)}")
        unknown = sorted(set(self.sweep_variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"study: unknown sweep variant(s) {unknown}; known: {list(VARIANTS)}")
        bad = sorted(set(self.sweep_axes) - set(_AXES))
        if bad:
            raise ValueError(f"study: unknown sweep axis {bad}; expected some of {list(_AXES)}")
        if self.readout not in ("window", "posthoc", "merge"):
            raise ValueError(f"study.readout={self.readout!r}: expected window, posthoc or merge")
        if self.random_span and "cra" not in self.variants:
            raise ValueError("study: random_span pairs random spans with CRA's answers; keep 'cra' in variants")
        for name in ("seeds", "sweep_seeds"):
            if not getattr(self, name) and (name == "seeds" or self.sweep_strengths):
                raise ValueError(f"study.{name} is empty")
        if any(not -1.0 <= s <= 1.0 for s in self.sweep_strengths):
            raise ValueError(f"study.sweep_strengths={self.sweep_strengths}: strengths must lie in [-1, 1]")
        if self.threads < 1 or self.jobs < 1 or self.clusters < 1:
            raise ValueError("study: threads, jobs and clusters must be >= 1")

    def world_config(self, **strengths):
        from cra.synthetic import WorldConfig

        return WorldConfig().with_overrides({**self.world, **strengths})


#: sweep axis -> the WorldConfig keys set to the strength s (train, val, test-id; test-ood keeps its own)
_AXES = {"both": ("lang_strength", "vis_strength"), "lang": ("lang_strength",), "vis": ("vis_strength",)}

#: Settings per mode (then ``--set`` on top). Fast: 500 training videos, the 5 epochs of ``synthetic.yaml``,
#: 3 seeds. Full: the default world sizes (1,200 training videos), 15 epochs, 5 seeds, three sweep axes.
MODES = {
    "fast": {},
    "full": {"world": {}, "seeds": [0, 1, 2, 3, 4], "sweep_seeds": [0, 1], "run": ["train.epochs=15"],
             "sweep_strengths": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "sweep_axes": ["both", "lang", "vis"]},
}

#: Run-config settings of every trained model (on top of ``synthetic.yaml`` and the variant's layers).
STUDY_RUN = ("train.device=cpu", "train.progress=false", "train.text_mode=frozen_cached", "data.annotations=.",
             "data.features=.", "data.test_split=test-id")


def study_config(mode: str = "fast", overrides: Sequence[str] = ()) -> StudyConfig:
    """The study's settings for ``mode`` with ``--set`` items: ``world.<WorldConfig key>=v``,
    ``<data|model|train|eval>.<key>=v`` (run config, checked by :mod:`cra.config`) or a
    :class:`StudyConfig` field (``seeds=[0,1]``); values are parsed as YAML."""
    from cra.config import parse_yaml

    if mode not in MODES:
        raise ValueError(f"--mode {mode!r}: expected one of {list(MODES)}")
    values: dict[str, Any] = {**asdict(StudyConfig()), **MODES[mode], "mode": mode}
    values["world"] = dict(MODES[mode].get("world", StudyConfig().world))
    values["run"] = list(MODES[mode].get("run", []))
    known = {f.name for f in fields(StudyConfig)}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        if key.startswith("world."):
            values["world"][key.removeprefix("world.")] = raw.strip()
        elif key.startswith(RUN_SECTIONS):
            values["run"].append(f"{key}={raw}")
        elif key in known and key not in ("mode", "world", "run"):
            values[key] = parse_yaml(raw)
        else:
            raise ValueError(f"--set {item!r}: unknown key {key!r}; expected world.<key>, "
                             f"{'/'.join(s.rstrip('.') for s in RUN_SECTIONS)}.<key> or one of "
                             f"{sorted(known - {'mode', 'world', 'run'})}")
    study = StudyConfig(**values)
    study.world_config()  # unknown world keys and bad values fail here, before any work
    run_config(Path("world"), None, "cra", 0, study)  # and bad run-config keys
    return study


# --------------------------------------------------------------------------------------------
# Worlds and dictionaries
# --------------------------------------------------------------------------------------------
def prepare_world(root: Path, world_config, seed: int, clusters: int, nlp=None) -> tuple[Path, Path]:
    """Write world ``seed`` to ``root/world`` and build its dictionaries from the train split only.

    ``Z_l``: semantic graphs of the train QA pairs, each node encoded with a (seeded, untrained)
    word encoder of the world's feature size, k-means into ``clusters`` entries, with the empirical
    prior. ``X_hat``: k-means of all train frames into ``clusters`` entries. Returns (world, file).
    """
    import torch

    from cra.confounders import BuildConfig, build_confounders, save_confounders
    from cra.synthetic import make_world
    from cra.text.encoders import build_text_encoder

    world = make_world(Path(root) / "world", seed, world_config, overwrite=True)
    dim = world_config.feature_dim
    build = BuildConfig(out=str(Path(root) / "confounders.pt"), data_root=str(world), qa_csv=["train.csv"],
                        features_h5=["CLIPL/CLIPL_I_train.h5"],
                        text_encoder={"name": "word", "dim": dim, "num_heads": 4, "num_buckets": 4096},
                        text_clusters=clusters, visual_clusters=clusters, seed=seed)

    def factory(name, **kwargs):
        torch.manual_seed(seed)  # the node encoder's random weights are a function of the seed
        return build_text_encoder(name, **kwargs)

    conf = save_confounders(Path(build.out), build_confounders(build, factory, nlp=nlp))
    return world, conf


def blind_copy(world: Path, out: Path) -> Path:
    """The same world with every frame feature set to 0: a model trained on it sees only the text."""
    from cra.data.features import FEAT_TYPE, feature_path, write_feature_file
    from cra.synthetic import SPLITS
    import h5py

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(world, out, ignore=shutil.ignore_patterns("*.h5"))
    for split in SPLITS:
        with h5py.File(feature_path(world, split), "r") as f:
            vids, shape = f["vid"][()], f[f"{FEAT_TYPE}_I"].shape
        write_feature_file(feature_path(out, split), vids.tolist(), np.zeros(shape, dtype=np.float32))
    return out


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------
def run_config(world: Path, confounders: Path | None, variant: str, seed: int, study: StudyConfig):
    """The :class:`cra.config.RunConfig` of ``variant`` with ``seed`` on ``world``: base, ``synthetic``,
    the variant's layers, :data:`STUDY_RUN`, the world's sizes, then ``study.run``."""
    from cra.config import load_run_config

    dim = study.world_config().feature_dim
    sets = [*STUDY_RUN, f"data.root={world}", f"data.confounders={confounders if confounders else 'null'}",
            f"model.feature_dim={dim}", f"model.z_node_dim={dim}", f"model.num_z_entries={study.clusters}",
            f"model.num_x_entries={study.clusters}", f"train.seed={seed}", *study.run]
    config, _ = load_run_config(["synthetic", *VARIANTS[variant].layers], sets)
    return config


_TRUTH_CACHE: dict[str, dict] = {}


def _truth(world: str, split: str) -> dict:
    from cra.synthetic import load_truth

    key = f"{world}::{split}"
    if key not in _TRUTH_CACHE:
        _TRUTH_CACHE[key] = load_truth(world, split)
    return _TRUTH_CACHE[key]


def faithfulness(qa: Mapping[str, Mapping], weights: Mapping[str, Sequence[float]], spans: Mapping[str, Sequence[float]],
                 candidates: Mapping[str, Sequence[str]], truth: Mapping[str, Mapping]) -> dict[str, float]:
    """What only a world with known causes can measure, for one split (all in percent):

    * ``mass_evidence`` / ``mass_distractor`` / ``mass_decoy``: mean share of the frame weights ``w`` on
      the evidence, on the distractor (questions that have one) and on decoys
      (:func:`cra.synthetic.weight_mass`); uniform weights give the frames' share of the video.
    * ``right_on_evidence`` / ``right_on_distractor`` / ``right_elsewhere``: shares of all questions
      answered right with the span on the evidence (IoP >= 0.5), on the distractor (right for the wrong
      reason) or neither (:func:`cra.synthetic.grounding_outcomes`).
    * ``follows_word`` / ``follows_scene``: among questions whose word (scene) shortcut points to a
      wrong candidate, the share answered with that candidate (chance: 20 %).
    """
    from cra.synthetic import grounding_outcomes, weight_mass

    correct = {k: v["prediction"] == v["answer"] for k, v in qa.items()}
    mass = weight_mass(weights, truth)
    outcomes = grounding_outcomes(spans, correct, truth)
    out = {"mass_evidence": 100 * mass["evidence"], "mass_distractor": 100 * mass["distractor"],
           "mass_decoy": 100 * mass["decoy"], "right_on_evidence": outcomes["right, on evidence"],
           "right_on_distractor": outcomes["right, on distractor"], "right_elsewhere": outcomes["right, elsewhere"]}
    for name, field_name in (("follows_word", "word_partner"), ("follows_scene", "scene_partner")):
        hits = total = 0
        for key, result in qa.items():
            shortcut = truth[key][field_name]
            if shortcut is None or shortcut == truth[key]["answer"]:
                continue
            total += 1
            hits += candidates[key][result["prediction"]] == shortcut
        out[name] = 100.0 * hits / total if total else math.nan
    return out


def _split_rows(predictions: dict, data, truth: dict) -> dict[str, dict]:
    """Per read-out: the official metrics and the faithfulness measures of one split."""
    from cra.train import score_predictions

    scores = score_predictions(predictions, data)
    candidates = {r.key: r.candidates for r in data.qa.records}
    rows = {}
    for readout, spans in predictions["spans"].items():
        row = {k: scores[readout][k] for k in METRICS}
        row.update(faithfulness(predictions["qa"], predictions["weights"], spans, candidates, truth))
        rows[readout] = row
    return rows


def train_and_score(job: Mapping[str, Any]) -> dict:
    """Train one (world, variant, seed) with :class:`cra.train.Trainer`, load its best checkpoint and
    score it on test-id and test-ood. Returns metrics per split and read-out, and CRA's answers."""
    import torch

    from cra.train import Trainer, load_checkpoint, load_split, model_from_checkpoint, predict_split

    torch.set_num_threads(job["threads"])
    start = time.perf_counter()
    study = StudyConfig(**job["study"])
    config = run_config(Path(job["world"]), Path(job["confounders"]), job["variant"], job["seed"], study)
    run_dir = Path(job["run_dir"])
    if run_dir.exists():
        shutil.rmtree(run_dir)
    trainer = Trainer(config, run_dir, log=lambda *args: None)
    trainer.fit()
    best = load_checkpoint(run_dir / "best.pt")
    model = model_from_checkpoint(config, best).to(trainer.device)
    result = {"key": job["key"], "best_epoch": best["epoch"], "splits": {}, "answers": {}}
    for split in SPLITS:
        data = load_split(config, split, grounding=True)
        predictions = predict_split(model, data, config, trainer.device)
        result["splits"][split] = _split_rows(predictions, data, _truth(job["truth"], split))
        if job["keep_answers"]:
            result["answers"][split] = predictions["qa"]
    result["seconds"] = time.perf_counter() - start
    if not job["keep_runs"]:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def random_spans(qa: Mapping[str, Any], frame2time: Mapping[str, Sequence[float]], seed: int) -> dict[str, list[float]]:
    """A span between two frames drawn uniformly (sorted) for every question: the random-span baseline."""
    rng = np.random.default_rng(seed)
    out = {}
    for key in sorted(qa):
        times = frame2time[key.split("_")[0]]
        first, last = sorted(rng.integers(0, len(times), size=2).tolist())
        out[key] = [float(times[first]), float(times[last])]
    return out


def _random_span_rows(world: Path, answers: dict, seed: int, readouts: Sequence[str]) -> dict[str, dict]:
    """Random spans with CRA's answers; uniform frame weights for the weight masses."""
    from cra.data.nextgqa import read_frame2time, read_gsub, read_qa_csv
    from cra.synthetic import NUM_FRAMES, split_paths
    from cra.train import SplitData

    rows = {}
    for split in SPLITS:
        paths = split_paths(world, split)
        qa = answers[split]
        data = SplitData(split, read_qa_csv(paths["qa"]), None, read_gsub(paths["gsub"]))
        spans = random_spans(qa, read_frame2time(paths["frame2time"]), seed)
        weights = {k: [1.0 / NUM_FRAMES] * NUM_FRAMES for k in qa}
        predictions = {"qa": qa, "weights": weights, "spans": {r: spans for r in readouts}}
        rows[split] = _split_rows(predictions, data, _truth(str(world), split))
    return rows


# --------------------------------------------------------------------------------------------
# Aggregation and output
# --------------------------------------------------------------------------------------------
def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def summarise(rows: Sequence[Mapping], by: Sequence[str], columns: Sequence[str]) -> list[dict]:
    """Mean and sample standard deviation (ddof 1; NaN for one seed) of ``columns`` per group ``by``."""
    groups: dict[tuple, list[Mapping]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        summary = dict(zip(by, key))
        summary["seeds"] = len(members)
        for c in columns:
            summary[f"{c}_mean"], summary[f"{c}_std"] = _mean_std([m[c] for m in members])
        out.append(summary)
    return out


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float):
        return None if math.isnan(x) else round(x, 4)
    return x


def _csv_bytes(rows: Sequence[Mapping], columns: Sequence[str] = ()) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else
                             f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue().encode()


def _json_bytes(obj) -> bytes:
    return (json.dumps(_clean(obj), indent=1) + "\n").encode()


def _save_figure(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_ablation(summary: Sequence[Mapping], readout: str, order: Sequence[str]):
    """Bars: Acc@QA, Acc@GQA and the evidence weight mass per variant, test-id beside test-ood.
    A pyplot-free :class:`matplotlib.figure.Figure` (no backend is switched: safe in notebooks)."""
    from matplotlib.figure import Figure

    rows = {(r["variant"], r["split"]): r for r in summary if r["readout"] == readout}
    panels = [("Acc@QA", "Acc@QA (%)"), ("Acc@GQA", f"Acc@GQA ({readout}, %)"),
              ("mass_evidence", "weight on the evidence (%)"), ("right_on_distractor", "right, grounded on distractor (%)")]
    fig = Figure(figsize=(4.2 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels))
    x = np.arange(len(order))
    for ax, (metric, label) in zip(axes, panels):
        for j, (split, colour) in enumerate(zip(SPLITS, ("#4c72b0", "#dd8452"))):
            means = [rows.get((v, split), {}).get(f"{metric}_mean", math.nan) for v in order]
            stds = [rows.get((v, split), {}).get(f"{metric}_std", math.nan) for v in order]
            stds = [0.0 if s is None or math.isnan(s) else s for s in stds]
            ax.bar(x + (j - 0.5) * 0.4, means, 0.4, yerr=stds, color=colour, label=split, capsize=2)
        ax.set_xticks(x, order, rotation=60, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("CRA ablation on the synthetic world (mean ± std over seeds)", fontsize=11)
    fig.tight_layout()
    return fig


def plot_sweep(summary: Sequence[Mapping], axes_names: Sequence[str], variants: Sequence[str]):
    """Acc@GQA and Acc@QA against the train confounder strength, test-id solid, test-ood dashed
    (a pyplot-free :class:`matplotlib.figure.Figure`)."""
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8 * len(axes_names)))
    axes = fig.subplots(len(axes_names), 2, squeeze=False)
    colours = dict(zip(variants, matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]))
    for row, axis in enumerate(axes_names):
        for col, metric in enumerate(("Acc@GQA", "Acc@QA")):
            ax = axes[row, col]
            for v in variants:
                for split, style in zip(SPLITS, ("-", "--")):
                    pts = sorted((r["strength"], r[f"{metric}_mean"], r[f"{metric}_std"]) for r in summary
                                 if r["axis"] == axis and r["variant"] == v and r["split"] == split)
                    if not pts:
                        continue
                    s, m, e = (np.array(t, dtype=float) for t in zip(*pts))
                    ax.errorbar(s, m, yerr=np.nan_to_num(e), fmt=style + "o", color=colours[v], ms=4, capsize=2,
                                label=f"{v} {split}")
            ax.set_xlabel(f"train confounder strength ({axis}); test-ood: 0")
            ax.set_title(f"{metric}: test-id solid, test-ood dashed", fontsize=10)
            ax.set_ylabel(f"{metric} (%)")
            ax.grid(alpha=0.3)
    if axes[0, 0].get_legend_handles_labels()[0]:  # a study without a sweep draws empty axes
        axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def format_table(summary: Sequence[Mapping], readout: str, order: Sequence[str],
                 columns: Sequence[str] = METRICS + FAITH) -> str:
    """Plain-text table (mean ± std) of one read-out's summary rows."""
    header = ["variant", "split", *columns]
    lines = [header]
    for v in order:
        for split in SPLITS:
            r = next((r for r in summary if (r["variant"], r["split"], r["readout"]) == (v, split, readout)), None)
            if r is None:
                continue
            cells = [v, split]
            for c in columns:
                m, s = r[f"{c}_mean"], r[f"{c}_std"]
                cells.append("nan" if m is None or math.isnan(m) else
                             f"{m:.1f}" + ("" if s is None or math.isnan(s) else f"±{s:.1f}"))
            lines.append(cells)
    widths = [max(len(line[j]) for line in lines) for j in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)


def format_sweep(summary: Sequence[Mapping]) -> str:
    lines = [["axis", "strength", "variant", "split", "seeds", "Acc@QA", "Acc@GQA", "mIoP", "follows_word", "follows_scene"]]
    for r in sorted(summary, key=lambda r: (r["axis"], r["strength"], r["variant"], r["split"])):
        cells = [r["axis"], f"{r['strength']:.2f}", r["variant"], r["split"], str(r["seeds"])]
        for c in ("Acc@QA", "Acc@GQA", "mIoP", "follows_word", "follows_scene"):
            m, s = r[f"{c}_mean"], r[f"{c}_std"]
            cells.append("nan" if math.isnan(m) else f"{m:.1f}" + ("" if math.isnan(s) else f"±{s:.1f}"))
        lines.append(cells)
    widths = [max(len(line[j]) for line in lines) for j in range(len(lines[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------
def _run_jobs(jobs: list[dict], n_parallel: int, log: Callable) -> dict:
    results = {}
    if n_parallel <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            results[job["key"]] = r = train_and_score(job)
            log(f"  [{i + 1}/{len(jobs)}] {job['key']}: {r['seconds']:.1f} s")
        return results
    import multiprocessing

    with ProcessPoolExecutor(n_parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        for i, r in enumerate(pool.map(train_and_score, jobs)):
            results[r["key"]] = r
            log(f"  [{i + 1}/{len(jobs)}] {r['key']}: {r['seconds']:.1f} s")
    return results


def run_study(out: Path | str, study: StudyConfig, *, work: Path | str | None = None, keep_work: bool = False,
              log: Callable = print) -> dict:
    """Run the ablation and the sweep, write :data:`OUTPUT_FILES` into ``out``; returns the results."""
    import torch

    from cra.text.semantic_graph import load_parser

    start = time.perf_counter()
    torch.set_num_threads(study.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work_dir = Path(work) if work else Path(tempfile.mkdtemp(prefix="cra-ablation-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        nlp = load_parser()
        worlds: dict[tuple, tuple[Path, Path]] = {}

        def world_for(strengths: dict) -> tuple[tuple, Path, Path]:
            config = study.world_config(**strengths)
            key = tuple(sorted((k, v) for k, v in asdict(config).items()))
            if key not in worlds:
                folder = work_dir / f"world{len(worlds)}"
                worlds[key] = prepare_world(folder, config, study.world_seed, study.clusters, nlp)
            return key, *worlds[key]

        t = time.perf_counter()
        main_key, main_world, main_conf = world_for({})
        blind_world = blind_copy(main_world, work_dir / "world-blind") if any(
            VARIANTS[v].blind for v in {*study.variants, *study.sweep_variants}) else None
        sweep_points = []  # (axis, strength, world key, world, confounders)
        for axis in study.sweep_axes:
            for s in study.sweep_strengths:
                key, world, conf = world_for({k: s for k in _AXES[axis]})
                sweep_points.append((axis, float(s), key, world, conf))
        log(f"{len(worlds)} world(s) and their dictionaries from the train split: {time.perf_counter() - t:.1f} s")

        jobs, job_keys = [], {}
        public = asdict(study)

        def add_job(world_key, world, conf, variant, seed):
            name = (world_key, variant, seed)
            if name in job_keys:
                return job_keys[name]
            label = f"w{list(worlds).index(world_key)}/{variant}/seed{seed}"
            data_world = blind_world if VARIANTS[variant].blind and world_key == main_key else world
            if VARIANTS[variant].blind and world_key != main_key:
                data_world = blind_copy(world, Path(str(world) + "-blind"))
            jobs.append({"key": label, "world": str(data_world), "truth": str(world), "confounders": str(conf),
                         "variant": variant, "seed": seed, "run_dir": str(work_dir / "runs" / label.replace("/", "_")),
                         "study": public, "threads": study.threads, "keep_answers": variant == "cra",
                         "keep_runs": keep_work})
            job_keys[name] = label
            return label

        ablation_labels = {(v, s): add_job(main_key, main_world, main_conf, v, s) for v in study.variants
                           for s in study.seeds}
        sweep_labels = {(axis, strength, v, s): add_job(key, world, conf, v, s)
                        for axis, strength, key, world, conf in sweep_points
                        for v in study.sweep_variants for s in study.sweep_seeds}
        log(f"training {len(jobs)} models ({study.jobs} process(es), {study.threads} thread(s) each)")
        results = _run_jobs(jobs, study.jobs, log)

        # ---- ablation table ------------------------------------------------------------------------
        readouts = run_config(main_world, main_conf, "cra", 0, study).eval.readouts
        runs = []
        for (variant, seed), label in ablation_labels.items():
            for split in SPLITS:
                for readout, row in results[label]["splits"][split].items():
                    runs.append({"variant": variant, "seed": seed, "split": split, "readout": readout,
                                 "best_epoch": results[label]["best_epoch"], **row})
        if study.random_span:
            for seed in study.seeds:
                answers = results[ablation_labels[("cra", seed)]]["answers"]
                rows = _random_span_rows(main_world, answers, seed, readouts)
                for split in SPLITS:
                    for readout, row in rows[split].items():
                        runs.append({"variant": RANDOM_SPAN, "seed": seed, "split": split, "readout": readout,
                                     "best_epoch": None, **row})
        summary = summarise(runs, ("variant", "split", "readout"), METRICS + FAITH)
        order = [*study.variants, *([RANDOM_SPAN] if study.random_span else [])]

        # ---- sweep ---------------------------------------------------------------------------------
        sweep_runs = []
        for (axis, strength, variant, seed), label in sweep_labels.items():
            for split in SPLITS:
                row = results[label]["splits"][split][study.readout]
                sweep_runs.append({"axis": axis, "strength": strength, "variant": variant, "seed": seed,
                                   "split": split, **{c: row[c] for c in METRICS + FAITH}})
        sweep_summary = summarise(sweep_runs, ("axis", "strength", "variant", "split"), METRICS + FAITH)

        wall = time.perf_counter() - start
        meta = {"command_mode": study.mode, "study": asdict(study), "world": asdict(study.world_config()),
                "readout": study.readout, "variants": {v: VARIANTS[v].doc for v in study.variants},
                "random_span": "uniform random spans (two frames, sorted) with CRA's answers of the same seed",
                "models_trained": len(jobs), "wall_seconds": round(wall, 1), "torch": torch.__version__,
                "run_config_example": _run_config_dict(main_world, main_conf, study)}
        atomic_write_bytes(out / "runs.csv", _csv_bytes(runs))
        atomic_write_bytes(out / "results.csv", _csv_bytes(summary))
        atomic_write_bytes(out / "results.json", _json_bytes({"meta": meta, "summary": summary, "runs": runs}))
        atomic_write_bytes(out / "sweep.csv", _csv_bytes(sweep_summary, SWEEP_COLUMNS))
        atomic_write_bytes(out / "sweep.json", _json_bytes({"meta": meta, "summary": sweep_summary, "runs": sweep_runs}))
        _save_figure(plot_ablation(summary, study.readout, order), out / "ablation.png")
        _save_figure(plot_sweep(sweep_summary, study.sweep_axes, study.sweep_variants), out / "sweep.png")
        log(f"\nablation, read-out {study.readout} (mean ± std over seeds {study.seeds}; percent):")
        log(format_table(summary, study.readout, order))
        log("\nsweep (read-out " + study.readout + "):")
        log(format_sweep(sweep_summary))
        log(f"\nwrote {', '.join(OUTPUT_FILES)} to {out}; {len(jobs)} models; wall time {wall:.1f} s")
        return {"summary": summary, "runs": runs, "sweep": sweep_summary, "sweep_runs": sweep_runs, "meta": meta}
    finally:
        if not keep_work and work is None:
            shutil.rmtree(work_dir, ignore_errors=True)


def _run_config_dict(world: Path, conf: Path, study: StudyConfig) -> dict:
    from cra.config import to_dict

    values = to_dict(run_config(world, conf, "cra", study.seeds[0], study))
    values["data"]["root"] = "<world>"
    values["data"]["confounders"] = "<world>/confounders.pt"
    return values


# --------------------------------------------------------------------------------------------
# Saved results
# --------------------------------------------------------------------------------------------
class StaleResultsError(ValueError):
    """Saved study files whose settings differ from what the current code would run."""


def _differences(saved, current, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        return [d for k in sorted(set(saved) | set(current), key=str)
                for d in _differences(saved.get(k, "<absent>"), current.get(k, "<absent>"), f"{prefix}{k}.")]
    return [] if saved == current else [f"{prefix.rstrip('.')}: saved {saved!r}, current code {current!r}"]


def load_results(folder: Path | str, overrides: Sequence[str] = ()) -> dict:
    """Read ``results.json`` and ``sweep.json`` written by :func:`run_study` into ``folder``, after checking
    that their settings are those the current code runs for the saved mode (and ``overrides``): the
    study settings, the world's parameters, the variants and the run config of CRA. Returns
    ``{"summary", "runs", "sweep", "sweep_runs", "meta"}`` like :func:`run_study`; raises
    :class:`FileNotFoundError` for a missing file and :class:`StaleResultsError` listing every difference."""
    folder = Path(folder)
    loaded = {}
    for name in ("results.json", "sweep.json"):
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: run `python -m cra ablation --out {folder}`")
        loaded[name] = json.loads(path.read_text())
    meta = loaded["results.json"]["meta"]
    if loaded["sweep.json"]["meta"] != meta:
        raise StaleResultsError(f"{folder}: results.json and sweep.json come from different runs")
    study = study_config(meta["command_mode"], overrides)
    current = {"study": asdict(study), "world": asdict(study.world_config()), "readout": study.readout,
               "variants": {v: VARIANTS[v].doc for v in study.variants},
               "run_config_example": _run_config_dict(Path("<world>"), Path("<world>/confounders.pt"), study)}
    current = json.loads(_json_bytes(current))
    diffs = _differences({k: meta.get(k, "<absent>") for k in current}, current)
    if diffs:
        raise StaleResultsError(f"{folder}: saved with other settings than the current code's "
                                f"`--mode {meta['command_mode']}`; rerun the study. Differences:\n  " + "\n  ".join(diffs))
    return {"summary": loaded["results.json"]["summary"], "runs": loaded["results.json"]["runs"],
            "sweep": loaded["sweep.json"]["summary"], "sweep_runs": loaded["sweep.json"]["runs"], "meta": meta}
