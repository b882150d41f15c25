"""The command line, ``python -m cra <command>``.

Each command is a module with ``add_arguments(parser)`` and ``run(args) -> int``; the table below
names them, so adding a command is one line here plus its module. Ctrl-C ends a command with exit
status 130 and one line instead of a traceback; a module's optional ``interrupted_hint(args) -> str``
says there what was kept and how to resume. A command's module is imported
only when it runs, which keeps ``python -m cra --help`` fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command name -> (module implementing it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("cra.commands.info", "show the version, the data location and what data is present"),
    "download": ("cra.commands.download", "fetch the official NExT-GQA annotations (sha256-checked)"),
    "evaluate": ("cra.commands.evaluate", "score grounded-QA predictions with the official NExT-GQA metrics"),
    "build-confounders": (
        "cra.commands.build_confounders",
        "build the confounder dictionaries Z_l and X_hat (k-means)",
    ),
    "bias-report": (
        "cra.commands.bias_report",
        "language shortcuts (entity -> answer) in the NExT-GQA val/test questions",
    ),
    "make-synthetic": (
        "cra.commands.make_synthetic",
        "write a synthetic confounded VideoQG world in the NExT-GQA layout",
    ),
    "train": ("cra.commands.train", "train CRA from layered YAML configs (metrics.jsonl, best.pt, last.pt; --resume)"),
    "predict": ("cra.commands.predict", "write a trained run's predictions in the official NExT-GQA formats"),
    "extract-features": (
        "cra.commands.extract_features",
        "decode videos, sample frames as NExT-GQA does, write CLIP features (HDF5)",
    ),
    "ablation": (
        "cra.commands.ablation",
        "the CRA ablation study and confounder-strength sweep on the synthetic world",
    ),
}


def positive_int(text: str) -> int:
    """argparse ``type`` for counts (``--seeds 3``): an integer >= 1, else a usage error naming the value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def add_set_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``: the one form of every command's overrides,
    parsed by :mod:`cra.config` (the value as YAML)."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def _overview() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cra", description="CRA: video question grounding")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        _overview().parse_args(argv)  # prints help, or an error naming the valid commands, and exits
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"python -m cra {name}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C: a line saying what happened and how to go on, no traceback
        hint = getattr(module, "interrupted_hint", None)
        print(f"\npython -m cra {name}: interrupted (Ctrl-C).{' ' + hint(args) if hint else ''}", file=sys.stderr)
        return 130
