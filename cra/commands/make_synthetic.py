"""``python -m cra make-synthetic``: write a synthetic, confounded VideoQG world in the NExT-GQA layout.

The world's parameters (:class:`~cra.synthetic.WorldConfig`) are layered like a run config: the
defaults, then each ``--config`` (a YAML file or a packaged world layer such as ``ceiling``, from
``cra/configs/worlds``), then each ``--set key=value`` (parsed as YAML). An unknown key or a bad value
is an error that names it and lists the valid keys. After writing, the command prints the
confounding measured from the written files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cra.cli import add_set_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (created; must be empty or a previous world)"
    )
    parser.add_argument(
        "--seed", type=int, required=True, help="world seed: the output is a deterministic function of it"
    )
    parser.add_argument(
        "--config",
        dest="layers",
        action="append",
        default=[],
        metavar="NAME_OR_YAML",
        help="world layer on top of the defaults (repeatable), e.g. ceiling (both confounders 0)",
    )
    add_set_argument(parser, "change a WorldConfig parameter (repeatable), e.g. --set lang_strength=0.5")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it holds a previous world")
    parser.add_argument("--quiet", action="store_true", help="do not print the measured confounding")


def run(args: argparse.Namespace) -> int:
    from cra import synthetic

    try:
        config = synthetic.WorldConfig.load(args.layers, args.overrides)
        if args.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {args.seed}")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        out = synthetic.make_world(args.out, args.seed, config, overwrite=args.overwrite)
    except FileExistsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(
        f"wrote synthetic world seed={args.seed} to {out} ({size / 1e6:.2f} MB; splits {', '.join(synthetic.SPLITS)})"
    )
    if not args.quiet:
        print("\nmeasured confounding (from the written files):")
        synthetic.print_confounding(out)
    return 0
