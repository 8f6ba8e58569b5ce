"""``docs/results.md`` from a study folder (see :mod:`aclecg.results.study`): every figure is computed from the cells.

The report also exports what the app's Label-fraction sweeps page shows out of the box: each sweep's
``summary.csv``, ``results.csv``, ``comparisons.csv`` and ``sweep.json`` (its manifest), plus the study's
``paper_table.csv``, ``family_tests.csv`` and ``primary.json``. Per-cell prediction arrays are not exported.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from aclecg import paths
from aclecg.errors import DataError
from aclecg.evaluation import count_not_converged
from aclecg.evaluation.arms import is_reference, trained_arms
from aclecg.evaluation.outputs import count_first_look, count_searches
from aclecg.metrics import titles
from aclecg.results import study
from aclecg.results.power import power_section
from aclecg.results.report_sections import attribution_section, neighbours_section
from aclecg.results.verdict import Verdict, primary_sentence

__all__ = [
    "attribution_section",
    "build_study_report",
    "export_sweeps",
    "neighbours_section",
    "published_study",
    "published_sweeps",
    "update_readme",
]

README_START, README_END = "<!-- study:start -->", "<!-- study:end -->"


def _published(root: str | Path | None) -> Path:
    """``root``, else where ``make results`` exports the study (:func:`aclecg.paths.published_root`)."""
    return Path(root) if root is not None else paths.published_root()


#: The paper's own figures (Liu, Wu, Yuan, Sensors 2026, Tables 2-3), for orientation only.
PAPER = (
    "The paper reports, on the full PTB-XL with its own protocol, **91.45 % AUROC / 71.22 % AUPRC** for "
    "ACL-ECG, **+1.29 / +3.57 points** over its best baseline, and on CPSC2018 **93.94 %** AUROC against "
    "LCD's **92.99 %**. Those numbers are not comparable with the ones here: the paper pretrains on ~35 k "
    "Ningbo records for 100+ epochs on GPUs and fine-tunes on all 21,799 PTB-XL records, while this study "
    "pretrains on ~1,000 records on 2 CPU cores (the recipe above) and scores a few hundred test records."
)


def export_sweeps(root: str | Path, dest: str | Path) -> list[Path]:
    """Copy each sweep's tables and manifest (not its cells) to ``dest/<sweep>/``."""
    out = []
    current = {meta.parent.name for meta in Path(root).glob("*/sweep.json")}
    for old in sorted(Path(dest).glob("*/sweep.json")) if Path(dest).is_dir() else []:
        if old.parent.name not in current:  # a sweep the study no longer has (e.g. an old protocol's rotation)
            shutil.rmtree(old.parent)
    for meta in sorted(Path(root).glob("*/sweep.json")):
        target = Path(dest) / meta.parent.name
        target.mkdir(parents=True, exist_ok=True)
        for name in ("sweep.json", "summary.csv", "results.csv", "comparisons.csv"):
            if (meta.parent / name).is_file():
                shutil.copyfile(meta.parent / name, target / name)
        out.append(target)
    return out


def plot_pooled(pooled: pd.DataFrame, title: str, path: Path, named: Mapping[str, str] | None = None) -> Path:
    """PNG of the pooled table against label fraction (log axis), ± one s.d. over test folds as a band;
    ``named``: ``{baseline: note}`` for the baselines the rotations chose (:func:`baseline_notes`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    # tab20 is a ListedColormap (a tuple of RGB colours), which matplotlib's stubs type as a plain Colormap
    ax.set_prop_cycle(color=plt.cm.tab20.colors)  # type: ignore[attr-defined]
    named = named or {}
    for row in study._order(pooled["row"]):
        part = pooled[pooled["row"] == row].sort_values("fraction")
        ref = is_reference(row) or row.endswith("(fine-tuned)")
        width = 2.8 if row == study.FOCUS else (2.0 if row in named else 1.2)
        (line,) = ax.plot(
            part["fraction"],
            part["mean"],
            "--" if ref else "-",
            marker="o",
            lw=width,
            label=row + (f" ({named[row]})" if row in named else ""),
        )
        sd = part["sd"].fillna(0.0)
        ax.fill_between(part["fraction"], part["mean"] - sd, part["mean"] + sd, color=line.get_color(), alpha=0.08)
    fracs = sorted(pooled["fraction"].unique())
    ax.set_xscale("log")
    ax.set_xticks(fracs, [_pct(f) for f in fracs])
    ax.set_xlabel("fraction of training labels")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _pct(f: float) -> str:
    return f"{f * 100:g} %"


def _verdict(prim: dict, cells: pd.DataFrame, tests: pd.DataFrame) -> list[str]:
    best = prim["best_baseline"]
    lines = [f"- *Does ACL-ECG beat the best baseline?* {primary_sentence(prim)}"]
    if not tests.empty:
        probe = tests[
            (tests["arm"] == f"{study.FOCUS}:linear_probe")
            & tests["versus"].str.endswith(":linear_probe")
            & ~tests["versus"].str.startswith(study.ABLATIONS)
        ]
        better = int(((probe["p_holm"] < 0.05) & (probe["diff"] > 0)).sum())
        worse = int(((probe["p_holm"] < 0.05) & (probe["diff"] < 0)).sum())
        lines.append(
            f"- Across the whole family ({len(tests)} DeLong tests, Holm-corrected), ACL-ECG's probe is "
            f"significantly better than a baseline's probe in {better} and worse in {worse} of "
            f"{len(probe)} probe-vs-baseline tests."
        )
    for ref in ("supervised", "reference_cnn"):
        # on the test folds where the reference arm was trained, so both sides see the same test records
        ref_folds = sorted(cells[(cells["arm"] == ref) & np.isclose(cells["fraction"], 1.0)]["test_fold"].unique())
        if not ref_folds:
            continue
        ml = study.paper_table(cells[cells["test_fold"].isin(ref_folds)], "multilabel")
        target = float(ml[(ml["arm"] == ref) & np.isclose(ml["fraction"], 1.0)]["mean"].iloc[0])

        def reach(arm: str) -> str:
            f = study.label_efficiency(ml, arm, target)
            return f"reaches it with {_pct(f)}" if f is not None else "does not reach it at any fraction"

        folds_txt = f"test fold{'s' if len(ref_folds) > 1 else ''} {', '.join(map(str, ref_folds))}"
        tuned = f"{study.FOCUS}:fine_tune"
        tuned_txt = (
            f"; fine-tuned (the paper's claim), ACL-ECG {reach(tuned)}"
            if (ml["arm"] == tuned).any()
            else "; fine-tuned (the paper's claim): no fine-tuned cells on these folds yet"
        )
        lines.append(
            f"- *Does it need fewer labels?* Against `{ref}` trained on 100 % of labels ({target:.3f}, "
            f"{folds_txt}): ACL-ECG's probe {reach(f'{study.FOCUS}:linear_probe')}, {best}'s "
            f"{reach(f'{best}:linear_probe')}{tuned_txt}."
        )
    return lines


def _convergence(cells: pd.DataFrame) -> str:
    trained = cells[cells["kind"].isin([a.name for a in trained_arms()])]
    if trained.empty:
        return "No trained arm has finished yet."
    g = (
        trained.groupby(["protocol", "arm", "fraction"])
        .agg(
            folds=("test_fold", "nunique"),
            cells=("seed", "size"),
            best_step=("best_step", "median"),
            steps_run=("steps_run", "median"),
            lr=("lr", lambda v: ", ".join(f"{x:g}" for x in sorted(set(v)))),
            edge=("lr_edge", count_searches),
            not_converged=("converged", count_not_converged),
            first_look=("first_look", count_first_look),
        )
        .reset_index()
    )
    lines = [
        "| protocol | arm | fraction | test folds | cells | median best step | median steps run | lr chosen | "
        "searches ending at a grid edge | not converged | best at first validation |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in g.itertuples():
        lines.append(
            f"| {r.protocol} | {r.arm} | {_pct(r.fraction)} | {r.folds} | {r.cells} | {r.best_step:.0f} | "
            f"{r.steps_run:.0f} | {r.lr} | {r.edge} | {r.not_converged} | {r.first_look} |"
        )
    return "\n".join(lines)


def _cost(cells: pd.DataFrame) -> str:
    g = (
        cells.groupby("sweep")
        .agg(cells=("seed", "size"), seconds=("seconds", "sum"), median=("seconds", "median"))
        .reset_index()
    )
    lines = ["| sweep | cells | fit time, all cells | median per cell |", "|---|---|---|---|"]
    for r in g.itertuples():
        lines.append(f"| {r.sweep} | {r.cells} | {r.seconds / 60:.1f} min | {r.median:.1f} s |")
    return "\n".join(lines)


def _tests_table(tests: pd.DataFrame, fraction: float) -> str:
    sel = tests[np.isclose(tests["fraction"], fraction)]
    sel = sel.sort_values(["protocol", "arm", "versus", "test_fold"])
    lines = [
        "| protocol | arm | versus | test fold | AUROC of arm (seed ensemble) | AUROC of versus (seed ensemble) "
        "| diff | p | p (Holm) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sel.itertuples():
        lines.append(
            f"| {r.protocol} | {r.arm} | {r.versus} | {r.test_fold} | {r.auc_a:.3f} | {r.auc_b:.3f} | "
            f"{r.diff:+.3f} | {r.p_value:.3g} | {r.p_holm:.3g} |"
        )
    return "\n".join(lines)


def _primary_section(prim: dict) -> list[str]:
    v = Verdict.from_dict(prim["verdict"])
    per = prim["per_fold"]
    best = prim.get("best_per_fold") or {k: prim["best_baseline"] for k in per}
    return [
        "## Primary comparison (declared before the runs)",
        "",
        "ACL-ECG against the baseline that validates best at "
        f"{_pct(prim['fraction'])} of labels *in each rotation* (on that rotation's validation fold, never a "
        f"test fold of the study), linear probe, {prim['protocol']}, macro AUROC, pooled over test folds "
        f"{', '.join(map(str, prim['test_folds']))} ({prim['n_records']} test records). Each rotation's "
        "difference is the mean over label seeds; the rotations are the independent units of a t test whose unit "
        "variance is never taken below the record noise (`aclecg.results.hypothesis.cluster_test`). The hypotheses are "
        "declared in `aclecg/results/verdict.py`: better (difference > 0), the paper's effect (difference ≥ "
        f"+{v.paper_effect:.4f}) and equivalence within ±{v.margin:g}, a margin smaller than the paper's effect.",
        "",
        "| | value |",
        "|---|---|",
        f"| verdict | **{v.label}** |",
        f"| difference (ACL-ECG − best baseline) | {v.diff:+.4f} |",
        f"| 95 % CI, t on {v.df:g} df | [{v.ci_low:+.4f}, {v.ci_high:+.4f}] |",
        f"| 95 % hierarchical bootstrap CI (record noise drawn once) | [{prim['boot_ci_low']:+.4f}, "
        f"{prim['boot_ci_high']:+.4f}] |",
        "| per test fold (its best baseline) | "
        + ", ".join(f"{k}: {float(d):+.4f} ({best.get(k, best.get(str(k), '?'))})" for k, d in per.items())
        + " |",
        f"| p, better (H0: difference ≤ 0) | {v.p_superiority:.3g} |",
        f"| p, below the paper's effect (H0: difference ≥ +{v.paper_effect:.4f}) | {v.p_paper_effect:.3g} |",
        f"| TOST, margin ±{v.margin:g} | p = {v.tost_p:.3g} ({'equivalent' if v.equivalent else 'not shown'}) |",
        f"| power to detect +{v.paper_effect:.4f} | {v.power_at_paper_effect:.0%} |",
        f"| minimum detectable effect, {v.power:.0%} power | {v.min_detectable_effect:.4f} |",
        "",
    ]


def build_study_report(root: str | Path, out: str | Path, preamble: str = "", export: str | Path | None = None) -> Path:
    """Write the report; with ``export``, also the tables the app lists (see :func:`export_sweeps`)."""
    cells = study.load_cells(root)
    prim = study.primary_comparison(cells)
    tests = study.family_tests(cells)
    out = Path(out)
    parts = [
        "# Results",
        "",
        f"_Generated by `python -m aclecg study report` from the sweep cells under `{root}` "
        "(rebuild everything with `make results`). Do not edit by hand._",
        "",
    ]
    if preamble:
        parts += [preamble.strip(), ""]
    parts += ["## Verdict", ""] + _verdict(prim, cells, tests) + [""]
    parts += [*_primary_section(prim), *power_section(prim)]
    table_parts, tables = _paper_tables(cells, baseline_notes(prim), out)
    parts += table_parts
    parts += ["## What the paper reports", "", PAPER, ""]
    parts += _tests_section(tests) + _convergence_and_cost(cells)
    if export is not None and (Path(export).parent / "neighbours.csv").is_file():
        parts += neighbours_section(Path(export).parent / "neighbours.csv")
    if export is not None and (Path(export).parent / "attribution.csv").is_file():
        parts += attribution_section(Path(export).parent / "attribution.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts) + "\n")
    if export is not None:
        dest = Path(export)
        export_sweeps(root, dest)
        pd.concat([t.assign(protocol=p, metric=m) for (p, m), t in tables.items()]).to_csv(
            dest.parent / "paper_table.csv", index=False
        )
        tests.to_csv(dest.parent / "family_tests.csv", index=False)
        (dest.parent / "primary.json").write_text(json.dumps(prim, indent=1, default=float) + "\n")
    return out


def _paper_tables(
    cells: pd.DataFrame, best: dict[str, str], out: Path
) -> tuple[list[str], dict[tuple[str, str], pd.DataFrame]]:
    """The section of the paper's table per protocol and metric (figures written beside ``out``), and the tables."""
    folds = sorted(cells["test_fold"].unique())
    parts = [
        "## The paper's table, on this data",
        "",
        f"Mean over test folds ({', '.join(map(str, folds))}) of the mean over 3 label seeds; ± is the standard "
        "deviation over test folds, i.e. over pretraining runs, where more than one has finished. Rows "
        "without ± have one test fold; [n/N] marks an entry with n of the N test folds so far. † marks an entry "
        "with a trained cell that did not converge "
        "(best step within the patience of the step budget); ‡ an entry with a trained cell whose best step was "
        "its first validation (training never improved on it, or validation came too late to see it). Probes "
        "are linear on frozen encoders.",
        "",
    ]
    tables = {}
    for protocol in ("multilabel", "singlelabel"):
        if not (cells["protocol"] == protocol).any():
            continue
        for metric, title in titles().items():
            pooled = study.paper_table(cells, protocol, metric)
            tables[(protocol, metric)] = pooled
            png = plot_pooled(
                pooled,
                f"{title}, {protocol}, pooled over test folds",
                out.parent / out.stem / f"{protocol}_{metric}.png",
                best,
            )
            parts += [
                f"### {title}, {protocol}",
                "",
                study.format_table(pooled, best, len(folds)),
                "",
                f"![{title}, {protocol}]({png.relative_to(out.parent).as_posix()})",
                "",
            ]
    return parts, tables


def _tests_section(tests: pd.DataFrame) -> list[str]:
    if tests.empty:
        return []
    return [
        "## DeLong tests with Holm correction",
        "",
        f"{len(tests)} paired DeLong tests of macro AUROC (ACL-ECG's probe against every other arm, and "
        "its fine-tuned encoder against the other trained arms), one per protocol, label fraction and "
        "test fold, on the label-seed ensemble (mean predicted probability over the 3 seeds, so "
        "identical models are never counted as separate tests). Holm's correction runs over all of "
        f"them. The {_pct(study.PRIMARY['fraction'])} rows:",
        "",
        _tests_table(tests, study.PRIMARY["fraction"]),
        "",
        "All rows: `docs/results/family_tests.csv`.",
        "",
    ]


def _schedules(cells: pd.DataFrame) -> list[str]:
    """One line per validation schedule among the trained cells, with how many cells used it."""
    if "schedule" not in cells:
        return ["- not recorded"]
    counts = cells["schedule"].replace("", np.nan).dropna().value_counts()
    return [f"- {text} ({n} cell{'s' * (n != 1)})" for text, n in counts.items()] or ["- no trained cell yet"]


def _convergence_and_cost(cells: pd.DataFrame) -> list[str]:
    return [
        "## Convergence of the trained arms",
        "",
        "Budgets count optimiser steps (at most 2000 per learning rate, patience 200 steps). The learning rate "
        "is chosen on validation (first seed; the other seeds reuse it). How the cells validated and searched, "
        "from each cell's key:",
        "",
        *_schedules(cells),
        "",
        _convergence(cells),
        "",
        "## Cost",
        "",
        "Wall time of each cell's fit (`seconds` in its cell file; probes exclude the one-off "
        "embedding pass). Measured on the 2 cores that ran them, mostly beside other jobs of the study "
        "(pretraining runs, other cells), so an idle machine is faster.",
        "",
        _cost(cells),
        "",
    ]


def published_sweeps(root: str | Path | None = None) -> dict[str, Path]:
    """``{name: folder}`` of the exported sweeps (each holds summary.csv, results.csv and its manifest)."""
    base = _published(root) / "sweeps"
    return {p.parent.name: p.parent for p in sorted(base.glob("*/summary.csv"))} if base.is_dir() else {}


def study_verdict_line(prim: dict) -> str:
    """The exported primary comparison's verdict line (what the README and docs/results.md print), or a note
    when the exported file predates the three-way verdict."""
    if "verdict" not in prim:
        return "this export predates the three-way verdict: rebuild it with `make results`."
    return primary_sentence(prim)


def chosen_baselines(prim: dict) -> list[str]:
    """Every baseline some rotation chose on its validation fold (the overall one first), for a chart's rows.

    >>> chosen_baselines({"best_baseline": "dlc", "best_per_fold": {"6": "barlow", "8": "dlc"}})
    ['dlc', 'barlow']
    """
    names = [prim.get("best_baseline"), *(prim.get("best_per_fold") or {}).values()]
    return [str(n) for n in dict.fromkeys(names) if n]


def baseline_notes(prim: dict) -> dict[str, str]:
    """``{baseline: "best baseline, test folds 8, 10"}`` for every baseline some rotation chose on validation.

    >>> baseline_notes({"best_baseline": "dlc", "best_per_fold": {"10": "dlc", "6": "barlow", "8": "dlc"}})
    {'dlc': 'best baseline, test folds 8, 10', 'barlow': 'best baseline, test fold 6'}
    """
    per = {int(k): v for k, v in (prim.get("best_per_fold") or {}).items()}
    out = {}
    for name in chosen_baselines(prim):
        folds = sorted(k for k, v in per.items() if v == name)
        out[name] = f"best baseline, test fold{'s' * (len(folds) > 1)} {', '.join(map(str, folds))}".rstrip()
    return out


def published_study(root: str | Path | None = None) -> tuple[pd.DataFrame, dict] | None:
    """The exported paper table and primary comparison, or None when ``make results`` has not exported them."""
    table, primary = _published(root) / "paper_table.csv", _published(root) / "primary.json"
    if not (table.is_file() and primary.is_file()):
        return None
    return pd.read_csv(table), json.loads(primary.read_text())


def readme_summary(root: str | Path) -> str:
    """The README's results paragraph: the verdict and a compact table, every number computed from the cells."""
    cells = study.load_cells(root)
    prim = study.primary_comparison(cells)
    pooled = study.paper_table(cells, "multilabel")
    folds = sorted(cells["test_fold"].unique())
    fracs = [f for f in (0.01, 0.1, 1.0) if np.isclose(pooled["fraction"], f).any()]
    notes = baseline_notes(prim)  # every baseline some rotation chose, the overall one first
    rows = [f"{study.FOCUS}:linear_probe", *(f"{b}:linear_probe" for b in notes)]
    rows += ["reference_cnn", "supervised", "random_init"]
    lines = [
        f"Generated by `python -m aclecg study report` from the cells behind `docs/results.md` (test folds "
        f"{', '.join(map(str, folds))}). Macro AUROC, multilabel, mean over test folds of the mean over 3 label "
        "seeds; in brackets, the number of test folds an entry has so far. An entry with fewer folds is not "
        "directly comparable with a pooled one (the folds differ in difficulty); docs/results.md compares "
        "arms fold by fold.",
        "",
        "| arm | " + " | ".join(_pct(f) for f in fracs) + " |",
        "|---" * (len(fracs) + 1) + "|",
    ]
    for arm in rows:
        vals = []
        for f in fracs:
            hit = pooled[(pooled["arm"] == arm) & np.isclose(pooled["fraction"], f)]
            vals.append("–" if hit.empty else f"{hit['mean'].iloc[0]:.3f} [{int(hit['n_folds'].iloc[0])}]")
        name = arm.replace(":linear_probe", " (linear probe)")
        base = arm.split(":")[0]
        name += f" — {notes[base]}, chosen on validation" if base in notes else ""
        lines.append(f"| {name} | " + " | ".join(vals) + " |")
    lines += [
        "",
        f"Primary comparison (declared before the runs): {primary_sentence(prim)} "
        "Every method, both protocols, the Holm-corrected tests and the sample size that would decide the "
        "question: [docs/results.md](docs/results.md).",
    ]
    return "\n".join(lines)


CARD_START, CARD_END = "<!-- verdict:start -->", "<!-- verdict:end -->"


def update_cards(prim: dict, checkpoints: str | Path = "checkpoints") -> list[Path]:
    """Write the study's verdict line into every model card (``checkpoints/*/README.md``), between verdict markers
    (replaced on later calls; inserted before "Reproduce from scratch" the first time)."""
    block = (
        f"{CARD_START}\n## The study's verdict (`docs/results.md`)\n\n{primary_sentence(prim)}\n{CARD_END}\n"
        if "verdict" in prim
        else ""
    )
    out = []
    for card in sorted(Path(checkpoints).glob("*/README.md")):
        text = card.read_text()
        if CARD_START in text and CARD_END in text:
            head, rest = text.split(CARD_START, 1)
            text = head + block + "\n" + rest.split(CARD_END, 1)[1].lstrip("\n")  # the blank line of an insert
        elif block:
            anchor = "Reproduce from scratch"
            text = text.replace(anchor, block + "\n" + anchor, 1) if anchor in text else text + "\n" + block
        card.write_text(text)
        out.append(card)
    return out


def update_readme(root: str | Path, readme: str | Path) -> Path:
    """Replace the text between the README's study markers with :func:`readme_summary`."""
    path = Path(readme)
    text = path.read_text()
    if README_START not in text or README_END not in text:
        raise DataError(f"{path} has no {README_START} … {README_END} block to fill")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    path.write_text(f"{head}{README_START}\n{readme_summary(root)}\n{README_END}{tail}")
    return path
