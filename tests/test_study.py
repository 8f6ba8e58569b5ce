"""aclecg.study and aclecg.study_report on tiny real sweeps (two test-fold rotations, three 'methods')."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aclecg import study
from aclecg.errors import DataError
from aclecg.study_report import build_study_report


@pytest.fixture
def study_root(tiny_study):
    return tiny_study


def test_cells_and_best_baseline_use_validation_only(study_root):
    cells = study.load_cells(study_root)
    assert set(cells["test_fold"]) == {9, 10}
    assert set(cells["kind"]) == {"linear_probe", "random_init", "reference_cnn", "supervised"}
    probes = cells[
        (cells["kind"] == "linear_probe")
        & (cells["test_fold"] == 10)
        & np.isclose(cells["fraction"], 0.1)
        & (cells["name"] != "acl_ecg")
    ]
    expected = probes.groupby("name")["val"].mean().idxmax()
    assert study.best_baseline(cells) == expected
    # changing a test score does not change the choice; changing a validation score does
    cells2 = cells.copy()
    cells2.loc[cells2["name"] == expected, "auroc"] = 0.0
    assert study.best_baseline(cells2) == expected
    cells2.loc[cells2["name"] == expected, "val"] = -1.0
    assert study.best_baseline(cells2) != expected


def test_paper_table_pools_rotations(study_root):
    cells = study.load_cells(study_root)
    pooled = study.paper_table(cells, "multilabel")
    row = pooled[(pooled["arm"] == "acl_ecg:linear_probe") & np.isclose(pooled["fraction"], 1.0)].iloc[0]
    sel = cells[(cells["arm"] == "acl_ecg:linear_probe") & np.isclose(cells["fraction"], 1.0)]
    assert row["mean"] == pytest.approx(sel.groupby("test_fold")["auroc"].mean().mean())
    assert row["n_folds"] == 2
    trained = cells[cells["kind"].isin(("reference_cnn", "supervised"))]
    n_bad = int((trained["converged"] == False).sum())  # noqa: E712
    assert int(pooled["not_converged"].sum()) == n_bad
    text = study.format_table(pooled)
    assert "**acl_ecg**" in text and ("†" in text) == (n_bad > 0)


def test_primary_and_family(study_root):
    cells = study.load_cells(study_root)
    best = study.best_baseline(cells)
    prim = study.primary_comparison(cells, best, n_resamples=200)
    assert prim["test_folds"] == [9, 10] and prim["ci_low"] <= prim["diff"] <= prim["ci_high"]
    assert prim["n_records"] == int(
        cells[cells["test_fold"] == 9]["n_test"].iloc[0] + cells[cells["test_fold"] == 10]["n_test"].iloc[0]
    )
    tests = study.family_tests(cells)
    assert (tests["p_holm"] >= tests["p_value"] - 1e-15).all()
    assert set(tests["test_fold"]) == {9, 10}
    with pytest.raises(DataError, match="primary comparison"):
        study.primary_comparison(cells, "nope")


def test_report_and_export(study_root, tmp_path):
    out = build_study_report(
        study_root, tmp_path / "results.md", preamble="Preamble.", export=tmp_path / "export" / "sweeps"
    )
    text = out.read_text()
    for heading in (
        "## Verdict",
        "## Primary comparison",
        "### macro AUROC, multilabel",
        "## DeLong tests",
        "## Convergence of the trained arms",
        "Preamble.",
    ):
        assert heading in text
    exported = sorted(p.name for p in (tmp_path / "export" / "sweeps").iterdir())
    assert exported == sorted(p.parent.name for p in study_root.glob("*/sweep.json"))
    assert not list((tmp_path / "export").rglob("*.npz"))
    prim = json.loads((tmp_path / "export" / "primary.json").read_text())
    assert prim["best_baseline"] == study.best_baseline(study.load_cells(study_root))
    table = pd.read_csv(tmp_path / "export" / "paper_table.csv")
    assert {"arm", "fraction", "mean", "protocol", "metric"} <= set(table.columns)


def test_cli_best_baseline_report_and_errors(study_root, tmp_path, capsys):
    from aclecg.cli import main

    assert main(["study", "best-baseline", "--sweeps", str(study_root)]) == 0
    assert capsys.readouterr().out.strip() == study.best_baseline(study.load_cells(study_root))
    out = tmp_path / "r.md"
    assert main(["study", "report", "--sweeps", str(study_root), "--out", str(out), "--preamble", "missing.md"]) == 0
    assert out.is_file() and (tmp_path / "r" / "multilabel_auroc.png").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["study", "report", "--sweeps", str(empty), "--out", str(tmp_path / "x.md")]) != 0
    assert "no finished sweep cells" in capsys.readouterr().err


def test_damaged_cell_is_named(tiny_study, tmp_path):
    import shutil

    copy = tmp_path / "sweeps"
    shutil.copytree(tiny_study, copy)
    victim = sorted((copy / "multilabel-test9-probe" / "cells").glob("*.json"))[0]
    victim.write_text(victim.read_text()[:40])
    with pytest.raises(DataError, match=f"{victim.name} is unreadable.*run its sweep again"):
        study.load_cells(copy)


def test_readme_block_is_filled_from_the_cells(study_root, tmp_path):
    from aclecg.study_report import README_END, README_START, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"# X\n\nbefore\n{README_START}\nold numbers\n{README_END}\nafter\n")
    update_readme(study_root, readme)
    text = readme.read_text()
    assert "old numbers" not in text and text.startswith("# X\n\nbefore\n") and text.endswith("after\n")
    prim = study.primary_comparison(study.load_cells(study_root), study.best_baseline(study.load_cells(study_root)))
    assert f"**{prim['diff']:+.3f}**" in text
    bare = tmp_path / "bare.md"
    bare.write_text("no block")
    with pytest.raises(DataError, match="no <!-- study:start -->"):
        update_readme(study_root, bare)
