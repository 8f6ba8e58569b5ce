"""aclecg.stats against scikit-learn and against slow textbook reference implementations written here."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from aclecg import stats
from aclecg.errors import DataError


def _random_case(rng: np.random.Generator, n: int, c: int, decimals: int | None = None):
    y = (rng.random((n, c)) < rng.uniform(0.1, 0.6, size=c)).astype(float)
    s = rng.random((n, c)) + 0.5 * y * rng.random(c)
    if decimals is not None:  # coarse scores -> many ties
        s = np.round(s, decimals)
    return y, s


@pytest.mark.parametrize("decimals", [None, 1, 2])
def test_per_class_metrics_equal_sklearn(decimals):
    rng = np.random.default_rng(decimals or 7)
    for _ in range(25):
        n, c = int(rng.integers(4, 200)), int(rng.integers(1, 6))
        y, s = _random_case(rng, n, c, decimals)
        auroc, auprc = stats.per_class_auroc(y, s), stats.per_class_auprc(y, s)
        for k in range(c):
            if 0 < y[:, k].sum() < n:
                assert auroc[k] == pytest.approx(roc_auc_score(y[:, k], s[:, k]), abs=1e-12)
                assert auprc[k] == pytest.approx(average_precision_score(y[:, k], s[:, k]), abs=1e-12)
            else:
                assert np.isnan(auroc[k]) and np.isnan(auprc[k])


def test_macro_equals_sklearn_macro_when_all_classes_evaluable():
    rng = np.random.default_rng(1)
    y, s = _random_case(rng, 300, 5, 2)
    assert stats.macro_auroc(y, s) == pytest.approx(roc_auc_score(y, s, average="macro"), abs=1e-12)
    assert stats.macro_auprc(y, s) == pytest.approx(average_precision_score(y, s, average="macro"), abs=1e-12)


def test_softmax_one_vs_rest_equals_sklearn_ovr():
    rng = np.random.default_rng(2)
    n, c = 200, 4
    labels = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[labels]
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    onehot = np.eye(c)[labels]
    assert stats.macro_auroc(onehot, prob) == pytest.approx(
        roc_auc_score(labels, prob, multi_class="ovr", average="macro"), abs=1e-12
    )


def test_edge_cases_ties_constant_single_positive():
    y = np.array([0, 0, 1, 0, 1, 0, 0, 0], float)
    constant = np.full(8, 0.3)
    assert stats.per_class_auroc(y, constant)[0] == pytest.approx(roc_auc_score(y, constant))  # 0.5
    assert stats.per_class_auprc(y, constant)[0] == pytest.approx(average_precision_score(y, constant))
    single = np.array([0, 0, 0, 1, 0, 0], float)
    s = np.array([0.1, 0.9, 0.4, 0.5, 0.5, 0.2])
    assert stats.per_class_auroc(single, s)[0] == pytest.approx(roc_auc_score(single, s), abs=1e-12)
    assert stats.per_class_auprc(single, s)[0] == pytest.approx(average_precision_score(single, s), abs=1e-12)
    perfect = np.array([0.0, 0.1, 0.9, 0.2, 1.0, 0.3, 0.05, 0.15])
    assert stats.per_class_auroc(y, perfect)[0] == 1.0 and stats.per_class_auprc(y, perfect)[0] == 1.0


def test_class_without_positives_is_excluded_not_nan():
    rng = np.random.default_rng(3)
    y, s = _random_case(rng, 60, 3)
    y[:, 1] = 0.0  # no positives
    y[:, 2] = 1.0  # no negatives
    y[0, 0], y[1, 0] = 1.0, 0.0
    report = stats.evaluate_scores(y, s, ["A", "B", "C"])
    assert report.excluded == ["B", "C"]
    assert report.macro_auroc == pytest.approx(roc_auc_score(y[:, 0], s[:, 0]), abs=1e-12)
    assert report.macro_auprc == pytest.approx(average_precision_score(y[:, 0], s[:, 0]), abs=1e-12)
    assert report.per_class["A"].n_pos == int(y[:, 0].sum())
    boot = stats.bootstrap_metrics(y, s, n_resamples=50, seed=0)
    assert np.isfinite(boot.macro["macro_auroc"]).all()
    assert np.isnan(boot.per_class["auroc"][1]).all()


def test_bad_input_gives_clear_error():
    with pytest.raises(DataError, match="same shape"):
        stats.macro_auroc(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(DataError, match="0/1"):
        stats.macro_auroc(np.full((4, 1), 2.0), np.zeros((4, 1)))
    with pytest.raises(DataError, match="non-finite"):
        stats.macro_auroc(np.array([0, 1.0]), np.array([np.nan, 1.0]))
    with pytest.raises(DataError, match="at least 2 positives"):
        stats.delong_test(np.array([0, 0, 1.0]), np.arange(3.0), np.arange(3.0))


def test_bootstrap_matches_explicit_resampling():
    """Weighted evaluation of a resample equals evaluating the resampled arrays with scikit-learn."""
    rng = np.random.default_rng(4)
    y, s = _random_case(rng, 80, 3, 1)
    w = stats.bootstrap_weights(80, 20, seed=5)
    vals = stats._weighted_metrics(y, s, w)
    for b in range(20):
        idx = np.repeat(np.arange(80), w[b].astype(int))
        for c in range(3):
            yy, ss = y[idx, c], s[idx, c]
            if 0 < yy.sum() < len(yy):
                assert vals["auroc"][b, c] == pytest.approx(roc_auc_score(yy, ss), abs=1e-12)
                assert vals["auprc"][b, c] == pytest.approx(average_precision_score(yy, ss), abs=1e-12)


def test_bootstrap_interval_is_seeded_and_covers_estimate():
    rng = np.random.default_rng(6)
    y, s = _random_case(rng, 150, 4)
    a = stats.bootstrap_metrics(y, s, n_resamples=300, seed=11)
    b = stats.bootstrap_metrics(y, s, n_resamples=300, seed=11)
    assert a.macro == b.macro
    lo, hi = a.macro["macro_auroc"]
    assert lo < stats.macro_auroc(y, s) < hi
    assert a.n_valid + a.n_degenerate == 300


# ---------------------------------------------------------------- DeLong against the O(mn) definition (1988)
def _delong_reference(y, a, b):
    """DeLong, DeLong & Clarke-Pearson (1988): structural components from the pairwise kernel, O(m n)."""
    pos, neg = y == 1, y == 0
    comps10, comps01, aucs = [], [], []
    for s in (a, b):
        x, z = s[pos], s[neg]
        kernel = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        comps10.append(kernel.mean(axis=1))
        comps01.append(kernel.mean(axis=0))
        aucs.append(kernel.mean())
    m, n = pos.sum(), neg.sum()
    s10 = np.cov(np.stack(comps10))
    s01 = np.cov(np.stack(comps01))
    cov = s10 / m + s01 / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    z = (aucs[0] - aucs[1]) / np.sqrt(var)
    return aucs, cov, z, 2 * norm.sf(abs(z))


@pytest.mark.parametrize("decimals", [None, 1])
def test_delong_equals_reference(decimals):
    rng = np.random.default_rng(8)
    for _ in range(10):
        n = int(rng.integers(20, 120))
        y = (rng.random(n) < 0.4).astype(float)
        y[:2], y[2:4] = 1, 0
        a = rng.random(n) + 0.6 * y
        b = a + rng.normal(0, 0.4, n)
        if decimals is not None:
            a, b = np.round(a, decimals), np.round(b, decimals)
        ref_auc, ref_cov, ref_z, ref_p = _delong_reference(y, a, b)
        res = stats.delong_test(y, a, b)
        assert res.auc_a == pytest.approx(ref_auc[0], abs=1e-12)
        assert res.auc_a == pytest.approx(roc_auc_score(y, a), abs=1e-12)
        assert [res.var_a, res.var_b, res.cov_ab] == pytest.approx(
            [ref_cov[0, 0], ref_cov[1, 1], ref_cov[0, 1]], rel=1e-9, abs=1e-15
        )
        assert res.z == pytest.approx(ref_z, rel=1e-9)
        assert res.p_value == pytest.approx(ref_p, rel=1e-7, abs=1e-15)


def test_delong_identical_arms_and_per_class():
    rng = np.random.default_rng(9)
    y, s = _random_case(rng, 100, 3)
    same = stats.delong_test(y[:, 0], s[:, 0], s[:, 0])
    assert same.z == 0.0 and same.p_value == 1.0
    y[:, 2] = 0
    y[0, 2] = 1  # a single positive: DeLong undefined for that class
    per = stats.delong_per_class(y, s, s[::-1].copy())
    assert per[2] is None and per[0] is not None


def _macro_reference(y, a, b):
    """Slow reference for the macro test: O(m n) components per class, influence values averaged."""
    n_rec, n_cls = y.shape
    psi = np.zeros((2, n_rec))
    aucs = np.zeros(2)
    for c in range(n_cls):
        pos = y[:, c] == 1
        m, n = pos.sum(), (~pos).sum()
        for k, s in enumerate((a[:, c], b[:, c])):
            x, z = s[pos], s[~pos]
            kernel = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
            auc = kernel.mean()
            psi[k, pos] += (kernel.mean(axis=1) - auc) / np.sqrt(m * (m - 1))
            psi[k, ~pos] += (kernel.mean(axis=0) - auc) / np.sqrt(n * (n - 1))
            aucs[k] += auc
    psi /= n_cls
    cov = psi @ psi.T
    return aucs / n_cls, cov


def test_delong_macro_reduces_to_delong_and_matches_reference():
    rng = np.random.default_rng(10)
    y, s = _random_case(rng, 90, 1)
    t = s + rng.normal(0, 0.3, s.shape)
    one = stats.delong_macro(y, s, t)
    single = stats.delong_test(y[:, 0], s[:, 0], t[:, 0])
    assert (one.var_a, one.var_b, one.cov_ab) == pytest.approx((single.var_a, single.var_b, single.cov_ab), rel=1e-10)
    assert one.p_value == pytest.approx(single.p_value, rel=1e-9)
    y, s = _random_case(rng, 120, 4, 1)
    t = np.round(s + rng.normal(0, 0.3, s.shape), 1)
    res = stats.delong_macro(y, s, t)
    aucs, cov = _macro_reference(y, s, t)
    assert [res.auc_a, res.auc_b] == pytest.approx(list(aucs), abs=1e-12)
    assert res.auc_a == pytest.approx(roc_auc_score(y, s, average="macro"), abs=1e-12)
    assert [res.var_a, res.var_b, res.cov_ab] == pytest.approx([cov[0, 0], cov[1, 1], cov[0, 1]], rel=1e-9)
    z = (aucs[0] - aucs[1]) / np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert res.p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-7)


def test_delong_size_under_null_is_calibrated():
    """Two arms that are equally good (independent noise): rejection rate at 5 % stays near 5 %."""
    rng = np.random.default_rng(12)
    n_sim, rejections = 300, 0
    for _ in range(n_sim):
        y = (rng.random(150) < 0.3).astype(float)
        signal = y * 0.8
        p = stats.delong_test(y, signal + rng.normal(size=150), signal + rng.normal(size=150)).p_value
        rejections += p < 0.05
    assert 0.01 <= rejections / n_sim <= 0.10
