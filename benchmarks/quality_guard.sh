#!/usr/bin/env bash
# Quality guard of the encoder speed work (issue 19): the shipped ACL-ECG recipe (checkpoints/acl_ecg/config.json)
# pretrained again with today's code -- the default `small` encoder (strided stem) and `small-v1` (the shipped
# checkpoints' xresnet stem), each in float32 and under CPU bf16 autocast, all in the channels-last layout -- then
# linear-probed beside the shipped checkpoint (`small-v1`, trained by the code before these changes) at 10 % and
# 100 % of the labels, 3 seeds, on the bundled PTB-XL data (official split, test fold 10). The committed outputs
# (benchmarks/quality-guard/) were made on 2026-12-01, when checkpoints/acl_ecg held the small-v1 encoder; since
# 2026-12-02 it holds the new default, so a rerun compares against that instead. Resumable: finished
# runs and sweep cells are skipped. About 15 minutes on 2 idle cores.
#   bash benchmarks/quality_guard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/quality-guard}
$PY -m aclecg bundled >/dev/null
for variant in small:off small:bf16 small-v1:off small-v1:bf16; do
  enc=${variant%%:*}; amp=${variant##*:}; run=$OUT/pretrain-$enc-$amp
  if [ ! -f "$run/encoder.pt" ]; then
    resume=; [ -d "$run" ] && resume=--resume
    $PY -m aclecg pretrain --config checkpoints/acl_ecg/config.json \
        --encoder "$enc" --amp "$amp" --run-dir "$run" $resume --no-progress
  fi
done
DATA=$($PY -c "from aclecg.data import ensure_bundled; print(ensure_bundled()['ptbxl'])")
$PY -m aclecg sweep --checkpoint checkpoints/acl_ecg/encoder.pt \
    --checkpoint $OUT/pretrain-small-off/encoder.pt --checkpoint $OUT/pretrain-small-bf16/encoder.pt \
    --checkpoint $OUT/pretrain-small-v1-off/encoder.pt --checkpoint $OUT/pretrain-small-v1-bf16/encoder.pt \
    --data "$DATA" --label-set superdiagnostic --protocol multilabel --fractions 0.1,1 --seeds 3 \
    --arms linear_probe --out $OUT/sweep --no-progress
mkdir -p benchmarks/quality-guard
for f in summary.csv comparisons.csv manifest.json; do
  [ -f "$OUT/sweep/$f" ] && cp "$OUT/sweep/$f" benchmarks/quality-guard/
done
for run in $OUT/pretrain-*; do
  $PY - "$run" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
status = json.loads((run / "status.json").read_text())
print(f"{run.name}: {len(rows)} steps, loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f}, "
      f"{status['finished'] - status['started']:.0f} s, median {sorted(r['samples_per_s'] for r in rows)[len(rows)//2]:.0f} samples/s")
PY
done | tee benchmarks/quality-guard/pretraining.txt
