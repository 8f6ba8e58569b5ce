"""Deterministic patient-wise stratified folds for datasets without official ones.

Folds 1..10 mirror PTB-XL's convention: 1-8 train, 9 validation, 10 test. All records of a patient land in
the same fold. Stratification: every patient gets the rarest (in the whole dataset) of its labels as its
stratum; within each stratum, patients are shuffled with a seeded generator and handed one by one to the fold
that currently holds the fewest records (ties broken in a seeded random order), which keeps both fold sizes
and class proportions balanced (in the spirit of PTB-XL's stratified folds, Wagner et al. 2020).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

N_FOLDS = 10
VAL_FOLD = 9
TEST_FOLD = 10


def split_of(fold: int) -> str:
    """``train`` for folds 1-8, ``val`` for 9, ``test`` for 10."""
    if fold == VAL_FOLD:
        return "val"
    if fold == TEST_FOLD:
        return "test"
    return "train"


def patient_stratified_folds(
    patient_ids: Sequence[str], labels: Sequence[Sequence[str]], seed: int = 0, n_folds: int = N_FOLDS
) -> np.ndarray:
    """Fold (1..n_folds) per record; records of one patient share a fold.

    ``labels[i]`` are the labels of record ``i`` used for stratification (may be empty).
    """
    if len(patient_ids) != len(labels):
        raise ValueError("patient_ids and labels must have the same length")
    freq = Counter(label for labs in labels for label in labs)
    records_of: dict[str, list[int]] = defaultdict(list)
    for i, pid in enumerate(patient_ids):
        records_of[str(pid)].append(i)
    stratum_of: dict[str, str] = {}
    for pid, idx in records_of.items():
        labs = {label for i in idx for label in labels[i]}
        stratum_of[pid] = min(labs, key=lambda lab: (freq[lab], lab)) if labs else ""
    rng = np.random.default_rng(seed)
    tie_order = rng.permutation(n_folds)
    load = np.zeros(n_folds, dtype=np.int64)
    folds = np.zeros(len(patient_ids), dtype=np.int64)
    strata = sorted(set(stratum_of.values()), key=lambda s: (freq.get(s, 0), s))  # rarest strata first
    for stratum in strata:
        patients = sorted(pid for pid, s in stratum_of.items() if s == stratum)
        for k in rng.permutation(len(patients)):
            pid = patients[k]
            candidates = tie_order[load[tie_order] == load.min()]
            fold = int(candidates[0])
            tie_order = np.roll(tie_order, -1)
            load[fold] += len(records_of[pid])
            folds[records_of[pid]] = fold + 1
    return folds
