"""Readers for the official NExT-GQA files, each validating what it reads.

* ``{train,val,test}.csv``: one multiple-choice question per row (``video_id, qid, question,
  type, answer, a0..a4``). ``answer`` is the index of the right choice in val/test and its text in
  train; both are read into an index.
* ``gsub_{val,test}.json``: ``{video_id: {"duration", "fps", "location": {qid: [[s, e], ...]}}}``.
* ``frame2time_{val,test}.json``: ``{video_id: [t_0, ..., t_31]}``, seconds of the sampled frames.
* result files: ``{split}-res.json`` (``{key: {"prediction", "answer"}}``), span predictions
  (``{key: [s, e]}``) and per-frame weights (``{key: [w_0, ..., w_31]}``); key =
  :func:`~cra.data.keys.question_key` ``(video_id, qid)`` = ``"<video_id>_<qid>"``.

Bad input raises :class:`~cra.data.errors.DataFormatError` naming the file, the row or key, and what
was expected. Readers of row-like files take ``skip_bad_rows=True`` to leave bad rows out instead;
the skipped ids are then kept in a :class:`~cra.data.errors.SkipReport` and announced by a warning.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from cra.data.errors import DataFormatError, SkipReport
from cra.data.keys import question_key
from cra.paths import DataNotFoundError

NUM_CANDIDATES = 5  # K on NExT-GQA
NUM_FRAMES = 32  # T on NExT-GQA
QA_COLUMNS = ("video_id", "qid", "question", "answer", "type")


def _require_file(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"missing file {path}: expected {what}")
    return path


def load_json(path: Path | str, what: str) -> Any:
    """Parse a json file; a missing file or bad json raises an error naming the file."""
    path = _require_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataFormatError(path, f"line {e.lineno} column {e.colno}", f"invalid json ({e.msg})", what) from None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _read_mapping(
    path: Path | str, what: str, check: Callable[[str, Any], Any], skip_bad_rows: bool
) -> tuple[dict, SkipReport]:
    """Load a json object and run ``check(key, value) -> clean value`` (raising) on every entry."""
    data = load_json(path, what)
    if not isinstance(data, dict):
        raise DataFormatError(
            path, "top level", f"a json {type(data).__name__}", f"an object mapping keys to entries ({what})"
        )
    out, skipped = {}, SkipReport()
    for key, value in data.items():
        try:
            out[key] = check(key, value)
        except DataFormatError as e:
            if not skip_bad_rows:
                raise
            skipped.add(key, e)
    skipped.warn(f"{path}")
    return out, skipped


# --------------------------------------------------------------------------------------------
# QA csv
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QARecord:
    """One multiple-choice question."""

    video_id: str
    qid: str
    question: str
    candidates: tuple[str, ...]  # a0..a4
    answer: int  # index into candidates
    type: str  # NExT-QA question type, e.g. CW (causal why), TN (temporal next)
    row: int  # 0-based data row in the csv (line row + 2)

    @property
    def key(self) -> str:
        return question_key(self.video_id, self.qid)


@dataclass
class QAFile:
    """The questions of one csv, and the rows skipped on request."""

    path: Path
    records: list[QARecord]
    skipped: SkipReport = field(default_factory=SkipReport)
    num_candidates: int = NUM_CANDIDATES

    def __len__(self) -> int:
        return len(self.records)

    def by_key(self) -> dict[str, QARecord]:
        return {r.key: r for r in self.records}

    def qa_pairs(self) -> list[tuple[str, str]]:
        """``(question, correct answer text)`` of every record, in file order."""
        return [(r.question, r.candidates[r.answer]) for r in self.records]

    def to_frame(self):
        """The checked records as a pandas DataFrame, one row per question in file order, columns
        :func:`qa_frame_columns`: ``key, video_id, qid, question, type, a0..a{K-1}`` (stripped text),
        ``answer`` (the correct answer's text) and ``answer_idx`` (its index, int)."""
        import pandas as pd

        rows = [
            (r.key, r.video_id, r.qid, r.question, r.type, *r.candidates, r.candidates[r.answer], r.answer)
            for r in self.records
        ]
        frame = pd.DataFrame(rows, columns=qa_frame_columns(self.num_candidates))
        return frame.astype({"answer_idx": "int64"})


def qa_frame_columns(num_candidates: int = NUM_CANDIDATES) -> list[str]:
    """The columns of :meth:`QAFile.to_frame`."""
    return [
        "key",
        "video_id",
        "qid",
        "question",
        "type",
        *(f"a{k}" for k in range(num_candidates)),
        "answer",
        "answer_idx",
    ]


def candidate_columns(frame, required: tuple[str, ...] = ("question", "answer_idx")) -> list[str]:
    """``["a0", ..., "a{K-1}"]`` of a QA table such as :meth:`QAFile.to_frame` (stacked or sliced);
    an error names the ``required`` columns (and ``a0``) that the table lacks."""
    num_candidates = 0
    while f"a{num_candidates}" in frame.columns:
        num_candidates += 1
    missing = [c for c in (*required, "a0") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"QA table lacks column(s) {missing}; expected {list(required)} and a0..a(K-1) "
            f"(the columns of cra.data.read_qa_csv(path).to_frame()), found {list(frame.columns)}"
        )
    return [f"a{k}" for k in range(num_candidates)]


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _id(value: Any) -> str:
    """csv ids as strings: ``4882821564`` whether pandas read an int, a float or a str."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _text(value)


def read_qa_csv(path: Path | str, *, num_candidates: int = NUM_CANDIDATES, skip_bad_rows: bool = False) -> QAFile:
    """Read a NExT-GQA QA csv into :class:`QARecord` s (answer as an index in 0..K-1).

    Checked per row: a video id and qid, a non-empty question and K non-empty candidates, an
    answer index in 0..K-1 (or, in train.csv, an answer text equal to one candidate), no key twice.
    """
    import pandas as pd

    path = _require_file(path, "a NExT-GQA QA csv (video_id, qid, question, answer, type, a0..a4)")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DataFormatError(
            path, "whole file", f"not readable as csv ({e})", "a comma-separated file with a header"
        ) from None
    choice_cols = [f"a{k}" for k in range(num_candidates)]
    missing = [c for c in (*QA_COLUMNS, *choice_cols) if c not in frame.columns]
    if missing:
        raise DataFormatError(
            path, "header", f"missing column(s) {missing}", f"columns {list(QA_COLUMNS) + choice_cols}"
        )
    if frame.empty:
        raise DataFormatError(
            path, "data rows", f"no questions in {path} (a header and no rows)", "at least one question row"
        )
    records, skipped, seen = [], SkipReport(), {}
    for i, row in enumerate(frame.to_dict("records")):
        video_id, qid = _id(row["video_id"]), _id(row["qid"])
        key = question_key(video_id, qid)
        where = f"row {i} (line {i + 2}, key {key})"
        try:
            if not video_id or not qid:
                raise DataFormatError(path, where, "empty video_id or qid", "both ids present")
            question = _text(row["question"])
            if not question:
                raise DataFormatError(path, where, "empty question", "a non-empty question")
            candidates = tuple(_text(row[c]) for c in choice_cols)
            empty = [c for c, text in zip(choice_cols, candidates) if not text]
            if empty:
                raise DataFormatError(
                    path, where, f"empty candidate(s) {empty}", f"{num_candidates} non-empty candidates"
                )
            answer = _answer_index(_text(row["answer"]), candidates, path, where)
            if key in seen:
                raise DataFormatError(path, where, f"key {key} already on row {seen[key]}", "each (video_id, qid) once")
        except DataFormatError as e:
            if not skip_bad_rows:
                raise
            skipped.add(key, e)
            continue
        seen[key] = i
        records.append(QARecord(video_id, qid, question, candidates, answer, _text(row["type"]), i))
    skipped.warn(f"{path}")
    return QAFile(path, records, skipped, num_candidates)


def _answer_index(answer: str, candidates: tuple[str, ...], path: Path, where: str) -> int:
    k = len(candidates)
    try:
        index = int(answer)
    except ValueError:
        if answer in candidates:  # train.csv stores the answer text
            return candidates.index(answer)
        raise DataFormatError(
            path,
            where,
            f"answer {answer!r} is neither an index nor a candidate text",
            f"an integer in 0..{k - 1} or one of a0..a{k - 1}",
        ) from None
    if not 0 <= index < k:
        raise DataFormatError(path, where, f"answer index {index}", f"an integer in 0..{k - 1}")
    return index


# --------------------------------------------------------------------------------------------
# Ground truth and frame times
# --------------------------------------------------------------------------------------------
def time_tolerance(duration: float) -> float:
    """How far (s) a time may lie outside [0, duration] and still be read as a time of that video.

    The official files have small overruns: ``duration`` is a whole number of seconds, GT segments
    end up to 0.5 s after it or start at -0.2 s, and frame times end up to 0.7 s after it. A time
    further out than max(2 s, 10 % of the video) is a unit error (ms, frames, x100) and is refused.
    """
    return max(2.0, 0.1 * float(duration))


def read_gsub(path: Path | str, *, skip_bad_rows: bool = False) -> dict[str, dict]:
    """Read ``gsub_<split>.json``: per video ``duration`` (s, > 0), ``fps`` and ``location``
    (qid -> list of [start, end] seconds, start <= end; segments are *not* clipped to the video,
    but one further outside it than :func:`time_tolerance` is refused)."""
    what = 'gsub json: {video_id: {"duration": seconds, "location": {qid: [[start, end], ...]}}}'

    def check(vid: str, entry: Any) -> dict:
        if not isinstance(entry, dict):
            raise DataFormatError(
                path, f"video {vid}", f"a json {type(entry).__name__}", "an object with duration and location"
            )
        if "duration" not in entry:
            raise DataFormatError(path, f"video {vid}", "no 'duration'", "a duration in seconds")
        duration = entry["duration"]
        if not _is_number(duration) or duration <= 0:
            raise DataFormatError(path, f"video {vid}", f"duration {duration!r}", "a positive number of seconds")
        location = entry.get("location")
        if not isinstance(location, dict):
            raise DataFormatError(
                path, f"video {vid}", f"location {location!r}", "an object qid -> [[start, end], ...]"
            )
        clean = {}
        for qid, segments in location.items():
            where = f"video {vid}, question {qid}"
            if not isinstance(segments, list) or not segments:
                raise DataFormatError(path, where, f"segments {segments!r}", "a non-empty list of [start, end]")
            for seg in segments:
                if not (isinstance(seg, list) and len(seg) == 2 and all(map(_is_number, seg))):
                    raise DataFormatError(path, where, f"segment {seg!r}", "[start, end] with two finite numbers")
                if seg[0] > seg[1]:
                    raise DataFormatError(path, where, f"segment {seg!r} ends before it starts", "start <= end")
                if seg[0] < -time_tolerance(duration) or seg[1] > duration + time_tolerance(duration):
                    raise DataFormatError(
                        path,
                        where,
                        f"segment {seg!r} lies outside the video [0, {duration}] by more than "
                        f"{time_tolerance(duration):g} s",
                        "segments in seconds within the video's duration",
                    )
            clean[str(qid)] = [list(map(float, s)) for s in segments]
        return {**entry, "duration": duration, "location": clean}

    gsub = _read_mapping(path, what, check, skip_bad_rows)[0]
    if not gsub:
        raise DataFormatError(path, "top level", f"no videos in {path}", f"at least one video ({what})")
    return gsub


def read_frame2time(
    path: Path | str,
    *,
    num_frames: int = NUM_FRAMES,
    skip_bad_rows: bool = False,
    gsub: Mapping[str, Mapping] | None = None,
) -> dict[str, list[float]]:
    """Read ``frame2time_<split>.json``: per video the times (s) of its ``num_frames`` sampled frames.

    Times must be >= 0 and never decrease (short videos repeat a stamp). With ``gsub`` (as read by
    :func:`read_gsub`) a video's last time must lie within its duration (up to
    :func:`time_tolerance`): that catches times in other units (x100, ms, frame numbers).
    """
    what = f"frame2time json: {{video_id: [{num_frames} non-decreasing timestamps in seconds]}}"

    def check(vid: str, t: Any) -> list[float]:
        if not (isinstance(t, list) and len(t) == num_frames and all(map(_is_number, t))):
            found = f"{len(t)} entries" if isinstance(t, list) else f"a json {type(t).__name__}"
            raise DataFormatError(
                path, f"video {vid}", f"{found} (or non-finite values)", f"{num_frames} finite timestamps"
            )
        back = next((i for i in range(1, len(t)) if t[i] < t[i - 1]), None)
        if back is not None:
            raise DataFormatError(
                path,
                f"video {vid}",
                f"time {t[back]} at frame {back} is before {t[back - 1]} at frame {back - 1}",
                "non-decreasing frame times in seconds",
            )
        if t[0] < 0:
            raise DataFormatError(path, f"video {vid}", f"negative time {t[0]}", "frame times >= 0 s")
        entry = gsub.get(vid) if gsub is not None else None
        if entry is not None and t[-1] > entry["duration"] + time_tolerance(entry["duration"]):
            raise DataFormatError(
                path,
                f"video {vid}",
                f"last frame time {t[-1]} s, but the video lasts {entry['duration']} s (gsub)",
                f"times in seconds within the duration (+{time_tolerance(entry['duration']):g} s)",
            )
        return [float(x) for x in t]

    return _read_mapping(path, what, check, skip_bad_rows)[0]


def read_grounding_files(
    folder: Path | str, split: str, video_ids: Iterable[str], *, num_frames: int = NUM_FRAMES, features: Any = None
) -> tuple[dict[str, dict], dict[str, list[float]]]:
    """``gsub_<split>.json`` and ``frame2time_<split>.json`` of ``folder``, checked against each other
    and against the split's videos (``video_ids``, e.g. of its csv) and, if given, its
    :class:`~cra.data.features.FeatureStore` ``features``:

    * frame times in seconds within each video's duration (:func:`read_frame2time` with the gsub);
    * frame times for every video (else :class:`DataFormatError`);
    * as many stored feature frames as frame times (:meth:`FeatureStore.check_frame_times`);
    * videos without ground truth are not scored (as in the official script): one warning counts them.
    """
    folder = Path(folder)
    gsub_path, f2t_path = folder / f"gsub_{split}.json", folder / f"frame2time_{split}.json"
    gsub = read_gsub(gsub_path)
    frame2time = read_frame2time(f2t_path, num_frames=num_frames, gsub=gsub)
    videos = list(dict.fromkeys(video_ids))
    missing = [v for v in videos if v not in frame2time]
    if missing:
        raise DataFormatError(
            f2t_path,
            f"video(s) {missing[:5]}",
            f"absent ({len(missing)} videos)",
            f"frame times for every video of {split}",
        )
    if features is not None:
        features.check_frame_times(frame2time, f2t_path, videos)
    no_gt = [v for v in videos if v not in gsub]
    if no_gt:
        warnings.warn(
            f"{gsub_path}: {len(no_gt)} of the {len(videos)} videos of {split} have no ground truth; their "
            f"questions are not scored (as in the official script); first: {', '.join(no_gt[:5])}",
            stacklevel=2,
        )
    return gsub, frame2time


# --------------------------------------------------------------------------------------------
# Result files
# --------------------------------------------------------------------------------------------
def read_qa_answers(path: Path | str, *, skip_bad_rows: bool = False) -> dict[str, tuple[int, int]]:
    """Read ``<split>-res.json`` (``{key: {"prediction": int, "answer": int}}``) into key ->
    (predicted index, right index)."""
    what = 'QA results json: {"<video_id>_<qid>": {"prediction": int, "answer": int}}'

    def check(key: str, entry: Any) -> tuple[int, int]:
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(f), int) and not isinstance(entry.get(f), bool) for f in ("prediction", "answer")
        ):
            raise DataFormatError(
                path, f"key {key}", f"entry {entry!r}", "an object with integer 'prediction' and 'answer'"
            )
        return entry["prediction"], entry["answer"]

    return _read_mapping(path, what, check, skip_bad_rows)[0]


def read_qa_results(path: Path | str, *, skip_bad_rows: bool = False) -> dict[str, bool]:
    """Read ``<split>-res.json`` (``{key: {"prediction": int, "answer": int}}``) into key -> correct."""
    return {key: pred == answer for key, (pred, answer) in read_qa_answers(path, skip_bad_rows=skip_bad_rows).items()}


def _layout(lengths: list[int]) -> str | None:
    """ "spans" when some entry has 2 numbers, "weights" when all have the same T > 2, else None."""
    if 2 in lengths:
        return "spans"
    return "weights" if lengths and len(set(lengths)) == 1 else None


def _read_predictions(path: Path | str, what: str, length: int | None, skip_bad_rows: bool) -> dict[str, list[float]]:
    """A prediction json: lists of finite numbers, of ``length`` each (``None``: spans, >= 2 each).

    A file of the other kind (per-frame weights where spans are expected, or the reverse) is named
    as such, so a file given with the wrong ``--pred-format`` is refused instead of misread.
    """
    expected = "a list [start, ..., end] of at least 2 finite numbers" if length is None else f"{length} finite weights"

    def check(key: str, value: Any) -> list[float]:
        if length is None:
            if not (isinstance(value, list) and len(value) >= 2 and all(map(_is_number, value))):
                raise DataFormatError(path, f"key {key}", f"span {value!r:.80}", f"{expected} ({what})")
        elif not (isinstance(value, list) and len(value) == length and all(map(_is_number, value))):
            found = f"{len(value)} entries" if isinstance(value, list) else f"a json {type(value).__name__}"
            if isinstance(value, list) and len(value) == 2:
                found += " (a [start, end] span, not per-frame weights)"
            raise DataFormatError(path, f"key {key}", f"{found} (or non-finite values)", f"{expected} ({what})")
        return [float(x) for x in value]

    out = _read_mapping(path, what, check, skip_bad_rows)[0]
    if not out:
        raise DataFormatError(path, "top level", f"no predictions in {path}", f"at least one entry ({what})")
    if length is None and _layout([len(v) for v in out.values()]) == "weights":
        key, value = next(iter(out.items()))
        raise DataFormatError(
            path,
            f"key {key}",
            f"{len(value)} numbers in every entry (per-frame weights, not spans)",
            f"{expected} per key ({what})",
        )
    return out


class PredictionLayout(NamedTuple):
    """What a prediction file holds: ``kind`` "spans" (``length`` 2) or "weights" (``length`` T)."""

    kind: str
    length: int
    first_key: str


def prediction_layout(path: Path | str) -> PredictionLayout:
    """What a prediction file holds, from its content: spans (2 numbers per key) or per-frame weights.

    Every value must be a list of at least 2 finite numbers. Some entry with exactly 2 numbers: spans
    (a longer entry is read through its first and last number, as the official evaluation does);
    every entry with the same T > 2 numbers: per-frame weights. Anything else (an empty file,
    objects, lengths that fit neither) raises :class:`DataFormatError` naming the file and a key.
    """
    what = 'predictions json: {"<video_id>_<qid>": [start, end]} or {"<video_id>_<qid>": [T per-frame weights]}'
    data = load_json(path, what)
    if not isinstance(data, dict):
        raise DataFormatError(path, "top level", f"a json {type(data).__name__}", f"an object ({what})")
    if not data:
        raise DataFormatError(path, "top level", f"no predictions in {path}", f"at least one entry ({what})")
    for key, value in data.items():
        if not (isinstance(value, list) and len(value) >= 2 and all(map(_is_number, value))):
            raise DataFormatError(path, f"key {key}", f"{value!r:.80}", f"a list of at least 2 finite numbers ({what})")
    layout = _layout([len(v) for v in data.values()])
    if layout is None:
        (k0, v0), (k1, v1) = (
            next(iter(data.items())),
            next((k, v) for k, v in data.items() if len(v) != len(next(iter(data.values())))),
        )
        raise DataFormatError(
            path,
            f"key {k1}",
            f"{len(v1)} numbers where key {k0} has {len(v0)}",
            f"[start, end] spans, or the same number of per-frame weights for every key ({what})",
        )
    first_key, first = next(iter(data.items()))
    return PredictionLayout(layout, 2 if layout == "spans" else len(first), first_key)


def read_span_predictions(path: Path | str, *, skip_bad_rows: bool = False) -> dict[str, list[float]]:
    """Read span predictions ``{key: [start, ..., end]}`` (seconds or fractions of the video; only
    the first and the last number are used, as in the official evaluation).

    A file in which every entry has the same T > 2 numbers is per-frame weights (see
    :func:`read_frame_weights`) and is refused here, so weights are never scored as [first, last]
    seconds; an empty file is refused too.
    """
    return _read_predictions(path, 'span predictions json: {"<video_id>_<qid>": [start, end]}', None, skip_bad_rows)


def read_frame_weights(
    path: Path | str, *, num_frames: int = NUM_FRAMES, skip_bad_rows: bool = False
) -> dict[str, list[float]]:
    """Read per-frame weights ``{key: [w_0, ..., w_{T-1}]}`` (attention or smoothed GSG weights);
    an empty file, or [start, end] spans, are refused."""
    what = f'per-frame weights json: {{"<video_id>_<qid>": [{num_frames} finite numbers]}}'
    return _read_predictions(path, what, num_frames, skip_bad_rows)
