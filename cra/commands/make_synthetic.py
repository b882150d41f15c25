"""``python -m cra make-synthetic``: write a synthetic, confounded VideoQG world in the NExT-GQA layout.

``--set key=value`` (repeatable) changes a :class:`~cra.data.synthetic.WorldConfig` parameter; an
unknown key or a bad value is an error that lists the valid keys. After writing, the command prints
the confounding measured from the written files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; must be empty or a previous world)")
    parser.add_argument("--seed", type=int, required=True, help="world seed: the output is a deterministic function of it")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change a WorldConfig parameter (repeatable), e.g. --set lang_strength=0.5")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it holds a previous world")
    parser.add_argument("--quiet", action="store_true", help="do not print the measured confounding")


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{k: v}``; raises ValueError on an item without '=' or a repeated key."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        if key in out:
            raise ValueError(f"--set {key} given twice")
        out[key] = value.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from cra.data import synthetic

    try:
        config = synthetic.WorldConfig().with_overrides(parse_overrides(args.overrides))
        if args.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {args.seed}")
    except (KeyError, ValueError, TypeError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    try:
        out = synthetic.make_world(args.out, args.seed, config, overwrite=args.overwrite)
    except FileExistsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote synthetic world seed={args.seed} to {out} ({size / 1e6:.2f} MB; splits {', '.join(synthetic.SPLITS)})")
    if not args.quiet:
        print("\nmeasured confounding (from the written files):")
        synthetic.print_confounding(out)
    return 0
