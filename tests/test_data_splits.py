"""Generated folds: deterministic, patient-wise, balanced and stratified."""

from __future__ import annotations

from collections import Counter

import numpy as np

from aclecg.data import patient_stratified_folds, split_of


def _synthetic(n_patients: int = 400, seed: int = 1):
    rng = np.random.default_rng(seed)
    patients, labels = [], []
    classes = ["A", "B", "C", "D"]
    probs = [0.6, 0.25, 0.1, 0.05]
    for p in range(n_patients):
        cls = classes[rng.choice(4, p=probs)]
        for _ in range(rng.integers(1, 4)):  # 1-3 records per patient
            patients.append(f"p{p}")
            labels.append([cls])
    return patients, labels


def test_deterministic_and_seed_dependent():
    patients, labels = _synthetic()
    a = patient_stratified_folds(patients, labels, seed=3)
    b = patient_stratified_folds(patients, labels, seed=3)
    c = patient_stratified_folds(patients, labels, seed=4)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_patient_wise_balanced_and_stratified():
    patients, labels = _synthetic()
    folds = patient_stratified_folds(patients, labels, seed=0)
    assert set(folds) == set(range(1, 11))
    by_patient: dict[str, set[int]] = {}
    for p, f in zip(patients, folds):
        by_patient.setdefault(p, set()).add(int(f))
    assert all(len(s) == 1 for s in by_patient.values())
    sizes = np.bincount(folds, minlength=11)[1:]
    assert sizes.max() - sizes.min() <= 3  # records per fold within one patient's worth
    overall = Counter(l[0] for l in labels)
    for k in range(1, 11):
        in_fold = Counter(l[0] for l, f in zip(labels, folds) if f == k)
        for cls, n in overall.items():
            assert abs(in_fold[cls] / sizes[k - 1] - n / len(labels)) < 0.08, (k, cls)
    rare = [f for l, f in zip(labels, folds) if l[0] == "D"]
    assert len(set(rare)) >= 8  # the rarest class is spread over (almost) every fold


def test_split_names():
    assert [split_of(k) for k in range(1, 11)] == ["train"] * 8 + ["val", "test"]
