"""aclecg.results.study and aclecg.results.study_report on tiny real sweeps (two test-fold rotations, three
'methods')."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from aclecg.errors import DataError
from aclecg.results import study
from aclecg.results.study_report import build_study_report
from aclecg.results.verdict import VERDICTS


@pytest.fixture
def study_root(tiny_study):
    return tiny_study


def test_cells_and_best_baseline_use_validation_only(study_root):
    cells = study.load_cells(study_root)
    assert set(cells["test_fold"]) == {8, 10}
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
    prim = study.primary_comparison(cells, n_resamples=200)
    assert prim["test_folds"] == [8, 10] and prim["ci_low"] <= prim["diff"] <= prim["ci_high"]
    # each rotation's baseline is the one that validates best in that rotation
    assert prim["best_per_fold"] == {f: study.best_baseline(cells, test_fold=f) for f in (8, 10)}
    assert prim["verdict"]["label"] in VERDICTS
    assert prim["n_records"] == int(
        cells[cells["test_fold"] == 8]["n_test"].iloc[0] + cells[cells["test_fold"] == 10]["n_test"].iloc[0]
    )
    tests = study.family_tests(cells)
    assert (tests["p_holm"] >= tests["p_value"] - 1e-15).all()
    assert set(tests["test_fold"]) == {8, 10}
    with pytest.raises(DataError, match="primary comparison"):
        study.primary_comparison(cells, "nope")


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
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
    assert prim["best_baseline"] == study.primary_comparison(study.load_cells(study_root))["best_baseline"]
    assert "## How large a study would decide it" in text and f"**{prim['verdict']['label']}**" in text
    assert malformed_tables(text) == []
    table = pd.read_csv(tmp_path / "export" / "paper_table.csv")
    assert {"arm", "fraction", "mean", "protocol", "metric"} <= set(table.columns)


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
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
    victim = sorted((copy / "multilabel-test8-probe" / "cells").glob("*.json"))[0]
    victim.write_text(victim.read_text()[:40])
    with pytest.raises(DataError, match=f"{victim.name} is unreadable.*run its sweep again"):
        study.load_cells(copy)


def test_readme_block_is_filled_from_the_cells(study_root, tmp_path):
    from aclecg.results.study_report import README_END, README_START, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"# X\n\nbefore\n{README_START}\nold numbers\n{README_END}\nafter\n")
    update_readme(study_root, readme)
    text = readme.read_text()
    assert "old numbers" not in text and text.startswith("# X\n\nbefore\n") and text.endswith("after\n")
    prim = study.primary_comparison(study.load_cells(study_root))
    assert f"{prim['diff']:+.4f}" in text and prim["verdict"]["label"] in text
    bare = tmp_path / "bare.md"
    bare.write_text("no block")
    with pytest.raises(DataError, match="no <!-- study:start -->"):
        update_readme(study_root, bare)


def test_the_readme_table_names_every_baseline_a_rotation_chose(study_root, monkeypatch):
    """With rotations choosing different baselines, each has its row, labelled with the folds that chose it (the
    table once named one of two tied baselines "the baseline most rotations chose")."""
    from aclecg.results import study_report

    real = study.primary_comparison
    chosen = {}

    def split_choice(cells):
        prim = real(cells)
        probes = cells[cells["kind"] == "linear_probe"]["name"]
        other = sorted(set(probes) - {study.FOCUS, prim["best_baseline"], *study.ABLATIONS})[0]
        first, *rest = sorted(prim["best_per_fold"])
        prim["best_per_fold"] = {first: other, **{k: prim["best_baseline"] for k in rest}}
        chosen.update(prim["best_per_fold"])
        return prim

    monkeypatch.setattr(study, "primary_comparison", split_choice)
    text = study_report.readme_summary(study_root)
    assert "most rotations" not in text
    for name in set(chosen.values()):
        folds = sorted(k for k, v in chosen.items() if v == name)
        label = f"| {name} (linear probe) — best baseline, test fold"
        line = next(line for line in text.splitlines() if line.startswith(label))
        assert line.split(" | ")[0].endswith(f" {', '.join(map(str, folds))}, chosen on validation")


def test_the_paper_table_labels_each_baseline_with_the_folds_that_chose_it(study_root):
    pooled = study.paper_table(study.load_cells(study_root), "multilabel")
    notes = {"simclr": "best baseline, test fold 8", "lcd": "best baseline, test folds 7, 10"}
    text = study.format_table(pooled, notes)
    assert "| simclr (best baseline, test fold 8) |" in text and "| lcd (best baseline, test folds 7, 10) |" in text
    assert "(best baseline)" not in text and "| lcd (best baseline) |" in study.format_table(pooled, "lcd")


def _copy(tiny_study, tmp_path):
    import shutil

    copy = tmp_path / "sweeps"
    shutil.copytree(tiny_study, copy)
    return copy


def _edit_meta(folder, **changes):
    path = folder / "sweep.json"
    meta = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    path.write_text(json.dumps(meta))


def test_no_choice_reads_a_fold_the_study_scores(tiny_study, tmp_path):
    copy = _copy(tiny_study, tmp_path)
    cells = study.load_cells(copy)
    study.check_choices(cells)  # the fixture validates every rotation on fold 9, which none tests on
    assert {tuple(v) for v in cells["choice_folds"]} == {(9,)}
    # a rotation that validated on a fold another rotation scores: the study refuses it
    _edit_meta(copy / "multilabel-test10-probe", val_folds=[8])
    with pytest.raises(DataError, match=r"multilabel-test10-probe chose on fold\(s\) 8"):
        study.primary_comparison(study.load_cells(copy))
    # sweeps written before validation folds were recorded: the old rule is assumed (the fold before the test
    # fold: 9 for 10 and 7 for 8, neither of them scored here)
    copy2 = _copy(tiny_study, tmp_path / "b")
    _edit_meta(copy2 / "multilabel-test10-probe", val_folds=None)
    _edit_meta(copy2 / "multilabel-test8-probe", val_folds=None)  # old rule: validated on fold 7, allowed
    study.check_choices(study.load_cells(copy2))
    # learning rates borrowed from a sweep that chose them on a scored fold are refused too
    copy3 = _copy(tiny_study, tmp_path / "c")
    _edit_meta(copy3 / "multilabel-test8-reference", lr_from={"sweep": "x", "val_folds": [10]})
    cells3 = study.load_cells(copy3)
    study.check_choices(cells3)  # nothing borrowed yet: only cells that used a borrowed rate read that fold
    ref = next((copy3 / "multilabel-test8-reference" / "cells").glob("supervised*.json"))
    rec = json.loads(ref.read_text())
    rec["key"]["settings"]["lr_chosen_in"] = "another sweep's validation"
    ref.write_text(json.dumps(rec))
    with pytest.raises(DataError, match="multilabel-test8-reference chose on fold"):
        study.check_choices(study.load_cells(copy3))


def test_cells_of_different_data_are_never_pooled(tiny_study, tmp_path):
    copy = _copy(tiny_study, tmp_path)
    _edit_meta(copy / "multilabel-test8-probe", data_fingerprint="f" * 64)
    with pytest.raises(DataError, match="different data cannot be pooled.*multilabel-test8-probe"):
        study.load_cells(copy)


def test_family_tests_use_the_tables_estimand(study_root):
    """The DeLong family tests the seed-mean AUROC that the tables and the primary comparison report."""
    cells = study.load_cells(study_root)
    tests = study.family_tests(cells)
    row = tests[(tests["arm"] == "acl_ecg:linear_probe") & (tests["versus"] == "simclr:linear_probe")].iloc[0]
    mine = cells[
        (cells["arm"] == "acl_ecg:linear_probe")
        & (cells["test_fold"] == row["test_fold"])
        & np.isclose(cells["fraction"], row["fraction"])
    ]
    from aclecg import stats

    scores = [np.load(path)["y_score"] for path in mine.sort_values("seed")["npz"]]
    y = np.load(mine["npz"].iloc[0])["y_true"]
    per_seed = [stats.delong_macro(y, s, s).auc_a for s in scores]
    assert row["auc_a"] == pytest.approx(np.mean(per_seed), abs=1e-12)  # the mean of the seeds' AUROCs
    ensemble = stats.delong_macro(y, np.mean(scores, axis=0), np.mean(scores, axis=0)).auc_a
    if not np.isclose(ensemble, np.mean(per_seed)):  # ... not the AUROC of the seeds' mean prediction
        assert row["auc_a"] != pytest.approx(ensemble, abs=1e-12)


def test_model_cards_carry_the_reports_verdict(study_root, tmp_path):
    from aclecg.results.study_report import CARD_END, CARD_START, update_cards
    from aclecg.results.verdict import primary_sentence

    card = tmp_path / "ckpts" / "acl_ecg" / "README.md"
    card.parent.mkdir(parents=True)
    card.write_text("# card\n\n| a | b |\n\nReproduce from scratch:\n\n```\nx\n```\n")
    prim = study.primary_comparison(study.load_cells(study_root))
    update_cards(prim, tmp_path / "ckpts")
    first = card.read_text()
    update_cards(prim, tmp_path / "ckpts")  # a second call replaces the block, it does not stack
    text = card.read_text()
    assert text == first  # nor does it change the layout around it (it once dropped the blank line after it)
    assert text.count(CARD_START) == 1 and text.count(CARD_END) == 1
    assert primary_sentence(prim) in text and text.index(CARD_END) < text.index("Reproduce from scratch")


def test_an_encoder_pretrained_on_the_scored_fold_is_refused(tiny_study, tmp_path):
    from tests.test_evaluate import FakePrepared, _save_checkpoint

    copy = _copy(tiny_study, tmp_path)
    data = FakePrepared(n_patients=8, t=64)
    fine = _save_checkpoint(tmp_path / "fine.pt", data, provenance={"exclude_splits": [], "exclude_folds": [8]})
    leaky = _save_checkpoint(tmp_path / "leaky.pt", data, provenance={"exclude_splits": [], "exclude_folds": [10]})
    meta = json.loads((copy / "multilabel-test8-probe" / "sweep.json").read_text())
    label = next(iter(meta["checkpoints"]))
    _edit_meta(copy / "multilabel-test8-probe", checkpoints={label: {"path": str(fine)}})
    study.load_cells(copy)  # its recorded exclusion is the rotation's test fold
    _edit_meta(copy / "multilabel-test8-probe", checkpoints={label: {"path": str(leaky)}})
    with pytest.raises(DataError, match=f"multilabel-test8-probe: encoder '{label}'.*pretrained on fold 8"):
        study.load_cells(copy)


def malformed_tables(markdown: str) -> list[str]:
    """Header rows of Markdown tables whose delimiter row has another number of cells (such a table is not drawn)."""
    lines, bad = markdown.splitlines(), []
    for head, rule in itertools.pairwise(lines):
        cells = head.strip().strip("|").count("|"), rule.strip().strip("|").count("|")
        if head.startswith("|") and rule.startswith("|---") and cells[0] != cells[1]:
            bad.append(head)
    return bad


def test_the_convergence_table_counts_searches_that_end_at_a_grid_edge():
    from aclecg.evaluation.outputs import lr_at_edge
    from aclecg.results.study_report import _convergence

    grid = [{"lr": r} for r in (1e-4, 1e-3, 3e-3, 1e-2)]
    assert lr_at_edge({"lr": 1e-2, "lr_grid": grid}) is True and lr_at_edge({"lr": 1e-4, "lr_grid": grid}) is True
    assert lr_at_edge({"lr": 3e-3, "lr_grid": grid}) is False
    assert np.isnan(lr_at_edge({"lr": 3e-3, "lr_grid": grid[:1]})) and np.isnan(lr_at_edge({"l2": 1.0}))
    rows = [
        {"lr": lr, "lr_edge": edge, "seed": seed, "test_fold": fold}
        for lr, edge, seed, fold in [(1e-2, True, 0, 10), (1e-2, np.nan, 1, 10), (3e-3, False, 0, 8)]
    ]
    common = {"protocol": "multilabel", "arm": "reference_cnn", "kind": "reference_cnn", "fraction": 0.1}
    extra = {"best_step": 40, "steps_run": 240, "converged": True, "first_look": False}
    table = _convergence(pd.DataFrame([{**common, **extra, **r} for r in rows]))
    assert malformed_tables(table) == []
    assert "| 0.003, 0.01 | 1 of 2 | 0 | 0 |" in table


def test_the_convergence_section_says_how_the_cells_validated_from_their_keys():
    """The section's schedules come from the cells' own settings (it once hard-coded two schedules, one of which
    no cell of the 120-epoch study used)."""
    from aclecg.evaluation.outputs import validation_schedule
    from aclecg.results.study_report import _schedules

    new = {"eval_every": 20, "dense": [5, 100], "lr_grid": [1e-4, 3e-4, 1e-3, 3e-3], "lr_extend": 2}
    old = {"eval_every": 20, "lr_grid": [3e-4, 1e-3, 3e-3]}
    assert validation_schedule(new) == (
        "validation at step 0, every 5 steps to step 100 and every 20 after; learning rates 0.0001, 0.0003, "
        "0.001, 0.003, and up to 2 more past a winning edge"
    )
    assert validation_schedule(old) == "validation at every 20 steps from step 20; learning rates 0.0003, 0.001, 0.003"
    assert validation_schedule(None) == validation_schedule({"l2": 1.0}) == ""
    later = {**new, "lr": 3e-3, "lr_chosen_on_seed": 0}
    assert validation_schedule(later).endswith("; the learning rate its first seed chose")
    cells = pd.DataFrame({"schedule": [validation_schedule(new)] * 3 + [validation_schedule(old), ""]})
    lines = _schedules(cells)
    assert lines == [f"- {validation_schedule(new)} (3 cells)", f"- {validation_schedule(old)} (1 cell)"]
    assert _schedules(pd.DataFrame({"schedule": [""]})) == ["- no trained cell yet"]


def test_cells_that_the_plan_no_longer_names_are_left_out_and_a_double_is_an_error(tmp_path):
    """An extended search's prior, and a later seed trained with a rate its first seed no longer chooses, stay in
    the sweep folder but not in the study; two cells left for one slot would be counted twice."""
    from pathlib import Path

    from aclecg.evaluation.outputs import standing_cells

    def cell(name, seed, lr, arm="reference_cnn", grid=(), reused=False):
        details = {"lr": lr, "lr_grid": [{"lr": r} for r in grid]}
        if name == "extended":
            details["continued_from"] = "plain"
        settings = {"lr": lr, "lr_chosen_on_seed": 0} if reused else {}
        record = {"arm": arm, "fraction": 0.1, "seed": seed, "details": details, "key": {"settings": settings}}
        return Path(f"/sweep/cells/{name}.json"), record

    cells = [
        cell("plain", 0, 3e-3, grid=(1e-4, 3e-3)),
        cell("extended", 0, 1e-2, grid=(1e-4, 3e-3, 1e-2)),
        cell("old-seed", 1, 3e-3, reused=True),
        cell("new-seed", 1, 1e-2, reused=True),
        cell("probe", 0, None, arm="acl_ecg:linear_probe"),
    ]
    assert [p.stem for p, _ in standing_cells(cells)] == ["extended", "new-seed", "probe"]
    with pytest.raises(DataError, match=r"two cells for reference_cnn at 0\.1, seed 1 \(new-seed\.json, again\.json\)"):
        standing_cells([*cells, cell("again", 1, 1e-2, reused=True)])
