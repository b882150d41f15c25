"""The NExT-GQA annotations as flat tables (pandas), for statistics and plots.

* :func:`segment_table`: one row per ground-truth evidence segment of ``gsub``;
* :func:`question_table`: one row per question of a QA csv, with its video duration and evidence.

Segments are kept as the files give them (not clipped to the video), so a ``ratio`` can slightly
exceed 1 or a ``start`` fall below 0; :func:`ratio_histogram` puts such values in the edge bins.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from cra.data.keys import question_key
from cra.data.nextgqa import QAFile

#: NExT-QA question types kept in NExT-GQA (its descriptive group is left out), and DO for the synthetic
#: world's subject questions.
QUESTION_TYPES = {
    "CW": "causal: why",
    "CH": "causal: how",
    "TN": "temporal: next (after)",
    "TC": "temporal: current (while)",
    "TP": "temporal: previous (before)",
    "DO": "descriptive: other (NExT-QA; the synthetic world's subject questions)",
}


def segment_table(gsub: Mapping[str, Mapping]):
    """One row per evidence segment: ``video_id, qid, key, duration, start, end, length`` (s),
    ``ratio`` = length / duration, ``center`` = midpoint / duration, ``n_segments`` of its question."""
    import pandas as pd

    rows = []
    for vid, entry in gsub.items():
        duration = float(entry["duration"])
        for qid, segments in entry["location"].items():
            for start, end in segments:
                rows.append(
                    (
                        vid,
                        qid,
                        question_key(vid, qid),
                        duration,
                        start,
                        end,
                        end - start,
                        (end - start) / duration,
                        0.5 * (start + end) / duration,
                        len(segments),
                    )
                )
    columns = ["video_id", "qid", "key", "duration", "start", "end", "length", "ratio", "center", "n_segments"]
    return pd.DataFrame(rows, columns=columns)


def question_table(qa: QAFile, gsub: Mapping[str, Mapping]):
    """One row per question of ``qa``: ``key, video_id, qid, type, type_name, question, answer`` (text),
    ``duration`` (s, NaN without ground truth), ``n_segments`` and ``evidence`` (summed segment length, s)."""
    import pandas as pd

    rows = []
    for r in qa.records:
        entry = gsub.get(r.video_id)
        segments = entry["location"].get(r.qid, []) if entry else []
        rows.append(
            (
                r.key,
                r.video_id,
                r.qid,
                r.type,
                QUESTION_TYPES.get(r.type, r.type),
                r.question,
                r.candidates[r.answer],
                float(entry["duration"]) if entry else np.nan,
                len(segments),
                float(sum(e - s for s, e in segments)),
            )
        )
    columns = [
        "key",
        "video_id",
        "qid",
        "type",
        "type_name",
        "question",
        "answer",
        "duration",
        "n_segments",
        "evidence",
    ]
    return pd.DataFrame(rows, columns=columns)


def ratio_histogram(ratios, bins: int = 10) -> np.ndarray:
    """Percent of ``ratios`` in ``bins`` equal-width bins [a, b) over [0, 1].

    A ratio on a bin edge goes to the upper bin; ``ratio * bins`` is rounded to 9 decimals first so
    that floating-point noise (0.7 - 0.4 = 0.2999...) does not move it down. Values outside [0, 1]
    (segments that run past the video) are counted in the first or last bin.
    """
    scaled = np.round(np.clip(np.asarray(ratios, dtype=float), 0.0, 1.0) * bins, 9)
    index = np.minimum(np.floor(scaled).astype(int), bins - 1)
    return 100.0 * np.bincount(index, minlength=bins) / max(len(index), 1)
