r"""The CRA ablation study and the confounder-strength sweep on the synthetic world.

What it does (``python -m cra ablation --out <dir> [--mode fast|full] [--set k=v]``):

1. Writes the synthetic world (:mod:`cra.synthetic`, the documented default parameters; only the
   split sizes differ in fast mode) and builds its confounder dictionaries ``Z_l`` and ``X_hat`` from
   the **train split** with :mod:`cra.confounders` (semantic graphs of the train QA pairs and k-means
   over the train frames, ``K = clusters`` entries each).
2. Trains every variant of :data:`VARIANTS` for every seed with the project's trainer
   (:class:`cra.train.Trainer`: checkpoint chosen on **val-ood** Acc@QA (the unconfounded validation
   split; ``runs.csv`` names it per run), test splits never read while
   training), then scores the chosen checkpoint on ``test-id`` (confounded like train) and
   ``test-ood`` (confounders broken) with :mod:`cra.metrics`, plus the ground-truth faithfulness
   measures that only a synthetic world has (:func:`faithfulness`). The random-span baseline pairs
   uniformly random spans with the answers of CRA (same seed).
   Before the tables it prints the preconditions (:mod:`cra.study.preconditions`: the ceiling learns,
   a blind model exploits the word, grounding concentrates) and each variant's share of the gap
   between ``plain`` (CRA on the confounded world) and ``ceiling`` (CRA on the unconfounded one) on test-ood,
   beside the readers; every run logs the
   diagnostics of :mod:`cra.diagnostics` (columns :data:`DIAG`).
3. Sweep: the post-hoc baseline and CRA trained on worlds whose train/val/test-id confounder
   strength is ``s`` (test-OOD stays broken, ``s = 0``), for each ``s`` of ``sweep_strengths``.
4. Writes into ``--out`` (each file atomically): ``results.csv`` / ``results.json`` (mean and standard
   deviation over seeds per variant, split and read-out), ``runs.csv`` (one row per run), ``sweep.csv``
   / ``sweep.json``, ``ablation.png`` and ``sweep.png``. Worlds, dictionaries and checkpoints go to a
   temporary folder, or to ``--work``, where a rerun resumes: models finished there with the same
   settings are read back, not trained again.

Model settings (every variant): ``cra/configs/synthetic.yaml`` (d_model 64, one transformer layer, the
word-level text encoder; its epochs, batch size and learning rate), then the variant's packaged layers, then
:data:`STUDY_RUN`: CPU, and ``train.text_mode=frozen_cached`` (the randomly initialised word encoder
is frozen and cached; its projection and word attention still train). Freezing is not the paper's
setting; it is chosen for CPU time, and it is the same for every variant except ``blind``, whose
word encoder is fine-tuned so that it can express the language shortcut.

Every number is a function of (study config, seeds); a run on one thread is bit-reproducible.

One job per module:

==============================  ===================================================================
:mod:`cra.study.plan`           variants, :class:`StudyConfig` (through :mod:`cra.config`), each run's config
:mod:`cra.study.worlds`         a world and its dictionaries from the train split; the blind copy
:mod:`cra.study.scoring`        official metrics + faithfulness of one model on one split; random spans
:mod:`cra.study.run`            training and scoring every (world, variant, seed); writing the outputs
:mod:`cra.study.aggregate`      mean and standard deviation over seeds
:mod:`cra.study.preconditions`  preconditions (PASS/FAIL), readers, the gap closed
:mod:`cra.study.report`         output files (csv, json) and the printed tables
:mod:`cra.study.plots`          the ablation and sweep figures
:mod:`cra.study.saved`          saved results, loaded only if their settings match the current code
==============================  ===================================================================
"""

from cra.study.aggregate import summarise
from cra.study.plan import (
    AXES,
    CEILING_WORLD,
    DIAG,
    FAITH,
    METRICS,
    RANDOM_SPAN,
    REFERENCES,
    SPLITS,
    STUDY_RUN,
    VARIANTS,
    StudyConfig,
    Variant,
    modes,
    run_config,
    study_config,
)
from cra.study.plots import plot_ablation, plot_sweep
from cra.study.preconditions import THRESHOLDS, format_gap, format_preconditions, gap_closed, preconditions, readers
from cra.study.report import OUTPUT_FILES, SWEEP_COLUMNS, format_sweep, format_table
from cra.study.run import run_study, train_and_score
from cra.study.saved import StaleResultsError, load_results
from cra.study.scoring import faithfulness, random_spans
from cra.study.worlds import blind_copy, prepare_world

__all__ = [
    "Variant",
    "VARIANTS",
    "RANDOM_SPAN",
    "StudyConfig",
    "study_config",
    "modes",
    "run_config",
    "prepare_world",
    "blind_copy",
    "train_and_score",
    "faithfulness",
    "random_spans",
    "summarise",
    "run_study",
    "load_results",
    "StaleResultsError",
    "plot_ablation",
    "plot_sweep",
    "format_table",
    "format_sweep",
    "METRICS",
    "FAITH",
    "SPLITS",
    "AXES",
    "STUDY_RUN",
    "OUTPUT_FILES",
    "SWEEP_COLUMNS",
    "DIAG",
    "CEILING_WORLD",
    "REFERENCES",
    "THRESHOLDS",
    "preconditions",
    "gap_closed",
    "readers",
    "format_preconditions",
    "format_gap",
]
