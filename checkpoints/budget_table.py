"""The pretraining-budget sensitivity table (docs/results/budget-sensitivity.md), from the budget sweep's cells.

    python checkpoints/budget_table.py runs/sweeps-sensitivity/budget docs/results/budget-sensitivity.md

Arms are named ``METHOD-eEPOCHS`` (the shipped 20-epoch encoders are ``METHOD-e20``). For each method and budget:
the 10 % linear probe's macro AUROC on the validation fold (fold 9, which chooses) and on the test fold (fold 10,
reported only), mean over 3 label seeds, and the last pretraining loss (from the committed metrics.jsonl). The
budget chosen is the smallest at which, for every method, at least doubling it moves the validation probe by less
than 0.01 AUROC; nothing on the test fold enters the choice.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

THRESHOLD = 0.01


def load(sweep: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((sweep / "cells").glob("*.json")):
        rec = json.loads(path.read_text())
        m = re.fullmatch(r"(.+)-e(\d+):linear_probe", rec["arm"])
        if not m:
            continue
        d = rec["details"]
        macro = {r["metric"]: r["value"] for r in rec["metrics"]}
        rows.append(
            {
                "method": m.group(1),
                "epochs": int(m.group(2)),
                "seed": rec["seed"],
                "val": d["val"][str(d["l2"])],
                "test": macro["macro_auroc"],
            }
        )
    return pd.DataFrame(rows)


def last_loss(method: str, epochs: int) -> tuple[str, str]:
    path = Path("checkpoints/sensitivity") / f"{method}-e{epochs}" / "metrics.jsonl"
    if epochs == 20 and not path.is_file():  # the shipped encoder (its loss curve is not committed)
        path = Path("checkpoints") / method / "metrics.jsonl"
    if not path.is_file():
        return "–", "–"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return f"{rows[-1]['loss']:.3f}", str(rows[-1]["step"])


PLANNED_METHODS, PLANNED_EPOCHS = ("acl_ecg", "dlc", "lcd"), (20, 60, 120, 240)


def missing(table: pd.DataFrame) -> list[str]:
    have = set(zip(table["method"], table["epochs"]))
    return [f"{m} at {e}" for m in PLANNED_METHODS for e in PLANNED_EPOCHS if (m, e) not in have]


def choose(table: pd.DataFrame) -> int | None:
    if missing(table):
        return None  # no budget is chosen on a partial table
    budgets = sorted(table["epochs"].unique())
    for b in budgets:
        later = [x for x in budgets if x >= 2 * b]
        if not later:
            continue
        nxt = later[0]
        moves = (
            table[table["epochs"] == nxt].set_index("method")["val"]
            - table[table["epochs"] == b].set_index("method")["val"]
        ).abs()
        if moves.notna().all() and (moves < THRESHOLD).all():
            return int(b)
    return None


def main(sweep: str, out: str) -> None:
    cells = load(Path(sweep))
    table = cells.groupby(["method", "epochs"]).agg(val=("val", "mean"), test=("test", "mean")).reset_index()
    lines = [
        "# Pretraining budget sensitivity",
        "",
        "_Written by `python checkpoints/budget_table.py` from the cells of `bash checkpoints/budget_sensitivity.sh`._",
        "",
        "ACL-ECG and the two baselines that validate best at 10 % of labels on the official split (DLC, LCD), "
        "pretrained at 20, 60, 120 and 240 epochs from their shipped configurations (LCD with its EMA half-life capped "
        "at 5 % of the run). Linear probe, 10 % of labels, multilabel superdiagnostic, mean over 3 label seeds; "
        "validation = fold 9 (it chooses), test = fold 10 (reported only).",
        "",
        "| method | epochs | steps | last loss | probe AUROC, validation | probe AUROC, test |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.sort_values(["method", "epochs"]).itertuples():
        loss, steps = last_loss(r.method, r.epochs)
        lines.append(f"| {r.method} | {r.epochs} | {steps} | {loss} | {r.val:.4f} | {r.test:.4f} |")
    chosen = choose(table)
    gaps = missing(table)
    if gaps:
        lines += [
            "",
            f"**Incomplete**: no budget is chosen until every planned run is scored; missing: {', '.join(gaps)} "
            "(`bash checkpoints/budget_sensitivity.sh` resumes).",
        ]
    lines += [
        "",
        f"Rule: the smallest budget at which at least doubling it moves every method's validation probe by less "
        f"than {THRESHOLD:g} AUROC. Chosen: **{chosen} epochs**."
        if chosen is not None
        else f"Rule: the smallest budget at which at least doubling it moves every method's validation probe by "
        f"less than {THRESHOLD:g} AUROC. No budget in this table meets it yet.",
        "",
    ]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python checkpoints/budget_table.py SWEEP_DIR OUT.md")
    np.seterr(all="ignore")
    main(sys.argv[1], sys.argv[2])
