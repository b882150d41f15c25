#!/usr/bin/env bash
# The GPU check of issue 16 (<= 8 minutes on one H100/H200): CPU-vs-CUDA forward parity, training
# steps at the paper's shapes in fp32 / TF32 / bf16 (step time, peak memory, projected NExT-GQA
# epoch), and the synthetic world trained with torchrun on every GPU. Writes a JSON of results.
#
#   bash benchmarks/gpu_check.sh                       # -> benchmarks/results/gpu_check_<date>.json
#   bash benchmarks/gpu_check.sh --out results.json
#   bash benchmarks/gpu_check.sh --cpu-dry-run --out /tmp/gpu_check.json   # tiny shapes on CPU
#
# Needs the package's dependencies (transformers included); no network: RoBERTa is built with
# random weights from RobertaConfig().
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec timeout 480 "$PYTHON" benchmarks/gpu_check.py "$@"
