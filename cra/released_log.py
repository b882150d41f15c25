"""Parse the CRA authors' released Temp[CLIP] training log (``cra_released/tempclip_info.log``).

The file (not downloadable; see :mod:`cra.released`) is a JSON run configuration followed by one block
per epoch::

    #################### Epoch 12/30 ... ####################
    | mean acc | mean total_loss | mean align_loss | ... |     <- a grid table of training means
    Val Set   mean acc: 60.07%
    ================ val_pre-hoc ================
    Acc&GQA  FR  mIoP  TIoP@0.3  TIoP@0.5  mIoU  TIoU@0.3  TIoU@0.5
    14.9     24.9 24.6 ...
    ... val_post-hoc, val_merge, then "Test Set" and test_pre-hoc / test_post-hoc / test_merge

The training table's columns, as the released code fills them (``utils/stat/monitor.py`` and
``pipeline/cra_pipeline.py`` at aaf4da4; :data:`TRAIN_COLUMNS`): ``mean acc`` and ``mean total_loss`` are
reset at the start of every epoch; ``mean vq_loss``, ``mean vqa_loss`` and ``mean ag_loss`` are never
reset, so each is a running mean over *all* steps since the first epoch; ``mean ag_loss`` is the CMA
term (VQ + VQA InfoNCE, before its weight 0.5); ``mean align_loss`` is reset but nothing writes it, so
it reads 0 in every epoch. :meth:`ReleasedLog.epoch_losses` recovers per-epoch means (every epoch has
the same number of steps) and checks total = vq + vqa + 0.5 x ag.

Metric names are mapped to this package's (``Acc&GQA`` -> ``Acc@GQA``, ``TIoP@0.3`` -> ``IoP@0.3``, ...);
``FR`` (= Acc@GQA / Acc@QA x 100) is kept. Read-outs are named as in :mod:`cra.readouts`: ``pre-hoc`` ->
``window``, ``post-hoc`` -> ``posthoc``, ``merge`` -> ``merge``. An epoch whose block is cut off (the
released log stops at the header of epoch 14) is reported in ``ReleasedLog.incomplete``, never
half-read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cra import paths

LOG_FILE = "cra_released/tempclip_info.log"
METRIC_NAMES = {
    "Acc&GQA": "Acc@GQA",
    "FR": "FR",
    "mIoP": "mIoP",
    "TIoP@0.3": "IoP@0.3",
    "TIoP@0.5": "IoP@0.5",
    "mIoU": "mIoU",
    "TIoU@0.3": "IoU@0.3",
    "TIoU@0.5": "IoU@0.5",
}
READOUT_NAMES = {"pre-hoc": "window", "post-hoc": "posthoc", "merge": "merge"}
SPLITS = ("val", "test")

#: Training-table column -> (what it holds, how the released monitor keeps it).
TRAIN_COLUMNS = {
    "mean acc": ("training answer accuracy (fraction)", "per epoch"),
    "mean total_loss": ("the loss that was minimised", "per epoch"),
    "mean vq_loss": ("cross-entropy of the VQ pass", "running mean since epoch 1"),
    "mean vqa_loss": ("cross-entropy of the VQA pass", "running mean since epoch 1"),
    "mean ag_loss": (
        "CMA: InfoNCE of the VQ pass + of the VQA pass (weight 0.5 in the total)",
        "running mean since epoch 1",
    ),
    "mean align_loss": ("nothing: reset every epoch, never written", "always 0"),
}

_EPOCH = re.compile(r"^#+ Epoch (\d+)/(\d+) \.\.\. #+$")
_SET_ACC = re.compile(r"^(Val|Test) Set\s+mean acc:\s*([0-9.]+)%$")
_READOUT = re.compile(r"^=+ (val|test)_(pre-hoc|post-hoc|merge) =+$")


class LogFormatError(ValueError):
    """The log does not have the documented layout (the message names the file and line)."""


@dataclass
class LogEpoch:
    """One complete epoch: training means, Acc@QA per split and the grounding table per (split, read-out)."""

    epoch: int
    train: dict[str, float]  # "mean acc" (a fraction), "mean total_loss", ...
    acc_qa: dict[str, float]  # split -> Acc@QA (percent)
    grounding: dict[tuple[str, str], dict[str, float]]  # (split, read-out) -> metric -> percent

    def row(self, split: str, readout: str) -> dict[str, float]:
        """Acc@QA and the grounding metrics of one split and read-out (percent)."""
        return {"Acc@QA": self.acc_qa[split], **self.grounding[(split, readout)]}


@dataclass
class ReleasedLog:
    path: Path
    config: dict  # the run configuration printed at the top
    config_repairs: list[str]  # what had to be removed to read the configuration as JSON
    epochs_planned: int
    epochs: list[LogEpoch] = field(default_factory=list)
    incomplete: list[int] = field(default_factory=list)  # epochs whose block is cut off

    def epoch(self, number: int) -> LogEpoch:
        for e in self.epochs:
            if e.epoch == number:
                return e
        raise KeyError(f"{self.path}: no complete epoch {number}; complete: {[e.epoch for e in self.epochs]}")

    def epoch_losses(self) -> dict[int, dict[str, float]]:
        r"""Per-epoch training means {epoch: {"total", "ce_vq", "ce_vqa", "cma", "residual"}}.

        The running columns are undone with $m_n = n\,c_n - (n-1)\,c_{n-1}$ ($c_n$: the logged running
        mean after epoch n; equal steps per epoch). ``residual`` = total - (ce_vq + ce_vqa + g x cma) with
        g = the config's ``optim.loss.align.g``; it is 0 up to the log's 4-decimal rounding, which the
        undoing multiplies by about 2n."""
        numbers = [e.epoch for e in self.epochs]
        if numbers != list(range(1, len(numbers) + 1)):
            raise LogFormatError(f"{self.path}: per-epoch losses need complete epochs 1, 2, ...; got {numbers}")
        weight = float(self.config.get("optim", {}).get("loss", {}).get("align", {}).get("g", 0.5))
        out, previous = {}, None
        for e in self.epochs:
            missing = [c for c in TRAIN_COLUMNS if c not in e.train]
            if missing:
                raise LogFormatError(f"{self.path}: epoch {e.epoch}: training table lacks {missing}")
            n = e.epoch
            running = {k: e.train[f"mean {c}_loss"] for k, c in (("ce_vq", "vq"), ("ce_vqa", "vqa"), ("cma", "ag"))}
            row = {k: v if previous is None else n * v - (n - 1) * previous[k] for k, v in running.items()}
            row["total"] = e.train["mean total_loss"]
            row["residual"] = row["total"] - (row["ce_vq"] + row["ce_vqa"] + weight * row["cma"])
            out[n], previous = row, running
        return out

    def best_epoch(self, split: str = "val") -> LogEpoch:
        """The epoch with the highest Acc@QA on ``split`` (the released code's monitor is val accuracy;
        the first one on ties). Selecting on ``test`` is shown only to expose test-set selection."""
        return max(self.epochs, key=lambda e: (e.acc_qa[split], -e.epoch))


def _numbers(line: str, path: Path, lineno: int) -> list[float]:
    try:
        return [float(x) for x in line.split()]
    except ValueError:
        raise LogFormatError(f"{path}:{lineno}: expected a row of numbers, got {line.strip()!r}") from None


def _config(lines: list[str], path: Path) -> tuple[dict, list[str], int]:
    """The JSON configuration between the banner and the first epoch; returns (config, repairs, next line)."""
    start = next((i for i, line in enumerate(lines) if line.startswith("{")), None)
    end = next((i for i, line in enumerate(lines) if _EPOCH.match(line.strip())), None)
    if start is None or end is None or end < start:
        raise LogFormatError(f"{path}: expected a JSON configuration followed by '#### Epoch n/N ... ####' blocks")
    text, repairs = "\n".join(lines[start:end]), []
    while True:
        try:
            return json.loads(text), repairs, end
        except json.JSONDecodeError as err:
            # the released file has stray characters after a closing brace ("},1 "): drop them, say so
            bad = re.compile(r"\},[ \t]*([^\s\"{}\[\],]+)[ \t]*$", re.M).search(text)
            if bad is None or len(repairs) > 3:
                raise LogFormatError(f"{path}: configuration is not JSON ({err})") from None
            lineno = start + text[: bad.start()].count("\n") + 1
            repairs.append(f"line {lineno}: removed stray {bad.group(1)!r} after '}},'")
            text = text[: bad.start()] + "}," + text[bad.end() :]


def _train_table(lines: list[str], path: Path, first: int) -> dict[str, float]:
    rows = [(i, line) for i, line in enumerate(lines) if line.startswith("|")]
    if len(rows) != 2:
        raise LogFormatError(f"{path}:{first + 1}: expected a training table of one header and one value row")
    header = [c.strip() for c in rows[0][1].strip("|").split("|")]
    values = _numbers(rows[1][1].replace("|", " "), path, first + rows[1][0] + 1)
    if len(header) != len(values):
        raise LogFormatError(f"{path}:{first + rows[1][0] + 1}: {len(values)} values for {len(header)} columns")
    return dict(zip(header, values))


def _epoch_block(number: int, lines: list[str], path: Path, first: int) -> LogEpoch | None:
    """Parse one epoch's lines (``first``: index of its first line in the file); None if cut off."""
    train_lines, acc_qa, grounding = [], {}, {}
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        lineno = first + i + 1
        if line.startswith("|"):
            train_lines.append(line)
        elif m := _SET_ACC.match(line):
            acc_qa[m.group(1).lower()] = float(m.group(2))
        elif m := _READOUT.match(line):
            if i + 2 >= len(lines):
                return None
            header = lines[i + 1].split()
            values = _numbers(lines[i + 2], path, lineno + 2)
            unknown = [h for h in header if h not in METRIC_NAMES]
            if unknown or len(header) != len(values):
                raise LogFormatError(
                    f"{path}:{lineno + 1}: expected columns {list(METRIC_NAMES)} with one value each, "
                    f"got {header} and {len(values)} values"
                )
            grounding[(m.group(1), READOUT_NAMES[m.group(2)])] = {METRIC_NAMES[h]: v for h, v in zip(header, values)}
            i += 2
        elif line and not line.startswith("+"):
            raise LogFormatError(f"{path}:{lineno}: unexpected line in epoch {number}: {line!r}")
        i += 1
    expected = {(s, r) for s in SPLITS for r in READOUT_NAMES.values()}
    if set(acc_qa) != set(SPLITS) or set(grounding) != expected or not train_lines:
        return None
    return LogEpoch(number, _train_table(train_lines, path, first), acc_qa, grounding)


def parse_training_log(path: Path | str | None = None) -> ReleasedLog:
    """Read the released Temp[CLIP] log (default ``$CRA_DATA_DIR/cra_released/tempclip_info.log``)."""
    path = Path(path) if path is not None else paths.data_file(LOG_FILE)
    lines = path.read_text(encoding="utf-8").splitlines()
    config, repairs, i = _config(lines, path)
    starts = [(j, _EPOCH.match(lines[j].strip())) for j in range(i, len(lines))]
    starts = [(j, int(m.group(1)), int(m.group(2))) for j, m in starts if m]
    log = ReleasedLog(path, config, repairs, epochs_planned=starts[0][2])
    for (j, number, _), nxt in zip(starts, [s[0] for s in starts[1:]] + [len(lines)]):
        block = _epoch_block(number, lines[j + 1 : nxt], path, j + 1)
        if block is None:
            log.incomplete.append(number)
        else:
            log.epochs.append(block)
    if not log.epochs:
        raise LogFormatError(f"{path}: no complete epoch block")
    return log
