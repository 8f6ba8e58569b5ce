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


def _macro_diff(run: RunScores, weights: np.ndarray, metric: str, evaluable: np.ndarray) -> np.ndarray:
    """``(B,)`` seed-averaged macro differences for each weight row (NaN where a class loses its positives)."""
    diffs = []
    for sa, sb in zip(run.scores_a, run.scores_b):
        va = stats._weighted_metrics(run.y_true, sa, weights, (metric,))[metric][:, evaluable]
        vb = stats._weighted_metrics(run.y_true, sb, weights, (metric,))[metric][:, evaluable]
        diffs.append(va.mean(axis=1) - vb.mean(axis=1))
    return np.mean(diffs, axis=0)


def hierarchical_bootstrap(
    runs: Sequence[RunScores], metric: str = "auroc", n_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> HierarchicalResult:
    """Two-stage percentile bootstrap of the macro ``metric`` difference ``a - b`` pooled over runs.

    Stage 1 draws ``len(runs)`` runs with replacement; stage 2 draws each drawn run's test records with
    replacement (independently for every draw, also when a run is drawn twice). The statistic is the mean over
    drawn runs of the seed-averaged macro difference; classes are those evaluable in each run's full test set,
    and a resample where one of them has no positive or no negative is dropped.
    """
    if metric not in ("auroc", "auprc"):
        raise ConfigError(f"metric must be 'auroc' or 'auprc', got {metric!r}")
    if not runs:
        raise DataError("hierarchical bootstrap: no runs")
    if not 0 < level < 1 or n_resamples < 1:
        raise ConfigError("level must be in (0, 1) and n_resamples >= 1")
    rng = np.random.default_rng(seed)
    point, draws = [], []
    for run in runs:
        n = len(run.y_true)
        evaluable = ~np.isnan(
            stats._weighted_metrics(run.y_true, run.scores_a[0], np.ones((1, n)), (metric,))[metric][0]
        )
        if not evaluable.any():
            raise DataError("a run's test set has no class with both positives and negatives")
        point.append(float(_macro_diff(run, np.ones((1, n)), metric, evaluable)[0]))
        weights = stats.bootstrap_weights(n, n_resamples, int(rng.integers(2**31)))
        draws.append(_macro_diff(run, weights, metric, evaluable))  # one record resample per bootstrap draw
    table = np.stack(draws)  # (R, B)
    r = len(runs)
    picks = rng.integers(0, r, size=(n_resamples, r))  # stage 1: runs with replacement
    cols = rng.integers(0, n_resamples, size=(n_resamples, r))  # stage 2: an independent record draw each
    samples = table[picks, cols].mean(axis=1)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        raise DataError("hierarchical bootstrap: every resample lost a class")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return HierarchicalResult(
        float(np.mean(point)),
        float(lo),
        float(hi),
        float(samples.std(ddof=1)),
        tuple(point),
        r,
        int(sum(len(x.y_true) for x in runs)),
        int(samples.size),
        level,
    )
