"""``python -m cra evaluate``: score grounded-QA predictions with the official NExT-GQA semantics.

Prediction formats (``--pred-format``):

* ``seconds``: ``{key: [start, end]}`` in seconds (the official ``gs=False``);
* ``normalized``: ``{key: [start, end]}`` as fractions of the video (``gs=True``: round(x * duration, 1));
* ``attention``: ``{key: [32 per-frame weights]}`` turned into spans by the official post-hoc
  adaptive threshold, with the frame times of ``--frame2time``;
* ``window``: ``{key: [32 per-frame weights]}`` read out by CRA's window search (normalised spans,
  released convention), e.g. the released ``val_ground_gs.json``.

``--merge-with <attention json>`` scores the official merge instead: the ``--pred`` spans (window or
normalized) intersected with the post-hoc spans of that attention file (kept where they do not meet).

``--baselines`` adds the question-blind reference spans (whole video, middle half, seeded random)
with the same answers and with all answers correct (the grounding-only ceiling).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

FORMATS = ("seconds", "normalized", "attention", "window")
BASELINE_NOTE = ("note: baselines ignore the question; random span = sorted pair of uniform draws in [0, duration], "
                 "mean over {seeds} seeds; '(all answers correct)' rows are grounding-only ceilings (Acc@GQA = IoP@0.5)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gsub", type=Path, required=True, help="ground truth, gsub_<split>.json")
    parser.add_argument("--qa", type=Path, default=None, help="QA results, <split>-res.json ({key: {prediction, answer}})")
    parser.add_argument("--pred", type=Path, default=None,
                        help="grounding predictions json (see --pred-format); may be left out with --baselines")
    parser.add_argument("--pred-format", choices=FORMATS, default="seconds", help="what --pred holds (default: seconds)")
    parser.add_argument("--frame2time", type=Path, default=None, help="frame2time_<split>.json (needed by --pred-format attention)")
    parser.add_argument("--merge-with", type=Path, default=None,
                        help="per-frame attention json: score the merge of --pred (window/normalized) with its post-hoc spans")
    parser.add_argument("--strict", action="store_true", help="score questions without a prediction as 0 instead of skipping them")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--baselines", action="store_true", help="also score whole-video, middle-half and random spans")
    parser.add_argument("--seeds", type=int, default=10, help="seeds averaged for the random-span baseline (default 10)")
    parser.add_argument("--name", default=None, help="row label for the predictions (default: file name and format)")


def _spans(args: argparse.Namespace, gsub: dict):
    """(spans, normalized?) from --pred according to --pred-format."""
    from cra import readouts
    from cra.data import read_frame2time, read_frame_weights, read_span_predictions

    if args.pred_format in ("attention",) or args.merge_with is not None:
        if args.frame2time is None:
            raise SystemExit("error: --pred-format attention and --merge-with need --frame2time <frame2time_<split>.json>")
        frame2time = read_frame2time(args.frame2time)
    if args.pred_format in ("seconds", "normalized"):
        spans, normalized = read_span_predictions(args.pred), args.pred_format == "normalized"
    elif args.pred_format == "window":
        spans, normalized = readouts.window_spans(read_frame_weights(args.pred)), True
    else:
        spans, normalized = readouts.posthoc_spans(read_frame_weights(args.pred), frame2time), False
    if args.merge_with is None:
        return spans, normalized
    if not normalized:
        raise SystemExit("error: --merge-with merges normalized spans (--pred-format window or normalized), as the official combine does")
    posthoc = readouts.posthoc_spans(read_frame_weights(args.merge_with), frame2time)
    return readouts.merge_spans(spans, posthoc, gsub), False


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
        baselines = metrics.evaluate_baselines(gsub, correct, range(args.seeds), strict=args.strict) if args.baselines else {}
    except (DataFormatError, DataNotFoundError, KeyError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    if report is None:
        if args.json:
            print(json.dumps({"baselines": _clean_rows(baselines)}, indent=1))
        else:
            print(f"NExT-GQA reference baselines: {args.gsub.name}; percent\n")
            print(metrics.format_table(baselines))
            print(BASELINE_NOTE.format(seeds=args.seeds))
        return 0

    m = report.metrics
    if args.json:
        out = {**{k: _clean(v) for k, v in report.row().items()},
               **{k: _clean(m[k]) for k in metrics.DIAGNOSTIC_KEYS},
               "n_gt": report.n_gt, "missing": len(report.missing), "strict": report.strict,
               "zero_length": len(report.zero_length), "zero_length_inside_gt": report.zero_length_inside,
               "outside_video": len(report.outside_video), "ignored": len(report.ignored),
               "missing_qa": len(report.missing_qa)}
        if baselines:
            out["baselines"] = _clean_rows(baselines)
        print(json.dumps(out, indent=1))
        return 0

    readout = {"attention": "attention, post-hoc", "window": "weights, window read-out"}.get(args.pred_format, args.pred_format)
    if args.merge_with is not None:
        readout += f", merged with post-hoc of {args.merge_with.name}"
    name = args.name or f"{args.pred.name} ({readout})"
    print(f"NExT-GQA grounded QA: {args.gsub.name}, {report.n} of {report.n_gt} questions scored "
          f"({'strict' if args.strict else 'official: missing predictions skipped'}); percent\n")
    print(metrics.format_table({name: report.row(), **baselines}))
    if correct is not None:
        print(f"\nfaithfulness: FR = Acc@GQA / Acc@QA = {m['FR']:.2f}   UF@0.3 = {m['UF@0.3']:.2f}   UF@0.5 = {m['UF@0.5']:.2f}"
              "   (UF@t: answered correctly with IoP < t)")
    for line in report.notes():
        print(f"note: {line}")
    if baselines:
        print(BASELINE_NOTE.format(seeds=args.seeds))
    return 0
