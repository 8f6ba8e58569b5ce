#!/usr/bin/env bash
# Pretrain the shipped checkpoints from their configurations alone, and the test-fold rotations.
#   bash checkpoints/pretrain_all.sh [NAME ...]             official split (test fold 10 left out), seed 0
#   ROTATION=9 bash checkpoints/pretrain_all.sh [NAME ...]  test fold 9 left out (fold 10 is training data), seed 1
# Default NAME list: every checkpoints/*/config.json. Runs go to runs/ship-NAME (official) or runs/rotK-NAME and are
# resumed when interrupted; a finished run (encoder.pt present) is skipped. Rotation K uses seed 10-K, so every
# rotation has its own pretraining seed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ROTATION=${ROTATION:-10}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for c in checkpoints/*/config.json; do names+=("$(basename "$(dirname "$c")")"); done
fi
for name in "${names[@]}"; do
  if [ "$ROTATION" = 10 ]; then run=runs/ship-$name; extra=(); else
    run=runs/rot$ROTATION-$name
    extra=(--set 'exclude_splits=[]' --set "exclude_folds=[$ROTATION]" --set "seed=$((10 - ROTATION))")
  fi
  if [ -f "$run/encoder.pt" ]; then echo "$name (test fold $ROTATION): already trained ($run)"; continue; fi
  if [ -d "$run" ]; then resume=(--resume); else resume=(); fi
  start=$(date +%s)
  $PY -m aclecg pretrain --config "checkpoints/$name/config.json" "${extra[@]}" --run-dir "$run" "${resume[@]}" \
      --no-progress > /dev/null
  echo "$name (test fold $ROTATION): $(( $(date +%s) - start )) s wall -> $run"
done
