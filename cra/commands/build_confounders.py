"""``python -m cra build-confounders --config <yaml> [--set key=value ...]``: build Z_l and X_hat.

Reads QA csv files (semantic structure graphs -> text clusters ``Z_l``) and/or official-layout HDF5
frame features (-> visual clusters ``X_hat``), then writes one confounder file atomically and reads
it back. The output path is checked for writing first, before any encoding or clustering. ``--config`` is a
YAML file or the name of a packaged config (``cra/configs/confounders/``,
for example ``nextgqa_train``); its keys are those of :class:`cra.confounders.BuildConfig` and an
unknown key is an error. ``--set`` overrides a key (``--set text_clusters=64``,
``--set text_encoder.name=word``); values are parsed as YAML, layered by :mod:`cra.config`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cra.cli import add_set_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cra.confounders.config import PACKAGED_CONFIGS

    names = ", ".join(sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.yaml")))
    parser.add_argument("--config", required=True, help=f"YAML file, or a packaged config: {names}")
    add_set_argument(parser, "override a config key (dotted for text_encoder.*); repeatable")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def load_config(name_or_path: str, overrides: list[str]):
    """The :class:`~cra.confounders.BuildConfig` of ``--config`` and ``--set`` (see its loader)."""
    from cra.confounders import load_build_config

    return load_build_config(name_or_path, overrides)


def text_encoder_factory():
    """``cra.text.encoders.build_text_encoder``, imported only when text clusters are built."""
    try:
        from cra.text.encoders import build_text_encoder
    except ModuleNotFoundError as err:
        if err.name not in ("cra.text.encoders", "cra.text"):
            raise
        raise RuntimeError(
            "build-confounders needs the text-encoder interface cra.text.encoders "
            "(build_text_encoder(name, **kwargs) -> object with .encode(texts) -> (N, D) and .dim), "
            "which this checkout does not have. Use a checkout that includes it, or build only the "
            "visual clusters with --set qa_csv=[]"
        ) from err
    return build_text_encoder


def run(args: argparse.Namespace) -> int:
    from cra.confounders import build_confounders, describe, load_confounders, save_confounders
    from cra.paths import check_writable

    try:
        config = load_config(args.config, args.overrides)
        check_writable(config.out)  # before the encoding and clustering, not after
        factory = text_encoder_factory() if config.qa_csv else None
        result = build_confounders(config, factory, progress=not args.no_progress, log=print)
    except (ValueError, FileNotFoundError, RuntimeError) as err:  # bad config or input: no traceback
        print(f"build-confounders: error: {err}", file=sys.stderr)
        return 2
    out = save_confounders(Path(config.out), result)
    check = load_confounders(out, text_dim=result.text_dim, visual_dim=result.visual_dim)
    print(describe(check))
    print(f"wrote {out}")
    return 0
