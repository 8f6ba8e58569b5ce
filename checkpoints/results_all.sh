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
$PY -m aclecg report --sweep $SWEEPS/ptbxl-multilabel --sweep $SWEEPS/ptbxl-singlelabel --sweep $SWEEPS/ptbxl-finetune \
    --preamble docs/results_preamble.md --out docs/results.md "${ship[@]}"
