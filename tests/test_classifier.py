"""aclecg.classifier (step budgets, early stopping, learning-rate grid) and aclecg.reference_cnn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aclecg import classifier, evaluation
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


def test_lr_grid_keeps_the_best_validated_rate():
    x, y = _toy()
    fit = classifier.fit_with_lr_grid(
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
        classifier.fit_with_lr_grid(lambda: build_reference_cnn(12, 1), x, y, x, y, "multilabel", lr_grid=())


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
