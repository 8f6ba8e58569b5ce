"""Statistics for comparing methods across pretraining runs: Holm correction, TOST equivalence, and a
hierarchical bootstrap over pretraining runs and test records.

* **Holm** (Holm, Scand. J. Statist. 6, 1979): step-down adjusted p-values that control the family-wise error
  rate over a whole family of tests, for any dependence between them.
* **TOST** (Schuirmann, J. Pharmacokinet. Biopharm. 15, 1987): two one-sided tests of a difference against an
  equivalence margin ``±delta``. Two methods are called *comparable* only when both one-sided nulls
  (``diff <= -delta`` and ``diff >= delta``) are rejected; otherwise the difference and its interval are reported.
  With a DeLong standard error this is the usual normal-approximation TOST for paired AUROCs.
* **Hierarchical bootstrap** (Davison & Hinkley, *Bootstrap Methods*, 1997, sec. 3.8; Saravanan et al.,
  NBDT 3, 2020): resample the pretraining runs (here: one per test-fold rotation) with replacement, then the test
  records within each drawn run, so the interval carries both sources of variance. Label-fraction seeds of one run
  are averaged inside the run, never counted as independent units.

>>> holm([0.01, 0.04, 0.03])
array([0.03, 0.06, 0.06])
>>> round(tost(diff=0.001, se=0.004, margin=0.02).p_value, 4)
0.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from aclecg import stats
from aclecg.errors import ConfigError, DataError
from aclecg.metrics import METRICS, per_class_values

__all__ = ["HierarchicalResult", "RunScores", "TOSTResult", "hierarchical_bootstrap", "holm", "tost"]


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values in the input order; NaN entries stay NaN and are not counted in the family."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if valid.size == 0:
        return out
    if ((p[valid] < 0) | (p[valid] > 1)).any():
        raise ConfigError("p-values must lie in [0, 1]")
    m = valid.size
    order = valid[np.argsort(p[valid], kind="stable")]
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(stepped, 1.0)
    return out


@dataclass(frozen=True)
class TOSTResult:
    """Two one-sided tests of ``|diff| < margin``: ``p_value`` is the larger one-sided p-value."""

    diff: float
    se: float
    margin: float
    p_lower: float
    p_upper: float

    @property
    def p_value(self) -> float:
        return max(self.p_lower, self.p_upper)

    def equivalent(self, alpha: float = 0.05) -> bool:
        return bool(self.p_value < alpha)


def tost(diff: float, se: float, margin: float) -> TOSTResult:
    """Normal-approximation TOST: H0 ``diff <= -margin`` or ``diff >= margin`` against ``|diff| < margin``."""
    if not margin > 0:
        raise ConfigError(f"equivalence margin must be > 0, got {margin!r}")
    if not (np.isfinite(se) and se >= 0):
        raise ConfigError(f"standard error must be finite and >= 0, got {se!r}")
    if se == 0:
        inside = abs(diff) < margin
        return TOSTResult(float(diff), 0.0, float(margin), 0.0 if inside else 1.0, 0.0 if inside else 1.0)
    p_lower = float(1.0 - ndtr((diff + margin) / se))  # H0: diff <= -margin
    p_upper = float(ndtr((diff - margin) / se))  # H0: diff >= +margin
    return TOSTResult(float(diff), float(se), float(margin), p_lower, p_upper)


@dataclass
class RunScores:
    """One pretraining run's test predictions of two arms: ``scores_*`` hold one ``(n, C)`` array per label seed.

    The seeds of ``a`` and ``b`` are paired (same label draw); identical seeds (e.g. a deterministic linear probe
    at 100 % of labels) are fine: the seed average simply equals each of them.
    """

    y_true: np.ndarray
    scores_a: list[np.ndarray]
    scores_b: list[np.ndarray]

    def __post_init__(self) -> None:
        if not self.scores_a or len(self.scores_a) != len(self.scores_b):
            raise DataError("each run needs the same non-zero number of seeds for both arms")
        for s in (*self.scores_a, *self.scores_b):
            stats.check_inputs(self.y_true, s)


@dataclass(frozen=True)
class HierarchicalResult:
    """Mean over runs of the seed-averaged macro-metric difference ``a - b``, with its hierarchical interval."""

    diff: float
    ci_low: float
    ci_high: float
    se: float
    per_run: tuple[float, ...]
    n_runs: int
    n_records: int
    n_resamples: int
    level: float
    record_vars: tuple[float, ...] = ()  # per run: the record-bootstrap variance of its difference


def _macro_diff(run: RunScores, weights: np.ndarray, metric: str, evaluable: np.ndarray) -> np.ndarray:
    """``(B,)`` seed-averaged macro differences for each weight row (NaN where a class loses its positives)."""
    diffs = []
    for sa, sb in zip(run.scores_a, run.scores_b):
        va = per_class_values(metric, run.y_true, sa, weights)[:, evaluable]
        vb = per_class_values(metric, run.y_true, sb, weights)[:, evaluable]
        diffs.append(va.mean(axis=1) - vb.mean(axis=1))
    return np.mean(diffs, axis=0)


def _record_table(
    runs: Sequence[RunScores], metric: str, n_resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per run: the point difference and ``n_resamples`` record-bootstrap differences (NaN where a class is lost)."""
    point, draws, n_records = [], [], 0
    for run in runs:
        n = len(run.y_true)
        evaluable = ~np.isnan(per_class_values(metric, run.y_true, run.scores_a[0], np.ones((1, n)))[0])
        if not evaluable.any():
            raise DataError("a run's test set has no class with both positives and negatives")
        point.append(float(_macro_diff(run, np.ones((1, n)), metric, evaluable)[0]))
        weights = stats.bootstrap_weights(n, n_resamples, int(rng.integers(2**31)))
        draws.append(_macro_diff(run, weights, metric, evaluable))  # one record resample per bootstrap draw
        n_records += n
    return np.asarray(point), np.stack(draws), n_records


def hierarchical_bootstrap(
    runs: Sequence[RunScores], metric: str = "auroc", n_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> HierarchicalResult:
    """Two-stage bootstrap of the macro ``metric`` difference ``a - b`` pooled over runs, record noise drawn once.

    A run's difference is ``d_k = mu + u_k + e_k``: ``u_k`` the run's own effect (pretraining, label draw, which
    fold it tests on) with variance ``tau2``, ``e_k`` the noise of its finite test set with variance ``v_k``
    (measured by resampling the run's records). Resampling runs and then records again counts ``e_k`` twice,
    because the spread of the ``d_k`` already holds it. Following Davison & Hinkley (1997, sec. 3.8), stage 1
    draws runs from *shrunken* run effects ``mean(d) + a (d_k - mean(d))`` whose spread is ``tau2`` alone
    (``tau2 = max(0, s2 - mean(v_k))``, ``s2`` the sample variance of the ``d_k``), and stage 2 adds one
    record-resample deviation ``d*_k - d_k`` of each drawn run. The bootstrap variance is then
    ``(tau2 (R-1)/R + mean(v_k)) / R`` instead of ``(s2 (R-1)/R + mean(v_k)) / R``. With one run, only the
    record noise is resampled. Classes are those evaluable in each run's full test set; a resample where one of
    them has no positive or no negative is dropped.
    """
    if metric not in METRICS.names():
        raise ConfigError(f"metric must be one of {', '.join(METRICS.names())}, got {metric!r}")
    if not runs:
        raise DataError("hierarchical bootstrap: no runs")
    if not 0 < level < 1 or n_resamples < 1:
        raise ConfigError("level must be in (0, 1) and n_resamples >= 1")
    rng = np.random.default_rng(seed)
    point, table, n_records = _record_table(runs, metric, n_resamples, rng)  # (R,), (R, B)
    r = len(runs)
    centre = point.mean()
    if r > 1:
        s2 = float(point.var(ddof=1))
        v = float(np.nanmean(np.nanvar(table, axis=1, ddof=1)))
        tau2 = max(0.0, s2 - v)
        spread = s2 * (r - 1) / r  # the variance of a draw from the run effects with replacement
        shrink = float(np.sqrt(tau2 / spread)) if spread > 0 else 0.0
    else:
        shrink = 0.0
    effects = centre + shrink * (point - centre)
    noise = table - point[:, None]
    picks = rng.integers(0, r, size=(n_resamples, r))  # stage 1: runs with replacement
    cols = rng.integers(0, n_resamples, size=(n_resamples, r))  # stage 2: one record draw for each pick
    samples = (effects[picks] + noise[picks, cols]).mean(axis=1)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        raise DataError("hierarchical bootstrap: every resample lost a class")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return HierarchicalResult(
        float(centre),
        float(lo),
        float(hi),
        float(samples.std(ddof=1)),
        tuple(float(x) for x in point),
        r,
        n_records,
        int(samples.size),
        level,
        tuple(float(x) for x in np.nanvar(table, axis=1, ddof=1)),
    )


@dataclass(frozen=True)
class ClusterTest:
    """A mean difference over independent units (rotations) with a t reference on ``df`` degrees of freedom.

    With several units, ``se = sd(d_k) / sqrt(K)`` and ``df = K - 1``: the spread of the units' own differences
    holds every source of variance once (pretraining run, label draw, test records), and the t quantiles keep
    the tests honest with few units. With one unit the between-run variance cannot be estimated: ``se`` is the
    unit's record-level standard error with a normal reference (``df = inf``), and ``between_runs_estimated`` is
    False so every report can say so.
    """

    diff: float
    se: float
    df: float
    n_units: int
    between_runs_estimated: bool

    def _cdf(self, x: float) -> float:
        from scipy.stats import t

        return float(t.cdf(x, self.df)) if np.isfinite(self.df) else float(ndtr(x))

    def p_greater(self, null: float = 0.0) -> float:
        """One-sided p of H0 ``diff <= null`` (small: the difference is shown to exceed ``null``)."""
        if self.se == 0:
            return 0.0 if self.diff > null else 1.0
        return 1.0 - self._cdf((self.diff - null) / self.se)

    def p_less(self, null: float) -> float:
        """One-sided p of H0 ``diff >= null`` (small: the difference is shown to lie below ``null``)."""
        if self.se == 0:
            return 0.0 if self.diff < null else 1.0
        return self._cdf((self.diff - null) / self.se)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        q = critical(self.df, (1 + level) / 2)
        return (self.diff - q * self.se, self.diff + q * self.se)

    def tost(self, margin: float) -> TOSTResult:
        """TOST against ``±margin`` on the same t reference."""
        if not margin > 0:
            raise ConfigError(f"equivalence margin must be > 0, got {margin!r}")
        return TOSTResult(self.diff, self.se, float(margin), self.p_greater(-margin), self.p_less(margin))


def critical(df: float, q: float) -> float:
    """The ``q`` quantile of Student's t on ``df`` degrees of freedom (normal for ``df = inf``)."""
    from scipy.stats import norm, t

    return float(t.ppf(q, df)) if np.isfinite(df) else float(norm.ppf(q))


def cluster_test(per_unit: Sequence[float], record_vars: Sequence[float] | None = None) -> ClusterTest:
    """:class:`ClusterTest` of the mean of ``per_unit`` (one difference per independent unit).

    ``record_vars`` (optional, one per unit) are the variances of each unit's difference from its finite test set
    alone. A unit's difference varies at least that much, so the variance of a unit is taken as
    ``max(s2, mean(record_vars))``, ``s2`` the sample variance of ``per_unit``: with three or four units ``s2``
    can fall far below the record noise by chance, and a t test on it alone would then be overconfident. The t
    reference keeps ``K - 1`` degrees of freedom either way (conservative when the floor applies).

    >>> r = cluster_test([0.01, 0.03, 0.02, 0.00])
    >>> round(r.diff, 3), round(r.se, 5), r.df
    (0.015, 0.00645, 3.0)
    >>> round(cluster_test([0.01, 0.03, 0.02, 0.00], [0.0004] * 4).se, 3)
    0.01
    """
    d = np.asarray(per_unit, dtype=float)
    if d.size == 0 or not np.isfinite(d).all():
        raise DataError("cluster test: needs at least one finite difference")
    floor = float(np.mean(record_vars)) if record_vars is not None and len(record_vars) else 0.0
    if not np.isfinite(floor) or floor < 0:
        raise DataError("cluster test: record variances must be finite and >= 0")
    if d.size == 1:
        if record_vars is None:
            raise DataError("cluster test: one unit needs its record-level variance")
        return ClusterTest(float(d[0]), float(np.sqrt(floor)), float("inf"), 1, False)
    var = max(float(d.var(ddof=1)), floor)
    return ClusterTest(float(d.mean()), float(np.sqrt(var / d.size)), float(d.size - 1), int(d.size), True)


def power_one_sided(effect: float, se: float, df: float, alpha: float = 0.05) -> float:
    """Power of the one-sided level-``alpha`` test of H0 ``diff <= 0`` when the true difference is ``effect``:
    ``P(T > t_{1-alpha})`` for ``T`` noncentral t with noncentrality ``effect / se`` (normal when ``df = inf``).
    The same number is the power to rule out ``effect`` when the truth is 0 (the tests are mirror images)."""
    from scipy.stats import nct, norm

    if not se > 0:
        return 1.0 if effect > 0 else float(alpha)
    crit = critical(df, 1 - alpha)
    if not np.isfinite(df):
        return float(1 - norm.cdf(crit - effect / se))
    return float(nct.sf(crit, df, effect / se))


def min_detectable_effect(se: float, df: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true difference the one-sided level-``alpha`` test detects with probability ``power``."""
    from scipy.optimize import brentq

    if not se > 0:
        return 0.0
    hi = se * 50
    return float(brentq(lambda e: power_one_sided(e, se, df, alpha) - power, 0.0, hi, xtol=se * 1e-6))
