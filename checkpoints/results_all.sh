#!/usr/bin/env bash
# Rebuild docs/results.md end to end on the bundled real data (make results). Every stage is resumable: finished
# pretraining runs and sweep cells are skipped, an interrupted run resumes from its last checkpoint.
#
#   bash checkpoints/results_all.sh              everything: official split, then test-fold rotations 8, 7, 6
#   STAGES="official" bash checkpoints/results_all.sh     only the official split (test fold 10)
#   TRAINED=0 bash checkpoints/results_all.sh             pretraining and linear probes only (the cheap part)
#
# Expected wall time on 2 CPU cores, extrapolated from the cost table of docs/results.md (measured while two jobs
# shared the cores): pretraining 1-3 min per run (12 official + 30 rotation runs); linear probes ~5 min per test
# fold and protocol; the official split's trained arms (reference CNN at 6 fractions, supervised and two fine-tuned
# encoders at 3, learning-rate grid) ~75 min per protocol; each rotation's trained arms (multilabel, 3 fractions,
# the official learning rates) ~40 min. The official split alone: about 3 h; everything: about 6 h.
#
# The expensive cells (trained arms) are committed under checkpoints/cells/ and copied back before a sweep runs, so
# a fresh clone resumes instead of retraining; rotation checkpoints live in checkpoints/rotations/.
#
# Nothing is chosen on a fold the study scores: every rotation validates on fold 9 (the official validation fold),
# which no rotation tests on; each rotation chooses its own best baseline and learning rates there
# (`aclecg study report` refuses sweeps that chose on a scored fold).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STAGES=${STAGES:-"official rotations"}
ROTATIONS=${ROTATIONS:-"8 7 6"}
VAL_FOLD=9
METHODS=(acl_ecg simclr moco byol simsiam barlow vicreg dlc dla lcd)
ABLATIONS=(acl_ecg_no_physio acl_ecg_no_region)
SWEEPS=runs/sweeps
CELLS=checkpoints/cells
$PY -m aclecg bundled > /dev/null
DATA=$($PY -c "from aclecg.data import ensure_bundled; print(ensure_bundled()['ptbxl'])")
common=(--data "$DATA" --label-set superdiagnostic --seeds 3 --no-progress --val-fold $VAL_FOLD)
ALL_FRACTIONS=0.01,0.05,0.1,0.25,0.5,1
FT_FRACTIONS=0.01,0.1,1

say() { echo "[$(date +%H:%M:%S)] $*"; }
say "expected wall time on 2 CPU cores: about 3 h for the official split, about 6 h with the rotations;"
say "finished runs and cells are skipped, so an interrupted run continues where it stopped"

# sweep NAME ARGS...: run one sweep into runs/sweeps/NAME, restoring / saving its trained cells in checkpoints/cells
sweep() {
  local name=$1; shift
  mkdir -p "$SWEEPS/$name/cells"
  [ -d "$CELLS/$name" ] && cp -n "$CELLS/$name"/* "$SWEEPS/$name/cells/" 2>/dev/null || true
  say "sweep $name"
  $PY -m aclecg sweep "${common[@]}" --out "$SWEEPS/$name" "$@" | tail -1
  if [ "${SAVE_CELLS:-1}" = 1 ]; then
    mkdir -p "$CELLS/$name"
    for f in "$SWEEPS/$name"/cells/*; do
      case $(basename "$f") in supervised__*|reference_cnn__*|*_fine_tune__*) cp -n "$f" "$CELLS/$name/";; esac
    done
  fi
}

# encoder NAME K: the encoder evaluated for method NAME at test fold K, as runs/eval-testK/NAME/encoder.pt (so arm
# labels are the names). A committed encoder (checkpoints/NAME/ for fold 10, checkpoints/rotations/testK/NAME/
# otherwise) is used when it was trained from the current configuration (config.sha256 beside it); else the run
# in runs/ (ship-NAME or rotK-NAME) is trained or resumed, and a rotation's encoder is committed there.
encoder() {
  local n=$1 k=$2 store run want
  if [ "$k" = 10 ]; then store=checkpoints/$n run=runs/ship-$n; else store=checkpoints/rotations/test$k/$n run=runs/rot$k-$n; fi
  want=$(sha256sum "checkpoints/$n/config.json" | cut -d' ' -f1)
  if [ ! -f "$run/encoder.pt" ] && [ -f "$store/encoder.pt" ] && [ "$(cat "$store/config.sha256" 2>/dev/null)" = "$want" ]; then
    src=$store
  else
    ROTATION=$k bash checkpoints/pretrain_all.sh "$n"
    src=$run
    if [ "$k" != 10 ]; then   # official encoders are committed with their model cards by `study ship` below
      mkdir -p "$store" && cp "$run/encoder.pt" "$run/encoder.pt.sha256" "$store/" && echo "$want" > "$store/config.sha256"
    fi
  fi
  mkdir -p "runs/eval-test$k/$n" && cp "$src/encoder.pt" "$src/encoder.pt.sha256" "runs/eval-test$k/$n/"
}

# rotation K: pretrain (or reuse), probe every method, then train the reference and fine-tuned arms
rotation() {
  local k=$1 names ckpts=()
  if [ "$k" = 10 ]; then names=("${METHODS[@]}" "${ABLATIONS[@]}"); else names=("${METHODS[@]}"); fi
  say "encoders, test fold $k"
  for n in "${names[@]}"; do encoder "$n" "$k"; ckpts+=(--checkpoint "runs/eval-test$k/$n/encoder.pt"); done
  for protocol in multilabel singlelabel; do
    SAVE_CELLS=0 sweep "$protocol-test$k-probe" "${ckpts[@]}" --protocol "$protocol" --test-fold "$k" \
        --fractions $ALL_FRACTIONS --arms linear_probe,random_init
  done
  [ "${TRAINED:-1}" = 1 ] || return 0   # TRAINED=0: probes only
  # this rotation's best baseline, chosen on its validation fold (fold 9, never a test fold of the study)
  best=$($PY -m aclecg study best-baseline --sweeps "$SWEEPS" --test-fold "$k")
  adir=runs/eval-test$k/acl_ecg bdir=runs/eval-test$k/$best
  say "best baseline (validation, 10 % labels): $best"
  if [ "$k" = 10 ]; then
    # official split: both protocols, the reference CNN at every fraction, learning rates searched on validation
    for protocol in multilabel singlelabel; do
      sweep "$protocol-test$k-reference" --checkpoint "$adir/encoder.pt" --protocol "$protocol" --test-fold "$k" \
          --fractions $ALL_FRACTIONS --arms reference_cnn
      sweep "$protocol-test$k-finetune" --checkpoint "$adir/encoder.pt" --checkpoint "$bdir/encoder.pt" \
          --protocol "$protocol" --test-fold "$k" --fractions $FT_FRACTIONS --arms fine_tune,supervised
    done
  else
    # rotations (the CPU budget): multilabel, 1/10/100 %; learning rates searched on this rotation's own
    # validation fold (none is borrowed from another rotation)
    sweep "multilabel-test$k-reference" --checkpoint "$adir/encoder.pt" --protocol multilabel --test-fold "$k" \
        --fractions $FT_FRACTIONS --arms reference_cnn
    sweep "multilabel-test$k-finetune" --checkpoint "$adir/encoder.pt" --checkpoint "$bdir/encoder.pt" \
        --protocol multilabel --test-fold "$k" --fractions $FT_FRACTIONS --arms fine_tune,supervised
  fi
}

for stage in $STAGES; do
  case $stage in
    official) rotation 10 ;;
    rotations) for k in $ROTATIONS; do rotation "$k"; done ;;
    *) echo "unknown stage $stage (official, rotations)" >&2; exit 2 ;;
  esac
done
say "report"
$PY -m aclecg study report --sweeps "$SWEEPS" --out docs/results.md --export docs/results/sweeps --readme README.md \
    --cards checkpoints
say "model cards of the official encoders (quoting the exported probe sweeps)"
$PY -m aclecg study ship --sweeps docs/results/sweeps
