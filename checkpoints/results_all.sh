#!/usr/bin/env bash
# Reproduce docs/results.md end to end on the bundled real data: pretrain every shipped checkpoint (and the two
# ACL-ECG ablations), run the label-fraction sweeps, copy the encoders next to their configurations with model
# cards, and generate the report. Every step is resumable: rerunning skips finished runs and sweep cells.
#   bash checkpoints/results_all.sh          (or: make results)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NAMES=(acl_ecg simclr lcd acl_ecg_no_physio acl_ecg_no_region)
SWEEPS=runs/sweeps
EPOCHS=${EPOCHS:-15}      # cap for the supervised / fine-tune arms (early stopping, patience 4)
$PY -m aclecg bundled
bash checkpoints/pretrain_all.sh "${NAMES[@]}"
ckpts=()
for n in "${NAMES[@]}"; do
  mkdir -p "runs/eval/$n" && cp "runs/ship-$n/encoder.pt" "runs/ship-$n/encoder.pt.sha256" "runs/eval/$n/"
  ckpts+=(--checkpoint "runs/eval/$n/encoder.pt")
done
DATA=$($PY -c "from aclecg.data import ensure_bundled; print(ensure_bundled()['ptbxl'])")
common=(--data "$DATA" --label-set superdiagnostic --seeds 3 --patience 4 --epochs "$EPOCHS" --no-progress)
# 1. Linear probes of every checkpoint + random-init + supervised from scratch, both protocols.
$PY -m aclecg sweep "${ckpts[@]}" "${common[@]}" --protocol multilabel --fractions 0.01,0.05,0.1,0.25,0.5,1 \
    --arms linear_probe,random_init,supervised --out $SWEEPS/ptbxl-multilabel
$PY -m aclecg sweep "${ckpts[@]}" "${common[@]}" --protocol singlelabel --fractions 0.01,0.1,1 \
    --arms linear_probe,random_init,supervised --out $SWEEPS/ptbxl-singlelabel
# 2. Fine-tuning of ACL-ECG and SimCLR (the slow arm on a CPU: 10 % and 100 % of labels). The supervised cells of
#    sweep 1 at these fractions and seeds have identical cell keys, so they are reused rather than trained again.
mkdir -p $SWEEPS/ptbxl-finetune/cells
for f in $SWEEPS/ptbxl-multilabel/cells/supervised__f0.1__* $SWEEPS/ptbxl-multilabel/cells/supervised__f1__*; do
  [ -e "$f" ] && cp -n "$f" $SWEEPS/ptbxl-finetune/cells/
done
$PY -m aclecg sweep --checkpoint runs/eval/acl_ecg/encoder.pt --checkpoint runs/eval/simclr/encoder.pt \
    "${common[@]}" --protocol multilabel --fractions 0.1,1 --arms fine_tune,supervised --out $SWEEPS/ptbxl-finetune
ship=()
for n in acl_ecg simclr lcd acl_ecg_no_physio acl_ecg_no_region; do ship+=(--ship "runs/ship-$n=checkpoints/$n"); done
# 3. Test-fold rotation (fold 10 alone is too small to tell the methods apart): for test folds 9 and 8, pretrain
#    ACL-ECG, SimCLR and LCD again with that fold left out (fold 10 becomes training data), then linear-probe them
#    with the rotated split (test = K, val = K-1, train = the rest).
for k in 9 8; do
  rot=()
  for n in acl_ecg simclr lcd; do
    run=runs/rot$k-$n
    if [ ! -f "$run/encoder.pt" ]; then
      if [ -d "$run" ]; then resume=--resume; else resume=; fi
      $PY -m aclecg pretrain --config checkpoints/$n/config.json --set 'exclude_splits=[]' --set "exclude_folds=[$k]" \
          --run-dir "$run" $resume --no-progress
    fi
    mkdir -p "runs/eval-rot$k/$n" && cp "$run/encoder.pt" "$run/encoder.pt.sha256" "runs/eval-rot$k/$n/"
    rot+=(--checkpoint "runs/eval-rot$k/$n/encoder.pt")
  done
  $PY -m aclecg sweep "${rot[@]}" "${common[@]}" --protocol multilabel --fractions 0.01,0.1,1 --test-fold $k \
      --arms linear_probe,random_init --out $SWEEPS/ptbxl-multilabel-test$k
done
$PY -m aclecg report --sweep $SWEEPS/ptbxl-multilabel --sweep $SWEEPS/ptbxl-multilabel-test9 \
    --sweep $SWEEPS/ptbxl-multilabel-test8 --sweep $SWEEPS/ptbxl-singlelabel --sweep $SWEEPS/ptbxl-finetune \
    --preamble docs/results_preamble.md --out docs/results.md "${ship[@]}"
