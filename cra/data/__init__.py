"""NExT-GQA data: official file readers, the HDF5 feature layout, and model-ready batches.

This package is the only code that reads QA, span and feature files: ``keys.py`` (the
``"<video_id>_<qid>"`` key), ``nextgqa.py`` (QA csv and json files; :meth:`QAFile.to_frame` for
pandas users), ``features.py`` (HDF5 frame features), ``tables.py`` (flat tables for statistics),
``dataset.py`` (model-ready batches), ``synthetic.py`` (a synthetic world in the same layout).

Readers validate what they read and raise :class:`DataFormatError` (file, key or row, what was
expected). The torch ``Dataset`` is imported on first use, so the readers stay light.
"""

from cra.data.errors import DataFormatError, SkipReport
from cra.data.features import (
    PROVENANCE_KEYS,
    FeatureStore,
    feature_path,
    uniform_indices,
    write_feature_file,
    write_synthetic_features,
)
from cra.data.keys import question_key, split_key
from cra.data.nextgqa import (
    NUM_CANDIDATES,
    NUM_FRAMES,
    QAFile,
    QARecord,
    candidate_columns,
    prediction_layout,
    qa_frame_columns,
    read_frame2time,
    read_frame_weights,
    read_grounding_files,
    read_gsub,
    read_qa_answers,
    read_qa_csv,
    read_qa_results,
    read_span_predictions,
    time_tolerance,
)

_LAZY = {"NextGQADataset", "collate", "make_loader"}

__all__ = [
    "DataFormatError",
    "SkipReport",
    "PROVENANCE_KEYS",
    "FeatureStore",
    "feature_path",
    "uniform_indices",
    "write_feature_file",
    "write_synthetic_features",
    "NUM_CANDIDATES",
    "NUM_FRAMES",
    "QAFile",
    "QARecord",
    "question_key",
    "split_key",
    "candidate_columns",
    "qa_frame_columns",
    "read_frame2time",
    "read_frame_weights",
    "read_grounding_files",
    "read_gsub",
    "read_qa_answers",
    "read_qa_csv",
    "read_qa_results",
    "read_span_predictions",
    "prediction_layout",
    "time_tolerance",
    *sorted(_LAZY),
]


def __getattr__(name: str):
    if name in _LAZY:  # torch is imported only here
        from cra.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'cra.data' has no attribute {name!r}")
