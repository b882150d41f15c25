"""Saved study results, loaded only when their settings are those the current code runs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from cra.config import RunConfig, to_dict
from cra.study.plan import study_config
from cra.study.report import json_bytes
from cra.study.run import run_config_dict, variant_settings

__all__ = ["StaleResultsError", "load_results"]


class StaleResultsError(ValueError):
    """Saved study files whose settings differ from what the current code would run."""


_NO_DEFAULT = "<no default>"


def _differences(saved, current, prefix: str = "", default=_NO_DEFAULT) -> list[str]:
    """Every setting whose saved and current values differ. ``default``: the run config's defaults; a run
    setting the saved results do not record (an option added later) is not a difference while the
    current code leaves it at its default, which by construction is the behaviour before the option."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [
            d
            for k in sorted(set(saved) | set(current), key=str)
            for d in _differences(
                saved.get(k, "<absent>"),
                current.get(k, "<absent>"),
                f"{prefix}{k}.",
                default.get(k, _NO_DEFAULT) if isinstance(default, dict) else _NO_DEFAULT,
            )
        ]
    if saved == "<absent>" and default != _NO_DEFAULT and current == default:
        return []
    return [] if saved == current else [f"{prefix.rstrip('.')}: saved {saved!r}, current code {current!r}"]


def _warn_if_other_readout_convention(folder: Path, meta: dict) -> None:
    """Results saved before the read-out conventions were unified (issue 13) carry no
    ``window_convention``: their ``window``/``merge`` rows used the frame-times window, all read-outs
    float32. They still load (the settings check is about training), with this warning."""
    import warnings

    from cra.readouts import WINDOW_CONVENTION

    saved = meta.get("window_convention", "frame_times (not recorded)")
    if saved != WINDOW_CONVENTION["window"]:
        warnings.warn(
            f"{folder}: saved with the {saved} window convention, not the current "
            f"{WINDOW_CONVENTION['window']!r} of cra.readouts: its 'window' and 'merge' rows are not what "
            "the current code computes; rerun the study to refresh them",
            stacklevel=3,
        )


def _effective_amp(run: dict) -> None:
    """On the CPU ``train.amp`` "auto" means "off" (:func:`cra.run.autocast_settings`): write it so, so
    that results saved when "auto" was the default compare equal to the float32 default of now."""
    train = run.get("train") if isinstance(run, dict) else None
    if isinstance(train, dict) and train.get("device") == "cpu" and train.get("amp") == "auto":
        train["amp"] = "off"


def load_results(folder: Path | str, overrides: Sequence[str] = ()) -> dict:
    """Read ``results.json`` and ``sweep.json`` written by :func:`cra.study.run.run_study` into ``folder``,
    after checking
    that their settings are those the current code runs for the saved mode (and ``overrides``): the
    study settings, the world's parameters, the variants and the run config of CRA. Returns
    ``{"summary", "runs", "sweep", "sweep_runs", "meta", ..., "missing"}`` like :func:`~cra.study.run.run_study`
    (``missing``: variants of the current code that the saved study does not hold; every other setting must
    match); raises
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
    _warn_if_other_readout_convention(folder, meta)
    defined = study_config(meta["command_mode"], overrides).variants
    saved_variants = list(meta.get("study", {}).get("variants", defined))
    unknown = [v for v in saved_variants if v not in defined]
    if unknown:
        raise StaleResultsError(f"{folder}: saved variant(s) {unknown} are not variants of the current code")
    # a saved study may hold only some of the variants (a study that was cut short); the rest is checked in full
    study = study_config(meta["command_mode"], [*overrides, f"variants=[{','.join(saved_variants)}]"])
    current = {
        "study": {k: v for k, v in asdict(study).items() if k != "jobs"},
        "world": asdict(study.world_config()),
        "readout": study.readout,
        "run_config_example": run_config_dict(Path("<world>"), Path("<world>/confounders.pt"), study),
    }
    current = json.loads(json_bytes(current))
    run_defaults = json.loads(json_bytes(to_dict(RunConfig())))
    saved = {k: meta.get(k, "<absent>") for k in current}
    for run in (saved["run_config_example"], current["run_config_example"]):
        _effective_amp(run)
    diffs = _differences(saved, current, default={"run_config_example": run_defaults})
    if diffs:
        raise StaleResultsError(
            f"{folder}: saved with other settings than the current code's "
            f"`--mode {meta['command_mode']}`; rerun the study. Differences:\n  " + "\n  ".join(diffs)
        )
    # each variant's own settings (its layers and --set values) are checked one by one: a variant whose
    # settings changed since is left out of what is returned (listed under "stale" with its differences)
    settings, saved_settings = (
        json.loads(json_bytes(variant_settings(study.variants))),
        meta.get("variant_settings", {}),
    )
    stale = {
        v: d
        for v in study.variants
        if (
            d := _differences(
                saved_settings.get(v, "<absent>"), settings[v], f"{v}.", default={"run_config": run_defaults}
            )
        )
    }
    results = loaded["results.json"]
    fresh = lambda rows: [r for r in rows if r.get("variant") not in stale]  # noqa: E731
    return {
        "summary": fresh(results["summary"]),
        "runs": fresh(results["runs"]),
        "sweep": loaded["sweep.json"]["summary"],
        "sweep_runs": loaded["sweep.json"]["runs"],
        "meta": meta,
        "preconditions": results.get("preconditions", []),
        "gap": fresh(results.get("gap", [])),
        "readers": results.get("readers", {}),
        "missing": [v for v in defined if v not in saved_variants or v in stale],
        "stale": stale,
    }
