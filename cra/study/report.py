"""The study's files and printed tables: csv and json bytes (written atomically by :mod:`cra.study.run`),
and plain-text tables of the summaries."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Mapping, Sequence

from cra.paths import atomic_write_bytes
from cra.study.plan import FAITH, METRICS, SPLITS

__all__ = ["OUTPUT_FILES", "SWEEP_COLUMNS", "format_table", "format_sweep", "csv_bytes", "json_bytes", "save_figure"]

#: The files a study writes into its output folder.
OUTPUT_FILES = ("results.csv", "results.json", "runs.csv", "sweep.csv", "sweep.json", "ablation.png", "sweep.png")
#: The columns of ``sweep.csv`` (also when the sweep is empty).
SWEEP_COLUMNS = (
    "axis",
    "strength",
    "variant",
    "split",
    "seeds",
    *(f"{c}_{s}" for c in METRICS + FAITH for s in ("mean", "std")),
)


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float):
        return None if math.isnan(x) else round(x, 4)
    return x


def csv_bytes(rows: Sequence[Mapping], columns: Sequence[str] = ()) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: ("" if isinstance(v, float) and math.isnan(v) else f"{v:.4f}" if isinstance(v, float) else v)
                for k, v in row.items()
            }
        )
    return buffer.getvalue().encode()


def json_bytes(obj) -> bytes:
    return (json.dumps(_clean(obj), indent=1) + "\n").encode()


def save_figure(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def format_table(
    summary: Sequence[Mapping], readout: str, order: Sequence[str], columns: Sequence[str] = METRICS + FAITH
) -> str:
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
                cells.append(
                    "nan"
                    if m is None or math.isnan(m)
                    else f"{m:.1f}" + ("" if s is None or math.isnan(s) else f"±{s:.1f}")
                )
            lines.append(cells)
    widths = [max(len(line[j]) for line in lines) for j in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)


def format_sweep(summary: Sequence[Mapping]) -> str:
    lines = [
        ["axis", "strength", "variant", "split", "seeds", "Acc@QA", "Acc@GQA", "mIoP", "follows_word", "follows_scene"]
    ]
    for r in sorted(summary, key=lambda r: (r["axis"], r["strength"], r["variant"], r["split"])):
        cells = [r["axis"], f"{r['strength']:.2f}", r["variant"], r["split"], str(r["seeds"])]
        for c in ("Acc@QA", "Acc@GQA", "mIoP", "follows_word", "follows_scene"):
            m, s = r[f"{c}_mean"], r[f"{c}_std"]
            cells.append("nan" if math.isnan(m) else f"{m:.1f}" + ("" if math.isnan(s) else f"±{s:.1f}"))
        lines.append(cells)
    widths = [max(len(line[j]) for line in lines) for j in range(len(lines[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)
