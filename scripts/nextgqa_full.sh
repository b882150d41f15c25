#!/usr/bin/env bash
# The full NExT-GQA run on one GPU: data -> features -> confounder dictionaries -> training ->
# predictions -> the paper's test table. Each step is one `python -m cra` command; run the whole
# script, or one step with `STEPS="train predict"` (steps: data features confounders train predict evaluate).
#
#   CRA_DATA_DIR=/data/cra RUN=runs/nextgqa bash scripts/nextgqa_full.sh
#
# Layout expected under $CRA_DATA_DIR (the same as cra/configs/nextgqa.yaml reads):
#   nextgqa/{train,val,test}.csv, gsub_{val,test}.json, frame2time_{val,test}.json
#   features/CLIPL/CLIPL_I_{train,val,test}.h5
#
# Several GPUs of one machine: NPROC=4 runs the training step with torchrun (data-parallel, NCCL; the
# global batch stays train.batch_size = 64, split over the GPUs; only rank 0 writes the run folder):
#   torchrun --nproc-per-node 4 -m cra train --config nextgqa --run-dir runs/nextgqa
# (under torchrun write --run-dir: torchrun's own parser would take --run for its --run-path).
#
# Times: none measured yet (the sessions that wrote this had no GPU); `python -m cra train` prints
# each epoch's time in metrics.jsonl ("seconds"), so the first run records them.
#
# On CPU the same commands run end to end on the synthetic world (python -m cra make-synthetic):
#   CRA_DATA_DIR=data_samples/synthetic ANN=data_samples/synthetic CONFIG=synthetic SPLITS="val test-id" \
#     TEST=test-id STEPS="train predict evaluate" RUN=runs/synthetic bash scripts/nextgqa_full.sh
set -euo pipefail

PY=${PY:-python}
NPROC=${NPROC:-1}                      # GPUs for the training step (torchrun when > 1)
: "${CRA_DATA_DIR:?set CRA_DATA_DIR to the data root}"
export CRA_DATA_DIR
RUN=${RUN:-runs/nextgqa}
CONFIG=${CONFIG:-nextgqa}             # a packaged training config (or a YAML path)
SET=${SET:-}                          # extra overrides, e.g. SET="--set train.epochs=2"
STEPS=${STEPS:-data features confounders train predict evaluate}
VIDEOS=${VIDEOS:-}                    # NExT-QA videos (only for step "features" when no features are provided)
ANN=${ANN:-$CRA_DATA_DIR/nextgqa}       # csv, gsub, frame2time
SPLITS=${SPLITS:-val test}            # splits to predict
TEST=${TEST:-test}                    # the split of the final table

has_step() { [[ " $STEPS " == *" $1 "* ]]; }

# 1. Annotations. val/test (+ gsub, frame2time) are fetched and sha256-checked; train.csv is NExT-GQA's
#    datasets/nextgqa/train.csv (github.com/doc-doc/NExT-GQA), copied by hand into $ANN.
if has_step data; then
  $PY -m cra download
  [[ -f "$ANN/train.csv" ]] || { echo "missing $ANN/train.csv: copy NExT-GQA's datasets/nextgqa/train.csv there" >&2; exit 1; }
fi

# 2. Frame features. Either put NExT-GQA's provided CLIP ViT-L/14 features at
#    $CRA_DATA_DIR/features/CLIPL/CLIPL_I_{train,val,test}.h5, or extract them from the NExT-QA
#    videos (decoded at 6 fps, every 3rd frame, 32 clip centres, as NExT-GQA does).
if has_step features; then
  for split in train val test; do
    if [[ -f "$CRA_DATA_DIR/features/CLIPL/CLIPL_I_$split.h5" ]]; then
      echo "features for $split present"
    else
      : "${VIDEOS:?no features for $split: set VIDEOS to the NExT-QA video folder, or copy the provided features}"
      $PY -m cra extract-features --videos "$VIDEOS" --map "$ANN/map_vid_vidorID.json" --csv "$ANN/$split.csv" \
        --split "$split" --out "$CRA_DATA_DIR/features" --model ViT-L-14 --pretrained openai
    fi
  done
fi

# 3. Confounder dictionaries Z_l (512 semantic-graph clusters of the train QA text) and X_hat
#    (512 clusters of the train frame features), written to runs/confounders/nextgqa_train.pt.
if has_step confounders; then
  $PY -m cra build-confounders --config nextgqa_train
fi

# 4. Training: 30 epochs, batch 64, Adam (amsgrad) lr 1e-5 with 1 warm-up epoch and linear decay,
#    float32 as the authors trained (bfloat16: --set train.amp=auto); best.pt is chosen on val Acc@QA
#    only (the released preset, a second layer --config variants/released_code, also uses its cosine
#    schedule). Resume an interrupted run with: python -m cra train --run "$RUN" --resume (the same
#    command under torchrun, NPROC=N)
if has_step train; then
  TRAIN=("$PY" -m cra train)
  if (( NPROC > 1 )); then
    TRAIN=("$PY" -m torch.distributed.run --standalone --nproc-per-node "$NPROC" -m cra train)
  fi
  if [[ -f "$RUN/last.pt" ]]; then
    "${TRAIN[@]}" --run-dir "$RUN" --resume
  else
    # shellcheck disable=SC2086
    "${TRAIN[@]}" --config "$CONFIG" --run-dir "$RUN" $SET
  fi
fi

# 5. Predictions of best.pt in the official formats: <split>-res.json, <split>_ground_att.json
#    (per-frame weights) and <split>_ground_{window,posthoc,merge}.json (seconds).
if has_step predict; then
  for split in $SPLITS; do
    $PY -m cra predict --run "$RUN" --split "$split"
  done
fi

# 6. The test table with the official metrics (post-hoc read-out, the paper's reported one), and
#    the question-blind baselines beside it.
if has_step evaluate; then
  P="$RUN/predictions"
  $PY -m cra evaluate --gsub "$ANN/gsub_$TEST.json" --qa "$P/$TEST-res.json" --pred "$P/${TEST}_ground_posthoc.json" --baselines
  for readout in window merge; do
    $PY -m cra evaluate --gsub "$ANN/gsub_$TEST.json" --qa "$P/$TEST-res.json" --pred "$P/${TEST}_ground_$readout.json" \
      --name "CRA ($readout read-out)"
  done
fi
