"""This package's training step against the authors' released step, run side by side: for each round and
batch size, one process of the authors' code (``time_step.py``, in their environment) and then one
process per variant of ``benchmarks/train_step.py`` (in this one), so that the machine's load moves both
alike; prints the medians over the rounds and the ratios against the authors' step.

    python scripts/released_parity/interleave.py --authors /path/to/CRA-GQA --authors-python /path/to/their/python \\
        [--batch 8 32] [--rounds 3] [--repeats 2] [--warmup 1] [--threads 1] [--variants full checkpointed] \\
        [--json out.json]

Both sides are fp32 on the CPU with random RoBERTa-base weights at the paper's shapes (the two scripts'
docstrings); ``cpu x authors`` is the authors' CPU time per step over the variant's (> 1: faster),
``memory / authors`` the variant's peak resident memory over theirs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARK = HERE.parents[1] / "benchmarks" / "train_step.py"


def run_json(cmd: list[str]) -> dict:
    """The last stdout line of ``cmd`` as JSON; the command's error output on failure."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors", required=True, type=Path, help="checkout of WissingChen/CRA-GQA")
    parser.add_argument("--authors-python", required=True, help="a python with their dependencies")
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first, on both sides")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=["full", "checkpointed"])
    parser.add_argument("--json", type=Path, default=None, help="also write every run to this file")
    args = parser.parse_args()
    common = ["--repeats", str(args.repeats), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    runs: dict[tuple[str, int], list[dict]] = {}
    for round_ in range(args.rounds):
        for B in args.batch:
            jobs = [("authors", [args.authors_python, str(HERE / "time_step.py"), "--authors", str(args.authors)])]
            jobs += [(v, [sys.executable, str(BENCHMARK), "--device", "cpu", "--child", v]) for v in args.variants]
            for name, cmd in jobs:
                row = run_json([*cmd, *(["--batch", str(B)] if name == "authors" else [str(B)]), *common])
                runs.setdefault((name, B), []).append(row)
                print(
                    f"round {round_ + 1}  {name:>14}  B={B:<3} CPU {row['cpu_s']:7.2f} s  "
                    f"peak {row['peak_mib']:6.0f} MiB  load {row['load']:.1f}",
                    flush=True,
                )
    print("\n| code | B | CPU time (s), median | peak memory (MiB), max | rounds | cpu x authors | memory / authors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for B in args.batch:
        authors = runs[("authors", B)]
        a_cpu, a_mem = statistics.median(r["cpu_s"] for r in authors), max(r["peak_mib"] for r in authors)
        for name in ["authors", *args.variants]:
            rows = runs[(name, B)]
            cpu, mem = statistics.median(r["cpu_s"] for r in rows), max(r["peak_mib"] for r in rows)
            print(f"| {name} | {B} | {cpu:.2f} | {mem:.0f} | {len(rows)} | {a_cpu / cpu:.2f} | {mem / a_mem:.2f} |")
    if args.json:
        args.json.write_text(json.dumps([r for rows in runs.values() for r in rows], indent=1))


if __name__ == "__main__":
    main()
