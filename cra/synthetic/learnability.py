"""Can a model learn the world? Train CRA with the package's trainer on a written world and measure it
against the ground truth (used by ``benchmarks/world_learnability.py`` and the learnability test).

Run settings: ``cra/configs/synthetic.yaml``, then :data:`LEARN_RUN` (CPU, frozen cached text as in the
fast study, selection on ``val-ood``), then the caller's overrides.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from cra.synthetic.io import load_truth, load_world
from cra.synthetic.truth import uniform_mass, weight_mass

#: Run-config settings of a learnability run (on top of ``synthetic.yaml``).
LEARN_RUN = ("train.device=cpu", "train.progress=false", "train.text_mode=frozen_cached", "data.val_split=val-ood")
TEST_SPLITS = ("test-id", "test-ood")


def learn_config(world: Path | str, seed: int, overrides: Sequence[str] = (), features: Path | str | None = None):
    """The :class:`cra.config.RunConfig` of a learnability run on ``world`` (features from ``features``,
    default the world itself: a blind copy keeps the world's questions and truth)."""
    from cra.config import load_run_config

    dim = load_world(world)["world_config"].feature_dim
    sets = [
        *LEARN_RUN,
        f"data.root={features or world}",
        "data.annotations=.",
        "data.features=.",
        "data.confounders=null",
        f"model.feature_dim={dim}",
        f"model.z_node_dim={dim}",
        f"train.seed={seed}",
        *overrides,
    ]
    config, _ = load_run_config(["synthetic"], sets)
    return config


def follows_word(predictions: dict, candidates: dict, truth: dict) -> float:
    """Among questions whose word shortcut names a wrong candidate, the share (percent) answered with it."""
    hits = total = 0
    for key, result in predictions.items():
        shortcut = truth[key]["word_partner"]
        if shortcut is None or shortcut == truth[key]["answer"] or shortcut not in candidates[key]:
            continue
        total += 1
        hits += candidates[key][result["prediction"]] == shortcut
    return 100.0 * hits / total if total else float("nan")


def train_and_measure(
    world: Path | str, run_dir: Path | str, seed: int, overrides: Sequence[str] = (), features: Path | str | None = None
) -> dict:
    """Train CRA on ``world`` (checkpoint chosen on val-ood Acc@QA) and measure the chosen checkpoint on
    test-id and test-ood: Acc@QA, mass of the frame weights on the evidence and its ratio to uniform
    weights' mass, the mass on every frame role (:data:`cra.synthetic.truth.ROLE_NAMES`), share following
    the word shortcut. Returns ``{"seconds", "cpu_seconds" (this process, training and loading the best
    checkpoint), "best_epoch", split: {...}}``."""
    from cra.checkpoint import load_checkpoint
    from cra.predict import model_from_checkpoint, predict_split
    from cra.run import load_split
    from cra.train import Trainer

    config = learn_config(world, seed, overrides, features)
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no confounder file: random dictionaries, as configured
        trainer = Trainer.from_config(config, run_dir, log=None)
        trainer.fit()
        best = load_checkpoint(Path(run_dir) / "best.pt")
        model = model_from_checkpoint(config, best).to(trainer.device)
    out = {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "best_epoch": best["epoch"],
    }
    for split in TEST_SPLITS:
        data = load_split(config, split, grounding=False)
        predictions = predict_split(model, data, config, trainer.device)
        truth = load_truth(world, split)
        qa = predictions["qa"]
        candidates = {r.key: r.candidates for r in data.qa.records}
        masses, uniform = weight_mass(predictions["weights"], truth), uniform_mass(truth)
        evidence = masses["evidence"]
        out[split] = {
            "acc": 100.0 * float(np.mean([v["prediction"] == v["answer"] for v in qa.values()])),
            "mass_evidence": 100.0 * evidence,
            "mass_uniform": 100.0 * uniform,
            "mass_ratio": evidence / uniform,
            "mass_by_role": {role: 100.0 * share for role, share in masses.items()},
            "follows_word": follows_word(qa, candidates, truth),
        }
    return out
