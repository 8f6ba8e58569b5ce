"""The three-way verdict, the t test over rotations, the bootstrap that draws record noise once, and the
sample-size planner, each against cases with known answers (closed forms or simulations of the model)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import t as student

from aclecg import stats
from aclecg.errors import ConfigError, DataError
from aclecg.results import hypothesis, power
from aclecg.results.verdict import HYPOTHESES, VERDICTS, Hypotheses, decide


def test_the_equivalence_margin_is_smaller_than_the_paper_effect():
    for h in HYPOTHESES.values():
        assert 0 < h.margin < h.paper_effect
    assert HYPOTHESES["auroc"].paper_effect == 0.0129 and HYPOTHESES["auprc"].paper_effect == 0.0357
    with pytest.raises(ConfigError, match="strictly smaller"):
        Hypotheses("auroc", paper_effect=0.0129, margin=0.02)  # the old ±0.02: wider than the effect under test


def test_cluster_test_is_the_t_test_on_the_units():
    d = [0.0025, -0.0130, 0.0094, 0.0057]
    r = hypothesis.cluster_test(d)
    se = np.std(d, ddof=1) / 2
    assert r.diff == pytest.approx(np.mean(d)) and r.se == pytest.approx(se) and r.df == 3
    assert r.p_greater(0) == pytest.approx(student.sf(np.mean(d) / se, 3))
    assert r.p_less(0.0129) == pytest.approx(student.cdf((np.mean(d) - 0.0129) / se, 3))
    lo, hi = r.interval()
    assert hi - lo == pytest.approx(2 * student.ppf(0.975, 3) * se)
    # the unit variance is floored at the record noise: four units that agree by chance are not overconfident
    floored = hypothesis.cluster_test(d, [0.01**2] * 4)
    assert floored.se == pytest.approx(0.01 / 2) and floored.df == 3
    one = hypothesis.cluster_test([0.01], [0.0001])
    assert not one.between_runs_estimated and one.se == pytest.approx(0.01) and np.isinf(one.df)
    with pytest.raises(DataError):
        hypothesis.cluster_test([0.01])


@pytest.mark.parametrize(
    "diffs, expected",
    [
        ([0.030, 0.032, 0.028, 0.031], VERDICTS[0]),  # clearly above 0
        ([0.000, 0.001, -0.001, 0.0005], VERDICTS[1]),  # clearly below +0.0129 (and equivalent within ±0.01)
        ([0.0025, -0.0130, 0.0094, 0.0057], VERDICTS[2]),  # with record noise 0.012: neither
    ],
)
def test_the_verdict_is_exactly_one_of_three(diffs, expected):
    h = HYPOTHESES["auroc"]
    rec = [0.012**2] * 4 if expected == VERDICTS[2] else None
    v = decide(hypothesis.cluster_test(diffs, rec), h)
    assert v.label == expected
    assert v.ci_low <= v.diff <= v.ci_high
    assert 0 < v.power_at_paper_effect <= 1 and v.min_detectable_effect > 0
    if expected == VERDICTS[1]:
        assert v.equivalent and v.p_paper_effect < 0.05
    text = v.sentence()
    assert v.label in text and "minimum detectable effect" in text and "Power to detect +0.0129" in text


def test_power_and_mde_agree_with_each_other_and_the_normal_limit():
    se = 0.005
    mde = hypothesis.min_detectable_effect(se, 3)
    assert hypothesis.power_one_sided(mde, se, 3) == pytest.approx(0.8, abs=1e-6)
    # normal limit: (z_0.95 + z_0.8) * se
    assert hypothesis.min_detectable_effect(se, np.inf) == pytest.approx((1.6449 + 0.8416) * se, rel=1e-3)
    assert hypothesis.power_one_sided(0.0, se, 3) == pytest.approx(0.05)  # at the null: alpha


def _run(rng, n, shift, noise=1.0, seeds=2):
    y = np.zeros((n, 2))
    y[:, 0] = rng.random(n) < 0.4
    y[:, 1] = rng.random(n) < 0.3
    base = [y + rng.normal(0, noise, y.shape) for _ in range(seeds)]
    return hypothesis.RunScores(y, [b + shift * y + rng.normal(0, 0.3, y.shape) for b in base], base)


def test_the_bootstrap_draws_record_noise_once():
    """With no run-to-run effect (every run the same model pair on fresh records), the pooled variance is the
    record noise over R runs. Resampling runs and then records again would roughly double it."""
    rng = np.random.default_rng(3)
    runs = [_run(rng, 150, 0.2) for _ in range(8)]
    res = hypothesis.hierarchical_bootstrap(runs, n_resamples=1500, seed=1)
    record_se = np.sqrt(np.mean(res.record_vars) / len(runs))
    assert res.se == pytest.approx(record_se, rel=0.25)
    assert res.se < 1.2 * record_se  # double counting would give ~sqrt(2) x
    # a real between-run effect still widens the interval
    shifted = [_run(rng, 150, s) for s in (0.0, 0.5, 0.1, 0.6, 0.2, 0.45, 0.05, 0.55)]
    wide = hypothesis.hierarchical_bootstrap(shifted, n_resamples=1500, seed=1)
    spread = np.std(wide.per_run, ddof=1) / np.sqrt(len(shifted))
    assert wide.se == pytest.approx(spread, rel=0.35) and wide.se > 1.5 * res.se


def test_seed_mean_delong_is_delong_of_the_mean_of_aurocs():
    rng = np.random.default_rng(4)
    r = _run(rng, 200, 0.3, seeds=3)
    res = stats.delong_macro_mean(r.y_true, r.scores_a, r.scores_b)
    assert res.auc_a == pytest.approx(np.mean([stats.delong_macro(r.y_true, s, s).auc_a for s in r.scores_a]))
    one = stats.delong_macro_mean(r.y_true, r.scores_a[:1], r.scores_b[:1])
    ref = stats.delong_macro(r.y_true, r.scores_a[0], r.scores_b[0])
    assert (one.auc_a, one.var_a, one.p_value) == pytest.approx((ref.auc_a, ref.var_a, ref.p_value))
    with pytest.raises(DataError):
        stats.delong_macro_mean(r.y_true, r.scores_a, r.scores_b[:1])


KNOWN = power.VarianceComponents(
    sigma2=0.012**2 * 110, tau2_rot=0.004**2, tau2_seed=0.006**2, n_rotations=4, n_runs=8, n_records=110
)


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
@pytest.mark.parametrize("design", [power.Design(110, 4, 1), power.Design(110, 8, 2), power.Design(2180, 5, 2)])
def test_planned_power_matches_simulated_power(design):
    effect = 0.0129
    planned = design.power(KNOWN, effect)
    simulated, coverage = power.simulate_power(KNOWN, design, effect, n_sim=3000, seed=7)
    assert simulated == pytest.approx(planned, abs=0.05)  # within five points
    assert coverage == pytest.approx(0.95, abs=0.02)


def test_components_are_recovered_from_simulated_runs():
    rng = np.random.default_rng(0)
    rot = np.repeat(np.arange(30), 2)
    n = np.full(60, 200.0)
    u = rng.normal(0, 0.01, 30)[rot]
    w = rng.normal(0, 0.006, 60)
    e = rng.normal(0, np.sqrt(0.02 / 200), 30)[rot]  # shared by the seeds of a rotation
    comp = power.estimate_components(0.01 + u + w + e, np.full(60, 0.02 / 200), n, rot)
    assert comp.sigma2 == pytest.approx(0.02)
    assert comp.tau2_seed == pytest.approx(0.006**2, rel=0.5)
    assert comp.tau2_rot == pytest.approx(0.01**2, rel=0.6)
    with pytest.raises(DataError, match="two rotations"):
        power.estimate_components([0.1], [0.01], [100], [10])


def test_the_plan_finds_the_smallest_sufficient_design():
    rows = power.plan(KNOWN, 0.0129, [110, 2180])
    best = power.smallest(rows, 2180)
    assert best is not None and best["power"] >= 0.8
    fewer = [
        r
        for r in rows
        if np.isclose(r["records_per_rotation"], 2180)
        and r["pretraining_runs_per_arm"] < best["pretraining_runs_per_arm"]
    ]
    assert all(not r["enough"] for r in fewer)
    # more records never lower the power of the same rotations and seeds
    for r in rows:
        if np.isclose(r["records_per_rotation"], 110):
            big = next(
                x
                for x in rows
                if np.isclose(x["records_per_rotation"], 2180)
                and x["rotations"] == r["rotations"]
                and x["seeds"] == r["seeds"]
            )
            assert big["power"] >= r["power"] - 1e-12


def test_the_verdict_and_the_planner_describe_one_design_with_unequal_runs():
    """Two rotations with two pretraining runs of both arms, two with one (their best baseline was never repeated):
    the present design has the harmonic mean of runs, and the verdict's power and MDE are that design's."""
    rng = np.random.default_rng(3)
    runs = [
        {"fold": f, "run": tag, "diff": float(rng.normal(0.01, 0.01)), "record_var": 1.5e-4, "n": 100}
        for f, tags in ((6, ["first"]), (7, ["first"]), (8, ["first", "seed2"]), (10, ["first", "seed2"]))
        for tag in tags
    ]
    per_fold = {f: float(np.mean([r["diff"] for r in runs if r["fold"] == f])) for f in (6, 7, 8, 10)}
    prim = {
        "test_folds": [6, 7, 8, 10],
        "per_fold": per_fold,
        "record_var_per_fold": {f: 1.5e-4 for f in per_fold},
        "n_records_per_fold": [100] * 4,
        "runs": runs,
    }
    comp = power.components_of(prim)
    now = power.present_design(prim, comp)
    assert now.seeds == pytest.approx(4 / (1 + 1 + 0.5 + 0.5))  # harmonic mean of 1, 1, 2, 2
    expected_var = comp.tau2_rot + comp.tau2_seed * np.mean([1, 1, 0.5, 0.5]) + comp.sigma2 / 100
    assert now.se(comp) == pytest.approx(np.sqrt(expected_var / 4))
    test = hypothesis.cluster_test(list(per_fold.values()), [1.5e-4] * 4)
    h = HYPOTHESES["auroc"]
    v = decide(test, h, design_se=now.se(comp))
    assert v.power_at_paper_effect == pytest.approx(now.power(comp, h.paper_effect))
    assert v.min_detectable_effect == pytest.approx(now.mde(comp))
    lo, hi = test.interval(0.95)
    assert (v.ci_low, v.ci_high, v.se) == (lo, hi, test.se)  # the p-values and interval stay the test's
