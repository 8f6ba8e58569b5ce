"""A sweep's files: reading finished cells back and writing the tidy tables from them.

Every finished cell leaves ``cells/<cell>.json`` (key, details, metrics) and ``cells/<cell>.npz`` (test
predictions). :func:`write_outputs` turns the cells into ``results.csv``/``results.json`` (one row per arm x
fraction x seed x metric, with DeLong p-values against the reference arms), ``comparisons.csv`` and
``summary.csv``; all writes are atomic (:mod:`aclecg.atomicio`).
"""

from __future__ import annotations

import json
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aclecg import atomicio, stats
from aclecg.errors import ConfigError, DataError
from aclecg.evaluation.arms import baseline_arms, is_trained
from aclecg.metrics import METRICS
from aclecg.metrics import metric_rows as registered_metric_rows

__all__ = [
    "SweepResult",
    "cell_readable",
    "count_not_converged",
    "learning_rates_of",
    "metric_rows",
    "missing_metrics",
    "standing_cells",
    "with_all_metrics",
    "write_outputs",
]


@dataclass
class SweepResult:
    """What :func:`~aclecg.evaluation.run_sweep` returns: its three tables, the output folder and the cell counts
    (computed now, read back from ``cells/``, and missing: not finished, only with ``collect_only``)."""

    results: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    out_dir: Path
    n_computed: int
    n_cached: int
    n_missing: int = 0


def cell_readable(meta_path: Path, pred_path: Path) -> bool:
    """Whether a finished sweep cell's two files can be read back; a damaged cell is recomputed, with a warning."""
    try:
        json.loads(meta_path.read_text())
        with np.load(pred_path, allow_pickle=False) as z:
            z["y_true"], z["y_score"]
        return True
    except (OSError, ValueError, EOFError, KeyError, UnicodeDecodeError, zipfile.BadZipFile, zlib.error) as exc:
        warnings.warn(
            f"sweep cell {pred_path.stem} is unreadable ({type(exc).__name__}: {exc}); recomputing it", stacklevel=3
        )
        return False


def learning_rates_of(sweep_dir: str | Path) -> dict[tuple[str, float], float]:
    """``{(arm, fraction): lr}`` chosen on validation by a finished sweep's trained cells (its first seed's grid)."""
    folder = Path(sweep_dir) / "cells"
    if not folder.is_dir():
        raise ConfigError(f"{sweep_dir} has no cells/ folder: not a sweep output")
    out: dict[tuple[str, float], float] = {}
    for path in sorted(folder.glob("*.json")):
        rec = json.loads(path.read_text())
        details = rec.get("details") or {}
        if is_trained(rec.get("arm_kind")) and len(details.get("lr_grid") or []) > 1:
            out[(rec["arm"], float(rec["fraction"]))] = float(details["lr"])
    return out


def metric_rows(report: stats.MetricReport, boot: stats.BootstrapResult, classes: list[str]) -> list[dict]:
    """A cell's metric rows: macro AUROC/AUPRC and every class's, each with its bootstrap 95 % interval."""
    rows = [
        {
            "metric": "macro_auroc",
            "value": report.macro_auroc,
            "ci_low": boot.macro["macro_auroc"][0],
            "ci_high": boot.macro["macro_auroc"][1],
        },
        {
            "metric": "macro_auprc",
            "value": report.macro_auprc,
            "ci_low": boot.macro["macro_auprc"][0],
            "ci_high": boot.macro["macro_auprc"][1],
        },
    ]
    for key in ("auroc", "auprc"):
        for i, name in enumerate(classes):
            cm = report.per_class[name]
            value = cm.auroc if key == "auroc" else cm.auprc
            rows.append(
                {
                    "metric": f"{key}:{name}",
                    "value": value,
                    "ci_low": float(boot.per_class[key][i, 0]),
                    "ci_high": float(boot.per_class[key][i, 1]),
                }
            )
    return rows


def missing_metrics(record: dict) -> list[str]:
    """The registered metrics a cell's record has no rows of (registered after the cell was computed)."""
    have = {m["metric"] for m in record.get("metrics") or []}
    return [name for name, metric in METRICS.items() if metric.macro not in have]


def with_all_metrics(record: dict, predictions: Path) -> dict:
    """``record`` with rows of every registered metric: those it lacks are computed from its stored test
    predictions (``predictions``, the cell's ``.npz``) with the cell's bootstrap settings; no retraining."""
    missing = missing_metrics(record)
    if not missing:
        return record
    with np.load(predictions, allow_pickle=False) as z:
        y_true, y_score, classes = z["y_true"], z["y_score"], [str(c) for c in z["classes"]]
    n_bootstrap = int(((record.get("key") or {}).get("settings") or {}).get("n_bootstrap", 1000))
    extra = registered_metric_rows(y_true, y_score, classes, missing, n_bootstrap, 1000 + int(record["seed"]))
    return {**record, "metrics": [*record["metrics"], *extra]}


def _comparisons(out: Path, cell_records: list[dict], names: Sequence[str], classes: list[str]) -> pd.DataFrame:
    """DeLong tests between every pair of arms at the same fraction and seed (macro and per class)."""
    by_cell = {(r["arm"], r["fraction"], r["seed"]): r for r in cell_records}
    preds: dict[str, Any] = {}

    def load(rec: dict) -> tuple[np.ndarray, np.ndarray]:
        if rec["cell"] not in preds:
            with np.load(out / "cells" / f"{rec['cell']}.npz") as z:
                preds[rec["cell"]] = (z["y_true"], z["y_score"])
        return preds[rec["cell"]]

    rows = []
    names = list(names)
    for fraction, seed in sorted({(r["fraction"], r["seed"]) for r in cell_records}):
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                ra, rb = by_cell.get((a, fraction, seed)), by_cell.get((b, fraction, seed))
                if ra is None or rb is None:
                    continue
                (ya, sa), (_, sb) = load(ra), load(rb)
                base = {"arm_a": a, "arm_b": b, "fraction": fraction, "seed": seed}
                try:
                    mac = stats.delong_macro(ya, sa, sb)
                    rows.append(
                        {
                            **base,
                            "metric": "macro_auroc",
                            "auc_a": mac.auc_a,
                            "auc_b": mac.auc_b,
                            "diff": mac.diff,
                            "z": mac.z,
                            "p_value": mac.p_value,
                        }
                    )
                except DataError:
                    pass
                for c, res in zip(classes, stats.delong_per_class(ya, sa, sb)):
                    if res is not None:
                        rows.append(
                            {
                                **base,
                                "metric": f"auroc:{c}",
                                "auc_a": res.auc_a,
                                "auc_b": res.auc_b,
                                "diff": res.diff,
                                "z": res.z,
                                "p_value": res.p_value,
                            }
                        )
    cols = ["arm_a", "arm_b", "fraction", "seed", "metric", "auc_a", "auc_b", "diff", "z", "p_value"]
    return pd.DataFrame(rows, columns=cols)


def count_not_converged(converged: pd.Series) -> int:
    """Trained cells whose budget ended the run (``converged`` False); probes (NaN) and converged ones don't count."""
    return int((converged == False).sum())  # noqa: E712 - elementwise, NaN-safe


def count_first_look(first_look: pd.Series) -> int:
    """Trained cells whose best step was their first validation (``first_look`` True); NaN (probes) doesn't count."""
    return int((first_look == True).sum())  # noqa: E712 - elementwise, NaN-safe


def standing_cells(cells: Sequence[tuple[Path, dict]]) -> list[tuple[Path, dict]]:
    """The cells of one sweep folder that stand, from ``(path, record)`` pairs.

    A folder keeps cells that its present plan no longer names: the search that an extended search continued
    (``continued_from``), and a later seed trained with a rate its first seed no longer chooses. Those are left out.
    Two cells left for one (arm, fraction, seed) would be counted twice, so that is an error naming both files.
    """
    continued = {rec.get("details", {}).get("continued_from") for _, rec in cells} - {None}
    kept = [(p, rec) for p, rec in cells if p.stem not in continued]
    chosen = {
        (rec["arm"], rec["fraction"]): rec["details"].get("lr")
        for _, rec in kept
        if len(rec.get("details", {}).get("lr_grid") or []) > 1
    }

    def stale(rec: dict) -> bool:
        settings = (rec.get("key") or {}).get("settings") or {}
        now = chosen.get((rec["arm"], rec["fraction"]))
        return "lr_chosen_on_seed" in settings and now is not None and settings.get("lr") != now

    out: list[tuple[Path, dict]] = []
    seen: dict[tuple[str, float, int], Path] = {}
    for path, rec in kept:
        if stale(rec):
            continue
        slot = (rec["arm"], rec["fraction"], rec["seed"])
        if slot in seen:
            raise DataError(
                f"{path.parent}: two cells for {slot[0]} at {slot[1]:g}, seed {slot[2]} ({seen[slot].name}, "
                f"{path.name}); remove the one its sweep no longer plans, or run the sweep again"
            )
        seen[slot] = path
        out.append((path, rec))
    return out


def lr_at_edge(details: dict) -> bool | float:
    """Whether a trained cell's search ended on the top or bottom rate it tried (so a better rate may lie beyond);
    NaN for a cell that searched no grid (a probe, or a later seed reusing its first seed's rate)."""
    rates = sorted(float(g["lr"]) for g in details.get("lr_grid") or [])
    if len(rates) < 2 or "lr" not in details:
        return np.nan
    return float(details["lr"]) in (rates[0], rates[-1])


def count_searches(at_edge: pd.Series) -> str:
    """``"k of n"``: of the n cells that searched a grid, k ended at its edge (blank when none searched)."""
    searched = at_edge.dropna()
    return f"{int((searched == True).sum())} of {len(searched)}" if len(searched) else ""  # noqa: E712


def validation_schedule(settings: dict | None) -> str:
    """How a trained cell validated and searched its learning rate, from its key's settings (blank for a cell
    without them, a probe's)."""
    s = settings or {}
    if "lr_grid" not in s:
        return ""
    every, dense = s.get("eval_every", 20), s.get("dense") or (0, 0)
    looks = (
        f"step 0, every {dense[0]} steps to step {dense[1]} and every {every} after"
        if dense[1] > 0
        else f"every {every} steps from step {every}"
    )
    if "lr_chosen_on_seed" in s:
        return f"validation at {looks}; the learning rate its first seed chose"
    if "lr_chosen_in" in s:
        return f"validation at {looks}; a learning rate chosen in another sweep"
    grid = ", ".join(f"{float(x):g}" for x in s["lr_grid"])
    extra = f", and up to {s['lr_extend']} more past a winning edge" if s.get("lr_extend") else ""
    return f"validation at {looks}; learning rates {grid}{extra}"


def best_at_first_look(details: dict, settings: dict | None = None) -> bool | float:
    """Whether a trained cell's best step was its first validation (NaN for a probe). Cells trained before the
    flag was recorded validated first at step ``eval_every`` of their settings."""
    if "best_step" not in details:
        return np.nan
    if "best_at_first_look" in details:
        return bool(details["best_at_first_look"])
    first = (settings or {}).get("eval_every", 20)
    return bool(details["best_step"] == first)


def _summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and a t-based 95 % CI of each metric over seeds (plus the mean bootstrap interval)."""
    from scipy.stats import t as student_t

    keys = ["arm", "arm_kind", "method", "fraction", "metric"]
    g = results.groupby(keys, sort=False, dropna=False)
    summ = g.agg(
        mean=("value", "mean"),
        std=("value", "std"),
        n_seeds=("value", "count"),
        boot_ci_low_mean=("ci_low", "mean"),
        boot_ci_high_mean=("ci_high", "mean"),
        n_train_mean=("n_train", "mean"),
        best_step_mean=("best_step", "mean"),
        steps_run_mean=("steps_run", "mean"),
        n_not_converged=("converged", count_not_converged),
        n_first_look=("first_look", count_first_look),
    ).reset_index()
    half = student_t.ppf(0.975, np.maximum(summ["n_seeds"] - 1, 1)) * summ["std"] / np.sqrt(summ["n_seeds"])
    summ["ci_low"] = np.where(summ["n_seeds"] > 1, summ["mean"] - half, np.nan)
    summ["ci_high"] = np.where(summ["n_seeds"] > 1, summ["mean"] + half, np.nan)
    return summ


def write_outputs(
    out: Path,
    cell_records: list[dict],
    arm_names: Sequence[str],
    classes: list[str],
    sweep_meta: dict,
    n_computed: int,
    n_cached: int,
) -> SweepResult:
    """Write ``results.csv``/``results.json``, ``comparisons.csv`` and ``summary.csv`` from the cells' records."""
    rows = []
    cell_records = [with_all_metrics(rec, out / "cells" / f"{rec['cell']}.npz") for rec in cell_records]
    for rec in cell_records:
        base = {
            k: rec[k]
            for k in (
                "arm",
                "arm_kind",
                "method",
                "checkpoint",
                "fraction",
                "seed",
                "n_train",
                "n_train_patients",
                "n_test",
            )
        }
        base["excluded"] = ";".join(rec["excluded"])
        details = rec.get("details") or {}
        for k in ("lr", "best_step", "steps_run"):
            base[k] = details.get(k, np.nan)
        base["converged"] = details.get("converged", np.nan)  # NaN for the probes: nothing to converge
        base["first_look"] = best_at_first_look(details, (rec.get("key") or {}).get("settings"))
        for m in rec["metrics"]:
            rows.append({**base, **m})
    results = pd.DataFrame(rows)
    comparisons = _comparisons(out, cell_records, arm_names, classes)
    for ref in (a.name for a in baseline_arms()):
        col = f"p_vs_{ref}"
        results[col] = np.nan
        if comparisons.empty:
            continue
        sel = comparisons[(comparisons["arm_b"] == ref) | (comparisons["arm_a"] == ref)]
        lookup = {
            ((r.arm_a if r.arm_b == ref else r.arm_b), r.fraction, r.seed, r.metric): r.p_value
            for r in sel.itertuples()
        }
        results[col] = [lookup.get((r.arm, r.fraction, r.seed, r.metric), np.nan) for r in results.itertuples()]
    summary = _summary(results) if not results.empty else pd.DataFrame()
    results.to_csv(out / "results.csv", index=False)
    comparisons.to_csv(out / "comparisons.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    atomicio.write_json(
        out / "results.json",
        {
            "sweep": sweep_meta,
            "rows": json.loads(results.to_json(orient="records")),
            "comparisons": json.loads(comparisons.to_json(orient="records")),
        },
    )
    return SweepResult(results, summary, comparisons, out, n_computed, n_cached)
