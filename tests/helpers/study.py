"""A tiny real study: sweeps written by ``aclecg.evaluation.run_sweep`` on the in-memory FakePrepared data."""

from __future__ import annotations

from pathlib import Path

from aclecg import evaluation
from tests.test_evaluate import TINY, FakePrepared, _save_checkpoint


def make_study(root: Path):
    """Tiny real sweeps under ``root/sweeps``: test folds 10 and 8, both validated on fold 9 (which no rotation
    tests on), three 'methods', probes and trained arms."""
    data = FakePrepared(n_patients=80, t=64)
    cfg = evaluation.EvalConfig(
        max_steps=6, eval_every=2, patience=2, batch_size=32, n_bootstrap=20, device="cpu", lr_grid=(1e-3,)
    )
    for fold in (10, 8):
        ckpts = [
            _save_checkpoint(root / f"eval-test{fold}" / name / "encoder.pt", data, seed=seed + fold)
            for name, seed in (("acl_ecg", 0), ("simclr", 1), ("lcd", 2))
        ]
        evaluation.run_sweep(
            ckpts,
            data,
            "toy",
            "multilabel",
            [0.1, 1.0],
            2,
            ["linear_probe", "random_init"],
            root / "sweeps" / f"multilabel-test{fold}-probe",
            config=cfg,
            show_progress=False,
            test_fold=fold,
            val_fold=9,
            cache_dir=root / "cache",
        )
        evaluation.run_sweep(
            [],
            data,
            "toy",
            "multilabel",
            [0.1, 1.0],
            2,
            ["reference_cnn", "supervised"],
            root / "sweeps" / f"multilabel-test{fold}-reference",
            config=cfg,
            show_progress=False,
            test_fold=fold,
            val_fold=9,
            encoder_config=TINY,
            cache_dir=root / "cache",
        )
    return root / "sweeps"
