"""``python -m cra train --config <name or yaml> [--config ...] [--set a.b=c ...] --run <folder>``.

Layers: ``base.yaml``, then each ``--config`` (a YAML path or a packaged name: ``nextgqa``,
``synthetic``, ``ablations/no_gsg``, ...), then each ``--set``; unknown keys are errors naming the
file. ``--resume`` continues the run in ``--run`` from its ``last.pt`` with the run's own saved
config (``--config`` and ``--set`` are then not allowed).

The run folder is locked while training (``train.lock``: a second ``train`` on it is refused,
naming the holder); ``last.pt`` is each epoch's one commit, and ``--resume`` checks its history and
repairs ``metrics.jsonl`` / ``best.pt`` after a stop between writes (:mod:`cra.runfolder`). Exit
status: 0 done, 2 bad input or a busy folder (nothing written), 1 a write failed (disk full: the run
stays consistent up to the last committed epoch), 130 Ctrl-C (the hint says how to resume).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cra.cli import add_set_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cra.config import run_layer_names

    names = ", ".join(run_layer_names())
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME_OR_YAML",
        help=f"config layer on top of base (repeatable, in order); packaged: {names}",
    )
    add_set_argument(parser, "override one key, e.g. train.epochs=2 (value parsed as YAML; repeatable)")
    parser.add_argument(
        "--run",
        "--run-dir",
        dest="run",
        type=Path,
        required=True,
        help="run folder (config.yaml, metrics.jsonl, checkpoints); under torchrun write --run-dir "
        "(torchrun's own parser takes --run for its --run-path)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --run from last.pt")
    parser.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="N",
        help="stop after N epochs of this call (as an interruption would; resume later)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args: argparse.Namespace) -> int:
    import yaml

    from cra.config import ConfigError, load_run_config, to_dict
    from cra.confounders import ConfounderFileError
    from cra.data import DataFormatError
    from cra.paths import DataNotFoundError
    from cra.run import read_run_config
    from cra.runfolder import RunFolderBusy, RunWriteError
    from cra.train import Trainer

    try:
        if args.resume:
            if args.config or args.overrides:
                raise ConfigError("--resume uses the run's saved config.yaml; leave out --config and --set")
            config, sources = read_run_config(args.run), [str(args.run / "config.yaml")]
        else:
            config, sources = load_run_config(args.config, args.overrides)
        if args.print_config:
            print(f"# layers: {', '.join(sources)}")
            print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
            return 0
        trainer = Trainer.from_config(config, args.run, resume=args.resume)
    except (
        ConfigError,
        ValueError,
        DataFormatError,
        DataNotFoundError,
        ConfounderFileError,
        FileNotFoundError,
        FileExistsError,
        RunFolderBusy,
    ) as err:
        print(f"train: error: {err}", file=sys.stderr)
        return 2
    except RunWriteError as err:  # a repair on --resume could not be written
        print(f"train: error: {write_failed(err, args.run, None)}", file=sys.stderr)
        return 1
    except OSError as err:  # the run folder cannot be made (permissions)
        print(f"train: error: {err}", file=sys.stderr)
        return 1
    try:
        trainer.fit(stop_after=args.stop_after)
    except RunWriteError as err:  # disk full, permissions; writes are atomic: nothing is half-written
        print(f"train: error: {write_failed(err, args.run, trainer.committed)}", file=sys.stderr)
        return 1
    if trainer.written:
        print(f"wrote {', '.join(str(p) for p in trainer.written)}")
    else:
        print(f"nothing to do: {args.run / 'last.pt'} already holds all {trainer.epoch} epochs")
    return 0


def write_failed(err, run: Path, committed: int | None) -> str:
    """The message for a write that failed (``committed``: the epoch last.pt holds; ``None``: unchanged)."""
    text = f"could not write {err.filename}: {err.strerror}. Nothing was half-written; "
    if committed is None:
        return text + f"{run / 'last.pt'} is unchanged. Free space (or fix the folder) and run the same command again"
    if committed:
        return text + (
            f"{run / 'last.pt'} holds epoch {committed}. Free space (or fix the folder) and continue with: "
            f"python -m cra train --run {run} --resume"
        )
    return text + "no epoch was committed: fix the cause and start the run again"


def interrupted_hint(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves behind (printed by :func:`cra.cli.main` instead of a traceback)."""
    if (args.run / "last.pt").is_file():
        last = args.run / "last.pt"
        return f"Completed epochs are kept in {last}; continue with: python -m cra train --run {args.run} --resume"
    return f"No epoch was completed in {args.run}; start the run again."
