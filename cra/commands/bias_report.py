"""``python -m cra bias-report``: language shortcuts in the NExT-GQA val/test annotations.

Parses every question (spaCy), prints how often each graph component is found, the correct answers
of the questions that mention given entities (the paper's Figure 1b: "baby" and "woman"), and the
most predictive "entity -> answer word" rules, found on one split and re-scored on the other.
"""

from __future__ import annotations

import argparse
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--splits", nargs="+", default=["val", "test"], help="NExT-GQA splits (csv under $CRA_DATA_DIR/nextgqa)"
    )
    parser.add_argument(
        "--entities", nargs="+", default=["baby", "woman"], help="entities (noun lemmas) for the answer distribution"
    )
    parser.add_argument("--top", type=int, default=15, help="rows per table")
    parser.add_argument("--min-applicable", type=int, default=20, help="least number of questions a rule must apply to")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from cra import bias, paths
    from cra.text.semantic_graph import load_parser, parser_name

    try:
        table = bias.load_qa_tables({s: paths.data_file(f"nextgqa/{s}.csv") for s in args.splits})
        nlp = load_parser()
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        print(f"bias-report: error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    analysed = bias.analyse_questions(table, nlp)
    seconds = time.perf_counter() - start
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print(f"{len(analysed)} questions ({', '.join(f'{s}: {n}' for s, n in analysed['split'].value_counts().items())}) "
          f"parsed in {seconds:.1f} s with {parser_name(nlp)}")  # fmt: skip
    print("\nshare of questions with a non-empty component:")
    print(bias.component_coverage(analysed).round(3).to_string())
    dist = bias.answer_distribution(analysed, args.entities, top=args.top)
    print(f"\ncorrect answers of the {dist.attrs['num_questions']} questions mentioning all of {args.entities}:")
    print(dist.round(3).to_string(index=False))
    words = bias.answer_word_distribution(analysed, args.entities, top=args.top)
    print(
        "\nwords of those correct answers (share_distractors: share of their wrong candidates containing the word;"
        " share_all: share of all correct answers):"
    )
    print(words.round(3).to_string(index=False))
    overlap = bias.overlap_shortcut(analysed)
    print(f"\nrule 'choose the only candidate that repeats a noun of the question': applies to {overlap['applicable']} "
          f"questions, right on {overlap['correct']} (accuracy {overlap['accuracy']:.3f}; chance 0.2)")  # fmt: skip
    for split, part in analysed.groupby("split"):
        o = bias.overlap_shortcut(part)
        print(f"  {split}: {o['correct']}/{o['applicable']} = {o['accuracy']:.3f}")
    rules = bias.entity_answer_shortcuts(analysed, min_applicable=args.min_applicable, top=args.top)
    print(f"\nmost predictive 'entity -> answer word' rules on {'+'.join(args.splits)} (chance accuracy 0.2):")
    print(rules.round(3).to_string(index=False))
    if len(args.splits) == 2:
        found_on, scored_on = args.splits
        found = bias.entity_answer_shortcuts(
            analysed[analysed["split"] == found_on], min_applicable=args.min_applicable, top=args.top
        )
        scored = bias.evaluate_shortcuts(analysed[analysed["split"] == scored_on], found)
        both = found[["entity", "answer_word", "applicable", "accuracy"]].merge(
            scored[["entity", "answer_word", "applicable", "accuracy"]],
            on=["entity", "answer_word"],
            suffixes=(f"_{found_on}", f"_{scored_on}"),
        )
        print(f"\nthe top rules found on {found_on}, re-scored on {scored_on}:")
        print(both.round(3).to_string(index=False))
        weighted = lambda df: (df["correct"].sum() / df["applicable"].sum()) if df["applicable"].sum() else float("nan")  # noqa: E731
        print(f"pooled accuracy of these rules: {weighted(found):.3f} on {found_on} "
              f"({int(found['applicable'].sum())} applications), "
              f"{weighted(scored):.3f} on {scored_on} ({int(scored['applicable'].sum())} applications)")  # fmt: skip
    return 0
