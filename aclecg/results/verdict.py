"""The claims under test, declared once, and the three-way verdict with the design's power.

The paper (Liu, Wu, Yuan, Sensors 2026) reports that ACL-ECG beats the best baseline on PTB-XL by +1.29 macro
AUROC points (+3.57 AUPRC points). A study of this project can end in exactly one of three ways:

* **better, shown** — the one-sided test of H0 ``diff <= 0`` rejects at ``alpha``;
* **the paper's effect ruled out** — the one-sided test of H0 ``diff >= paper_effect`` rejects at ``alpha``
  (the data contradict the claimed size; equivalence within ``±margin`` is the stronger form of this);
* **inconclusive at this size** — neither: the data can neither show an advantage nor rule out the paper's.

The equivalence margin is strictly smaller than the paper's effect, so "equivalent" can never coexist with
the claim it is meant to judge. Each verdict carries the difference, its interval, the p-values, and the
design's power at the paper's effect and its minimum detectable effect (80 % power), so a "no difference" is
never reported without saying how large a difference the study could have seen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from aclecg.errors import ConfigError
from aclecg.results.hypothesis import ClusterTest, min_detectable_effect, power_one_sided

__all__ = ["HYPOTHESES", "VERDICTS", "Hypotheses", "Verdict", "decide", "primary_sentence"]

#: The three possible answers, in the order they are checked.
VERDICTS = ("better, shown", "the paper's effect ruled out", "inconclusive at this size")


@dataclass(frozen=True)
class Hypotheses:
    """What the primary comparison tests, for one metric.

    ``paper_effect``: the paper's reported advantage over the best baseline on PTB-XL (the effect under test).
    ``margin``: the equivalence margin, strictly below ``paper_effect`` (else "equivalent" would not contradict
    the paper). ``alpha``: one-sided level of each test (TOST uses it on both sides). ``power``: the power at
    which the minimum detectable effect is quoted.
    """

    metric: str
    paper_effect: float
    margin: float
    alpha: float = 0.05
    power: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.margin < self.paper_effect:
            raise ConfigError(
                f"equivalence margin {self.margin:g} must be > 0 and strictly smaller than the paper's effect "
                f"{self.paper_effect:g} ({self.metric})"
            )
        if not (0 < self.alpha < 0.5 and 0.5 < self.power < 1):
            raise ConfigError("alpha must lie in (0, 0.5) and power in (0.5, 1)")


#: Declared before the runs. AUROC: +0.0129 is the paper's gain over its best baseline on PTB-XL (Table 2 of
#: Liu et al. 2026); a margin of 0.01 is the largest difference we would call negligible and stays below it.
#: AUPRC: +0.0357 reported; margin 0.025, likewise below it.
HYPOTHESES = {
    "auroc": Hypotheses("auroc", paper_effect=0.0129, margin=0.01),
    "auprc": Hypotheses("auprc", paper_effect=0.0357, margin=0.025),
}


@dataclass(frozen=True)
class Verdict:
    """One of :data:`VERDICTS`, with every number that backs it."""

    label: str
    metric: str
    diff: float
    ci_low: float
    ci_high: float
    se: float
    df: float
    n_units: int
    between_runs_estimated: bool
    p_superiority: float
    p_paper_effect: float
    tost_p: float
    equivalent: bool
    paper_effect: float
    margin: float
    alpha: float
    power_at_paper_effect: float
    min_detectable_effect: float
    power: float

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Verdict:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def sentence(self, a: str = "ACL-ECG", b: str = "the best baseline") -> str:
        """One line: the verdict, the difference and interval, the three p-values, power and MDE."""
        qual = ""
        if self.label == VERDICTS[0] and self.p_paper_effect < self.alpha:
            qual = f" (smaller than the paper's +{self.paper_effect:.4f}: that effect is ruled out too)"
        elif self.label == VERDICTS[1] and self.equivalent:
            qual = f" (equivalent within ±{self.margin:g})"
        return (
            f"**{self.label}**{qual}: {a} − {b} = {self.diff:+.4f} macro {self.metric.upper()}, 95 % CI "
            f"[{self.ci_low:+.4f}, {self.ci_high:+.4f}]; p(better) = {self.p_superiority:.3g}, "
            f"p(below the paper's +{self.paper_effect:.4f}) = {self.p_paper_effect:.3g}, TOST ±{self.margin:g} "
            f"p = {self.tost_p:.3g}. Power to detect +{self.paper_effect:.4f}: {self.power_at_paper_effect:.0%}; "
            f"minimum detectable effect at {self.power:.0%} power: {self.min_detectable_effect:.4f}."
        )


def decide(test: ClusterTest, h: Hypotheses, design_se: float | None = None) -> Verdict:
    """The verdict of ``test`` (a pooled difference ``a - b``) against the hypotheses ``h``.

    ``design_se``: the standard error of the design the power and the minimum detectable effect describe (the
    sample-size planner's present design, :func:`aclecg.results.power.present_design`, whose variance components
    include the measured variance between pretraining runs); default the test's own standard error. The p-values and
    the interval always come from the test."""
    power_se = test.se if design_se is None else float(design_se)
    p_sup = test.p_greater(0.0)
    p_paper = test.p_less(h.paper_effect)
    eq = test.tost(h.margin)
    if p_sup < h.alpha:
        label = VERDICTS[0]
    elif p_paper < h.alpha:
        label = VERDICTS[1]
    else:
        label = VERDICTS[2]
    lo, hi = test.interval(0.95)
    return Verdict(
        label=label,
        metric=h.metric,
        diff=test.diff,
        ci_low=lo,
        ci_high=hi,
        se=test.se,
        df=test.df,
        n_units=test.n_units,
        between_runs_estimated=test.between_runs_estimated,
        p_superiority=p_sup,
        p_paper_effect=p_paper,
        tost_p=eq.p_value,
        equivalent=eq.equivalent(h.alpha),
        paper_effect=h.paper_effect,
        margin=h.margin,
        alpha=h.alpha,
        power_at_paper_effect=power_one_sided(h.paper_effect, power_se, test.df, h.alpha),
        min_detectable_effect=min_detectable_effect(power_se, test.df, h.alpha, h.power),
        power=h.power,
    )


def primary_sentence(prim: dict) -> str:
    """The primary comparison's verdict in one line, as the README, docs/results.md, the model cards and the
    Sweeps page all print it (from :func:`aclecg.results.study.primary_comparison`'s record or its exported JSON)."""
    v = Verdict.from_dict(prim["verdict"])
    per_fold = prim.get("best_per_fold") or {}
    names = sorted(set(per_fold.values())) if per_fold else [prim["best_baseline"]]
    b = (
        names[0]
        if len(names) == 1
        else "the best baseline of each rotation ("
        + ", ".join(f"fold {k}: {n}" for k, n in sorted(per_fold.items(), key=lambda kv: int(kv[0])))
        + ")"
    )
    folds = ", ".join(map(str, prim["test_folds"]))
    return (
        f"{v.sentence('ACL-ECG', b)} Linear probe, {prim['fraction'] * 100:g} % of labels, {prim['protocol']}, "
        f"pooled over test folds {folds} ({prim['n_records']} test records), t test over the {v.n_units} "
        f"rotations ({v.df:g} degrees of freedom)."
    )
