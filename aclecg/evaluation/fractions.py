"""Which records train: test-fold rotation and the patient-wise, stratified label-fraction draw.

Only the training folds (``split == "train"``) are ever subsampled; validation and test records are never
candidates. A draw depends only on ``(seed, fraction)``, so every arm at the same fraction and seed sees the same
training records.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aclecg.errors import ConfigError, DataError

__all__ = ["default_val_fold", "rotate_folds", "sample_label_fraction"]


def rotate_folds(records: pd.DataFrame, test_fold: int, val_fold: int | None = None) -> pd.DataFrame:
    """A copy of ``records`` whose ``split`` makes fold ``test_fold`` the test fold and ``val_fold`` the
    validation fold; every other fold is training. ``val_fold=None`` takes the fold before ``test_fold``
    (cyclically, 1 -> 10), so ``test_fold=10`` reproduces the official PTB-XL split (1-8 / 9 / 10). A study that
    pools several test folds must pass a ``val_fold`` that none of them is (see :mod:`aclecg.results.study`)."""
    if "fold" not in records.columns:
        raise DataError("records.csv has no 'fold' column: the test fold cannot be rotated")
    folds = pd.to_numeric(records["fold"], errors="coerce")
    present = sorted(int(f) for f in folds.dropna().unique())
    if not isinstance(test_fold, int) or test_fold not in present:
        raise ConfigError(f"test_fold must be one of the data's folds {present}, got {test_fold!r}")
    val_fold = default_val_fold(test_fold, present) if val_fold is None else val_fold
    if not isinstance(val_fold, int) or val_fold not in present or val_fold == test_fold:
        raise ConfigError(
            f"val_fold must be one of the data's folds {present} other than {test_fold}, got {val_fold!r}"
        )
    out = records.copy()
    out["split"] = np.where(folds == test_fold, "test", np.where(folds == val_fold, "val", "train"))
    return out


def default_val_fold(test_fold: int, present: list[int] | None = None) -> int:
    """The validation fold :func:`rotate_folds` uses when none is given: the fold before ``test_fold``."""
    present = present or list(range(1, 11))
    return present[present.index(test_fold) - 1]


def _train_pool(records: pd.DataFrame, keep_idx: np.ndarray) -> np.ndarray:
    """Positions (into ``keep_idx``) of the labelled records in the training folds."""
    split = records["split"].to_numpy()[keep_idx]
    return np.flatnonzero(split == "train")


def sample_label_fraction(
    records: pd.DataFrame, keep_idx: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """Draw a patient-wise, stratified subset of the training folds; returns positions into ``keep_idx``.

    * Only records with ``split == "train"`` are candidates; validation and test records are never read.
    * Patients are kept whole (all their windows/records or none).
    * Each patient gets a stratum: its rarest class in the training pool (or "no label"); within every stratum
      patients are drawn in a seeded random order until the stratum's share ``fraction * records`` is reached
      (at least one patient per non-empty stratum), so class proportions follow the full training set.
    * Then every class that has positives in the training pool but none in the sample gets one random patient
      with that class, so each class keeps at least one positive where the data allow.
    * ``fraction == 1`` returns every training record. The draw depends only on ``(seed, fraction)``.
    """
    if not (isinstance(fraction, (int, float)) and 0.0 < float(fraction) <= 1.0):
        raise ConfigError(f"label fraction must be in (0, 1], got {fraction!r}")
    if "patient_id" not in records.columns or "split" not in records.columns:
        raise DataError("records.csv needs 'patient_id' and 'split' columns for label-fraction sampling")
    keep_idx = np.asarray(keep_idx, dtype=np.int64)
    y = np.asarray(y)
    pool = _train_pool(records, keep_idx)
    if len(pool) == 0:
        raise DataError("no labelled records in the training folds (split == 'train')")
    if float(fraction) >= 1.0:
        return pool
    rng = np.random.default_rng([int(seed), int(round(float(fraction) * 1e6)), 20260131])
    patients = records["patient_id"].astype(str).to_numpy()[keep_idx[pool]]
    uniq, inverse = np.unique(patients, return_inverse=True)
    y_pool = y[pool] > 0
    # per patient: which classes they carry, how many records they have
    carries = np.zeros((len(uniq), y.shape[1]), dtype=bool)
    np.logical_or.at(carries, inverse, y_pool)
    n_rec = np.bincount(inverse, minlength=len(uniq))
    freq = y_pool.sum(axis=0).astype(float)
    rarity = np.where(carries, freq[None, :], np.inf)
    stratum = np.where(np.isfinite(rarity.min(axis=1)), rarity.argmin(axis=1), -1)
    chosen = np.zeros(len(uniq), dtype=bool)
    for s in np.unique(stratum):
        members = np.flatnonzero(stratum == s)
        members = members[rng.permutation(len(members))]
        target = float(fraction) * n_rec[members].sum()
        cum = np.cumsum(n_rec[members])
        take = max(1, int(np.searchsorted(cum, target - 1e-9) + 1))  # smallest prefix reaching the target
        chosen[members[:take]] = True
    covered = (carries & chosen[:, None]).any(axis=0)
    for c in np.flatnonzero(~covered & carries.any(axis=0)):
        if not (carries[chosen, c]).any():
            candidates = np.flatnonzero(carries[:, c])
            chosen[rng.choice(candidates)] = True
    return pool[chosen[inverse]]
