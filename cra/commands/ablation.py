"""``python -m cra ablation --out <dir> [--mode fast|full] [--set k=v ...]``: the CRA ablation study and
the confounder-strength sweep on the synthetic world (:mod:`cra.study`).

Settings: :class:`cra.study.StudyConfig`, layered by :mod:`cra.config` like every config: its
defaults, the mode's layer ``cra/configs/study/<mode>.yaml``, then ``--set`` items:
``world.<WorldConfig key>`` (split sizes; the causal parameters stay the documented defaults unless
you change them), ``data.|model.|train.|eval.<key>`` (the run config of every trained model, e.g.
``train.epochs=3``), or a study setting (``seeds=[0,1]``, ``variants=[posthoc,cra]``,
``sweep_strengths=[0.0,0.8]``, ``jobs=2``, ``threads=1``, ``clusters=16``, ``readout=posthoc``).
Values are YAML; an unknown key or a value of the wrong type is an error naming the ``--set``.

Fast mode (the default, used by the book): ``python -m cra ablation --out runs/ablation-fast --set jobs=2``
trains 55 small models (18 variants x 3 seeds on a 1,000-video world of subject questions, plus the
sweep); measured: 15.5 minutes for 52 of them with two processes on a shared 2-core machine
(data_samples/README.md).

Full mode: ``python -m cra ablation --out runs/ablation-full --mode full --set jobs=2`` uses 2,000
training videos, 15 epochs, 5 seeds and three sweep axes (both, language only, visual only) x 6
strengths x 2 seeds: 148 models, about 165 s each with two processes on two cores (measured on the
first 15), so some 3.4 hours in all (an estimate: the one complete run, in ``data_samples/ablation_full``,
was resumed in pieces beside other jobs, so its total is no clean measure). ``--work DIR`` keeps every
trained model, so an interrupted run resumes where it stopped; models are trained seed by seed, and
``--finished-only`` writes the tables of those finished so far.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cra.cli import add_set_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cra.runmode import MODES  # one layer each: cra/configs/study/<mode>.yaml

    parser.add_argument(
        "--out", type=Path, required=True, help="folder for results.csv/json, runs.csv, sweep.csv/json, *.png"
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="fast: small world, 3 seeds, 4 sweep strengths (default: $CRA_BOOK_MODE, else fast); "
        "full: default world sizes, 5 seeds, 15 epochs, 3 sweep axes x 6 strengths x 2 seeds",
    )
    add_set_argument(parser, "world.<key>=v, <data|model|train|eval>.<key>=v or a study setting (repeatable)")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep worlds, dictionaries, checkpoints and finished models' scores in this folder (default: a "
        "temporary one, removed); a rerun with the same --work resumes, reading finished models back",
    )
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="train nothing: write the tables of the models finished so far in --work (results.json's "
        "meta.partial says what is missing), to commit a long study's results as they come",
    )


def run(args: argparse.Namespace) -> int:
    from cra.paths import check_writable
    from cra.runmode import book_mode
    from cra.study import run_study, study_config

    try:
        study = study_config(args.mode or book_mode(), args.overrides)
        for folder in (args.out, args.work):  # before training anything
            if folder is not None:
                check_writable(folder, folder=True)
        if args.finished_only and args.work is None:
            raise ValueError("--finished-only reads the finished models of a --work folder; give --work")
    except ValueError as err:  # a ConfigError, a bad $CRA_BOOK_MODE, an unwritable --out or --work
        print(f"ablation: error: {err}", file=sys.stderr)
        return 2
    run_study(args.out, study, work=args.work, keep_work=args.work is not None, finished_only=args.finished_only)
    return 0
