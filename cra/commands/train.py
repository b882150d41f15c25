"""``python -m cra train --config <name or yaml> [--config ...] [--set a.b=c ...] --run <folder>``.

Layers: ``base.yaml``, then each ``--config`` (a YAML path or a packaged name: ``nextgqa``,
``synthetic``, ``ablations/no_gsg``, ...), then each ``--set``; unknown keys are errors naming the
file. ``--resume`` continues the run in ``--run`` from its ``last.pt`` with the run's own saved
config (``--config`` and ``--set`` are then not allowed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cra.config import run_layer_names

    names = ", ".join(run_layer_names())
    parser.add_argument("--config", action="append", default=[], metavar="NAME_OR_YAML",
                        help=f"config layer on top of base (repeatable, in order); packaged: {names}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one key, e.g. train.epochs=2 (value parsed as YAML; repeatable)")
    parser.add_argument("--run", "--run-dir", dest="run", type=Path, required=True,
                        help="run folder (config.yaml, metrics.jsonl, checkpoints); under torchrun write --run-dir "
                             "(torchrun's own parser takes --run for its --run-path)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run from last.pt")
    parser.add_argument("--stop-after", type=int, default=None, metavar="N",
                        help="stop after N epochs of this call (as an interruption would; resume later)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args: argparse.Namespace) -> int:
    import yaml

    from cra.config import ConfigError, load_run_config, to_dict
    from cra.confounders import ConfounderFileError
    from cra.data import DataFormatError
    from cra.paths import DataNotFoundError
    from cra.run import read_run_config
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
    except (ConfigError, ValueError, DataFormatError, DataNotFoundError, ConfounderFileError, FileNotFoundError,
            FileExistsError) as err:
        print(f"train: error: {err}", file=sys.stderr)
        return 2
    trainer.fit(stop_after=args.stop_after)
    print(f"wrote {args.run / 'metrics.jsonl'}, {args.run / 'best.pt'}, {args.run / 'last.pt'}")
    return 0


def interrupted_hint(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves behind (printed by :func:`cra.cli.main` instead of a traceback)."""
    if (args.run / "last.pt").is_file():
        return f"Completed epochs are kept in {args.run / 'last.pt'}; continue with: python -m cra train --run {args.run} --resume"
    return f"No epoch was completed in {args.run}; start the run again."
