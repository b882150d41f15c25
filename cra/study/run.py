"""Running the study: every (world, variant, seed) trained and scored, then the tables, files and plots."""

from __future__ import annotations

import pickle
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping

from cra.paths import atomic_write_bytes
from cra.study.aggregate import summarise
from cra.study.plan import AXES, DIAG, FAITH, METRICS, RANDOM_SPAN, SPLITS, VARIANTS, StudyConfig, run_config
from cra.study.plots import plot_ablation, plot_sweep
from cra.study.preconditions import format_gap, format_preconditions, gap_closed, preconditions, readers
from cra.study.report import OUTPUT_FILES, SWEEP_COLUMNS, csv_bytes, format_sweep, format_table, json_bytes, save_figure
from cra.study.scoring import cached_truth, random_span_rows, split_rows
from cra.study.worlds import blind_copy, existing_world, prepare_world

__all__ = ["train_and_score", "run_study", "run_config_dict"]


def train_and_score(job: Mapping[str, Any]) -> dict:
    """Train one (world, variant, seed) with :class:`cra.train.Trainer`, load its best checkpoint and
    score it on test-id and test-ood. Returns metrics per split and read-out, and CRA's answers."""
    import torch

    from cra.checkpoint import load_checkpoint
    from cra.predict import model_from_checkpoint, predict_split
    from cra.run import load_split
    from cra.train import Trainer

    torch.set_num_threads(job["threads"])
    start = time.perf_counter()
    study = StudyConfig(**job["study"])
    config = run_config(Path(job["world"]), Path(job["confounders"]), job["variant"], job["seed"], study)
    run_dir = Path(job["run_dir"])
    if run_dir.exists():
        shutil.rmtree(run_dir)
    trainer = Trainer.from_config(config, run_dir, log=None)
    trainer.fit()
    best = load_checkpoint(run_dir / "best.pt")
    model = model_from_checkpoint(config, best).to(trainer.device)
    result = {
        "key": job["key"],
        "best_epoch": best["epoch"],
        "selected_on": config.data.val_split,
        "splits": {},
        "answers": {},
    }
    for split in SPLITS:
        data = load_split(config, split, grounding=True)
        predictions = predict_split(model, data, config, trainer.device)
        result["splits"][split] = split_rows(predictions, data, cached_truth(job["truth"], split))
        if job["keep_answers"]:
            result["answers"][split] = predictions["qa"]
    result["seconds"] = time.perf_counter() - start
    if not job["keep_runs"]:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


#: The study settings a trained model depends on (the rest choose which models to train and how to report them)
MODEL_SETTINGS = ("mode", "world", "world_seed", "clusters", "threads", "run")


def model_identity(job: Mapping[str, Any]) -> dict:
    """What makes two jobs the same model: everything but the study settings outside :data:`MODEL_SETTINGS`
    (so a rerun with fewer or more variants, seeds or sweep points reads finished models back)."""
    return {**job, "study": {k: job["study"].get(k) for k in MODEL_SETTINGS}}


def _run_jobs(jobs: list[dict], n_parallel: int, log: Callable, done: Path | None = None, train: bool = True) -> dict:
    """Every job's result; with ``done`` (a kept ``--work`` folder), a job finished there by an earlier
    call with the same job settings is read back instead of trained again (an interrupted study resumes).
    Jobs are trained seed by seed (every variant's seed 0 first), so a study cut short holds complete
    rows with fewer seeds; ``train=False`` returns only the finished jobs' results."""
    results, todo = {}, []
    for job in jobs:
        saved = done / f"{job['key'].replace('/', '_')}.pkl" if done else None
        if saved is not None and saved.is_file():
            record = pickle.loads(saved.read_bytes())  # written by this function, below
            if model_identity(record["job"]) == model_identity(job):
                results[job["key"]] = record["result"]
                continue
        todo.append(job)
    if len(todo) < len(jobs):
        log(f"  {len(jobs) - len(todo)} model(s) already trained in {done}: read back")
    if not train:
        log(f"  {len(todo)} model(s) not trained yet: left out (--finished-only)")
        return results
    todo.sort(key=lambda job: job["seed"])  # stable: the planned order within a seed

    def finish(i: int, job: dict, r: dict) -> None:
        results[job["key"]] = r
        if done is not None:
            atomic_write_bytes(done / f"{job['key'].replace('/', '_')}.pkl", pickle.dumps({"job": job, "result": r}))
        log(f"  [{i + 1}/{len(todo)}] {job['key']}: {r['seconds']:.1f} s")

    if n_parallel <= 1 or len(todo) <= 1:
        for i, job in enumerate(todo):
            finish(i, job, train_and_score(job))
        return results
    import multiprocessing

    with ProcessPoolExecutor(n_parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        for i, (job, r) in enumerate(zip(todo, pool.map(train_and_score, todo))):
            finish(i, job, r)
    return results


def run_study(
    out: Path | str,
    study: StudyConfig,
    *,
    work: Path | str | None = None,
    keep_work: bool = False,
    finished_only: bool = False,
    log: Callable = print,
) -> dict:
    """Run the ablation and the sweep, write :data:`OUTPUT_FILES` into ``out``; returns the results.

    ``work`` keeps worlds, dictionaries (and with ``keep_work`` checkpoints) and each finished model's
    scores; run again with the same ``work``, the study resumes: finished models are read back.
    ``finished_only`` (with ``work``) trains nothing and writes the tables of the models finished so far
    (a long study's results committed as they come), reading ``work`` without writing to it (so it can
    run while the study trains there); ``meta["partial"]`` then counts what is missing."""
    if finished_only and not work:
        raise ValueError("study: finished_only reads finished models from a --work folder; give one")
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
                if finished_only:  # read only: a study may still be training from this folder
                    worlds[key] = existing_world(folder, config, study.world_seed)
                else:
                    worlds[key] = prepare_world(folder, config, study.world_seed, study.clusters, nlp)
            return key, *worlds[key]

        def blind_of(world: Path, out: Path) -> Path:
            return out if finished_only and (out / "world.json").is_file() else blind_copy(world, out)

        t = time.perf_counter()
        main_key, main_world, main_conf = world_for({})
        variant_worlds = {
            v: world_for(dict(VARIANTS[v].world)) if VARIANTS[v].world else (main_key, main_world, main_conf)
            for v in study.variants
        }
        blind_world = (
            blind_of(main_world, work_dir / "world-blind")
            if any(VARIANTS[v].blind for v in {*study.variants, *study.sweep_variants})
            else None
        )
        sweep_points = []  # (axis, strength, world key, world, confounders)
        for axis in study.sweep_axes:
            for s in study.sweep_strengths:
                key, world, conf = world_for({k: s for k in AXES[axis]})
                sweep_points.append((axis, float(s), key, world, conf))
        log(f"{len(worlds)} world(s) and their dictionaries from the train split: {time.perf_counter() - t:.1f} s")

        jobs, job_keys = [], {}
        public = {k: v for k, v in asdict(study).items() if k != "jobs"}  # parallelism does not change a result

        def add_job(world_key, world, conf, variant, seed):
            v = VARIANTS[variant]
            name = (world_key, v.layers, v.sets, v.blind, seed)  # the sweep's CRA at s = 0 is the ceiling's model
            if name in job_keys:
                return job_keys[name]
            label = f"w{list(worlds).index(world_key)}/{variant}/seed{seed}"
            data_world = blind_world if VARIANTS[variant].blind and world_key == main_key else world
            if VARIANTS[variant].blind and world_key != main_key:
                data_world = blind_of(world, Path(str(world) + "-blind"))
            jobs.append(
                {
                    "key": label,
                    "world": str(data_world),
                    "truth": str(world),
                    "confounders": str(conf),
                    "variant": variant,
                    "seed": seed,
                    "run_dir": str(work_dir / "runs" / label.replace("/", "_")),
                    "study": public,
                    "threads": study.threads,
                    "keep_answers": variant == "cra",
                    "keep_runs": keep_work,
                }
            )
            job_keys[name] = label
            return label

        ablation_labels = {(v, s): add_job(*variant_worlds[v], v, s) for v in study.variants for s in study.seeds}
        sweep_labels = {
            (axis, strength, v, s): add_job(key, world, conf, v, s)
            for axis, strength, key, world, conf in sweep_points
            for v in study.sweep_variants
            for s in study.sweep_seeds
        }
        log(
            f"{'reading the finished ones of' if finished_only else 'training'} {len(jobs)} models "
            f"({study.jobs} process(es), {study.threads} thread(s) each)"
        )
        results = _run_jobs(jobs, study.jobs, log, work_dir / "results" if work else None, train=not finished_only)
        # a study cut short (finished_only) keeps the rows of the models it has, each with its own seed count
        ablation_labels = {k: label for k, label in ablation_labels.items() if label in results}
        sweep_labels = {k: label for k, label in sweep_labels.items() if label in results}
        trained = {variant for variant, _ in ablation_labels}

        # ---- ablation table ------------------------------------------------------------------------
        readouts = run_config(main_world, main_conf, "cra", 0, study).eval.readouts
        runs = []
        for (variant, seed), label in ablation_labels.items():
            for split in SPLITS:
                for readout, row in results[label]["splits"][split].items():
                    runs.append(
                        {
                            "variant": variant,
                            "seed": seed,
                            "split": split,
                            "readout": readout,
                            "best_epoch": results[label]["best_epoch"],
                            "selected_on": results[label].get("selected_on"),
                            **row,
                        }
                    )
        if study.random_span:
            for seed in [s for s in study.seeds if ("cra", s) in ablation_labels]:
                answers = results[ablation_labels[("cra", seed)]]["answers"]
                rows = random_span_rows(main_world, answers, seed, readouts)
                for split in SPLITS:
                    for readout, row in rows[split].items():
                        runs.append(
                            {
                                "variant": RANDOM_SPAN,
                                "seed": seed,
                                "split": split,
                                "readout": readout,
                                "best_epoch": None,
                                "selected_on": None,
                                **row,
                            }
                        )
        summary = summarise(runs, ("variant", "split", "readout"), METRICS + FAITH + DIAG)
        order = [*(v for v in study.variants if v in trained), *([RANDOM_SPAN] if study.random_span else [])]

        # ---- sweep ---------------------------------------------------------------------------------
        sweep_runs = []
        for (axis, strength, variant, seed), label in sweep_labels.items():
            for split in SPLITS:
                row = results[label]["splits"][split][study.readout]
                sweep_runs.append(
                    {
                        "axis": axis,
                        "strength": strength,
                        "variant": variant,
                        "seed": seed,
                        "split": split,
                        **{c: row[c] for c in METRICS + FAITH},
                    }
                )
        sweep_summary = summarise(sweep_runs, ("axis", "strength", "variant", "split"), METRICS + FAITH)

        # ---- preconditions, references, gap closed ------------------------------------------------------
        from cra.synthetic import load_truth, uniform_mass

        checks, gap, reader_rows = [], [], {}
        if {"ceiling", "blind"} <= trained:
            checks = preconditions(summary, study.readout, 100 * uniform_mass(load_truth(main_world, "test-ood")))
        if {"ceiling", study.plain} <= trained:
            gap = gap_closed(summary, study.readout, [v for v in study.variants if v in trained], study.plain)
        reader_rows = readers(main_world, SPLITS)

        wall = time.perf_counter() - start
        meta = {
            "command_mode": study.mode,
            "study": public,
            "world": asdict(study.world_config()),
            "readout": study.readout,
            "variants": {v: VARIANTS[v].doc for v in study.variants},
            "variant_settings": variant_settings(study.variants),
            "selection": "checkpoint of the best val-ood Acc@QA (runs.csv: selected_on)",
            "random_span": "uniform random spans (two frames, sorted) with CRA's answers of the same seed",
            "models_trained": len(results),
            "partial": None
            if len(results) == len(jobs)
            else {
                "models_finished": len(results),
                "models_planned": len(jobs),
                "seeds": {v: [s for s in study.seeds if (v, s) in ablation_labels] for v in study.variants},
            },
            "wall_seconds": round(wall, 1),
            "torch": torch.__version__,
            "run_config_example": run_config_dict(main_world, main_conf, study),
        }
        from cra.readouts import WINDOW_CONVENTION  # so that results of another window convention are recognisable

        meta["window_convention"] = WINDOW_CONVENTION["window"]
        atomic_write_bytes(out / "runs.csv", csv_bytes(runs))
        atomic_write_bytes(out / "results.csv", csv_bytes(summary))
        atomic_write_bytes(
            out / "results.json",
            json_bytes(
                {
                    "meta": meta,
                    "summary": summary,
                    "runs": runs,
                    "preconditions": checks,
                    "gap": gap,
                    "readers": reader_rows,
                }
            ),
        )
        atomic_write_bytes(out / "sweep.csv", csv_bytes(sweep_summary, SWEEP_COLUMNS))
        atomic_write_bytes(out / "sweep.json", json_bytes({"meta": meta, "summary": sweep_summary, "runs": sweep_runs}))
        save_figure(plot_ablation(summary, study.readout, order), out / "ablation.png")
        save_figure(plot_sweep(sweep_summary, study.sweep_axes, study.sweep_variants), out / "sweep.png")
        log(
            "\npreconditions:\n"
            + (format_preconditions(checks) if checks else "  (need the ceiling and blind variants)")
        )
        if gap:
            log("\ngap closed (test-ood Acc@QA):\n" + format_gap(gap, study.plain, reader_rows))
        log(f"\nablation, read-out {study.readout} (mean ± std over seeds {study.seeds}; percent):")
        log(format_table(summary, study.readout, order))
        log("\nsweep (read-out " + study.readout + "):")
        log(format_sweep(sweep_summary))
        log(f"\nwrote {', '.join(OUTPUT_FILES)} to {out}; {len(results)} of {len(jobs)} models; wall time {wall:.1f} s")
        return {
            "summary": summary,
            "runs": runs,
            "sweep": sweep_summary,
            "sweep_runs": sweep_runs,
            "meta": meta,
            "preconditions": checks,
            "gap": gap,
            "readers": reader_rows,
        }
    finally:
        if not keep_work and work is None:
            shutil.rmtree(work_dir, ignore_errors=True)


def variant_settings(variants) -> dict:
    """Each variant's layers, run-config items and world items (what the saved-results check compares)."""
    return {
        v: {
            "layers": list(VARIANTS[v].layers),
            "sets": list(VARIANTS[v].sets),
            "world": {k: x for k, x in VARIANTS[v].world},
            "blind": VARIANTS[v].blind,
        }
        for v in variants
    }


def run_config_dict(world: Path, conf: Path, study: StudyConfig) -> dict:
    from cra.config import to_dict

    values = to_dict(run_config(world, conf, "cra", study.seeds[0], study))
    values["data"]["root"] = "<world>"
    values["data"]["confounders"] = "<world>/confounders.pt"
    return values
