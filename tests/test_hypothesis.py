"""aclecg.results.hypothesis against cases whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from aclecg import stats
from aclecg.errors import ConfigError, DataError
from aclecg.results import hypothesis


def test_holm_matches_the_step_down_definition():
    # Holm (1979): sorted p_(i) * (m - i + 1), made monotone, capped at 1
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    # sorted: 0.005*5=0.025, 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08->0.09, 0.5*1=0.5
    assert hypothesis.holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])
    assert hypothesis.holm([0.2]) == pytest.approx([0.2])  # one test: unchanged
    assert hypothesis.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = hypothesis.holm([0.01, np.nan, 0.02])  # NaN is not part of the family
    assert np.isnan(out[1]) and out[[0, 2]] == pytest.approx([0.02, 0.02])
    rng = np.random.default_rng(0)
    raw = rng.random(40)
    adj = hypothesis.holm(raw)
    assert (adj >= raw - 1e-15).all() and (np.diff(adj[np.argsort(raw)]) >= -1e-15).all()
    with pytest.raises(ConfigError):
        hypothesis.holm([1.5])


def test_tost_known_values():
    # diff = 0, se = 0.01, margin = 1.96 * se: each one-sided p is exactly 1 - Phi(1.96)
    res = hypothesis.tost(0.0, 0.01, 0.0196)
    assert res.p_value == pytest.approx(1 - norm.cdf(1.96)) and res.equivalent(0.05)
    # a difference on the margin can never be shown equivalent: p = 0.5
    assert hypothesis.tost(0.02, 0.01, 0.02).p_value == pytest.approx(0.5)
    # large uncertainty: not equivalent even with a zero difference
    assert not hypothesis.tost(0.0, 0.05, 0.02).equivalent()
    assert hypothesis.tost(0.01, 0.0, 0.02).p_value == 0.0
    with pytest.raises(ConfigError, match="margin"):
        hypothesis.tost(0.0, 0.01, 0.0)


def _run(rng, n=200, shift=0.0, noise=1.0, seeds=2):
    y = np.zeros((n, 2))
    y[:, 0] = rng.random(n) < 0.4
    y[:, 1] = rng.random(n) < 0.3
    base = [y + rng.normal(0, noise, y.shape) for _ in range(seeds)]
    better = [b + shift * y for b in base]
    return hypothesis.RunScores(y, better, base)


def test_identical_arms_give_exactly_zero():
    rng = np.random.default_rng(1)
    r = _run(rng, shift=0.0)
    res = hypothesis.hierarchical_bootstrap([r, _run(rng)], n_resamples=300)
    assert res.diff == 0.0 and res.ci_low == 0.0 and res.ci_high == 0.0


def test_point_estimate_is_the_mean_over_runs_of_the_seed_mean():
    rng = np.random.default_rng(2)
    runs = [_run(rng, shift=s) for s in (0.3, 0.6, 0.9)]
    res = hypothesis.hierarchical_bootstrap(runs, n_resamples=200)
    expected = [
        np.mean(
            [stats.macro_auroc(r.y_true, a) - stats.macro_auroc(r.y_true, b) for a, b in zip(r.scores_a, r.scores_b)]
        )
        for r in runs
    ]
    assert res.per_run == pytest.approx(expected, abs=1e-12)
    assert res.diff == pytest.approx(np.mean(expected), abs=1e-12)
    assert res.ci_low < res.diff < res.ci_high and res.n_runs == 3 and res.n_records == 600


def test_between_run_variance_widens_the_interval():
    """Runs that disagree (one helps, one hurts) must give an interval covering both; records alone would not."""
    rng = np.random.default_rng(3)
    runs = [_run(rng, n=400, shift=1.0, noise=0.8), _run(rng, n=400, shift=-1.0, noise=0.8)]
    res = hypothesis.hierarchical_bootstrap(runs, n_resamples=1000)
    lo_run, hi_run = sorted(res.per_run)
    assert res.ci_low <= lo_run + 0.02 and res.ci_high >= hi_run - 0.02
    single = hypothesis.hierarchical_bootstrap(runs[:1], n_resamples=1000)
    assert (res.ci_high - res.ci_low) > 3 * (single.ci_high - single.ci_low)


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_coverage_of_a_known_difference():
    """Simulated studies with a known true difference: the 90 % interval covers it in about 90 % of them."""
    truth_rng = np.random.default_rng(4)
    covered = 0
    trials = 60
    for t in range(trials):
        rng = np.random.default_rng(100 + t)
        runs = [_run(rng, n=150, shift=0.5, noise=1.0, seeds=1) for _ in range(4)]
        res = hypothesis.hierarchical_bootstrap(runs, n_resamples=300, seed=t, level=0.9)
        # the population difference, estimated once on very large samples
        if t == 0:
            big = _run(truth_rng, n=60000, shift=0.5, noise=1.0, seeds=1)
            truth = stats.macro_auroc(big.y_true, big.scores_a[0]) - stats.macro_auroc(big.y_true, big.scores_b[0])
        covered += res.ci_low <= truth <= res.ci_high
    assert 0.75 <= covered / trials <= 1.0


def test_bad_input():
    rng = np.random.default_rng(5)
    with pytest.raises(DataError, match="no runs"):
        hypothesis.hierarchical_bootstrap([])
    with pytest.raises(DataError, match="same non-zero number of seeds"):
        r = _run(rng)
        hypothesis.RunScores(r.y_true, r.scores_a, r.scores_b[:1])
    with pytest.raises(ConfigError, match="metric"):
        hypothesis.hierarchical_bootstrap([_run(rng)], metric="f1")
