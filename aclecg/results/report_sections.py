"""Report sections of the analysis results (similar-ECG search, region attribution) that docs/results.md and the
``neighbours`` / ``attribute`` commands render from their CSV files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aclecg.errors import DataError

__all__ = ["ATTRIBUTION_TITLE", "NEIGHBOURS_TITLE", "attribution_section", "neighbours_section"]


NEIGHBOURS_TITLE = "## Similar-ECG search: label agreement of nearest neighbours"


def neighbours_section(csv_path: str | Path) -> list[str]:
    """Markdown lines of the similar-ECG search section from ``aclecg neighbours --evaluate``'s CSV."""
    table = pd.read_csv(csv_path)
    need = {"name", "k", "precision", "ci_low", "ci_high", "n_queries", "n_index"}
    if not need <= set(table.columns):
        raise DataError(f"{csv_path}: neighbours table lacks columns {', '.join(sorted(need - set(table.columns)))}")
    ks = sorted(int(k) for k in table["k"].unique())
    label_set = str(table["label_set"].iloc[0]) if "label_set" in table.columns and len(table) else "superdiagnostic"
    n_q, n_i = int(table["n_queries"].max()), int(table["n_index"].max())
    lines = [
        NEIGHBOURS_TITLE,
        "",
        f"Precision@k of exact cosine nearest-neighbour search (features standardised over the index): each of "
        f"the {n_q} labelled test records (fold 10) queries the {n_i} labelled training records (folds 1-8; the "
        f"validation fold is not used), and a neighbour counts as right when it shares at least one "
        f"{label_set} label with the query, so the table measures how often the records an encoder calls "
        f"similar are clinically alike. Brackets: bootstrap 95 % CI over queries. `random_init` is an "
        f"untrained encoder of the same architecture, `raw signal` the flattened preprocessed window, and "
        f"`chance` the expected precision of neighbours drawn at random from the index.",
        "",
        "| method | " + " | ".join(f"precision@{k}" for k in ks) + " |",
        "|---|" + "---|" * len(ks),
    ]
    for name, rows in table.groupby("name", sort=False):
        by_k = {int(r.k): r for r in rows.itertuples()}
        cells = [
            f"{by_k[k].precision:.3f} [{by_k[k].ci_low:.3f}, {by_k[k].ci_high:.3f}]" if k in by_k else "–" for k in ks
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + ["", "All rows: `docs/results/neighbours.csv` (`python -m aclecg neighbours --evaluate`).", ""]


ATTRIBUTION_TITLE = "## Region attribution against the infarct territory"


def attribution_section(csv_path: str | Path) -> list[str]:
    """Markdown lines of the territory check from ``aclecg attribute --territory``'s CSV."""
    table = pd.read_csv(csv_path)
    need = {"name", "fill", "match", "ci_low", "ci_high", "chance_uniform", "chance_permuted", "p_permutation"}
    if not need <= set(table.columns) or table.empty:
        raise DataError(
            f"{csv_path}: attribution table is empty or lacks {', '.join(sorted(need - set(table.columns)))}"
        )
    first = table.iloc[0]
    lines = [
        ATTRIBUTION_TITLE,
        "",
        f"For the {int(first.n_records)} PTB-XL myocardial-infarction records of the bundled data whose statements "
        f"give one territory ({int(first.n_inferior)} inferior: IMI, ILMI, IPMI, IPLMI; {int(first.n_anterior)} "
        "anterior/septal: AMI, ASMI, ALMI), each of the four lead regions is occluded in turn and the region whose "
        "occlusion lowers the probe's MI score most is taken as the model's answer; it matches when it lies in the "
        "territory (inferior; septal or anterior). Each record is explained by an out-of-fold linear probe (fold "
        "pairs 1-2, ..., 9-10: a pair is explained by a probe fitted on three other pairs, validated on the fifth). "
        "Brackets: bootstrap 95 % CI over records. `uniform` is the match rate of a region drawn at random; "
        "`permuted` keeps the model's own region choices and shuffles the territories across records (its "
        "one-sided p in the last column), so a model that always names one region scores no better than chance. "
        "See `docs/evaluation.md` for what occlusion can and cannot show.",
        "",
        "| method | fill | territory match | chance (uniform) | chance (permuted) | p (permutation) "
        "| top region counts |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        counts = str(getattr(r, "top_regions", "") or "").replace(";", ", ")
        lines.append(
            f"| {r.name} | {r.fill} | {r.match:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] | {r.chance_uniform:.3f} | "
            f"{r.chance_permuted:.3f} | {r.p_permutation:.4f} | {counts} |"
        )
    return lines + ["", "All rows: `docs/results/attribution.csv` (`python -m aclecg attribute --territory`).", ""]
