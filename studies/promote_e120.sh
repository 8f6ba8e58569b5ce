#!/usr/bin/env bash
# Issue 28, once: the 120-epoch study (studies/bundled-e120.toml) becomes the shipped study, and the 20-epoch one
# is archived beside it. Run from a clean checkout after `aclecg study run studies/bundled-e120.toml` has finished
# every task; then `make results` writes docs/results.md, the README block, the model cards and the Sweeps page's
# exports from it, and the preamble (docs/results_preamble.md) is edited by hand. This script is deleted by the
# commit that uses it.
#   bash studies/promote_e120.sh           refuses while a task is left
#   bash studies/promote_e120.sh --force   moves the files anyway (to try the swap in a scratch clone)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NAMES=(acl_ecg dlc lcd simclr moco byol simsiam barlow vicreg dla acl_ecg_no_physio acl_ecg_no_region)

left=$("$PY" -m aclecg study plan studies/bundled-e120.toml | awk '$1=="cost"{t=1;next} t&&NF>=4&&$4~/^[0-9]+$/{s+=$4} END{print s+0}')
if [[ "$left" != 0 && "${1:-}" != "--force" ]]; then
  echo "studies/bundled-e120.toml has $left task(s) left: run it to the end first (or --force in a scratch clone)" >&2
  exit 1
fi
[[ -z "$(git status --porcelain --untracked-files=no)" ]] || { echo "the checkout has uncommitted changes: commit or stash them" >&2; exit 1; }

# 1. The 20-epoch study moves to checkpoints/e20, studies/bundled-e20.toml and docs/results-e20.md.
mkdir -p checkpoints/e20/cells docs/results/e20
for n in "${NAMES[@]}"; do git mv "checkpoints/$n" "checkpoints/e20/$n"; done
git mv checkpoints/rotations checkpoints/e20/rotations
for d in checkpoints/cells/multilabel-test* checkpoints/cells/singlelabel-test*; do git mv "$d" checkpoints/e20/cells/; done
git mv studies/bundled.toml studies/bundled-e20.toml
sed -i -e 's|^name = "bundled"|name = "bundled-e20"|' -e 's|^\(runs = \)"runs"|\1"runs/e20"|' \
  -e 's|^\(checkpoints = \)"checkpoints"|\1"checkpoints/e20"|' \
  -e 's|^\(cells = \)"checkpoints/cells"|\1"checkpoints/e20/cells"|' studies/bundled-e20.toml
sed -i '1i # Archived 2026-12 (issue 28): the 20-epoch study, replaced by studies/bundled.toml at 120 epochs. Its report\n# is docs/results-e20.md; its encoders and trained cells are under checkpoints/e20/.' studies/bundled-e20.toml
git mv docs/results.md docs/results-e20.md
for f in docs/results/{multilabel,singlelabel}_{auroc,auprc}.png; do git mv "$f" docs/results/e20/; done
sed -i -e 's|](results/\(multilabel\|singlelabel\)_|](results/e20/\1_|g' docs/results-e20.md
sed -i '1i > **Archived.** The 20-epoch study, replaced by [docs/results.md](results.md) (120 epochs, issue 28).\n' docs/results-e20.md

# 2. The 120-epoch study takes their place.
for n in "${NAMES[@]}"; do git mv "checkpoints/e120/$n" "checkpoints/$n"; done
git mv checkpoints/e120/rotations checkpoints/rotations
for d in checkpoints/e120/cells/*; do git mv "$d" checkpoints/cells/; done
git mv studies/bundled-e120.toml studies/bundled.toml
sed -i -e 's|^name = "bundled-e120"|name = "bundled"|' -e 's|^\(runs = \)"runs/e120"|\1"runs"|' \
  -e 's|^\(checkpoints = \)"checkpoints/e120"|\1"checkpoints"|' \
  -e 's|^\(cells = \)"checkpoints/e120/cells"|\1"checkpoints/cells"|' studies/bundled.toml
git rm -q -r docs/results/e120.md docs/results/e120
sed -i 's|\[docs/results/e120.md\](results/e120.md)|[docs/results.md](results.md)|g' docs/results-e20.md
git rm -q docs/results_preamble.md && git mv docs/results_preamble_e120.md docs/results_preamble.md
# the interim preamble (written for docs/results/e120.md) becomes the report's: its links, paths and first paragraph
"$PY" - <<'PY'
import re
import textwrap
from pathlib import Path

path = Path("docs/results_preamble.md")
text = path.read_text().replace("](budget-sensitivity.md)", "](results/budget-sensitivity.md)")
text = text.replace("checkpoints/e120/cells/", "checkpoints/cells/").replace("checkpoints/e120/", "checkpoints/")
final = (
    "**This is the 120-epoch study (issue 28).** `studies/bundled.toml` declares it and `make results` rebuilds "
    "this page: committed encoders and trained cells (`checkpoints/`, `checkpoints/cells/`) are reused, the probes "
    "take about 15 min on 2 cores, and `aclecg study plan studies/bundled.toml` says what is left. It replaced the "
    "20-epoch study, whose report is kept in [docs/results-e20.md](results-e20.md) (`studies/bundled-e20.toml`, "
    "`checkpoints/e20/`): the budget-sensitivity run showed 20 epochs was too short to compare the methods."
)
final = textwrap.fill(final, 116, break_on_hyphens=False)
text, n = re.subn(r"\*\*This is the 120-epoch retraining \(issue 28\), in progress\.\*\*.*?\n\n", final + "\n\n", text, flags=re.S)
assert n == 1, "the preamble's in-progress paragraph was not found"
assert "e120" not in text.replace("bundled-e120", ""), [l for l in text.splitlines() if "e120" in l]
path.write_text(text)

study = Path("studies/bundled.toml")
head = """# The study of docs/results.md on the bundled data (make results), issue 28's protocol:
#   aclecg study plan studies/bundled.toml     what is left to run, with a time estimate
#   aclecg study run studies/bundled.toml      run it (resumable: finished tasks are skipped)
#   aclecg study report studies/bundled.toml   docs/results.md from runs/sweeps
# 10 methods (and 2 ablations on the official split) pretrained 120 epochs (the budget docs/results/budget-
# sensitivity.md chose) on bundled PTB-XL + Challenge 2021, with rate-keeping Physio-AUG, per-sample augmentation
# draws and EMA targets whose half-life is 5 % of the run (moco, byol, lcd: ema_half_life = 0.05). The
# configurations are checkpoints/NAME/config.json; rotation encoders are under checkpoints/rotations/, every one
# with its whole loss curve. Test folds 10 (official split, seed 0), 8, 7 and 6 (fold K left out of pretraining,
# seed 10 - K), every rotation validated on fold 9. The 20-epoch study it replaced is studies/bundled-e20.toml.
"""
body = study.read_text()
study.write_text(head + body[body.index("[study]"):])
PY
if [[ -d runs/e120 ]]; then  # this machine's runs (probe cells, encoders): reused instead of recomputed
  mkdir -p runs/e20
  for d in runs/*; do [[ "$d" == runs/e120 || "$d" == runs/e20 ]] || mv "$d" runs/e20/; done
  mv runs/e120/* runs/ && rmdir runs/e120
fi
rmdir checkpoints/e120/cells checkpoints/e120 2>/dev/null || true
grep -q '^name = "bundled"$' studies/bundled.toml && grep -q '^cells = "checkpoints/cells"' studies/bundled.toml
grep -q '^name = "bundled-e20"$' studies/bundled-e20.toml && grep -q '^cells = "checkpoints/e20/cells"' studies/bundled-e20.toml
echo "moved; next: make results (report, README block, cards, exports), make test, then: git grep -n -e e120 -e \"20 epochs\" -- docs README.md"
