#!/usr/bin/env bash
# Reproduce every shipped checkpoint from its configuration alone (2 CPU cores: see each model card for the time).
# Usage: bash checkpoints/pretrain_all.sh [NAME ...]   (default: all). Runs go to runs/ship-NAME, then the
# exported encoder is copied next to the configuration with its checksum.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(acl_ecg simclr lcd acl_ecg_no_physio acl_ecg_no_region)
for name in "${names[@]}"; do
  run=runs/ship-$name
  if [ -f "$run/encoder.pt" ]; then echo "$name: already trained ($run)"; else
    if [ -d "$run" ]; then resume=--resume; else resume=; fi
    /usr/bin/time -f "$name: %e s wall" $PY -m aclecg pretrain --config checkpoints/$name/config.json --run-dir "$run" $resume --no-progress
  fi
done
