"""One CRA training step at the paper's shapes: samples/s and peak memory, on CPU or CUDA.

    PYTHONPATH=. python benchmarks/train_step.py [--batch 8 32] [--repeats 3] [--rounds 1] [--device auto]
                                                 [--variants full reference frozen_cached ...]

Shapes: T = 32 frames of D = 768 features, K = 5 candidates and K_q = 5 question candidates per
sample, a 2-layer temporal transformer (d_model = d_ff = 768, 8 heads), a RoBERTa-base text encoder
(random weights from ``RobertaConfig()``; the weights do not change the cost), QA texts of at most
38 and questions of at most 30 tokens. One step = forward of both passes (VQA, VQ), the loss,
backward, gradient clipping and an Adam (amsgrad) update (``cra.train.make_optimizer``: fused kernel).

Texts are real NExT-GQA val questions and answers when ``$CRA_DATA_DIR/nextgqa/val.csv`` exists
(else generated sentences of similar length). Offline there is no RoBERTa BPE vocabulary, so a
word-level stand-in tokenizer gives one token per word or punctuation mark (close to BPE counts for
such plain English; ids hashed into RoBERTa's 50,265-entry vocabulary).

Variants (each runs in its own process, so that its peak memory is its own):

* ``full``: the package's step (fine-tuned RoBERTa): the step's 2 x B x 5 texts are encoded in
  length-sorted chunks (``train.text_bucket_size``, 16 on CPU), each padded to its own longest text;
* ``fewer``: ``full`` with ``train.fewer_products`` (the same math with fewer matrix products; equal
  fidelity: tests/test_model.py checks logits, losses and gradients against the plain path);
* ``checkpointed`` / ``fewer_checkpointed``: with ``train.text_checkpointing`` (RoBERTa's activations
  recomputed in the backward pass: the memory it saves and the time it costs); ``checkpointed:n``: only
  the first n of its 12 layers;
* ``one_batch``: the same, all texts in one batch padded to the longest;
* ``reference``: a same-machine stand-in for the released code's step: one batch with every text
  padded to 38 tokens (the released loader pads QA texts to 38 and questions to 30, so this computes
  somewhat more text) and torch's default (unfused) Adam;
* ``bf16``: ``full`` under CPU/CUDA bfloat16 autocast (not equal fidelity: lower precision);
* ``frozen_cached``: text encoder frozen and its outputs cached (warm cache), the CPU fast mode;
* ``frozen_cached_fewer``: ``frozen_cached`` with ``train.fewer_products``;
* ``frozen_cached_compiled``: ``frozen_cached_fewer`` with ``train.compile`` (3 warm-up steps at least);
* ``ablation:<name>``: ``frozen_cached`` with a packaged ablation (``no_gsg``, ``no_cma``, ...).

Step times are the median of ``--repeats`` steps after ``--warmup`` steps (default 1), with the process's CPU time
(user + system, all threads) for the same step and the 1-minute load average: on a shared machine
the wall time grows with the load, the CPU time less (threads that wait for a descheduled sibling
spin, which counts as CPU time). ``--rounds R`` runs the list of variants R times, interleaved, and
reports medians; the last columns divide the ``reference`` row's step time (wall, CPU) by each row's
and each row's peak memory by the reference's, at the same B. Peak memory is the
process's peak resident set size on CPU (it includes the Python interpreter and libraries) and
``torch.cuda.max_memory_allocated`` on CUDA.

Measured 2026-12-01 (first runs: before RoBERTa's padding-free forward, so their ``full``,
``fewer`` and ``checkpointed`` rows are today's ``unpacked`` path with length buckets; the runs against
the authors' own step at the end are of the current code) on the project's shared 2-core CPU machine
while other jobs ran (load average 2-7). With 2 threads the times followed the other jobs (one
``--threads 2`` run printed 50.378 s for ``full`` and 11.498 s for ``fewer`` at B = 8, minutes apart), so
these runs use 1 thread, where the CPU time is the step's own work. B = 8, printed by
``nice -n 5 python benchmarks/train_step.py --batch 8 --repeats 2 --threads 1 --rounds 2 --variants
reference full fewer checkpointed frozen_cached frozen_cached_fewer``:

| variant | B | step (s) | CPU time (s) | load | peak memory (MiB) | wall x ref | CPU x ref | memory / ref |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
| reference | 8 | 36.929 | 28.00 | 2.4 | 7568 | 1.00 | 1.00 | 1.00 |
| full | 8 | 13.238 | 13.15 | 2.2 | 5333 | 2.79 | 2.13 | 0.70 |
| fewer | 8 | 12.858 | 12.76 | 2.2 | 5357 | 2.87 | 2.19 | 0.71 |
| checkpointed | 8 | 17.147 | 17.05 | 2.0 | 4047 | 2.15 | 1.64 | 0.53 |
| frozen_cached | 8 | 0.531 | 0.53 | 2.0 | 1512 | 69.51 | 52.93 | 0.20 |
| frozen_cached_fewer | 8 | 0.493 | 0.49 | 2.0 | 1494 | 74.96 | 56.98 | 0.20 |

(columns of the printed table; the reference computes 3040 text tokens a step, the others 1520. The
reference's wall time includes waits for the CPU: its CPU time is the fair comparison.) B = 32,
``... --batch 32 --repeats 2 --threads 1 --rounds 1 --variants reference full fewer checkpointed``:

| variant | B | step (s) | CPU time (s) | load | peak memory (MiB) | wall x ref | CPU x ref | memory / ref |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
| reference | 32 | 262.765 | 118.22 | 7.0 | 12763 | 1.00 | 1.00 | 1.00 |
| full | 32 | 75.040 | 49.01 | 4.3 | 9198 | 3.50 | 2.41 | 0.72 |
| fewer | 32 | 62.767 | 44.08 | 4.3 | 9149 | 4.19 | 2.68 | 0.72 |
| checkpointed | 32 | 78.251 | 67.42 | 4.5 | 4811 | 3.36 | 1.75 | 0.38 |

(text tokens computed per step: 12160 for the reference, 5360 for the others.) With the fine-tuned
encoder ``fewer`` saves only the text head's projection, small next to RoBERTa-base's arithmetic, so
its difference from ``full`` here is mostly the machine's noise. The fast mode at B = 32,
``... --batch 32 --repeats 2 --threads 1 --rounds 3 --variants frozen_cached frozen_cached_fewer``:

| variant | B | step (s) | CPU time (s) | load | samples/s | peak memory (MiB) | text tokens computed/step |
|---|---:|---:|---:|---:|---:|---:|---:|
| frozen_cached | 32 | 2.101 | 2.05 | 6.1 | 15.23 | 1844 | 5360 |
| frozen_cached_fewer | 32 | 1.588 | 1.51 | 5.9 | 20.15 | 1712 | 5360 |

Calibration of ``reference`` against the authors' code (2026-12-01, same machine, same torch 2.13.0
and transformers 4.47.1, 1 thread, ``nice -n 5``, run one after the other: benchmark, authors,
benchmark). ``scripts/released_parity/time_step.py`` runs THEIR model, loss, optimizer and schedule
(imported from their checkout, not copied; random RoBERTa-base weights, their padding to 38 / 30
tokens) at these shapes. ``python benchmarks/train_step.py --batch 8 --repeats 2 --threads 1 --rounds
1 --variants reference full`` printed CPU 25.10 s / peak 7782 MiB (reference) and 15.13 s / 5422 MiB
(full); then ``<their venv>/bin/python scripts/released_parity/time_step.py --authors
<checkout of WissingChen/CRA-GQA> --batch 8 --repeats 2 --threads 1`` printed ``"cpu_s": 20.965``, ``"peak_mib":
6815`` (2720 text tokens a step); then the benchmark again: 24.57 s / 7625 MiB (reference), 14.94 s /
5452 MiB (full). So the stand-in is off by 25.10 / 20.965 = 1.20 and 24.57 / 20.965 = 1.17 in CPU
time and by 7782 / 6815 = 1.14 and 7625 / 6815 = 1.12 in peak memory: it overstates the released
step by about a fifth in time and an eighth in memory. Its padding of every text to 38 tokens
computes 3040 / 2720 = 1.12 times the released text tokens (the released loader pads questions to
30); the rest is the two implementations' other differences, not broken down here. Against
the released step itself, ``full`` takes 15.13 / 20.965 = 0.72 and 14.94 / 20.965 = 0.71 of its CPU
time and 5422 / 6815 = 0.80 of its peak memory. A second authors' run right after, under a higher
load (4.0 against 3.06), printed ``"cpu_s": 22.185``, ``"peak_mib": 6700``: 22.185 / 20.965 = 1.06,
so one run's CPU time moves by some 6 % with the machine's load and these ratios are good to about a
tenth.

Against the authors' step, side by side, after RoBERTa's padding-free forward
(``model.text_encoder_kwargs.packed``, the default: every token-wise layer on the batch's real tokens,
attention in buckets of 16 texts of similar length, the feed-forward recomputing gelu in backward).
``scripts/released_parity/interleave.py --authors <checkout> --authors-python <their venv's python>
--batch 8 32 --rounds R --variants ...`` runs, per round and batch size, one process of the authors'
step and then one of each variant, 1 thread each. With the
full-mode study paused (nothing else running; 2026-12-01 04:46-05:04 UTC, ``--rounds 1 --variants full
checkpointed``):

| code | B | CPU time (s) | peak memory (MiB) | cpu x authors | memory / authors |
|---|---:|---:|---:|---:|---:|
| authors | 8 | 31.10 | 6718 | 1.00 | 1.00 |
| full | 8 | 15.09 | 4621 | 2.06 | 0.69 |
| checkpointed | 8 | 20.85 | 3679 | 1.49 | 0.55 |
| authors | 32 | 118.90 | 15259 | 1.00 | 1.00 |
| full | 32 | 67.67 | 9284 | 1.76 | 0.61 |
| checkpointed | 32 | 82.95 | 4899 | 1.43 | 0.32 |

Beside the training study (04:00-04:28 UTC, ``--rounds 2 --variants full checkpointed:2``, medians): B = 8
full 1.72x / 0.70 of the memory, ``checkpointed:2`` 1.70x / 0.67; B = 32 full 1.74x / 0.61,
``checkpointed:2`` 1.68x / 0.56. An A/B of this code against the packed forward without attention
buckets and with autograd's own feed-forward (commit f7549a1), ``full``, study paused: B = 8 CPU
medians of 3 runs 15.23 vs 15.20 s, peak 4630 vs 4790 MiB; B = 32 one run each 65.06 vs 60.69 s, 9201
vs 9889 MiB: the buckets and the gelu recompute save 3-7 % of the memory and cost up to 7 % of the time.

Those runs carried a cost found afterwards (2026-12-01, commit cb64e04): the attention took each bucket's
rows of the (T, D) query, key and value matrices by slicing, and a slice's backward writes its gradient
into zeros the size of the whole matrix, once per bucket and matrix: at B = 32, 3 matrices x 20 buckets x
12 layers zero-filled (5,226 x 768) matrices, 18 s of ``aten::fill_`` in a 69 s step of a 1-thread
``torch.profiler`` run (0.4 s at B = 8, 5 buckets). The B = 32 rows above, and the time cost of the
bucket A/B, are mostly that. The attention now splits the matrices (``Tensor.split``: one concatenation
in backward), and dropout keeps a 1-byte mask for backward where ``F.dropout`` keeps a float32 one on
CPU (commit 5df5048; an A/B against cb64e04, ``full``, beside the study: peak 4596 and 4503 against 4337
and 4389 MiB at B = 8, 8838 against 8444 MiB at B = 32; CPU times 10.0 and 13.7 against 11.5 and 11.8 s,
49.1 against 46.4 s, the same within the machine's noise). Side by side again, beside the full-mode
study (its two processes at ``nice -n 15`` on the 2 cores; one round each; ``--variants full
checkpointed:4 checkpointed``, 2026-12-01 06:55-07:25 UTC, code cb64e04, and ``--batch 32 --variants
full checkpointed:3 checkpointed:4``, 07:30-07:44 UTC, code 5df5048):

| code | B | commit | CPU time (s) | peak memory (MiB) | cpu x authors | memory / authors |
|---|---:|---|---:|---:|---:|---:|
| authors | 8 | | 24.52 | 6708 | 1.00 | 1.00 |
| full | 8 | cb64e04 | 12.45 | 4559 | 1.97 | 0.68 |
| checkpointed:4 | 8 | cb64e04 | 16.45 | 4141 | 1.49 | 0.62 |
| checkpointed | 8 | cb64e04 | 15.84 | 3775 | 1.55 | 0.56 |
| authors | 32 | | 91.20 | 14899 | 1.00 | 1.00 |
| full | 32 | cb64e04 | 41.42 | 8694 | 2.20 | 0.58 |
| checkpointed:4 | 32 | cb64e04 | 41.75 | 7082 | 2.18 | 0.48 |
| checkpointed | 32 | cb64e04 | 48.78 | 4857 | 1.87 | 0.33 |
| authors | 32 | | 86.86 | 14948 | 1.00 | 1.00 |
| full | 32 | 5df5048 | 45.11 | 8368 | 1.93 | 0.56 |
| checkpointed:3 | 32 | 5df5048 | 49.48 | 7229 | 1.76 | 0.48 |
| checkpointed:4 | 32 | 5df5048 | 47.06 | 6897 | 1.85 | 0.46 |

(The authors' own step also ran faster than in the earlier runs: the machine's speed moves between
hours, which is why only side-by-side ratios are compared.) So at B = 32, recomputing the first 4 of
RoBERTa's 12 layers (``train.text_checkpointing=4``) holds under half of the authors' memory at
1.85-2.18x their speed: the target is on the edge, within the runs' noise of about a tenth. At B = 8 it
is not met, and both halves at once are out of reach of this design at fp32. Time: ``full`` is 1.97x, which
is the ratio of the arithmetic: the authors compute 2,720 text positions a step, this step the 1,392
real tokens (2,720 / 1,392 = 1.95), and matrix products (``aten::mm``, ``aten::addmm``) are about three
quarters of the CPU time in 1-thread profiles of both sizes (after the fix). Memory: the training state
alone is 145.7 M trainable parameters x 4 bytes x 5 (weights, gradients, Adam's two moments and amsgrad's
maximum) = 2,780 MiB, plus 235 MiB for the interpreter and libraries, against half the authors' peak,
3,354 MiB; recomputing every layer (its forward run twice: 1.55x) leaves 3,775 MiB, most of the rest being
memory the C allocator keeps after a free: with ``MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=0``
set for ``python benchmarks/train_step.py --device cpu --child checkpointed 8 --repeats 2 --threads 1`` an
earlier B = 8 step peaked at 3,283 MiB (at 24.1 s of CPU against 19.5 s without, beside the study); those
settings would lower the authors' peak too (not measured).

The fast mode (``frozen_cached``) at B = 32 spends, in a 1-thread ``torch.profiler`` run of one step
(an ad hoc script, not kept), about 1.1 s of its ~2.3 s in
the 2-layer temporal encoder over the 1,024 frame tokens (about 43 GFLOP forward and backward, the
paper's model) and 0.4 s projecting the cached text tokens, padded to the longest of 320 texts (the
projection ``fewer_products`` moves after the pooling: 1.51 s against 2.05 s above); the issue's
0.4 s (measured with 2 threads on a quieter machine, where this step took 0.64 s) is not reached.

Side by side on a quiet machine (2026-12-01, nothing else running, load 1.0; ``interleave.py --batch 8 32
--rounds 2 --variants full checkpointed:4``: CPU medians and peak maxima of 2 rounds), first at commit
ab931cf with one warm-up step (10:07-10:48 UTC), then after the two changes below with ``--warmup 2`` on
both sides (b09f943's CPU path, 11:03-11:43 UTC):

| code | B | commit | warm-up | CPU time (s) | peak memory (MiB) | cpu x authors | memory / authors |
|---|---:|---|---:|---:|---:|---:|---:|
| authors | 8 | | 1 | 24.17 | 6813 | 1.00 | 1.00 |
| full | 8 | ab931cf | 1 | 10.85 | 4410 | 2.23 | 0.65 |
| checkpointed:4 | 8 | ab931cf | 1 | 12.40 | 4082 | 1.95 | 0.60 |
| authors | 32 | | 1 | 89.47 | 14896 | 1.00 | 1.00 |
| full | 32 | ab931cf | 1 | 47.60 | 8430 | 1.88 | 0.57 |
| checkpointed:4 | 32 | ab931cf | 1 | 47.69 | 6771 | 1.88 | 0.45 |
| authors | 8 | | 2 | 25.34 | 6793 | 1.00 | 1.00 |
| full | 8 | b09f943 | 2 | 12.53 | 4366 | 2.02 | 0.64 |
| checkpointed:4 | 8 | b09f943 | 2 | 13.78 | 4046 | 1.84 | 0.60 |
| authors | 32 | | 2 | 96.67 | 15489 | 1.00 | 1.00 |
| full | 32 | b09f943 | 2 | 48.70 | 8007 | 1.98 | 0.52 |
| checkpointed:4 | 32 | b09f943 | 2 | 53.15 | 6321 | 1.82 | 0.41 |

The machine's speed still moved within each run (the authors' B = 32 step: 93.5 and 99.9 s; ``full``: 44.9
and 52.5 s), so the ratios are good to about a tenth. The target, >= 2x at <= half the authors' peak
memory at once, is met at neither size: ``full`` runs at about 2x (2.02x, 1.98x) with 0.64 and 0.52 of
their memory, and recomputing layers brings B = 32 under half (0.41) at 1.82x.

What changed between the two runs. (1) ``--warmup``: the first steps still grow the C allocator's heap;
per-step minor page faults of ``full`` at B = 32 (``resource.getrusage`` around forward, backward and the
optimizer, an ad hoc script): step 1 934k / 124k / 113k, step 2 490k / 61k / 0, step 3 132k / 38k / 0, with
41.0 s of CPU in step 3 against 47.1 s in step 2. A training run lives in the later steps, so the timed
steps now come after two. (2) The packed feed-forward runs in chunks of 1,024 tokens on CPU
(``cra.text.roberta.FEED_FORWARD_ROWS``): glibc serves an allocation above its mmap threshold (at most
32 MiB) with fresh pages, zeroed at first touch, and the (5,226 x 3,072) float32 intermediates at B = 32
are 61 MiB, five per layer and step; a 1-thread ``torch.profiler`` step at ab931cf showed ``aten::gelu``
at 136 ms per such call against 72 ms for ``gelu_backward`` on the same shape, and ``aten::copy_`` (the
bias broadcast into each fresh ``addmm`` output) at 129 ms per (5,188 x 3,072) call. An A/B of the two
commits at B = 32 (``--child full 32 --repeats 2 --threads 1`` under ``/usr/bin/time -v``, run at the same
time): minor page faults of the process 4.48M -> 2.11M, CPU 50.8 -> 48.4 s, peak 8,328 -> 7,452 MiB; at
B = 8 (1,392 tokens, 16 MiB intermediates) time and memory unchanged (13.27 / 13.36 s, 4,339 / 4,289 MiB).
glibc's own settings (``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296``) changed little
on top (B = 32: 2.00M against 2.14M faults, 45.6 against 48.4 s in one pair).

The fast mode, 2026-12-01 11:45 UTC, ``--batch 32 --repeats 5 --warmup 2 --threads 2 --rounds 3 --variants
frozen_cached frozen_cached_fewer``: 1.260 s and 0.972 s a step (peak 1,810 and 1,686 MiB); the same command
with ``--repeats 3 --warmup 1 --rounds 1`` at 10:09 UTC printed 0.851 s and 0.901 s. Its matrix products
alone are beyond 0.4 s on this machine: at B = 32 with ``fewer_products`` they are about 45.5 products of
the size (1,024 x 768) x (768 x 768) (the frame input map, the 2-layer encoder's Q/K/V, output and
feed-forward maps, GSG's frame map and the first score layer, the front-door's frame keys: 15.5 forward,
15.5 weight gradients, 14.5 input gradients, counted from the profile's shapes), 55 GFLOP; a 2-thread
float32 ``torch.mm`` of that size ran at 159 GFLOP/s at 10:08 and 94 GFLOP/s at 11:47 UTC, so 0.35-0.58 s
of products before Adam over 21.7 M parameters, dropout and the rest. This CPU has no AVX-512 (no
bfloat16 instructions either). ``frozen_cached_compiled`` (``train.compile=true``: ``torch.compile`` of
the model's forward, as ``cra.train.Trainer`` does it) ran one B = 32 step in 59.1 s (CPU 54.6 s, 1 thread,
3 warm-up steps, ``--child frozen_cached_compiled 32 --repeats 3 --threads 1``), some 40 times the eager
step at 1 thread (1.6-2.1 s, the table above). The cause, from ``TORCH_LOGS=recompiles`` at B = 8: Dynamo
guards the compiled forward on the batch's candidate strings (``batch['qa_texts'][0][0] == '...'``, where
``encode_candidates`` lists them), so every new batch recompiles; keep it off until only the tensor parts are
compiled.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

import torch

QA_MAX, Q_MAX = 38, 30
ABLATIONS = ("no_gsg", "no_smoothing", "no_cma", "no_backdoor", "no_frontdoor", "no_eci")
FEWER = "train.fewer_products=true"
WARMUP_COMPILED = 3  # warm-up steps of a compiled variant (today each new batch recompiles: the docstring's end)
#: variant -> (config layers, --set overrides) beyond the shared ones (``ablation:<name>`` is built in run_variant)
UNPACKED = "model.text_encoder_kwargs.packed=false"
VARIANTS = {
    "full": ([], []),
    "unpacked": ([], [UNPACKED]),
    "fewer": ([], [FEWER]),
    "checkpointed": ([], ["train.text_checkpointing=true"]),
    "fewer_checkpointed": ([], [FEWER, "train.text_checkpointing=true"]),
    "one_batch": ([], ["train.text_bucket_size=null", UNPACKED]),
    "reference": ([], ["train.text_bucket_size=null", UNPACKED]),
    "bf16": ([], []),
    "frozen_cached": (["variants/frozen_text"], []),
    "frozen_cached_fewer": (["variants/frozen_text"], [FEWER]),
    "frozen_cached_compiled": (["variants/frozen_text"], [FEWER, "train.compile=true"]),
}
DEFAULT_VARIANTS = (
    "full",
    "unpacked",
    "fewer",
    "checkpointed",
    "one_batch",
    "reference",
    "bf16",
    "frozen_cached",
    "frozen_cached_fewer",
    *(f"ablation:{a}" for a in ABLATIONS),
)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def load_texts() -> list[tuple[str, list[str]]]:
    """(question, 5 answers) pairs: real val questions when present, else generated."""
    from cra import paths

    csv = paths.data_dir() / "nextgqa" / "val.csv"
    if csv.is_file():
        from cra.data import read_qa_csv

        return [(r.question, list(r.candidates)) for r in read_qa_csv(csv).records]
    rng = random.Random(0)
    words = (
        "the man woman boy girl dog ball toy why how what did does do after before while when pick up "
        "look at hold walk run play sit stand near table sofa camera baby hand".split()
    )
    return [
        (
            " ".join(rng.choices(words, k=rng.randint(8, 16))),
            [" ".join(rng.choices(words, k=rng.randint(2, 6))) for _ in range(5)],
        )
        for _ in range(500)
    ]


def make_batch(pairs, B: int, rng: random.Random) -> dict:
    from cra.data.dataset import QA_TEMPLATE

    chosen = rng.sample(pairs, B)
    questions = [q for q, _ in pairs]
    qcands, qanswer = [], []
    for q, _ in chosen:
        negatives = rng.sample(questions, 4)
        pos = rng.randrange(5)
        qcands.append(negatives[:pos] + [q] + negatives[pos:])
        qanswer.append(pos)
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    return {
        "frames": torch.randn(B, 32, 768, generator=g),
        "frame_mask": torch.ones(B, 32, dtype=torch.bool),
        "qa_texts": [[QA_TEMPLATE.format(question=q, answer=a) for a in answers] for q, answers in chosen],
        "answer": torch.randint(0, 5, (B,), generator=g),
        "question_candidates": qcands,
        "question_answer": torch.tensor(qanswer),
    }


_WORDS = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


def word_tokenizer(encoder, fixed: bool):
    """A stand-in for RoBERTa's BPE: <s> words </s>, ids hashed into the vocabulary; QA texts hold
    the question and the answer. ``fixed``: pad a call to 38 tokens if it holds a QA text, else to 30."""
    from cra.data.dataset import QA_TEMPLATE
    from cra.text.base import pad_ids

    vocab = encoder.model.config.vocab_size
    is_qa = re.compile(re.escape(QA_TEMPLATE.format(question="@@", answer="@@")).replace("@@", ".*"))

    def tokenize(texts):
        seqs = []
        for text in texts:
            limit = QA_MAX if is_qa.fullmatch(text) else Q_MAX
            ids = [3 + zlib.crc32(w.encode()) % (vocab - 3) for w in _WORDS.findall(text.lower())]
            seqs.append([0] + ids[: limit - 2] + [2])
        ids, mask = pad_ids(seqs, 1)
        if fixed:  # the released loader's fixed lengths: every row as long as its kind's maximum
            width = QA_MAX if any(is_qa.fullmatch(t) for t in texts) else Q_MAX
            pad = width - ids.shape[1]
            ids = torch.nn.functional.pad(ids, (0, pad), value=1)
            mask = torch.nn.functional.pad(mask, (0, pad), value=False)
        return ids, mask

    return tokenize


def computed_tokens(mask: torch.Tensor, bucket_size: int | None, packed: bool = False) -> int:
    """Token positions the encoder's token-wise layers compute (padding included) for one call with this mask."""
    if packed:  # padding-free: the real tokens only
        return int(mask.sum())
    lengths = mask.sum(1).sort().values
    if bucket_size is None or len(lengths) <= bucket_size:
        return mask.numel()
    return sum(len(chunk) * int(chunk.max()) for chunk in lengths.split(bucket_size))


# --------------------------------------------------------------------------------------------
# One variant (runs in a child process)
# --------------------------------------------------------------------------------------------
def run_variant(variant: str, B: int, repeats: int, device: torch.device, warmup: int = 1) -> dict:
    from cra.config import load_run_config
    from cra.run import autocast_settings, build_model
    from cra.text.roberta import ROBERTA_TINY_CONFIG  # noqa: F401  (import check: transformers present)
    from cra.train import make_optimizer

    if variant.startswith("ablation:"):
        layers, extra = ["variants/frozen_text", f"ablations/{variant.split(':', 1)[1]}"], []
    elif variant.startswith("checkpointed:"):  # the first n of RoBERTa's 12 layers recomputed in backward
        layers, extra = [], [f"train.text_checkpointing={int(variant.split(':', 1)[1])}"]
    else:
        layers, extra = VARIANTS[variant]
    overrides = [
        "model.text_encoder_kwargs={pretrained: null, max_length: 38}",
        "data.confounders=null",
        f"train.device={device}",
        *extra,
    ]
    config, _ = load_run_config(layers, overrides)
    torch.manual_seed(0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(config).to(device)
    roberta = model.text.encoder.encoder if config.train.text_mode == "frozen_cached" else model.text.encoder
    roberta.tokenize = word_tokenizer(roberta, fixed=variant == "reference")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(model, config.train)  # Adam, amsgrad, lr 1e-5 (fused where available)
    if variant == "reference":  # torch's default Adam implementation, as the released code builds it
        optimizer = torch.optim.Adam(params, lr=1e-5, amsgrad=True)
    amp = "bf16" if variant == "bf16" else "off"
    enabled, dtype, _ = autocast_settings(amp, device)
    pairs = load_texts()
    rng = random.Random(0)
    warmup = max(warmup, WARMUP_COMPILED if config.train.compile else 1)  # compiled: the first steps compile
    batches = [make_batch(pairs, B, rng) for _ in range(repeats + warmup)]
    if config.train.text_mode == "frozen_cached":  # warm cache: every text of these batches seen once
        with torch.no_grad():
            for b in batches:
                model.text.encoder([t for g in b["qa_texts"] + b["question_candidates"] for t in g])
    model.train()
    forward = torch.compile(model) if config.train.compile else model  # as cra.train.Trainer does
    times, cpu = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    tokens = 0
    for i, batch in enumerate(batches):
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        if variant != "reference":  # cra.train frees the last step's gradients before the forward pass
            optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=enabled):
            out = forward(batch)
            loss = model.losses(batch, out)["loss"]
        if variant == "reference":  # the released loop: the loss, then zero_grad, then backward
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 12.0)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu.append(after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime)
        texts = [t for g in batch["qa_texts"] + batch["question_candidates"] for t in g]
        tokens = computed_tokens(roberta.tokenize(texts)[1], roberta.bucket_size, roberta.packs_tokens)
    step = statistics.median(times)
    peak = (
        torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        "variant": variant,
        "B": B,
        "step_s": step,
        "cpu_s": statistics.median(cpu),
        "load": os.getloadavg()[0],
        "samples_per_s": B / step,
        "peak_mib": peak / 2**20,
        "text_tokens_per_step": tokens,
        "trainable_params": sum(p.numel() for p in params),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "repeats": len(times),
    }


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------
def run_child(variant: str, B: int, args) -> dict | None:
    """One variant at one batch size in a fresh process: its row, or None (the error is printed)."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        variant,
        str(B),
        "--repeats",
        str(args.repeats),
        "--warmup",
        str(args.warmup),
        "--device",
        args.device,
    ]
    cmd += ["--threads", str(args.threads)] if args.threads else []
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    if done.returncode:
        print(f"{variant} B={B}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_rows(runs: list[dict]) -> dict:
    """One row from the rounds of a variant: the median of each time, the largest peak memory."""
    row = dict(runs[0])
    for key in ("step_s", "cpu_s", "load"):
        row[key] = statistics.median(r[key] for r in runs)
    row["samples_per_s"] = row["B"] / row["step_s"]
    row["peak_mib"] = max(r["peak_mib"] for r in runs)
    row["rounds"] = len(runs)
    return row


def with_ratios(rows: list[dict]) -> list[dict]:
    """Add, per row, the reference's step / this step (wall and CPU) and this peak / the reference's
    peak at the same B (``None`` without a reference row)."""
    reference = {r["B"]: r for r in rows if r["variant"] == "reference"}
    for r in rows:
        ref = reference.get(r["B"])
        r["speedup_wall"] = ref["step_s"] / r["step_s"] if ref else None
        r["speedup_cpu"] = ref["cpu_s"] / r["cpu_s"] if ref else None
        r["memory_ratio"] = r["peak_mib"] / ref["peak_mib"] if ref else None
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (the heap still grows)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run every variant this many times, interleaved; report medians"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this json file")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "B"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from cra.run import select_device

    device = select_device(args.device)
    if args.child:
        print(json.dumps(run_variant(args.child[0], int(args.child[1]), args.repeats, device, args.warmup)))
        return
    runs: dict[tuple[str, int], list[dict]] = {}
    for round_ in range(args.rounds):
        for B in args.batch:
            for variant in args.variants:
                row = run_child(variant, B, args)
                if row is None:
                    continue
                runs.setdefault((variant, B), []).append(row)
                print(
                    f"round {round_ + 1}  {variant:>22}  B={B:<3} step {row['step_s']:7.3f} s "
                    f"(CPU {row['cpu_s']:7.2f} s, "
                    f"load {row['load']:.1f})  {row['samples_per_s']:7.2f} samples/s  "
                    f"peak {row['peak_mib']:7.0f} MiB  tokens {row['text_tokens_per_step']}",
                    flush=True,
                )
    rows = with_ratios([median_rows(r) for r in runs.values()])
    print(
        f"\ndevice {device}, {rows[0]['threads'] if rows else '?'} threads, median of {args.repeats} steps "
        f"after {args.warmup} warm-up, median over {args.rounds} interleaved round(s); x ref: the reference step's "
        f"time (or peak memory) over this one's\n"
    )
    print(
        "| variant | B | step (s) | CPU time (s) | load | samples/s | peak memory (MiB) | text tokens computed/step "
        "| wall x ref | CPU x ref | memory / ref |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def ratio(x):
        return "" if x is None else f"{x:.2f}"

    for r in rows:
        print(
            f"| {r['variant']} | {r['B']} | {r['step_s']:.3f} | {r['cpu_s']:.2f} | {r['load']:.1f} | "
            f"{r['samples_per_s']:.2f} | {r['peak_mib']:.0f} | {r['text_tokens_per_step']} | "
            f"{ratio(r['speedup_wall'])} | {ratio(r['speedup_cpu'])} | {ratio(r['memory_ratio'])} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
