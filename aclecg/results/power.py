"""How big must a study be? Variance components from the study's own cells, and a sample-size planner.

Model of one rotation's difference (ACL-ECG minus the best baseline, macro metric, averaged over label seeds
and over its ``S`` pretraining seeds), on ``n`` test records:

    d_r = mu + u_r + (1/S) sum_s w_rs + e_r,   Var(u) = tau2_rot, Var(w) = tau2_seed, Var(e) = sigma2 / n

``u_r`` is what a rotation's folds add (their difficulty for the two methods), ``w_rs`` what one pretraining run
adds (its seed, its label draws), ``e_r`` the noise of the finite test set, shared by the seeds of a rotation
because they are scored on the same records. The pooled mean over ``R`` rotations has

    Var(mean d) = (tau2_rot + tau2_seed / S + sigma2 / n) / R

and is tested with a t test on ``R - 1`` degrees of freedom (:func:`aclecg.results.hypothesis.cluster_test`).

Estimates: ``sigma2`` is each run's record-bootstrap variance times its test records; ``tau2_seed`` the
variance between the pretraining seeds of a rotation (when a rotation has two or more); ``tau2_rot`` what is
left of the variance between rotations after record noise and seeds are taken out (never below 0). With one
seed per rotation the two run components cannot be told apart and all of it is counted as ``tau2_rot``, which
more seeds cannot shrink: a cautious plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from aclecg.errors import DataError
from aclecg.results.hypothesis import min_detectable_effect, power_one_sided

__all__ = ["Design", "VarianceComponents", "estimate_components", "plan", "simulate_power"]

#: Labelled superdiagnostic test records in one PTB-XL fold of the full dataset (21,799 records in 10 folds;
#: about 2,160-2,200 per fold carry a superdiagnostic label).
FULL_PTBXL_RECORDS_PER_FOLD = 2180


@dataclass(frozen=True)
class VarianceComponents:
    sigma2: float  # record noise of a run's difference, times its number of test records
    tau2_rot: float  # between rotations, beyond record noise and seeds
    tau2_seed: float  # between pretraining seeds of one rotation (NaN when never measured)
    n_rotations: int
    n_runs: int
    n_records: float  # mean test records per rotation

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def seeds_measured(self) -> bool:
        return bool(np.isfinite(self.tau2_seed))


@dataclass(frozen=True)
class Design:
    n_records: float  # test records per rotation
    rotations: int
    seeds: float = 1  # pretraining runs per rotation and arm (a harmonic mean when rotations differ)

    def se(self, comp: VarianceComponents) -> float:
        seed = comp.tau2_seed if comp.seeds_measured else 0.0
        var = comp.tau2_rot + seed / self.seeds + comp.sigma2 / self.n_records
        return float(np.sqrt(var / self.rotations))

    @property
    def df(self) -> float:
        return float(self.rotations - 1)

    def power(self, comp: VarianceComponents, effect: float, alpha: float = 0.05) -> float:
        return power_one_sided(effect, self.se(comp), self.df, alpha)

    def mde(self, comp: VarianceComponents, alpha: float = 0.05, power: float = 0.8) -> float:
        return min_detectable_effect(self.se(comp), self.df, alpha, power)


def estimate_components(
    per_run: Sequence[float], record_vars: Sequence[float], n_records: Sequence[int], rotation: Sequence[int]
) -> VarianceComponents:
    """Components from one difference per pretraining run, its record-bootstrap variance, its test-set size
    and the rotation (test fold) it belongs to. Needs at least two rotations."""
    d, v, n = (np.asarray(x, dtype=float) for x in (per_run, record_vars, n_records))
    rot = np.asarray(rotation)
    if not (len(d) == len(v) == len(n) == len(rot)) or len(d) == 0:
        raise DataError("variance components: one difference, variance, size and rotation per run")
    rots = np.unique(rot)
    if len(rots) < 2:
        raise DataError("variance components: need at least two rotations to estimate the between-run variance")
    sigma2 = float(np.mean(v * n))
    seed_vars, seeds = [], []
    for r in rots:
        dr = d[rot == r]
        seeds.append(len(dr))
        if len(dr) > 1:
            seed_vars.append(float(dr.var(ddof=1)))
    tau2_seed = float(np.mean(seed_vars)) if seed_vars else float("nan")
    means = np.array([d[rot == r].mean() for r in rots])
    n_rot = np.array([n[rot == r].mean() for r in rots])
    s_bar = float(np.mean(seeds))
    expected_within = sigma2 / n_rot.mean() + (tau2_seed / s_bar if seed_vars else 0.0)
    tau2_rot = max(0.0, float(means.var(ddof=1)) - expected_within)
    return VarianceComponents(sigma2, tau2_rot, tau2_seed, len(rots), len(d), float(n_rot.mean()))


def plan(
    comp: VarianceComponents,
    effect: float,
    records: Sequence[float],
    rotations: Sequence[int] = (2, 3, 4, 5, 6, 7, 8, 9),
    seeds: Sequence[int] = (1, 2, 3),
    alpha: float = 0.05,
    target: float = 0.8,
) -> list[dict]:
    """Power at ``effect`` of every design (records per rotation x rotations x seeds), and its MDE.

    Rows are sorted by records, seeds, rotations; ``enough`` marks designs at ``target`` power or more.
    """
    rows = []
    for n in records:
        for s in seeds:
            for r in rotations:
                d = Design(float(n), int(r), int(s))
                p = d.power(comp, effect, alpha)
                rows.append(
                    {
                        "records_per_rotation": float(n),
                        "rotations": int(r),
                        "seeds": int(s),
                        "pretraining_runs_per_arm": int(r * s),
                        "test_records": float(n * r),
                        "se": d.se(comp),
                        "power": p,
                        "mde": d.mde(comp, alpha, target),
                        "enough": bool(p >= target),
                    }
                )
    return rows


def smallest(rows: list[dict], records: float) -> dict | None:
    """The design with the fewest pretraining runs that reaches the target power at ``records`` per rotation."""
    ok = [r for r in rows if r["enough"] and np.isclose(r["records_per_rotation"], records)]
    return min(ok, key=lambda r: (r["pretraining_runs_per_arm"], r["rotations"])) if ok else None


def simulate_power(
    comp: VarianceComponents, design: Design, effect: float, alpha: float = 0.05, n_sim: int = 4000, seed: int = 0
) -> tuple[float, float]:
    """Monte-Carlo rejection rate of the one-sided t test and coverage of its 95 % interval, drawing rotations
    from the model above: the check that :meth:`Design.power` is what the study's test really achieves."""
    from aclecg.results.hypothesis import cluster_test

    if not float(design.seeds).is_integer():
        raise ValueError(f"simulate_power draws whole pretraining runs per rotation, got {design.seeds:g}")
    rng = np.random.default_rng(seed)
    r, s = design.rotations, int(design.seeds)
    tau_seed = comp.tau2_seed if comp.seeds_measured else 0.0
    u = rng.normal(0, np.sqrt(comp.tau2_rot), (n_sim, r))
    w = rng.normal(0, np.sqrt(tau_seed), (n_sim, r, s)).mean(axis=2)
    e = rng.normal(0, np.sqrt(comp.sigma2 / design.n_records), (n_sim, r))
    d = effect + u + w + e
    reject = cover = 0
    for row in d:
        t = cluster_test(row)
        reject += t.p_greater(0.0) < alpha
        lo, hi = t.interval(0.95)
        cover += lo <= effect <= hi
    return reject / n_sim, cover / n_sim


def components_of(prim: dict) -> VarianceComponents:
    """:func:`estimate_components` from a primary comparison's record (:func:`.study.primary_comparison`): its
    pretraining runs (``runs``, when some rotation has repeats), else one run per rotation."""
    runs = prim.get("runs")
    if runs:
        cols = ("diff", "record_var", "n", "fold")
        return estimate_components(*([r[c] for r in runs] for c in cols))
    folds = prim["test_folds"]
    return estimate_components(
        [prim["per_fold"][f] for f in folds],
        [prim["record_var_per_fold"][f] for f in folds],
        prim["n_records_per_fold"],
        folds,
    )


def present_design(prim: dict, comp: VarianceComponents | None = None) -> Design:
    """The design a primary comparison's record (:func:`.study.primary_comparison`) describes: its rotations, their
    mean test records, and its pretraining runs per rotation and arm (the harmonic mean over rotations, so
    ``τ²_seed / seeds`` is the mean of each rotation's ``τ²_seed / runs``: a rotation whose best baseline has one
    run counts as one run)."""
    comp = components_of(prim) if comp is None else comp
    folds = [int(f) for f in prim["test_folds"]]
    counts = {f: 0 for f in folds}
    for r in prim.get("runs") or []:
        counts[int(r["fold"])] = counts.get(int(r["fold"]), 0) + 1
    runs = [max(counts.get(f, 0), 1) for f in folds]
    return Design(comp.n_records, comp.n_rotations, len(runs) / sum(1.0 / r for r in runs))


def power_section(
    prim: dict, effect: float | None = None, full_records: float = FULL_PTBXL_RECORDS_PER_FOLD
) -> list[str]:
    """The report's sample-size section: the variance components, the present design's power and MDE, and the
    designs that reach 80 % power at the paper's effect, on this data's fold size and on the full PTB-XL."""
    effect = float(prim["paper_effect"] if effect is None else effect)
    alpha = float(prim.get("alpha", 0.05))
    if len(prim["test_folds"]) < 2:
        return [
            "## How large a study would decide it",
            "",
            "The planner needs at least two rotations (test folds with their own pretraining runs) to estimate "
            "the between-run variance; this study has one so far.",
            "",
        ]
    comp = components_of(prim)
    n_now = comp.n_records
    now = present_design(prim, comp)
    runs_per = f"{now.seeds:g}" if float(now.seeds).is_integer() else f"{now.seeds:.2f} (harmonic mean)"
    lines = [
        "## How large a study would decide it",
        "",
        f"Variance components of the primary difference, estimated from the study's own cells "
        f"(`python -m aclecg study power`): record noise σ² = {comp.sigma2:.4f} (a run's variance × its test "
        f"records; {n_now:.0f} records per test fold here), between rotations τ²_rot = {comp.tau2_rot:.2e}, "
        + (
            f"between pretraining seeds τ²_seed = {comp.tau2_seed:.2e}."
            if comp.seeds_measured
            else "between pretraining seeds: not measured yet (one pretraining run per rotation), so the run-to-run "
            "variance cannot be split between rotations and seeds; the tables below show both ends."
        ),
        "",
        f"Present design ({comp.n_rotations} rotations × {runs_per} pretraining run{'s' if now.seeds > 1 else ''} "
        f"per rotation and arm, {n_now:.0f} test records each): "
        f"standard error {now.se(comp):.4f}, power {now.power(comp, effect, alpha):.0%} to detect "
        f"+{effect:.4f}, minimum detectable effect at 80 % power {now.mde(comp, alpha):.4f} "
        f"(one-sided t test, α = {alpha:g}, {now.df:.0f} degrees of freedom).",
        "",
        f"Power to detect +{effect:.4f} (the paper's effect), by design. Records per rotation: this data's test "
        f"fold ({n_now:.0f}) and a full PTB-XL fold ({full_records:.0f}); rotations are test folds that each leave "
        "their own fold out of pretraining (at most 9 with fold 9 validating); seeds are pretraining runs per "
        "rotation and arm.",
        "",
    ]
    scenarios = [("as estimated", comp)]
    if not comp.seeds_measured:  # the two ends of what one seed per rotation cannot tell apart
        scenarios = [
            ("cautious: all run-to-run variance between rotations, which seeds cannot reduce", comp),
            (
                "hopeful: all of it between pretraining seeds, which seeds average out",
                replace(comp, tau2_rot=0.0, tau2_seed=comp.tau2_rot),
            ),
        ]
    for title, c in scenarios:
        rows = plan(c, effect, [n_now, full_records], rotations=range(2, 10), seeds=(1, 2, 3, 4), alpha=alpha)
        lines += _power_table(rows, title, n_now, full_records)
    return lines + [
        "The second pretraining seed per rotation that the plan asks for is what tells the two apart "
        "(`estimate_components` then measures τ²_seed).",
        "",
    ]


def _power_table(rows: list[dict], title: str, n_now: float, full_records: float) -> list[str]:
    lines = [
        f"*{title.capitalize()}.*",
        "",
        "| records per rotation | seeds | " + " | ".join(f"{r} rot." for r in range(2, 10)) + " |",
        "|---|---|" + "---|" * 8,
    ]
    for n in (n_now, full_records):
        for s in (1, 2, 3, 4):
            sel = [r for r in rows if np.isclose(r["records_per_rotation"], n) and r["seeds"] == s]
            cells = [f"**{r['power']:.0%}**" if r["enough"] else f"{r['power']:.0%}" for r in sel]
            lines.append(f"| {n:.0f} | {s} | " + " | ".join(cells) + " |")
    lines.append("")
    for n, where in ((n_now, "On this data"), (full_records, "On the full PTB-XL")):
        best = smallest(rows, n)
        lines.append(
            f"- {where}: "
            + (
                f"{best['rotations']} rotations × {best['seeds']} seed(s) = {best['pretraining_runs_per_arm']} "
                f"pretraining runs per arm and {best['test_records']:.0f} test records reach "
                f"{best['power']:.0%} (MDE {best['mde']:.4f})."
                if best
                else "no design in the table reaches 80 % power."
            )
        )
    lines.append("")
    return lines
