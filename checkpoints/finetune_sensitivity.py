"""Fine-tuning sensitivity check: the study's fine-tune cells (validation every 20 steps, lr grid 3e-4..3e-3)
beside the same cells validated every 5 steps with 1e-4 added to the grid (official split, test fold 10).

The second sweep (18 cells, 23.5 min on 2 cores, a few browser screenshots beside it at its start), resumable from
the committed cells::

    mkdir -p runs/sensitivity-ft-eval5/cells
    cp checkpoints/cells/sensitivity-ft-eval5/* runs/sensitivity-ft-eval5/cells/
    python -m aclecg sweep --checkpoint checkpoints/acl_ecg/encoder.pt --checkpoint checkpoints/dlc/encoder.pt \\
        --data .cache/prepared/ptbxl --label-set superdiagnostic --protocol multilabel --fractions 0.01,0.1,1 \\
        --seeds 3 --arms fine_tune --eval-every 5 --lr-grid 0.0001,0.0003,0.001,0.003 --test-fold 10 \\
        --out runs/sensitivity-ft-eval5

Then ``python checkpoints/finetune_sensitivity.py`` writes docs/results/finetune-sensitivity.md from the two
results.csv files (the study's, exported in docs/results/sweeps/, and this one's, in docs/results/sensitivity/).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "docs/results/sweeps/multilabel-test10-finetune/results.csv"
CHECK = ROOT / "docs/results/sensitivity/ft-eval5/results.csv"
OUT = ROOT / "docs/results/finetune-sensitivity.md"


def per_arm(path: Path) -> pd.DataFrame:
    """Mean macro AUROC over the seeds, the chosen learning rate and the median best step, per arm and fraction."""
    r = pd.read_csv(path)
    r = r[(r["metric"] == "macro_auroc") & (r["arm_kind"] == "fine_tune")]
    g = r.groupby(["arm", "fraction"])
    return pd.DataFrame({"auroc": g["value"].mean(), "lr": g["lr"].first(), "best": g["best_step"].median()})


def main() -> None:
    a, b = per_arm(STUDY), per_arm(CHECK)
    lines = [
        "# Fine-tuning sensitivity: validation every 5 steps, 1e-4 added to the learning-rate grid",
        "",
        "Written by `python checkpoints/finetune_sensitivity.py` (its docstring has the sweep command). Official",
        "split (test fold 10, 126 test records), multilabel superdiagnostic, macro AUROC as the mean of 3 label",
        "seeds; the study's cells validate every 20 steps with the grid 3e-4, 1e-3, 3e-3, the check every 5 steps",
        "with 1e-4, 3e-4, 1e-3, 3e-3 (same budget 2000 steps, patience 200 steps, first-seed lr selection).",
        "",
        "| arm | fraction | study AUROC | lr | median best step | check AUROC | lr | median best step | change |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (arm, fraction), row in a.join(b.add_suffix("_5")).iterrows():
        lines.append(
            f"| {arm} | {fraction * 100:g} % | {row.auroc:.3f} | {row.lr:g} | {row.best:g} | {row.auroc_5:.3f} | "
            f"{row.lr_5:g} | {row.best_5:g} | {row.auroc_5 - row.auroc:+.3f} |"
        )
    lines += ["", "ACL-ECG − DLC, fine-tuned (mean over seeds):", ""]
    for label, part in (("study", a), ("check", b)):
        m = part["auroc"].unstack(0)
        diffs = m["acl_ecg:fine_tune"] - m["dlc:fine_tune"]
        lines.append(f"* {label}: " + ", ".join(f"{f * 100:g} % {d:+.3f}" for f, d in diffs.items()))
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
