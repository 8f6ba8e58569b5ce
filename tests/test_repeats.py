"""Repeated pretraining runs (issue 28): a study file's ``[pretrain.repeats]`` becomes one pretraining task per
extra seed, and the primary comparison pairs the runs of ACL-ECG and its baseline by seed, so the variance
between pretraining runs is measured; tables, the family and the best-baseline choice keep the first runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aclecg import evaluation
from aclecg.errors import ConfigError
from aclecg.results import power, study
from aclecg.studyplan.encoders import pretrain_job
from aclecg.studyplan.repeats import repeat_base, repeat_name
from aclecg.studyplan.spec import load_study
from tests.test_evaluate import FakePrepared, _save_checkpoint

STUDY = Path(__file__).resolve().parent.parent / "studies" / "bundled.toml"

REPEATS = """
[pretrain.repeats]
methods = ["acl_ecg", "dlc"]
seeds = { 10 = 100, 8 = [102, 202] }
"""


def _study_file(tmp_path: Path, extra: str) -> Path:
    """The shipped study file with ``extra`` as its only repeats table (a table it declares itself is dropped)."""
    text = re.sub(r"(?ms)^\[\[?pretrain\.repeats\]\]?\n.*?(?=^\[)", "", STUDY.read_text())
    text = text.replace("[pretrain.seeds]", extra + "\n[pretrain.seeds]", 1)
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_repeats_are_methods_of_their_own_fold_with_their_own_seed(tmp_path):
    s = load_study(_study_file(tmp_path, REPEATS))
    names = {f: {m.name for m in s.methods_for(f)} for f in s.test_folds}
    assert {"acl_ecg@seed100", "dlc@seed100"} <= names[10]
    assert {"acl_ecg@seed102", "dlc@seed102", "acl_ecg@seed202", "dlc@seed202"} <= names[8]
    assert not any("@" in n for n in names[7] | names[6])
    assert repeat_base(repeat_name("acl_ecg", 100)) == "acl_ecg"

    rep = next(m for m in s.methods if m.name == "acl_ecg@seed100")
    first = next(m for m in s.methods if m.name == "acl_ecg")
    job, first_job = (pretrain_job(s, m, 10, lambda ref: "fp") for m in (rep, first))
    assert job.config["seed"] == 100 and first_job.config["seed"] == 0
    assert {k: v for k, v in job.config.items() if k != "seed"} == {
        k: v for k, v in first_job.config.items() if k != "seed"
    }
    # a repeat is run and stored like a rotation's encoder, never in the shipped official folder
    assert not job.official and first_job.official
    assert job.run_dir.name == "rot10-acl_ecg@seed100"
    assert job.store_dir == s.checkpoints / "rotations" / "test10" / "acl_ecg@seed100"
    assert job.digest != first_job.digest


def test_an_array_of_repeats_tables_repeats_a_baseline_only_where_it_is_named(tmp_path):
    extra = """
[[pretrain.repeats]]
methods = ["acl_ecg", "dlc"]
seeds = { 10 = 100, 8 = 102 }

[[pretrain.repeats]]
methods = ["barlow"]
seeds = { 8 = 102 }
"""
    s = load_study(_study_file(tmp_path, extra))
    names = {f: {m.name for m in s.methods_for(f) if "@" in m.name} for f in s.test_folds}
    assert names[10] == {"acl_ecg@seed100", "dlc@seed100"}
    assert names[8] == {"acl_ecg@seed102", "dlc@seed102", "barlow@seed102"}
    assert names[7] == names[6] == set()
    rep = next(m for m in s.methods if m.name == "barlow@seed102")
    first = next(m for m in s.methods if m.name == "barlow")
    assert (rep.seed, rep.folds, rep.config, rep.official_only) == (102, (8,), first.config, False)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            '[[pretrain.repeats]]\nmethods = ["dlc"]\nseeds = { 8 = 102 }\n'
            '[[pretrain.repeats]]\nmethods = ["dlc"]\nseeds = { 8 = 102 }',
            "pretrain.repeats declares dlc@seed102 twice",
        ),
        (
            '[[pretrain.repeats]]\nmethods = ["dlc"]\nseeds = { 8 = 102 }\n'
            '[[pretrain.repeats]]\nmethods = ["barlow"]\nseeds = { 9 = 5 }',
            r"pretrain.repeats\[1\].seeds.9 must name a test fold",
        ),
        ('[[pretrain.repeats]]\nmethods = ["dlc"]', r"pretrain.repeats\[0\].seeds is missing"),
    ],
)
def test_a_bad_repeats_array_names_the_table_at_fault(tmp_path, tables, message):
    with pytest.raises(ConfigError, match=message):
        load_study(_study_file(tmp_path, tables + "\n"))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('methods = ["acl_ecg"]\nseeds = { 10 = 0 }', "must be new seeds for fold 10"),
        ('methods = ["acl_ecg"]\nseeds = { 9 = 5 }', "must name a test fold"),
        ('methods = ["nope"]\nseeds = { 10 = 5 }', "pretrain.repeats.methods"),
        ('methods = ["acl_ecg_no_region"]\nseeds = { 10 = 5 }', "pretrain.repeats.methods"),
        ('methods = ["acl_ecg"]\nseeds = { 10 = [5, 5] }', "must be new seeds"),
        ('methods = ["acl_ecg"]', "pretrain.repeats.seeds is missing"),
        ('methods = ["acl_ecg"]\nseeds = { 10 = 5 }\nruns = 2', "pretrain.repeats.runs is not a known key"),
    ],
)
def test_a_bad_repeats_table_is_one_clear_line(tmp_path, table, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_study(_study_file(tmp_path, "[pretrain.repeats]\n" + table + "\n"))


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> Path:
    """Probe sweeps of two rotations: ACL-ECG and two baselines, and a second pretraining run of ACL-ECG and
    simclr (``@seed5``) in each; lcd's second run validates best of all, and must not become the baseline."""
    root = tmp_path_factory.mktemp("repeats")
    data = FakePrepared(n_patients=60, t=64)
    cfg = evaluation.EvalConfig(n_bootstrap=10, device="cpu", probe_grid=(0.1,), probe_max_iter=20)
    for fold in (10, 8):
        names = ("acl_ecg", "simclr", "lcd", "acl_ecg@seed5", "simclr@seed5")
        ckpts = [
            _save_checkpoint(root / f"eval-test{fold}" / name / "encoder.pt", data, seed=i + 10 * fold)
            for i, name in enumerate(names)
        ]
        evaluation.run_sweep(
            ckpts,
            data,
            "toy",
            "multilabel",
            [0.1],
            2,
            ["linear_probe"],
            root / "sweeps" / f"multilabel-test{fold}-probe",
            config=cfg,
            show_progress=False,
            test_fold=fold,
            val_fold=9,
            cache_dir=root / "cache",
        )
    return root / "sweeps"


@pytest.mark.slow  # reads real probe sweeps of ten encoders (about 10 s to build)
def test_cells_carry_the_base_method_and_the_run(sweeps):
    cells = study.load_cells(sweeps)
    rep = cells[cells["arm"] == "acl_ecg@seed5:linear_probe"]
    assert not rep.empty and set(rep["name"]) == {"acl_ecg"} and set(rep["run"]) == {"seed5"}
    assert set(cells[cells["arm"] == "acl_ecg:linear_probe"]["run"]) == {""}
    # tables show first runs only: one row per method
    table = study.paper_table(cells, "multilabel")
    assert not any("@" in str(row) for row in table.index)


@pytest.mark.slow  # reads real probe sweeps of ten encoders (about 10 s to build)
def test_the_primary_comparison_pairs_runs_by_seed_and_measures_their_variance(sweeps):
    cells = study.load_cells(sweeps)
    prim = study.primary_comparison(cells, best="simclr", n_resamples=200)
    runs = prim["runs"]
    assert [(r["fold"], r["run"]) for r in runs] == [(8, "first"), (8, "seed5"), (10, "first"), (10, "seed5")]
    # each rotation's difference is the mean of its runs' differences (seed-mean macro AUROC)
    for fold in (8, 10):
        per_run = [r["diff"] for r in runs if r["fold"] == fold]
        assert prim["per_fold"][fold] == pytest.approx(np.mean(per_run), abs=1e-9)
    comp = power.components_of(prim)
    assert comp.seeds_measured and comp.n_runs == 4 and comp.n_rotations == 2
    section = "\n".join(power.power_section(prim))
    assert "× 2 pretraining runs" in section
    # one design behind both: the verdict's power and MDE are the planner's present design's
    now = power.present_design(prim)
    assert now.seeds == 2
    assert prim["verdict"]["power_at_paper_effect"] == pytest.approx(now.power(comp, prim["paper_effect"]))
    assert prim["verdict"]["min_detectable_effect"] == pytest.approx(now.mde(comp))
    assert f"minimum detectable effect at 80 % power {now.mde(comp):.4f}" in section

    # without the repeats: one run per rotation, no per-run record, the planner's cautious single-run form
    first = study.primary_comparison(cells[cells["run"] == ""], best="simclr", n_resamples=200)
    assert "runs" not in first and not power.components_of(first).seeds_measured
    for fold in (8, 10):
        assert first["per_fold"][fold] == pytest.approx(
            next(r["diff"] for r in runs if (r["fold"], r["run"]) == (fold, "first"))
        )


@pytest.mark.slow  # reads real probe sweeps of ten encoders (about 10 s to build)
def test_the_best_baseline_is_chosen_among_first_runs(sweeps):
    cells = study.load_cells(sweeps)
    best = study.best_baselines(cells)
    assert set(best.values()) <= {"simclr", "lcd"}
    # a repeat that validates best cannot become the baseline: raise its validation score above every other's
    boosted = cells.copy()
    boosted.loc[boosted["arm"] == "simclr@seed5:linear_probe", "val"] = 2.0
    boosted.loc[boosted["arm"] == "simclr:linear_probe", "val"] = -1.0
    assert set(study.best_baselines(boosted).values()) == {"lcd"}


def _fake_cells(tmp_path: Path, rng: np.random.Generator) -> pd.DataFrame:
    """Cells as load_cells gives them, predictions written to npz: two rotations, 60 test records, two label
    seeds; acl_ecg and simclr with a first run and a repeat, lcd with a first run whose validation is best."""
    rows = []
    for fold in (8, 10):
        y = np.zeros((60, 3), dtype=np.float32)
        y[np.arange(60), rng.integers(0, 3, 60)] = 1
        for name, run, skill, val in (
            ("acl_ecg", "", 1.2, 0.9), ("acl_ecg", "seed5", 1.0, 0.9), ("simclr", "", 1.0, 0.8),
            ("simclr", "seed5", 0.8, 0.99), ("lcd", "", 0.5, 0.85),
        ):  # fmt: skip
            arm = f"{name}@{run}:linear_probe" if run else f"{name}:linear_probe"
            for seed in (0, 1):
                path = tmp_path / f"{fold}-{arm.replace(':', '_')}-{seed}.npz"
                np.savez(path, y_true=y, y_score=skill * y + rng.normal(size=y.shape))
                row = {"protocol": "multilabel", "test_fold": fold, "arm": arm, "name": name, "run": run}
                row |= {"kind": "linear_probe", "fraction": 0.1, "seed": seed, "val": val, "npz": str(path)}
                rows.append(row | {"choice_folds": (9,), "sweep": f"multilabel-test{fold}-probe"})
    return pd.DataFrame(rows)


def test_pairs_by_seed_and_first_run_choice_on_synthetic_cells(tmp_path):
    """The fast form of the three slow tests above: predictions written by hand, no sweep."""
    cells = _fake_cells(tmp_path, np.random.default_rng(0))
    # simclr's repeat validates best of all, but the choice reads first runs: lcd (0.85) beats simclr (0.8)
    assert study.best_baselines(cells) == {8: "lcd", 10: "lcd"}
    prim = study.primary_comparison(cells, best="simclr", n_resamples=100)
    assert [(r["fold"], r["run"]) for r in prim["runs"]] == [(8, "first"), (8, "seed5"), (10, "first"), (10, "seed5")]
    for fold in (8, 10):
        assert prim["per_fold"][fold] == pytest.approx(np.mean([r["diff"] for r in prim["runs"] if r["fold"] == fold]))
    assert power.components_of(prim).n_runs == 4
    lone = study.primary_comparison(cells, n_resamples=100)  # lcd has no repeat: first runs only
    assert lone["best_per_fold"] == {8: "lcd", 10: "lcd"} and "runs" not in lone
