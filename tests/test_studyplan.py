"""The study as a declarative plan: the pure cell plan, the study file, the task plan, the local executor.

The cell plan must reproduce today's cell ids exactly (committed cells in ``checkpoints/cells`` are found again);
the study file is validated with one-line errors naming the file and key; a tiny end-to-end study runs on the
in-memory FakePrepared data with committed (tiny) encoders standing in for pretraining, and a rerun skips all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aclecg.evaluation.cells import SweepPlan, chosen_lr_of, plan_cells
from aclecg.evaluation.config import EvalConfig
from aclecg.leads import LEADS

REPO = Path(__file__).resolve().parents[1]
#: The bundled PTB-XL subset the committed cells were computed on (prepared at 100 Hz, 10 s).
BUNDLED_PTBXL = "fa407e0d79ec7685a779bd19b4a294a2a78463dfa4e50b88324cd954c6722d82"
SUPERDIAGNOSTIC = ("CD", "HYP", "MI", "NORM", "STTC")
ALL_FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


class _Leads:
    leads = list(LEADS)


def _committed_ids(folder: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (REPO / "checkpoints" / "cells" / folder).glob("*.json")}


@pytest.mark.parametrize(
    ("folder", "names", "kinds", "fractions"),
    [
        ("multilabel-test10-reference", ["acl_ecg"], ("reference_cnn",), ALL_FRACTIONS),
        ("singlelabel-test10-reference", ["acl_ecg"], ("reference_cnn",), ALL_FRACTIONS),
        ("multilabel-test10-finetune", ["acl_ecg", "dlc"], ("fine_tune", "supervised"), (0.01, 0.1, 1.0)),
    ],
)
def test_plan_finds_the_committed_cells(folder, names, kinds, fractions):
    """The official split's sweeps as results_all.sh ran them (--test-fold 10 --val-fold 9, 3 seeds, the
    pre-2026-12-04 schedule --dense-until 0, --lr-grid 0.0003,0.001,0.003): the plan names exactly the committed
    files, the later seeds resolved with the learning rate their first seed chose."""
    from aclecg.evaluation.cellrun import encoder_info, reference_config
    from aclecg.evaluation.sources import load_source

    manifest = REPO / ".cache" / "prepared" / "ptbxl" / "manifest.json"
    if manifest.is_file():  # the prepared bundled data, when this checkout has it, is the data of those cells
        assert json.loads(manifest.read_text())["fingerprint"] == BUNDLED_PTBXL
    encoders = tuple(encoder_info(load_source(REPO / "checkpoints" / n / "encoder.pt")) for n in names)
    plan = SweepPlan(
        label_set="superdiagnostic",
        protocol=folder.split("-")[0],
        classes=SUPERDIAGNOSTIC,
        fingerprint=BUNDLED_PTBXL,
        fractions=fractions,
        seeds=(0, 1, 2),
        arm_kinds=kinds,
        encoders=encoders,
        ref_config=reference_config(encoders, _Leads()),
        config=EvalConfig(dense_until=0, lr_grid=(3e-4, 1e-3, 3e-3)),
        test_fold=10,
        val_fold=9,
    )
    committed = _committed_ids(folder)
    first = plan_cells(plan)
    waiting = [c for c in first if c.cell_id is None]
    assert len(waiting) == len(first) * 2 // 3  # seeds 1 and 2 wait for seed 0's learning rate
    assert all(c.after == (c.arm.name, c.fraction, 0) for c in waiting)
    chosen = {(c.arm.name, c.fraction): chosen_lr_of(committed[c.cell_id]) for c in first if c.chooses_lr}
    ids = [c.cell_id for c in plan_cells(plan, chosen)]
    assert len(ids) == len(set(ids)) and set(ids) == set(committed)
    assert plan_cells(plan, chosen) == plan_cells(plan, chosen)  # a pure function of its inputs
