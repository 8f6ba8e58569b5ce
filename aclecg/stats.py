"""Classification metrics, bootstrap confidence intervals and DeLong's test, vectorised with NumPy.

Everything works on a label matrix ``y_true`` ``(N, C)`` (multi-hot for multilabel problems, one-hot for
singlelabel ones) and a score matrix ``y_score`` ``(N, C)`` (sigmoid outputs, or softmax probabilities which are
then evaluated one-vs-rest). The per-class values equal scikit-learn's ``roc_auc_score`` and
``average_precision_score`` on each column; the macro value is their unweighted mean over the classes that can be
evaluated.

* **AUROC** is the Mann-Whitney statistic: the probability that a random positive scores higher than a random
  negative, ties counting one half (Hanley & McNeil, Radiology 143, 1982). This is exactly the trapezoidal area
  under the ROC curve that scikit-learn computes, ties included.
* **AUPRC** is scikit-learn's step-wise average precision ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct
  score thresholds in decreasing order (no interpolation).
* A class without positives or without negatives in the evaluated set has no AUROC/AP: it is reported in
  ``excluded`` and left out of the macro mean, never turned into NaN in the mean or an exception.

Both metrics are computed from per-record **weights**, so a bootstrap resample (a vector of multiplicities drawn
with replacement) is evaluated without re-sorting: records are sorted once per class, tie groups are formed once,
and every resample only sums its weights per tie group. ``B = 1000`` resamples of a few thousand records take a
fraction of a second.

DeLong's test (DeLong, DeLong & Clarke-Pearson, Biometrics 44, 1988) uses the fast midrank algorithm of
Sun & Xu (IEEE Signal Processing Letters 21, 2014). For a macro AUROC difference the per-class structural
components are turned into per-record influence values and averaged over classes (see :func:`delong_macro`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr
from scipy.stats import rankdata

from aclecg.errors import ConfigError, DataError

__all__ = [
    "BootstrapResult",
    "ClassMetrics",
    "DeLongResult",
    "MacroDeLongResult",
    "MetricReport",
    "bootstrap_metrics",
    "check_inputs",
    "delong_macro",
    "delong_per_class",
    "delong_test",
    "evaluate_scores",
    "macro_auprc",
    "macro_auroc",
    "per_class_auprc",
    "per_class_auroc",
]


# ----------------------------------------------------------------------------------------------- validation
def check_inputs(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(y_true, y_score)`` as 2-D float64 arrays of the same shape.

    1-D inputs are read as one class. Labels must be 0/1 and scores finite; otherwise a ``DataError`` says what
    is wrong.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if y_score.ndim == 1:
        y_score = y_score[:, None]
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise DataError(
            f"labels {y_true.shape} and scores {y_score.shape} must be 2-D arrays of the same shape (records, classes)"
        )
    if y_true.shape[0] == 0:
        raise DataError("cannot compute metrics on zero records")
    if not np.isin(y_true, (0.0, 1.0)).all():
        raise DataError("labels must be 0/1 (multi-hot or one-hot)")
    if not np.isfinite(y_score).all():
        raise DataError(f"scores contain {int((~np.isfinite(y_score)).sum())} non-finite values (NaN/inf)")
    return y_true, y_score


# ----------------------------------------------------------------------------------- weighted core metrics
@dataclass(frozen=True)
class _SortedClass:
    """One class's records sorted by score, with the boundaries of tie groups (computed once)."""

    order: np.ndarray  # record indices sorted by increasing score
    starts: np.ndarray  # first position of each tie group in the sorted order
    labels: np.ndarray  # labels in sorted order (0/1 float)


def _sort_class(y: np.ndarray, s: np.ndarray) -> _SortedClass:
    order = np.argsort(s, kind="stable")
    ss = s[order]
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    return _SortedClass(order=order, starts=starts, labels=y[order])


def _group_sums(sc: _SortedClass, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight per tie group: two ``(B, G)`` arrays (groups in increasing score)."""
    w = weights[:, sc.order]
    pos = np.add.reduceat(w * sc.labels, sc.starts, axis=1)
    neg = np.add.reduceat(w * (1.0 - sc.labels), sc.starts, axis=1)
    return pos, neg


def _auroc_from_groups(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUROC per row from tie-group weights; NaN where a row has no positive or no negative."""
    neg_below = np.cumsum(neg, axis=1) - neg
    num = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _ap_from_groups(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Step-wise average precision per row (thresholds at tie groups, decreasing score); NaN without positives."""
    pos_d, neg_d = pos[:, ::-1], neg[:, ::-1]
    tp = np.cumsum(pos_d, axis=1)
    total = tp + np.cumsum(neg_d, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(total > 0, tp / np.where(total > 0, total, 1.0), 0.0)
        p_total = tp[:, -1]
        ap = (pos_d * precision).sum(axis=1) / np.where(p_total > 0, p_total, 1.0)
    # AP needs at least one positive; like AUROC it is also undefined (excluded) without negatives,
    # because then it is 1 whatever the scores and says nothing.
    n_total = neg_d.sum(axis=1)
    return np.where((p_total > 0) & (n_total > 0), ap, np.nan)


def _weighted_metrics(
    y_true: np.ndarray, y_score: np.ndarray, weights: np.ndarray, metrics: Sequence[str] = ("auroc", "auprc")
) -> dict[str, np.ndarray]:
    """Per-class metrics for each weight row: ``{name: (B, C)}`` (NaN for an undefined class in a row)."""
    n_rows, n_classes = weights.shape[0], y_true.shape[1]
    out = {m: np.full((n_rows, n_classes), np.nan) for m in metrics}
    for c in range(n_classes):  # loop over classes only; records and resamples are vectorised
        sc = _sort_class(y_true[:, c], y_score[:, c])
        pos, neg = _group_sums(sc, weights)
        if "auroc" in out:
            out["auroc"][:, c] = _auroc_from_groups(pos, neg)
        if "auprc" in out:
            out["auprc"][:, c] = _ap_from_groups(pos, neg)
    return out


# ------------------------------------------------------------------------------------------ public metrics
def per_class_auroc(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """AUROC of each column, ``(C,)``; NaN for a class with no positives or no negatives."""
    y_true, y_score = check_inputs(y_true, y_score)
    return _weighted_metrics(y_true, y_score, np.ones((1, len(y_true))), ("auroc",))["auroc"][0]


def per_class_auprc(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Average precision of each column, ``(C,)``; NaN for a class with no positives or no negatives."""
    y_true, y_score = check_inputs(y_true, y_score)
    return _weighted_metrics(y_true, y_score, np.ones((1, len(y_true))), ("auprc",))["auprc"][0]


def _macro(values: np.ndarray) -> float:
    valid = ~np.isnan(values)
    return float(values[valid].mean()) if valid.any() else float("nan")


def macro_auroc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean AUROC over the classes that have positives and negatives (NaN only if no class qualifies)."""
    return _macro(per_class_auroc(y_true, y_score))


def macro_auprc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean average precision over the classes that have positives and negatives."""
    return _macro(per_class_auprc(y_true, y_score))


@dataclass
class ClassMetrics:
    auroc: float
    auprc: float
    n_pos: int


@dataclass
class MetricReport:
    """Metrics of one prediction matrix: macro values, per-class values and the classes left out."""

    macro_auroc: float
    macro_auprc: float
    per_class: dict[str, ClassMetrics]
    excluded: list[str] = field(default_factory=list)
    n_records: int = 0


def evaluate_scores(y_true: np.ndarray, y_score: np.ndarray, classes: Sequence[str] | None = None) -> MetricReport:
    """Macro and per-class AUROC/AUPRC; classes with no positive or no negative go to ``excluded``."""
    y_true, y_score = check_inputs(y_true, y_score)
    classes = list(classes) if classes is not None else [str(i) for i in range(y_true.shape[1])]
    if len(classes) != y_true.shape[1]:
        raise DataError(f"{len(classes)} class names for {y_true.shape[1]} label columns")
    vals = _weighted_metrics(y_true, y_score, np.ones((1, len(y_true))))
    auroc, auprc = vals["auroc"][0], vals["auprc"][0]
    n_pos = y_true.sum(axis=0).astype(int)
    per_class = {name: ClassMetrics(float(auroc[i]), float(auprc[i]), int(n_pos[i])) for i, name in enumerate(classes)}
    excluded = [name for i, name in enumerate(classes) if np.isnan(auroc[i])]
    return MetricReport(_macro(auroc), _macro(auprc), per_class, excluded, len(y_true))


# ---------------------------------------------------------------------------------------------- bootstrap
@dataclass
class BootstrapResult:
    """Percentile bootstrap intervals over records.

    ``macro`` maps ``"macro_auroc"``/``"macro_auprc"`` to ``(low, high)``; ``per_class`` maps
    ``"auroc"``/``"auprc"`` to ``(C, 2)`` arrays. ``n_valid`` counts the resamples used for the macro
    intervals: a resample in which a class that is evaluable on the full set has no positive (or no negative)
    is dropped for the macro intervals (so every macro value averages the same classes) and counted in
    ``n_degenerate``; per-class intervals use every resample in which that class is defined.
    """

    macro: dict[str, tuple[float, float]]
    per_class: dict[str, np.ndarray]
    n_resamples: int
    n_valid: int
    n_degenerate: int
    level: float
    samples: dict[str, np.ndarray] = field(repr=False, default_factory=dict)


def bootstrap_weights(n_records: int, n_resamples: int, seed: int) -> np.ndarray:
    """Multiplicities ``(B, N)`` of ``B`` resamples of ``N`` records drawn with replacement (seeded)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_records, size=(n_resamples, n_records))
    flat = idx + (np.arange(n_resamples) * n_records)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n_records).reshape(n_resamples, n_records).astype(float)


def _percentile_interval(samples: np.ndarray, level: float) -> np.ndarray:
    """``(..., 2)`` percentile interval along axis 0, ignoring NaN (NaN if no finite sample)."""
    alpha = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        if samples.shape[0] == 0 or np.isnan(samples).all(axis=0).all():
            return np.full(samples.shape[1:] + (2,), np.nan)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo = np.nanquantile(samples, alpha, axis=0)
            hi = np.nanquantile(samples, 1.0 - alpha, axis=0)
    return np.stack([lo, hi], axis=-1)


def bootstrap_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    chunk: int = 250,
    keep_samples: bool = False,
) -> BootstrapResult:
    """Percentile bootstrap CIs of macro and per-class AUROC/AUPRC, resampling records with replacement.

    Resamples are evaluated as weight vectors in chunks (vectorised, no re-sorting); the same ``seed`` gives the
    same resamples for every arm evaluated on the same records, so intervals of different arms are paired.
    """
    y_true, y_score = check_inputs(y_true, y_score)
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    n = len(y_true)
    full = _weighted_metrics(y_true, y_score, np.ones((1, n)))
    evaluable = ~np.isnan(full["auroc"][0])
    samples: dict[str, list[np.ndarray]] = {"auroc": [], "auprc": []}
    rng_seeds = np.random.SeedSequence(seed).spawn((n_resamples + chunk - 1) // chunk)
    done = 0
    for ss in rng_seeds:
        b = min(chunk, n_resamples - done)
        w = bootstrap_weights(n, b, int(ss.generate_state(1)[0]))
        vals = _weighted_metrics(y_true, y_score, w)
        for key in samples:
            samples[key].append(vals[key])
        done += b
    arr = {k: np.concatenate(v, axis=0) for k, v in samples.items()}
    complete = ~np.isnan(arr["auroc"][:, evaluable]).any(axis=1) if evaluable.any() else np.zeros(n_resamples, bool)
    macro: dict[str, tuple[float, float]] = {}
    macro_samples: dict[str, np.ndarray] = {}
    for key in ("auroc", "auprc"):
        m = arr[key][complete][:, evaluable].mean(axis=1) if evaluable.any() else np.empty(0)
        macro_samples[f"macro_{key}"] = m
        iv = _percentile_interval(m[:, None], level)[0] if m.size else np.array([np.nan, np.nan])
        macro[f"macro_{key}"] = (float(iv[0]), float(iv[1]))
    per_class = {key: _percentile_interval(arr[key], level) for key in ("auroc", "auprc")}
    kept = {**macro_samples, **arr} if keep_samples else {}
    return BootstrapResult(macro, per_class, n_resamples, int(complete.sum()), int((~complete).sum()), level, kept)


# ---------------------------------------------------------------------------------------------- DeLong
@dataclass
class DeLongResult:
    """DeLong's paired test of two AUROCs on the same records (one class)."""

    auc_a: float
    auc_b: float
    var_a: float
    var_b: float
    cov_ab: float
    z: float
    p_value: float

    @property
    def diff(self) -> float:
        return self.auc_a - self.auc_b


def _structural_components(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sun & Xu (2014) midrank computation of DeLong's structural components.

    ``scores`` is ``(K, N)`` for K models. Returns ``(auc (K,), v10 (K, m), v01 (K, n))`` where ``v10[k, i]`` is
    the fraction of negatives that positive ``i`` beats (ties one half) and ``v01[k, j]`` the fraction of
    positives that beat negative ``j``.
    """
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    x, z = scores[:, pos], scores[:, neg]
    tx = rankdata(x, axis=1)  # midranks among positives
    tz = rankdata(z, axis=1)  # midranks among negatives
    t = rankdata(np.concatenate([x, z], axis=1), axis=1)  # midranks among all
    auc = (t[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (t[:, :m] - tx) / n
    v01 = 1.0 - (t[:, m:] - tz) / m
    return auc, v10, v01


def _check_pair(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    scores = np.stack([np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()])
    if scores.shape[1] != len(y):
        raise DataError(f"DeLong: {len(y)} labels but {scores.shape[1]} scores per arm")
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError("DeLong: labels must be 0/1")
    if not np.isfinite(scores).all():
        raise DataError("DeLong: scores contain NaN/inf")
    return y, scores


def _z_and_p(diff: float, var: float) -> tuple[float, float]:
    if var <= 0 or not np.isfinite(var):
        # identical (or perfectly separating) arms: no evidence of a difference unless the AUCs differ
        return (0.0, 1.0) if diff == 0 else (float(np.sign(diff) * np.inf), 0.0)
    z = diff / np.sqrt(var)
    return float(z), float(2.0 * ndtr(-abs(z)))


def delong_test(y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> DeLongResult:
    """DeLong's test for the difference of two correlated AUROCs (same records, one binary label).

    ``var = S10/m + S01/n`` where S10, S01 are the 2x2 sample covariances (ddof 1) of the structural components
    over the m positives and n negatives; ``z = (AUC_a - AUC_b) / sqrt(var_a + var_b - 2 cov)``, p two-sided.
    Raises ``DataError`` if the labels have fewer than two positives or two negatives.
    """
    y, scores = _check_pair(y_true, score_a, score_b)
    m, n = int(y.sum()), int((1 - y).sum())
    if m < 2 or n < 2:
        raise DataError(f"DeLong needs at least 2 positives and 2 negatives, got {m} and {n}")
    auc, v10, v01 = _structural_components(y, scores)
    s = np.cov(v10) / m + np.cov(v01) / n
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    z, p = _z_and_p(float(auc[0] - auc[1]), float(var))
    return DeLongResult(float(auc[0]), float(auc[1]), float(s[0, 0]), float(s[1, 1]), float(s[0, 1]), z, p)


def delong_per_class(y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> list[DeLongResult | None]:
    """:func:`delong_test` for every column; ``None`` for a class with fewer than 2 positives or negatives."""
    y_true, score_a = check_inputs(y_true, score_a)
    _, score_b = check_inputs(y_true, score_b)
    out: list[DeLongResult | None] = []
    for c in range(y_true.shape[1]):
        m = y_true[:, c].sum()
        if m < 2 or len(y_true) - m < 2:
            out.append(None)
        else:
            out.append(delong_test(y_true[:, c], score_a[:, c], score_b[:, c]))
    return out


@dataclass
class MacroDeLongResult(DeLongResult):
    """Paired test of two macro AUROCs; ``classes_used`` are the column indices averaged."""

    classes_used: list[int]


def delong_macro(y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> MacroDeLongResult:
    """DeLong-type test of the macro AUROC difference, through per-record influence values.

    For class c with ``m_c`` positives and ``n_c`` negatives, record i gets the influence value
    ``psi_c(i) = (V10_c(i) - AUC_c) / sqrt(m_c (m_c - 1))`` if it is a positive and
    ``(V01_c(i) - AUC_c) / sqrt(n_c (n_c - 1))`` if it is a negative. Then for arms A, B the covariance is
    ``cov(A, B) = sum_i psibar_A(i) psibar_B(i)`` where ``psibar(i)`` is the mean of ``psi_c(i)`` over the C classes
    used. With one class this is exactly DeLong's ``S10/m + S01/n``; with several classes it adds the
    covariances between classes measured on the same records (the classes of a multilabel record, or the
    mutually exclusive classes of a softmax output, are not independent). Classes with fewer than two
    positives or negatives are left out (``classes_used`` lists those kept).
    """
    return delong_macro_mean(y_true, [score_a], [score_b])


def delong_macro_mean(
    y_true: np.ndarray, scores_a: Sequence[np.ndarray], scores_b: Sequence[np.ndarray]
) -> MacroDeLongResult:
    """:func:`delong_macro` of the *seed-mean* macro AUROCs: ``mean_s AUC(scores_a[s]) - mean_s AUC(scores_b[s])``.

    A mean of AUROCs over seeds is itself a two-sample U-statistic whose kernel is the mean of the seeds'
    kernels, so its structural components (V10, V01) are the seed means of each seed's components, and DeLong's
    variance follows unchanged. This is the estimand of the study's tables and primary comparison (the mean over
    label seeds of each seed's AUROC), tested on the same records.
    """
    if not scores_a or len(scores_a) != len(scores_b):
        raise DataError("DeLong (seed mean): both arms need the same non-zero number of seeds")
    checked_a = [check_inputs(y_true, s)[1] for s in scores_a]
    checked_b = [check_inputs(y_true, s)[1] for s in scores_b]
    y_true = check_inputs(y_true, scores_a[0])[0]
    n_rec, n_classes = y_true.shape
    psi = np.zeros((2, n_rec))
    aucs = np.zeros(2)
    used: list[int] = []
    for c in range(n_classes):
        y = y_true[:, c]
        m, n = int(y.sum()), int(n_rec - y.sum())
        if m < 2 or n < 2:
            continue
        parts = [_structural_components(y, np.stack([sa[:, c], sb[:, c]])) for sa, sb in zip(checked_a, checked_b)]
        auc = np.mean([p[0] for p in parts], axis=0)
        v10 = np.mean([p[1] for p in parts], axis=0)
        v01 = np.mean([p[2] for p in parts], axis=0)
        pos = y == 1
        psi[:, pos] += (v10 - auc[:, None]) / np.sqrt(m * (m - 1))
        psi[:, ~pos] += (v01 - auc[:, None]) / np.sqrt(n * (n - 1))
        aucs += auc
        used.append(c)
    if not used:
        raise DataError("DeLong (macro): no class has at least 2 positives and 2 negatives")
    k = len(used)
    psi /= k
    aucs /= k
    s = psi @ psi.T
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    z, p = _z_and_p(float(aucs[0] - aucs[1]), float(var))
    return MacroDeLongResult(float(aucs[0]), float(aucs[1]), float(s[0, 0]), float(s[1, 1]), float(s[0, 1]), z, p, used)
