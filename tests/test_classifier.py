"""aclecg.classifier (step budgets, early stopping, learning-rate grid) and aclecg.reference_cnn."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from aclecg import classifier, evaluation, lrsearch
from aclecg.errors import ConfigError
from aclecg.reference_cnn import ReferenceCNNConfig, build_reference_cnn
from tests.test_evaluate import FakePrepared, _save_checkpoint


def _toy(n: int = 48, t: int = 64, seed: int = 0):
    """Class 0 is a tone on lead 0: learnable in a few dozen steps."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 1)) < 0.5).astype(np.float32)
    x = rng.normal(0, 1, (n, 12, t)).astype(np.float32)
    x[:, 0] += 3 * y[:, :1] * np.sin(np.linspace(0, 12, t, dtype=np.float32))
    return torch.from_numpy(x), y


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_budget_counts_steps_not_epochs():
    """A fraction with fewer records than one batch still gets max_steps updates (one batch an epoch)."""
    x, y = _toy()
    net = build_reference_cnn(12, 1, seed=0)
    log = classifier.train_classifier(
        net,
        x[:6],
        y[:6],
        x[30:],
        y[30:],
        "multilabel",
        1e-3,
        max_steps=40,
        eval_every=10,
        patience=1000,
        batch_size=64,
        device="cpu",
        show_progress=False,
    )
    assert log.steps_run == 40 and [h["step"] for h in log.history] == [10, 20, 30, 40]
    assert not log.converged  # the budget ended the run, not early stopping


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_early_stopping_and_best_weights_restored():
    x, y = _toy()
    net = build_reference_cnn(12, 1, seed=0)
    log = classifier.train_classifier(
        net,
        x[:30],
        y[:30],
        x[30:],
        y[30:],
        "multilabel",
        3e-3,
        max_steps=500,
        eval_every=5,
        patience=20,
        batch_size=8,
        device="cpu",
        show_progress=False,
    )
    assert log.converged and log.steps_run < 500
    assert log.steps_run - log.best_step >= 20
    best = max(log.history, key=lambda h: h["criterion"])
    assert best["step"] == log.best_step
    scores = classifier.predict_scores(net, x[30:], "multilabel", device="cpu")
    assert classifier.stats.macro_auroc(y[30:], scores) == pytest.approx(best["criterion"], abs=1e-6)


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_lr_grid_keeps_the_best_validated_rate():
    x, y = _toy()
    fit = lrsearch.fit_with_lr_grid(
        lambda: build_reference_cnn(12, 1, seed=0),
        x[:30],
        y[:30],
        x[30:],
        y[30:],
        "multilabel",
        lr_grid=(1e-7, 3e-3),
        max_steps=40,
        eval_every=10,
        patience=100,
        batch_size=16,
        device="cpu",
        show_progress=False,
    )
    vals = {g["lr"]: g["val"] for g in fit.grid}
    assert set(vals) == {1e-7, 3e-3} and fit.lr == max(vals, key=vals.get)
    assert fit.log.best_criterion == vals[fit.lr]
    with pytest.raises(ConfigError, match="lr_grid"):
        lrsearch.fit_with_lr_grid(lambda: build_reference_cnn(12, 1), x, y, x, y, "multilabel", lr_grid=())


def test_bad_budget_is_a_clear_error():
    x, y = _toy()
    with pytest.raises(ConfigError, match="max_steps"):
        classifier.train_classifier(build_reference_cnn(12, 1), x, y, x, y, "multilabel", 1e-3, max_steps=0)
    with pytest.raises(ConfigError, match="protocol"):
        classifier.train_classifier(build_reference_cnn(12, 1), x, y, x, y, "multiclass", 1e-3)


def test_reference_cnn_shapes_seed_and_config():
    a, b = build_reference_cnn(12, 5, seed=3), build_reference_cnn(12, 5, seed=3)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    state = torch.get_rng_state()
    build_reference_cnn(12, 5, seed=4)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched
    assert a.eval()(torch.randn(3, 12, 1000)).shape == (3, 5)
    with pytest.raises(ConfigError, match="kernel_size"):
        ReferenceCNNConfig(kernel_size=4)
    with pytest.raises(ConfigError, match="n_classes"):
        build_reference_cnn(12, 0)


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_sweep_reference_cnn_and_lr_chosen_on_first_seed(tmp_path, monkeypatch):
    """Seed 0 searches the grid; seed 1 reuses its rate. Cells record best step, steps run, convergence."""
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    data = FakePrepared(n_patients=40, t=64)
    ckpt = _save_checkpoint(tmp_path / "run" / "encoder.pt", data)
    cfg = evaluation.EvalConfig(
        max_steps=6, eval_every=2, patience=2, batch_size=32, n_bootstrap=20, device="cpu", lr_grid=(1e-4, 3e-3)
    )
    res = evaluation.run_sweep(
        [ckpt],
        data,
        "toy",
        "multilabel",
        [1.0],
        2,
        ["fine_tune", "reference_cnn"],
        tmp_path / "sw",
        config=cfg,
        show_progress=False,
    )
    cells = [json.loads(p.read_text()) for p in (tmp_path / "sw" / "cells").glob("*.json")]
    assert len(cells) == 4
    for arm in ("run:fine_tune", "reference_cnn"):
        mine = sorted((c for c in cells if c["arm"] == arm), key=lambda c: c["seed"])
        first = mine[0]["details"]
        assert [g["lr"] for g in first["lr_grid"]] == [1e-4, 3e-3]
        for later in mine[1:]:
            assert later["details"]["lr"] == first["lr"] and len(later["details"]["lr_grid"]) == 1
            assert later["key"]["settings"]["lr_chosen_on_seed"] == 0
        for c in mine:
            d = c["details"]
            assert 0 <= d["best_step"] <= d["steps_run"] <= 6 and d["first_validation"] == 0
            assert d["converged"] == (d["steps_run"] - d["best_step"] >= 2)  # patience ran out
    macro = res.summary[res.summary["metric"] == "macro_auroc"]
    assert set(macro["arm"]) == {"run:fine_tune", "reference_cnn"}
    rows = res.results[res.results["metric"] == "macro_auroc"]
    expect = sum(1 for c in cells if c["details"]["converged"] is False)
    assert int(macro["n_not_converged"].sum()) == expect == int((rows["converged"] == False).sum())  # noqa: E712


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_lr_from_another_sweep_skips_the_grid(tmp_path, monkeypatch):
    """A rotation reuses the official split's validated learning rates: one training per cell, recorded in the key."""
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    data = FakePrepared(n_patients=40, t=64)
    cfg = evaluation.EvalConfig(
        max_steps=4, eval_every=2, patience=2, batch_size=32, n_bootstrap=20, device="cpu", lr_grid=(1e-4, 3e-3)
    )
    evaluation.run_sweep(
        [],
        data,
        "toy",
        "multilabel",
        [1.0],
        1,
        ["reference_cnn"],
        tmp_path / "official",
        config=cfg,
        show_progress=False,
    )
    chosen = evaluation.learning_rates_of(tmp_path / "official")
    assert set(chosen) == {("reference_cnn", 1.0)}
    evaluation.run_sweep(
        [],
        data,
        "toy",
        "multilabel",
        [1.0],
        2,
        ["reference_cnn"],
        tmp_path / "rot9",
        config=cfg,
        show_progress=False,
        test_fold=9,
        lr_from=tmp_path / "official",
    )
    cells = [json.loads(p.read_text()) for p in (tmp_path / "rot9" / "cells").glob("*.json")]
    assert len(cells) == 2
    for c in cells:
        assert c["details"]["lr"] == chosen[("reference_cnn", 1.0)] and len(c["details"]["lr_grid"]) == 1
        assert c["key"]["settings"]["lr"] == c["details"]["lr"] and "lr_chosen_in" in c["key"]["settings"]
    with pytest.raises(ConfigError, match="not a sweep output"):
        evaluation.learning_rates_of(tmp_path / "nothing")


def test_collect_only_gathers_partial_runs_into_one_folder(tmp_path, monkeypatch):
    """Two arms computed by two separate calls into one folder, then one collecting call: outputs for both,
    nothing trained, and the cells not yet there counted as missing."""
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    data = FakePrepared(n_patients=40, t=64)
    ckpt = _save_checkpoint(tmp_path / "run" / "encoder.pt", data)
    cfg = evaluation.EvalConfig(
        max_steps=4, eval_every=2, patience=2, batch_size=32, n_bootstrap=20, device="cpu", lr_grid=(1e-3,)
    )
    common = dict(
        data=data,
        label_set="toy",
        protocol="multilabel",
        fractions=[1.0],
        seeds=2,
        config=cfg,
        show_progress=False,
        out_dir=tmp_path / "ft",
    )
    evaluation.run_sweep([ckpt], arms=["supervised"], **common)
    evaluation.run_sweep([ckpt], arms=["fine_tune"], **common)
    assert json.loads((tmp_path / "ft" / "sweep.json").read_text())["arms"] == ["run:fine_tune"]
    monkeypatch.setattr(evaluation.sweep, "_run_cell", lambda *a, **k: pytest.fail("collect_only trained a cell"))
    res = evaluation.run_sweep([ckpt], arms=["fine_tune", "supervised", "reference_cnn"], collect_only=True, **common)
    assert (res.n_computed, res.n_cached, res.n_missing) == (0, 4, 2)
    assert set(res.results["arm"]) == {"run:fine_tune", "supervised"}
    assert json.loads((tmp_path / "ft" / "sweep.json").read_text())["arms"] == [
        "run:fine_tune",
        "supervised",
        "reference_cnn",
    ]


# ------------------------------------------------------------------------- streaming and capped validation
def _memmapped(tmp_path, n: int = 60, t: int = 64, seed: int = 0):
    """A signals.npy of ``n`` toy records opened as PreparedDataset opens it (memory-mapped), and the targets."""
    x, y = _toy(n, t, seed)
    np.save(tmp_path / "signals.npy", x.numpy())
    return SimpleNamespace(signals=np.load(tmp_path / "signals.npy", mmap_mode="r")), x.numpy(), y


def _fit(x_train, y_train, x_val, y_val, **extra):
    net = build_reference_cnn(12, 1, seed=0)
    budget = dict(max_steps=40, eval_every=4, patience=8, batch_size=8, dense=(2, 8))
    log = classifier.train_classifier(
        net, x_train, y_train, x_val, y_val, "multilabel", 3e-3, device="cpu", show_progress=False, **budget, **extra
    )
    return net, log


ALL_LEADS = tuple(range(12))


def test_rows_are_read_from_the_cache_file_exactly(tmp_path):
    """Runs of consecutive rows, gaps, duplicates, any order: the same values as indexing the array."""
    ds, x, _ = _memmapped(tmp_path, n=30)
    assert classifier._file_layout(ds.signals) is not None  # read from the file, not through the mapping
    idx, leads = np.array([7, 3, 4, 5, 27, 0, 4, 12, 13]), [0, 6, 11]
    np.testing.assert_array_equal(classifier.read_signals(ds, idx, leads), x[idx][:, leads])
    view = SimpleNamespace(signals=ds.signals[2:])
    assert classifier._file_layout(view.signals) is None  # a view of the file: indexed in memory, still right
    np.testing.assert_array_equal(classifier.read_signals(view, idx, leads), x[2:][idx][:, leads])


def test_streamed_training_gives_the_in_memory_weights_and_history(tmp_path):
    """RecordRows (batches read from the memory-mapped cache on a background thread) vs the whole subset in memory:
    byte-identical validation history, weights and test scores, with early stopping ending the run."""
    ds, x, y = _memmapped(tmp_path)
    tr, va, te = np.split(np.random.default_rng(1).permutation(len(x)), [36, 48])
    net_a, log_a = _fit(torch.from_numpy(x[tr]), y[tr], x[va], y[va])
    net_b, log_b = _fit(
        classifier.RecordRows(ds, tr, ALL_LEADS), y[tr], classifier.RecordRows(ds, va, ALL_LEADS), y[va]
    )
    assert log_a.stopped_early and log_a.steps_run < 40
    assert log_a.history == log_b.history and log_a.best_step == log_b.best_step
    state_a, state_b = net_a.state_dict(), net_b.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    scores = classifier.predict_classifier(net_b, ds, te, ALL_LEADS, "multilabel", batch_size=5, device="cpu")
    np.testing.assert_array_equal(scores, classifier.predict_scores(net_a, x[te], "multilabel", device="cpu"))


def test_validation_subsample_is_fixed_stratified_and_capped():
    rng = np.random.default_rng(0)
    y = (rng.random((500, 5)) < [0.5, 0.2, 0.1, 0.03, 0.01]).astype(np.float32)
    pos = evaluation.finetune.validation_subsample(y, 60)
    assert len(pos) == 60 and np.all(np.diff(pos) > 0)
    np.testing.assert_array_equal(
        pos, evaluation.finetune.validation_subsample(y, 60)
    )  # the same draw every time it is asked
    assert (y[pos].sum(0) >= np.minimum(y.sum(0), 3)).all()  # rare classes keep positives (5 a class here)
    np.testing.assert_array_equal(
        evaluation.finetune.validation_subsample(y, 500), np.arange(500)
    )  # fold within the cap: whole
    np.testing.assert_array_equal(evaluation.finetune.validation_subsample(y, 0), np.arange(500))  # 0: no cap


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_capped_validation_early_stops_on_the_subsample_and_scores_the_whole_fold(tmp_path):
    ds, x, y = _memmapped(tmp_path, n=80)
    tr, va = np.arange(40), np.arange(40, 80)
    sub = evaluation.finetune.validation_subsample(y[va], 10)
    net, log = _fit(x[tr], y[tr], x[va][sub], y[va][sub], full_val=(classifier.RecordRows(ds, va, ALL_LEADS), y[va]))
    _, log_sub = _fit(x[tr], y[tr], x[va][sub], y[va][sub])
    assert log.history == log_sub.history and log.subsample_criterion == log_sub.best_criterion
    full = classifier.stats.macro_auroc(y[va], classifier.predict_scores(net, x[va], "multilabel", device="cpu"))
    assert log.subsample_size == 10 and log.best_criterion == pytest.approx(full, abs=1e-9)


def test_trained_arm_reads_batches_not_subsets_and_caps_validation(tmp_path, monkeypatch):
    """No read of the trained arm covers the training subset (only batches, the capped validation subsample and
    256-record prediction chunks); the cap enters the cell's key and details only when it is in effect."""
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    data = FakePrepared(n_patients=60, t=64)
    reads: list[int] = []
    real = classifier.read_signals
    monkeypatch.setattr(classifier, "read_signals", lambda d, i, lead: reads.append(len(i)) or real(d, i, lead))
    import aclecg.evaluation.finetune as finetune  # the package loads its parts lazily: import it, whatever ran first

    monkeypatch.setattr(finetune, "read_signals", classifier.read_signals)
    cells = {}
    for cap in (256, 4):
        cfg = evaluation.EvalConfig(
            max_steps=6,
            eval_every=2,
            patience=4,
            batch_size=8,
            n_bootstrap=20,
            device="cpu",
            lr_grid=(1e-3,),
            val_cap=cap,
        )
        evaluation.run_sweep(
            [],
            data,
            "toy",
            "multilabel",
            [1.0],
            1,
            ["reference_cnn"],
            tmp_path / f"c{cap}",
            config=cfg,
            show_progress=False,
        )
        (path,) = (tmp_path / f"c{cap}" / "cells").glob("*.json")
        cells[cap] = json.loads(path.read_text())
    n_train, n_val = cells[4]["n_train"], cells[4]["n_val"]
    assert n_val > 4 and max(reads) < n_train and 8 in reads and 4 in reads
    assert "val_cap" not in cells[256]["key"]["settings"] and "val_subsample" not in cells[256]["details"]
    assert cells[4]["key"]["settings"]["val_cap"] == 4 and cells[4]["details"]["val_subsample"] == 4
    assert cells[4]["details"]["lr_grid"][0]["val_subsample"] == cells[4]["details"]["val_on_subsample"]
    cfg = evaluation.EvalConfig()
    assert "val_cap" not in cfg.key_for("reference_cnn", n_val=cfg.val_cap)
    assert cfg.key_for("reference_cnn", n_val=cfg.val_cap + 1)["val_cap"] == cfg.val_cap
    assert "val_cap" not in cfg.key_for("linear_probe", n_val=10**6)


def test_a_sweep_keys_the_default_validation_cap_when_its_fold_exceeds_it():
    """A trained cell on a validation fold larger than the (default) cap was computed on the subsample: its key
    says so, so a cell computed on the whole fold before the cap existed is never reused for it."""
    from aclecg.evaluation.cells import Arm, SweepPlan, cell_spec

    cfg = evaluation.EvalConfig()

    def plan(n_val):
        return SweepPlan("toy", "multilabel", ("a",), "fp", (1.0,), (0,), ("reference_cnn",), (), {}, cfg, n_val=n_val)

    arm = Arm("reference_cnn", "reference_cnn")
    small, large = cell_spec(plan(cfg.val_cap), arm, 1.0, 0), cell_spec(plan(cfg.val_cap + 1), arm, 1.0, 0)
    assert "val_cap" not in small.key["settings"] and large.key["settings"]["val_cap"] == cfg.val_cap
    assert small.cell_id != large.cell_id


@pytest.mark.slow  # a few seconds; the default suite must stay under 90 s
def test_an_extended_search_continues_the_finished_cells_and_matches_a_fresh_sweep(tmp_path, monkeypatch):
    """lr_extend on a folder of finished cells: each first seed trains only the rates past its winning edge, its
    later seeds are reused when the choice stands, and every cell equals the cell of a fresh extended sweep."""
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    data = FakePrepared(n_patients=40, t=64)
    trained: list[float] = []
    real = lrsearch.train_classifier
    monkeypatch.setattr(lrsearch, "train_classifier", lambda *a, **k: trained.append(a[6]) or real(*a, **k))
    budget = dict(max_steps=6, eval_every=2, patience=2, batch_size=32, n_bootstrap=20, device="cpu")
    plain = evaluation.EvalConfig(**budget, lr_grid=(1e-4, 3e-3))
    wide = evaluation.EvalConfig(**budget, lr_grid=(1e-4, 3e-3), lr_extend=1)

    def sweep(folder, cfg):
        args = ([], data, "toy", "multilabel", [1.0], 2, ["reference_cnn"], tmp_path / folder)
        evaluation.run_sweep(*args, config=cfg, show_progress=False)
        cells = [json.loads(p.read_text()) for p in (tmp_path / folder / "cells").glob("*.json")]
        return {c["cell"]: c for c in cells}

    before = sweep("sw", plain)
    trained.clear()
    after = sweep("sw", wide)
    first = next(c for c in after.values() if c["seed"] == 0 and "lr_extend" in c["key"]["settings"])
    old = before[first["details"]["continued_from"]]
    grid = first["details"]["lr_grid"]
    assert grid[:2] == old["details"]["lr_grid"] and grid[2]["extended"] and len(grid) == 3
    chose_old = first["details"]["lr"] == old["details"]["lr"]
    assert trained == [grid[2]["lr"]] + ([] if chose_old else [first["details"]["lr"]])
    fresh = sweep("fresh", wide)
    assert set(fresh) - set(before) == set(after) - set(before)  # the same cells, by key
    for cell, rec in fresh.items():
        mine = after[cell]
        assert mine["details"]["lr"] == rec["details"]["lr"]
        assert [g["val"] for g in mine["details"]["lr_grid"]] == pytest.approx(
            [g["val"] for g in rec["details"]["lr_grid"]]
        )
        with (
            np.load(tmp_path / "sw" / "cells" / f"{cell}.npz") as a,
            np.load(tmp_path / "fresh" / "cells" / f"{cell}.npz") as b,
        ):
            assert np.allclose(a["y_score"], b["y_score"], atol=1e-5)
