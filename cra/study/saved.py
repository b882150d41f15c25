"""Saved study results, loaded only when their settings are those the current code runs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from cra.study.plan import VARIANTS, study_config
from cra.study.report import json_bytes
from cra.study.run import run_config_dict, variant_settings

__all__ = ["StaleResultsError", "load_results"]


class StaleResultsError(ValueError):
    """Saved study files whose settings differ from what the current code would run."""


def _differences(saved, current, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        return [d for k in sorted(set(saved) | set(current), key=str)
                for d in _differences(saved.get(k, "<absent>"), current.get(k, "<absent>"), f"{prefix}{k}.")]
    return [] if saved == current else [f"{prefix.rstrip('.')}: saved {saved!r}, current code {current!r}"]


def load_results(folder: Path | str, overrides: Sequence[str] = ()) -> dict:
    """Read ``results.json`` and ``sweep.json`` written by :func:`cra.study.run.run_study` into ``folder``, after checking
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
    defined = study_config(meta["command_mode"], overrides).variants
    saved_variants = list(meta.get("study", {}).get("variants", defined))
    unknown = [v for v in saved_variants if v not in defined]
    if unknown:
        raise StaleResultsError(f"{folder}: saved variant(s) {unknown} are not variants of the current code")
    # a saved study may hold only some of the variants (a study that was cut short); the rest is checked in full
    study = study_config(meta["command_mode"], [*overrides, f"variants=[{','.join(saved_variants)}]"])
    current = {"study": {k: v for k, v in asdict(study).items() if k != "jobs"}, "world": asdict(study.world_config()),
               "readout": study.readout, "variants": {v: VARIANTS[v].doc for v in study.variants},
               "variant_settings": variant_settings(study.variants),
               "run_config_example": run_config_dict(Path("<world>"), Path("<world>/confounders.pt"), study)}
    current = json.loads(json_bytes(current))
    diffs = _differences({k: meta.get(k, "<absent>") for k in current}, current)
    if diffs:
        raise StaleResultsError(f"{folder}: saved with other settings than the current code's "
                                f"`--mode {meta['command_mode']}`; rerun the study. Differences:\n  " + "\n  ".join(diffs))
    results = loaded["results.json"]
    return {"summary": results["summary"], "runs": results["runs"], "sweep": loaded["sweep.json"]["summary"],
            "sweep_runs": loaded["sweep.json"]["runs"], "meta": meta, "preconditions": results.get("preconditions", []),
            "gap": results.get("gap", []), "readers": results.get("readers", {}),
            "missing": [v for v in defined if v not in saved_variants]}
