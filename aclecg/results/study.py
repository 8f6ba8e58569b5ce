"""The paper's question, answered from sweep folders: every method, pooled over test-fold rotations.

A *study* is a folder of sweeps (``runs/sweeps/<protocol>-test<K>-<group>/``, written by
``aclecg study run studies/bundled.toml``).
Each test fold ``K`` has its own pretraining runs (fold ``K`` left out, seed ``10 - K``), so a rotation is one
independent pretraining replicate. This module reads the finished cells and computes:

* the paper-style table: one row per method (linear probe) and reference arm, one column per label fraction,
  the mean over rotations of the mean over label seeds; a trained cell whose best step came within its patience
  of the budget is marked ``†`` (not converged);
* the primary comparison, declared before the runs: ACL-ECG against the baseline that validates best *in each
  rotation* (on that rotation's validation fold), linear probe, 10 % of labels, multilabel, pooled over
  rotations with a t test on the rotations (:func:`aclecg.results.hypothesis.cluster_test`) and a hierarchical bootstrap
  interval beside it, judged by the three-way verdict of :mod:`aclecg.results.verdict` with its power;
* DeLong tests per rotation on the seed-mean AUROC (the tables' estimand) with one Holm correction over the
  whole family.

Nothing is chosen on a fold that a pooled result scores: every sweep records its validation folds (and those of
any sweep it borrowed learning rates from), and :func:`check_choices` refuses a study where one of them is a test
fold of the study. Cells of different data (fingerprints) are never pooled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd

from aclecg import stats
from aclecg.errors import DataError
from aclecg.evaluation import count_not_converged
from aclecg.evaluation import outputs as cellout
from aclecg.evaluation.arms import arm_display_name, is_reference, reference_arms
from aclecg.evaluation.fractions import default_val_fold
from aclecg.metrics import METRICS, macro_value
from aclecg.results import hypothesis
from aclecg.results.pairing import first_runs, paired_runs, predictions, run_tag
from aclecg.results.power import components_of, present_design
from aclecg.results.verdict import HYPOTHESES, decide

__all__ = [
    "PRIMARY",
    "best_baseline",
    "best_baselines",
    "check_choices",
    "default_rows",
    "family_tests",
    "label_efficiency",
    "load_cells",
    "paper_table",
    "primary_comparison",
    "ship_official",
]


class PrimarySpec(TypedDict):
    """The shape of :data:`PRIMARY`."""

    protocol: str
    fraction: float
    kind: str
    metric: str
    margin: float
    alpha: float
    paper_effect: float


#: The primary comparison, fixed before any result was seen; its hypotheses are :data:`.verdict.HYPOTHESES`.
PRIMARY: PrimarySpec = {
    "protocol": "multilabel",
    "fraction": 0.1,
    "kind": "linear_probe",
    "metric": "auroc",
    "margin": HYPOTHESES["auroc"].margin,
    "alpha": HYPOTHESES["auroc"].alpha,
    "paper_effect": HYPOTHESES["auroc"].paper_effect,
}
#: The study's protocol for PTB-XL: every rotation validates on fold 9, which no rotation tests on.
STUDY_VAL_FOLD = 9
STUDY_TEST_FOLDS = (10, 8, 7, 6)
FOCUS = "acl_ecg"
ABLATIONS = ("acl_ecg_no_physio", "acl_ecg_no_region")


def default_rows(rows: Sequence[str], best: str | Sequence[str] | None = None) -> list[str]:
    """The rows a study chart starts with: ACL-ECG and the best baseline(s) (probed and fine-tuned) and the references.

    >>> default_rows(["acl_ecg", "simclr", "dlc", "dlc (fine-tuned)", "supervised", "random_init"], "dlc")
    ['acl_ecg', 'dlc', 'dlc (fine-tuned)', 'supervised', 'random_init']
    """
    keep = {FOCUS, f"{FOCUS} (fine-tuned)", *(a.name for a in reference_arms())}
    for name in [best] if isinstance(best, str) else best or []:
        keep |= {name, f"{name} (fine-tuned)"}
    return [r for r in rows if r in keep] or list(rows)


def _name(arm: str) -> str:
    """The method of an arm label (``acl_ecg@seed100:linear_probe`` -> ``acl_ecg``)."""
    return arm.split(":", 1)[0].partition("@")[0]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is unreadable ({type(exc).__name__}); run its sweep again to recompute it") from None


def _macro_values(rec: dict, predictions: Path) -> dict[str, float]:
    """A cell's macro values by row name (``macro_auroc``...); a registered metric the record predates is computed
    from its stored test predictions."""
    macro = {m["metric"]: m["value"] for m in rec["metrics"] if m["metric"].startswith("macro_")}
    missing = [name for name, metric in METRICS.items() if metric.macro not in macro]
    if missing:
        with np.load(predictions, allow_pickle=False) as z:
            y_true, y_score = z["y_true"], z["y_score"]
        macro |= {METRICS.get(name).macro: macro_value(name, y_true, y_score) for name in missing}
    return macro


def load_cells(root: str | Path) -> pd.DataFrame:
    """One row per finished cell of every sweep under ``root``: protocol, test fold, arm, metrics, convergence."""
    rows = []
    checked: set[tuple[str, int]] = set()  # (encoder, fold) pairs whose provenance was read: each once
    for meta_path in sorted(Path(root).glob("*/sweep.json")):
        meta = _read_json(meta_path)
        fold = meta.get("test_fold") or 10
        choice = _choice_folds(meta, int(fold))
        _check_encoders(meta, int(fold), meta_path, checked)
        mine = [(p, _read_json(p)) for p in sorted((meta_path.parent / "cells").glob("*.json"))]
        mine = [(p, r) for p, r in mine if r["arm"] in meta["arms"] and r["fraction"] in meta["fractions"]]
        for cell_path, rec in cellout.standing_cells(mine):  # cells of another configuration are left out
            macro = _macro_values(rec, cell_path.with_suffix(".npz"))
            d, settings = rec.get("details") or {}, (rec.get("key") or {}).get("settings")
            val = d.get("val")
            if isinstance(val, dict):  # linear probe: the validation score of the chosen L2 strength
                val = val.get(str(d.get("l2")))
            rows.append(
                {
                    "sweep": meta_path.parent.name,
                    "protocol": meta["protocol"],
                    "test_fold": int(fold),
                    "arm": rec["arm"],
                    "name": _name(rec["arm"]),
                    "run": run_tag(rec["arm"].split(":", 1)[0]),
                    "kind": rec["arm_kind"],
                    "fraction": float(rec["fraction"]),
                    "seed": int(rec["seed"]),
                    **{name: macro.get(metric.macro) for name, metric in METRICS.items()},
                    "val": val,
                    "converged": d.get("converged"),
                    "first_look": cellout.best_at_first_look(d, settings),
                    "schedule": cellout.validation_schedule(settings),  # blank for a probe (no lr_grid)
                    "best_step": d.get("best_step"),
                    "steps_run": d.get("steps_run"),
                    "lr": d.get("lr"),
                    "lr_edge": cellout.lr_at_edge(d),
                    "n_test": rec["n_test"],
                    "seconds": rec.get("seconds"),
                    "npz": str(cell_path.with_suffix(".npz")),
                    "val_folds": choice["own"],
                    "choice_folds": choice["all"] if _borrowed(rec) else choice["own"],
                    "data": meta.get("data_fingerprint", ""),
                }
            )
    if not rows:
        raise DataError(f"no finished sweep cells under {root}")
    cells = pd.DataFrame(rows)
    prints = cells.groupby("data")["sweep"].unique()
    if len(prints) > 1:
        listing = "; ".join(f"{fp[:12] or 'unknown'}: {', '.join(sorted(sw))}" for fp, sw in prints.items())
        raise DataError(f"{root}: sweeps of different data cannot be pooled in one study ({listing})")
    return cells


def _check_encoders(meta: dict, fold: int, where: Path, checked: set[tuple[str, int]]) -> None:
    """Refuse a sweep whose encoder records that it was pretrained on the fold the sweep scores (the provenance
    written into checkpoints since 2026-12-04; older checkpoints record none and pass). Encoders no longer on
    disk (an exported sweep read elsewhere) are not checked."""
    from aclecg.checkpoint import check_excluded_fold

    for label, info in (meta.get("checkpoints") or {}).items():
        path = Path(str((info or {}).get("path") or ""))
        if path.name and path.is_file() and (str(path), fold) not in checked:
            checked.add((str(path), fold))
            try:
                check_excluded_fold(path, fold)
            except DataError as exc:
                raise DataError(f"{where.parent.name}: encoder {label!r}: {exc}") from None


def _borrowed(rec: dict) -> bool:
    """Whether a trained cell used a learning rate chosen in another sweep (``--lr-from``)."""
    return bool(((rec.get("key") or {}).get("settings") or {}).get("lr_chosen_in"))


def _choice_folds(meta: dict, fold: int) -> dict[str, tuple[int, ...]]:
    """The folds a sweep's choices read: ``own`` (its validation folds) and ``all`` (with a lending sweep's)."""
    if "val_folds" in meta:
        own = list(meta["val_folds"])
        borrowed = list((meta.get("lr_from") or {}).get("val_folds") or [])
    else:  # written before sweeps recorded them: the rules of the time
        own = [default_val_fold(fold)]  # the fold before the test fold
        borrowed = [default_val_fold(10)]  # rotations borrowed the official split's learning rates (fold 9)
    return {"own": tuple(sorted(map(int, own))), "all": tuple(sorted(set(map(int, own)) | set(map(int, borrowed))))}


def check_choices(cells: pd.DataFrame) -> None:
    """Refuse a study in which any choice (L2, learning rate, early-stopping step, best baseline) read a fold
    that one of its pooled results scores."""
    scored = set(int(f) for f in cells["test_fold"].unique())
    bad = cells[[bool(set(c) & scored) for c in cells["choice_folds"]]]
    if not bad.empty:
        listing = "; ".join(
            f"{sw} chose on fold(s) {', '.join(map(str, sorted(set(g['choice_folds'].iloc[0]) & scored)))}"
            for sw, g in bad.groupby("sweep")
        )
        raise DataError(
            f"choices were made on folds the study scores ({listing}); rerun those sweeps with a validation fold "
            f"no rotation tests on (--val-fold {STUDY_VAL_FOLD} with test folds "
            f"{', '.join(map(str, STUDY_TEST_FOLDS))})"
        )


def best_baseline(cells: pd.DataFrame, fraction: float = 0.1, protocol: str = "multilabel", test_fold: int = 10) -> str:
    """The baseline whose linear probe validates best (mean over seeds) at ``fraction``; test folds unread."""
    cells = first_runs(cells)  # chosen before any repeat exists, so repeats never change it
    sel = cells[
        (cells["kind"] == "linear_probe")
        & (cells["protocol"] == protocol)
        & (cells["test_fold"] == test_fold)
        & np.isclose(cells["fraction"], fraction)
        & ~cells["name"].isin((FOCUS, *ABLATIONS))
    ]
    if sel.empty or sel["val"].isna().all():
        raise DataError(f"no baseline linear-probe cells at {fraction:g} ({protocol}, test fold {test_fold})")
    return str(sel.groupby("name")["val"].mean().idxmax())


def best_baselines(cells: pd.DataFrame, fraction: float | None = None, protocol: str | None = None) -> dict[int, str]:
    """``{test fold: baseline}``: in every rotation, the baseline whose linear probe validates best on that
    rotation's own validation fold (mean over seeds) at ``fraction`` (default: the primary's)."""
    fraction = PRIMARY["fraction"] if fraction is None else fraction
    protocol = PRIMARY["protocol"] if protocol is None else protocol
    folds = sorted(int(f) for f in cells[cells["protocol"] == protocol]["test_fold"].unique())
    out = {}
    for fold in folds:
        try:
            out[fold] = best_baseline(cells, fraction, protocol, fold)
        except DataError:
            continue
    if not out:
        raise DataError(f"no baseline linear-probe cells at {fraction:g} ({protocol}) in any rotation")
    return out


def overall_best(best: dict[int, str]) -> str:
    """The baseline named for tables: the one most rotations chose (ties: the official split's, then by name)."""
    counts = pd.Series(list(best.values())).value_counts()
    top = sorted(counts[counts == counts.max()].index)
    official = best.get(10)
    return official if official is not None and official in top else str(top[0])


def _row_label(arm: str, kind: str) -> str:
    return arm_display_name(arm, kind)  # the one naming of arms in charts and tables


def paper_table(cells: pd.DataFrame, protocol: str, metric: str = "auroc") -> pd.DataFrame:
    """Rows: arms; columns: fractions; values: mean over rotations of the seed mean. Also the rotations and
    not-converged counts per entry (columns ``(<fraction>, 'n_folds')`` / ``'not_converged'``)."""
    cells = first_runs(cells)
    sel = cells[cells["protocol"] == protocol]
    per_fold = (
        sel.groupby(["arm", "kind", "fraction", "test_fold"])
        .agg(
            value=(metric, "mean"),
            bad=("converged", count_not_converged),
            first=("first_look", cellout.count_first_look),
        )
        .reset_index()
    )
    pooled = (
        per_fold.groupby(["arm", "kind", "fraction"])
        .agg(
            mean=("value", "mean"),
            sd=("value", "std"),
            n_folds=("test_fold", "nunique"),
            not_converged=("bad", "sum"),
            first_look=("first", "sum"),
        )
        .reset_index()
    )
    pooled["row"] = [_row_label(a, k) for a, k in zip(pooled["arm"], pooled["kind"])]
    return pooled


def _order(rows: Iterable[str]) -> list[str]:
    references = [a.name for a in reference_arms()]

    def key(r: str) -> tuple[int, str]:
        if r == FOCUS:
            return (0, r)
        if r in ABLATIONS:
            return (1, r)
        if r.endswith("(fine-tuned)"):
            return (3, r)
        if is_reference(r):
            return (4 + references.index(r), r)
        return (2, r)

    return sorted(set(rows), key=key)


def format_table(pooled: pd.DataFrame, best: str | dict[str, str] | None = None, n_folds: int | None = None) -> str:
    """Markdown table of :func:`paper_table`; an entry pooled over fewer than ``n_folds`` test folds says how many.
    ``best``: the best baseline's name, or ``{name: note}`` for each baseline a rotation chose."""
    named = {best: "best baseline"} if isinstance(best, str) else dict(best or {})
    fracs = sorted(pooled["fraction"].unique())
    n_folds = n_folds or int(pooled["n_folds"].max())
    head = "| arm | " + " | ".join(f"{f * 100:g} %" for f in fracs) + " |"
    lines = [head, "|---" * (len(fracs) + 1) + "|"]
    for row in _order(pooled["row"]):
        cells = []
        for f in fracs:
            hit = pooled[(pooled["row"] == row) & np.isclose(pooled["fraction"], f)]
            if hit.empty:
                cells.append("–")
                continue
            h = hit.iloc[0]
            txt = f"{h['mean']:.3f}"
            if h["n_folds"] > 1 and np.isfinite(h["sd"]):
                txt += f" ±{h['sd']:.3f}"
            if h["not_converged"]:
                txt += " †"
            if h["first_look"]:
                txt += " ‡"
            if h["n_folds"] < n_folds:
                txt += f" [{int(h['n_folds'])}/{n_folds}]"
            cells.append(txt)
        label = f"**{row}**" if row == FOCUS else (f"{row} ({named[row]})" if row in named else row)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def family_tests(cells: pd.DataFrame) -> pd.DataFrame:
    """DeLong tests of ACL-ECG's arms against every other arm, per protocol, fraction and test fold, on the
    seed-mean macro AUROC (the tables' and the primary comparison's estimand; seeds paired by label draw);
    Holm-adjusted over the whole family."""
    rows = []
    focus_kinds = {"linear_probe": f"{FOCUS}:linear_probe", "fine_tune": f"{FOCUS}:fine_tune"}
    for (protocol, fold, fraction), grp in first_runs(cells).groupby(["protocol", "test_fold", "fraction"]):
        for kind, focus_arm in focus_kinds.items():
            mine = grp[grp["arm"] == focus_arm]
            if mine.empty:
                continue
            a = predictions(mine)
            others = [
                arm
                for arm in grp["arm"].unique()
                if arm != focus_arm
                and (kind == "linear_probe" or grp[grp["arm"] == arm]["kind"].iloc[0] != "linear_probe")
            ]
            for other in others:
                b = predictions(grp[grp["arm"] == other])
                if not np.array_equal(a.y, b.y):
                    continue
                if len(a.scores) != len(b.scores):
                    continue
                try:
                    res = stats.delong_macro_mean(a.y, a.scores, b.scores)
                except DataError:
                    continue
                rows.append(
                    {
                        "protocol": protocol,
                        "test_fold": fold,
                        "fraction": fraction,
                        "arm": focus_arm,
                        "versus": other,
                        "auc_a": res.auc_a,
                        "auc_b": res.auc_b,
                        "diff": res.diff,
                        "se": abs(res.diff / res.z) if res.z else np.nan,
                        "p_value": res.p_value,
                    }
                )
    out = pd.DataFrame(rows)
    if not out.empty:
        out["p_holm"] = hypothesis.holm(out["p_value"].to_numpy())
    return out


def primary_comparison(cells: pd.DataFrame, best: dict[int, str] | str | None = None, n_resamples: int = 2000) -> dict:
    """The declared primary comparison, pooled over every rotation that has both arms.

    ``best``: the baseline of each rotation (default: :func:`best_baselines`, chosen on each rotation's own
    validation fold); a single name uses it everywhere. The verdict comes from a t test over rotations whose
    unit variance is floored at the record noise (:func:`aclecg.results.hypothesis.cluster_test`); the hierarchical
    bootstrap interval (record noise drawn once) is reported beside it.
    """
    check_choices(cells)
    p = PRIMARY
    chosen = best_baselines(cells) if best is None else best
    sel = cells[(cells["protocol"] == p["protocol"]) & np.isclose(cells["fraction"], p["fraction"])]
    runs, folds, names, pairs = [], [], {}, {}
    for fold, grp in sel.groupby("test_fold"):
        name = chosen if isinstance(chosen, str) else chosen.get(int(fold))
        if name is None:
            continue
        pairs_f = paired_runs(grp, FOCUS, name, p["kind"])
        if not pairs_f:
            continue
        # every pretraining run's label seeds pooled: the rotation's difference is the mean over its runs
        scores_a = [s for _, a, _ in pairs_f for s in a.scores]
        runs.append(hypothesis.RunScores(pairs_f[0][1].y, scores_a, [s for *_, b in pairs_f for s in b.scores]))
        folds.append(int(fold))
        names[int(fold)] = name
        pairs[int(fold)] = pairs_f
    if not runs:
        raise DataError(
            f"the primary comparison needs {FOCUS} and its best baseline's linear probes at {p['fraction']:g}"
        )
    boot = hypothesis.hierarchical_bootstrap(runs, p["metric"], n_resamples=n_resamples, seed=20260131)
    test = hypothesis.cluster_test(boot.per_run, boot.record_vars)
    record = {
        "test_folds": folds,
        "per_fold": dict(zip(folds, boot.per_run)),
        "record_var_per_fold": dict(zip(folds, boot.record_vars)),
        "n_records_per_fold": [len(r.y_true) for r in runs],
        **_pretraining_runs(pairs, p["metric"], n_resamples),
    }
    design_se = None  # the planner's present design (one standard error for the verdict's power and the planner's)
    if len(folds) >= 2:
        comp = components_of(record)
        design_se = present_design(record, comp).se(comp)
    verdict = decide(test, HYPOTHESES[p["metric"]], design_se)
    return {
        "best_baseline": overall_best(names),
        "best_per_fold": names,
        "n_records": boot.n_records,
        "diff": test.diff,
        "ci_low": verdict.ci_low,
        "ci_high": verdict.ci_high,
        "se": test.se,
        "boot_ci_low": boot.ci_low,
        "boot_ci_high": boot.ci_high,
        "tost_p": verdict.tost_p,
        "equivalent": verdict.equivalent,
        "verdict": verdict.as_dict(),
        **record,
        **p,
    }


def _pretraining_runs(pairs: dict[int, list], metric: str, n_resamples: int) -> dict:
    """With repeats (some rotation has two or more pretraining runs of both arms): each run's own difference and
    record variance, for the variance between pretraining runs (:func:`aclecg.results.power.components_of`)."""
    if all(len(v) < 2 for v in pairs.values()):
        return {}
    out = []
    for fold, runs in pairs.items():
        for tag, a, b in runs:
            one = hypothesis.hierarchical_bootstrap(
                [hypothesis.RunScores(a.y, a.scores, b.scores)], metric, n_resamples=n_resamples, seed=20260131
            )
            rec = {"fold": fold, "run": tag or "first", "diff": one.per_run[0], "record_var": one.record_vars[0]}
            out.append({**rec, "n": len(a.y)})
    return {"runs": out}


def label_efficiency(pooled: pd.DataFrame, arm: str, target: float) -> float | None:
    """Smallest label fraction at which ``arm``'s pooled value reaches ``target`` (None if it never does)."""
    sel = pooled[pooled["arm"] == arm].sort_values("fraction")
    hit = sel[sel["mean"] >= target - 1e-12]
    return float(hit["fraction"].iloc[0]) if not hit.empty else None


def ship_official(sweeps: str | Path, runs: str | Path = "runs", checkpoints: str | Path = "checkpoints") -> list[Path]:
    """Copy every finished official run ``runs/ship-NAME`` into ``checkpoints/NAME`` with its model card (quoting
    the official probe sweeps) and record ``config.sha256``, so ``make results`` reuses it on a fresh clone.

    A committed ``checkpoints/NAME`` with no run folder but its ``metrics.jsonl`` gets its card rewritten in place
    (so a fresh clone's ``make results`` brings every card up to date with the sweeps)."""
    import hashlib

    from aclecg.results.report import ship_checkpoint

    probe = [
        p
        for p in (Path(sweeps) / f"{proto}-test10-probe" for proto in ("multilabel", "singlelabel"))
        if (p / "summary.csv").is_file()
    ]
    out = []
    for cfg in sorted(Path(checkpoints).glob("*/config.json")):
        name = cfg.parent.name
        run = Path(runs) / f"ship-{name}"
        if not (run / "encoder.pt").is_file():
            run = cfg.parent  # the committed encoder, when it kept its loss curve
            if not ((run / "encoder.pt").is_file() and (run / "metrics.jsonl").is_file()):
                continue
        dest = ship_checkpoint(run, cfg.parent, probe)
        (dest / "config.sha256").write_text(hashlib.sha256((dest / "config.json").read_bytes()).hexdigest() + "\n")
        out.append(dest)
    return out
