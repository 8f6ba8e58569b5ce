"""The metrics of every table, report and test: one registry entry each (name, title, per-class function, direction).

A metric is a function of a cell's stored test predictions (``cells/<cell>.npz``: ``y_true``, ``y_score``), so
registering one needs no retraining: the sweep tables (:func:`aclecg.evaluation.outputs.write_outputs`), the study
(:func:`aclecg.results.study.load_cells`), both reports, the hierarchical bootstrap and the Sweeps page list every
registered metric, and a cell whose record predates a metric has it computed from its predictions when read.

The per-class function takes ``y_true`` and ``y_score`` ``(N, C)`` and record weights ``(B, N)`` (one row per
bootstrap resample; a row of ones is the plain test set) and returns ``(B, C)`` values, NaN for a class the metric
is undefined on. The macro value averages the classes defined on the whole test set.

>>> METRICS.names(), METRICS.get("auroc").title, METRICS.get("auroc").macro
(['auroc', 'auprc'], 'macro AUROC', 'macro_auroc')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from aclecg import stats
from aclecg.registry import Registry

__all__ = ["METRICS", "Metric", "macro_value", "metric_rows", "per_class_values", "register_metric", "titles"]

PerClass = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """One metric: ``name`` (``auroc``; its macro row is ``macro_<name>``, a class's ``<name>:<class>``),
    ``title`` for charts and tables (``macro AUROC``), the weighted per-class function and its direction."""

    name: str
    title: str
    per_class: PerClass
    higher_is_better: bool = True

    @property
    def macro(self) -> str:
        return f"macro_{self.name}"


#: Every metric, in table order (the built-in two first).
METRICS: Registry[Metric] = Registry("metric")


def register_metric(metric: Metric) -> Metric:
    return METRICS.register(metric.name, metric)


def _built_in(name: str) -> PerClass:
    def per_class(y_true: np.ndarray, y_score: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return stats._weighted_metrics(y_true, y_score, weights, (name,))[name]

    per_class.__doc__ = f"Per-class {name} for each weight row (tie-aware, :mod:`aclecg.stats`)."
    return per_class


register_metric(Metric("auroc", "macro AUROC", _built_in("auroc")))
register_metric(Metric("auprc", "macro AUPRC", _built_in("auprc")))


def titles(prefix: str = "") -> dict[str, str]:
    """``{name: title}`` of every metric, the names prefixed (``titles("macro_")``: the sweep tables' names)."""
    return {prefix + name: m.title for name, m in METRICS.items()}


def per_class_values(metric: str, y_true: np.ndarray, y_score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(B, C)`` values of ``metric`` for each weight row."""
    return METRICS.get(metric).per_class(y_true, y_score, weights)


def macro_value(metric: str, y_true: np.ndarray, y_score: np.ndarray) -> float:
    """The macro value of ``metric`` on the whole test set (mean over the classes it is defined on)."""
    values = per_class_values(metric, y_true, y_score, np.ones((1, len(y_true))))[0]
    valid = ~np.isnan(values)
    return float(values[valid].mean()) if valid.any() else float("nan")


def _resample_weights(n: int, n_resamples: int, seed: int, chunk: int = 250) -> Iterable[np.ndarray]:
    """The record weights of :func:`aclecg.stats.bootstrap_metrics` (same seed: the same resamples)."""
    done = 0
    for ss in np.random.SeedSequence(seed).spawn((n_resamples + chunk - 1) // chunk):
        b = min(chunk, n_resamples - done)
        yield stats.bootstrap_weights(n, b, int(ss.generate_state(1)[0]))
        done += b


def metric_rows(
    y_true: np.ndarray,
    y_score: np.ndarray,
    classes: Sequence[str],
    names: Sequence[str],
    n_bootstrap: int,
    seed: int,
) -> list[dict]:
    """A cell's rows of the metrics ``names``: ``macro_<name>`` and ``<name>:<class>``, each with its percentile
    bootstrap 95 % interval over ``n_bootstrap`` record resamples (seeded like the built-in metrics' intervals; a
    resample where a class defined on the whole set is undefined is dropped from the macro interval)."""
    y_true, y_score = stats.check_inputs(y_true, y_score)
    rows: list[dict] = []
    for name in names:
        metric = METRICS.get(name)
        full = metric.per_class(y_true, y_score, np.ones((1, len(y_true))))[0]
        evaluable = ~np.isnan(full)
        draws = np.concatenate(
            [metric.per_class(y_true, y_score, w) for w in _resample_weights(len(y_true), n_bootstrap, seed)]
        )
        complete = ~np.isnan(draws[:, evaluable]).any(axis=1)
        macro = draws[complete][:, evaluable].mean(axis=1) if evaluable.any() else np.empty(0)
        low, high = stats._percentile_interval(macro[:, None], 0.95)[0] if macro.size else (np.nan, np.nan)
        value = float(full[evaluable].mean()) if evaluable.any() else float("nan")
        rows.append({"metric": metric.macro, "value": value, "ci_low": float(low), "ci_high": float(high)})
        per_class = stats._percentile_interval(draws, 0.95)
        for i, cls in enumerate(classes):
            rows.append(
                {
                    "metric": f"{name}:{cls}",
                    "value": float(full[i]),
                    "ci_low": float(per_class[i, 0]),
                    "ci_high": float(per_class[i, 1]),
                }
            )
    return rows
