"""``python -m cra evaluate``: score grounded-QA predictions with the official NExT-GQA semantics.

Prediction formats (``--pred-format``):

* ``seconds``: ``{key: [start, end]}`` in seconds (the official ``gs=False``);
* ``normalized``: ``{key: [start, end]}`` as fractions of the video (``gs=True``: round(x * duration, 1));
* ``attention``: ``{key: [32 per-frame weights]}`` turned into spans by the official post-hoc
  adaptive threshold, with the frame times of ``--frame2time``;
* ``window``: ``{key: [32 per-frame weights]}`` read out by CRA's window search (normalised spans,
  released convention), e.g. the released ``val_ground_gs.json``.

These are the read-outs of :mod:`cra.readouts` that training and ``cra predict`` score, with the
same names and conventions (window sizes 1, 3, 5; post-hoc threshold 0.3, 10 s): on a run's own
``<split>_ground_att.json`` (32 valid frames per video), ``--pred-format window``, ``attention`` and
``window --merge-with`` the same file give exactly the rows of the run's ``<split>_scores.json``.

``--merge-with <attention json>`` scores the official merge instead: the ``--pred`` spans (window or
normalized) intersected with the post-hoc spans of that attention file (kept where they do not meet).

``--baselines`` adds the question-blind reference spans (whole video, middle half, seeded random)
with the same answers and with all answers correct (the grounding-only ceiling).

The layout of ``--pred`` is read from its content (2 numbers per key: spans; T > 2: per-frame
weights) and a mismatch with ``--pred-format`` is refused, naming the file and a key. Exit status:
0 scored, 2 bad input or nothing scored (no ground-truth question has a prediction).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from cra.cli import positive_int

FORMATS = ("seconds", "normalized", "attention", "window")
#: what each --pred-format reads: [start, end] spans or per-frame weights
LAYOUT = {"seconds": "spans", "normalized": "spans", "attention": "weights", "window": "weights"}
BASELINE_NOTE = (
    "note: baselines ignore the question; random span = sorted pair of uniform draws in [0, duration], "
    "mean over {seeds} seeds; '(all answers correct)' rows are grounding-only ceilings (Acc@GQA = IoP@0.5)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gsub", type=Path, required=True, help="ground truth, gsub_<split>.json")
    parser.add_argument(
        "--qa", type=Path, default=None, help="QA results, <split>-res.json ({key: {prediction, answer}})"
    )
    parser.add_argument(
        "--pred",
        type=Path,
        default=None,
        help="grounding predictions json (see --pred-format); may be left out with --baselines",
    )
    parser.add_argument(
        "--pred-format",
        choices=FORMATS,
        default="seconds",
        help="what --pred holds (default: seconds; checked against the file: spans or per-frame weights)",
    )
    parser.add_argument(
        "--frame2time", type=Path, default=None, help="frame2time_<split>.json (needed by --pred-format attention)"
    )
    parser.add_argument(
        "--merge-with",
        type=Path,
        default=None,
        help="per-frame attention json: score the merge of --pred (window/normalized) with its post-hoc spans",
    )
    parser.add_argument(
        "--strict", action="store_true", help="score questions without a prediction as 0 instead of skipping them"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--baselines", action="store_true", help="also score whole-video, middle-half and random spans")
    parser.add_argument(
        "--seeds", type=positive_int, default=10, help="seeds averaged for the random-span baseline (default 10)"
    )
    parser.add_argument("--name", default=None, help="row label for the predictions (default: file name and format)")


def _check_layout(path: Path, pred_format: str, option: str = "--pred") -> None:
    """Refuse a prediction file whose content does not fit ``pred_format`` (weights read as spans, ...)."""
    from cra.data import DataFormatError, prediction_layout

    layout, length, key = prediction_layout(path)
    if layout == LAYOUT[pred_format]:
        return
    if layout == "weights":
        found = f"{length} per-frame weights per key"
        hint = (
            "score weights with --pred-format window (CRA's window read-out) or --pred-format attention "
            "--frame2time <frame2time_<split>.json> (the official post-hoc read-out)"
        )
    else:
        found = "[start, end] spans (2 numbers per key)"
        hint = "score spans with --pred-format seconds or normalized"
    raise DataFormatError(
        path,
        f"{option} (first key {key})",
        found,
        f"{'[start, end] (2 numbers)' if LAYOUT[pred_format] == 'spans' else 'T per-frame weights'} "
        f"per key for --pred-format {pred_format}; {hint}",
    )


def _spans(args: argparse.Namespace, gsub: dict):
    """(spans, normalized?) from --pred according to --pred-format."""
    from cra import readouts
    from cra.data import read_frame2time, read_frame_weights, read_span_predictions

    _check_layout(args.pred, args.pred_format)
    if args.merge_with is not None:
        _check_layout(args.merge_with, "attention", "--merge-with")
    if args.pred_format in ("attention",) or args.merge_with is not None:
        if args.frame2time is None:
            raise SystemExit(
                "error: --pred-format attention and --merge-with need --frame2time <frame2time_<split>.json>"
            )
        frame2time = read_frame2time(args.frame2time, gsub=gsub)
    if args.pred_format in ("seconds", "normalized"):
        spans, normalized = read_span_predictions(args.pred), args.pred_format == "normalized"
    elif args.pred_format == "window":
        spans, normalized = readouts.window_spans(read_frame_weights(args.pred)), True
    else:
        spans, normalized = readouts.posthoc_spans(read_frame_weights(args.pred), frame2time), False
    if args.merge_with is None:
        return spans, normalized
    if not normalized:
        raise SystemExit(
            "error: --merge-with merges normalized spans (--pred-format window or normalized), as the official "
            "combine does"
        )
    posthoc = readouts.posthoc_spans(read_frame_weights(args.merge_with), frame2time)
    return readouts.merge_spans(spans, posthoc, gsub), False


def _gt_keys(gsub: dict):
    from cra.data.keys import question_key

    return (question_key(vid, qid) for vid, entry in gsub.items() for qid in entry["location"])


def _qa_note(keys: list[str], gsub_path: Path) -> str:
    videos = {k.partition("_")[0] for k in keys}
    return (
        f"{len(keys)} QA results ({len(videos)} videos) have no ground truth in {gsub_path.name} and are not scored, "
        f"as in the official script; first: {', '.join(keys[:5])}"
    )


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _clean_rows(rows: dict) -> dict:
    return {name: {k: _clean(v) for k, v in row.items()} for name, row in rows.items()}


def run(args: argparse.Namespace) -> int:
    if args.pred is None and not args.baselines:
        raise SystemExit("error: give --pred (and --pred-format), or --baselines, or both")
    from cra import metrics
    from cra.data import DataFormatError, read_gsub, read_qa_results
    from cra.paths import DataNotFoundError

    try:
        gsub = read_gsub(args.gsub)
        correct = read_qa_results(args.qa) if args.qa is not None else None
        report = None
        if args.pred is not None:
            spans, normalized = _spans(args, gsub)
            report = metrics.evaluate_grounding(gsub, spans, correct, normalized=normalized, strict=args.strict)
        baselines = (
            metrics.evaluate_baselines(gsub, correct, range(args.seeds), strict=args.strict) if args.baselines else {}
        )
    except (DataFormatError, DataNotFoundError, KeyError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    if report is not None and len(report.missing) == report.n_gt:
        example = next(iter(_gt_keys(gsub)), "none")
        print(
            f"error: nothing was scored: none of the {len(report.ignored)} predictions in {args.pred} has a key of "
            f"the {report.n_gt} ground-truth questions in {args.gsub}; expected keys '<video_id>_<qid>' such as "
            f"{example!r}{'; first prediction key: ' + repr(report.ignored[0]) if report.ignored else ''}",
            file=sys.stderr,
        )
        return 2
    qa_without_gt = sorted(set(correct) - set(_gt_keys(gsub))) if correct is not None else []
    if report is None:
        if args.json:
            print(json.dumps({"baselines": _clean_rows(baselines)}, indent=1))
        else:
            print(f"NExT-GQA reference baselines: {args.gsub.name}; percent\n")
            print(metrics.format_table(baselines))
            print(BASELINE_NOTE.format(seeds=args.seeds))
            if qa_without_gt:
                print(f"note: {_qa_note(qa_without_gt, args.gsub)}")
        return 0

    m = report.metrics
    if args.json:
        out = {
            **{k: _clean(v) for k, v in report.row().items()},
            **{k: _clean(m[k]) for k in metrics.DIAGNOSTIC_KEYS},
            "n_gt": report.n_gt,
            "missing": len(report.missing),
            "strict": report.strict,
            "zero_length": len(report.zero_length),
            "zero_length_inside_gt": report.zero_length_inside,
            "outside_video": len(report.outside_video),
            "reversed": len(report.reversed),
            "ignored": len(report.ignored),
            "missing_qa": len(report.missing_qa),
            "qa_without_gt": len(qa_without_gt),
        }
        if baselines:
            out["baselines"] = _clean_rows(baselines)
        print(json.dumps(out, indent=1))
        return 0

    readout = {"attention": "attention, post-hoc", "window": "weights, window read-out"}.get(
        args.pred_format, args.pred_format
    )
    if args.merge_with is not None:
        readout += f", merged with post-hoc of {args.merge_with.name}"
    name = args.name or f"{args.pred.name} ({readout})"
    print(
        f"NExT-GQA grounded QA: {args.gsub.name}, {report.n} of {report.n_gt} questions scored "
        f"({'strict' if args.strict else 'official: missing predictions skipped'}); percent\n"
    )
    print(metrics.format_table({name: report.row(), **baselines}))
    if correct is not None:
        print(
            f"\nfaithfulness: FR = Acc@GQA / Acc@QA = {m['FR']:.2f}   UF@0.3 = {m['UF@0.3']:.2f}   UF@0.5 = "
            f"{m['UF@0.5']:.2f}"
            "   (UF@t: answered correctly with IoP < t)"
        )
    for line in report.notes() + ([_qa_note(qa_without_gt, args.gsub)] if qa_without_gt else []):
        print(f"note: {line}")
    if baselines:
        print(BASELINE_NOTE.format(seeds=args.seeds))
    return 0
