"""aclecg.evaluation: sampler, compatibility check, embedding cache, probe, training loop and the sweep.

A tiny in-memory stand-in for ``aclecg.data.PreparedDataset`` (same attributes and ``labels()`` contract) keeps
these tests fast; the encoder is a real :class:`aclecg.models.ECGEncoder` with a tiny configuration. An
integration test on the real prepared bundled PTB-XL data runs when ``aclecg.data.PreparedDataset`` exists.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from aclecg import evaluation, stats
from aclecg.errors import CheckpointError, ConfigError, DataError
from aclecg.leads import LEADS

REPO = Path(__file__).resolve().parents[1]
TINY = {"stem_width": 4, "widths": [8, 8], "blocks": [1, 1], "kernel_size": 3, "feature_dim": 4}
CLASSES = ["A", "B", "C"]


class FakePrepared:
    """In-memory stand-in for PreparedDataset: signals (N, 12, T), records with patient_id/split/labels."""

    def __init__(self, n_patients: int = 60, t: int = 128, fs: float = 50.0, seed: int = 0):
        rng = np.random.default_rng(seed)
        recs_per_patient = rng.integers(1, 3, n_patients)  # some patients have two records
        patients = np.repeat(np.arange(n_patients), recs_per_patient)
        n = len(patients)
        fold = (patients % 10) + 1
        split = np.where(fold <= 8, "train", np.where(fold == 9, "val", "test"))
        y = np.zeros((n, 3), dtype=np.float32)
        y[:, 0] = rng.random(n) < 0.5
        y[:, 1] = rng.random(n) < 0.3
        y[:, 2] = rng.random(n) < 0.08  # a rare class
        time = np.arange(t) / fs
        sig = rng.normal(0, 0.5, (n, 12, t)).astype(np.float32)
        for c, freq in enumerate((2.0, 5.0, 9.0)):  # each class adds a tone to a few leads
            sig[:, 3 * c : 3 * c + 3, :] += (y[:, c, None, None] * 1.5 * np.sin(2 * np.pi * freq * time)).astype(
                np.float32
            )
        self.signals = sig
        self.fs, self.n_samples, self.leads = fs, t, list(LEADS)
        self.label_sets = {"toy": list(CLASSES)}
        self.fingerprint = hashlib.sha256(sig.tobytes()).hexdigest()
        self._y = y
        self.records = pd.DataFrame(
            {
                "record_id": [f"r{i}" for i in range(n)],
                "patient_id": [f"p{p}" for p in patients],
                "fold": fold,
                "split": split,
                "labels_toy": [";".join(c for c, v in zip(CLASSES, row) if v) for row in y],
            }
        )

    def __len__(self) -> int:
        return len(self.signals)

    def labels(self, label_set: str, protocol: str = "multilabel"):
        if protocol == "multilabel":
            return np.arange(len(self)), self._y.copy(), list(CLASSES)
        keep = np.flatnonzero(self._y.sum(1) == 1)
        return keep, self._y[keep].copy(), list(CLASSES)


@pytest.fixture(scope="module")
def data() -> FakePrepared:
    return FakePrepared()


def _save_checkpoint(path: Path, data: FakePrepared, seed: int = 0, **overrides) -> Path:
    from aclecg.checkpoint import save_checkpoint
    from aclecg.models import build_encoder

    enc = build_encoder({**TINY, "leads": list(LEADS)}, seed=seed)
    payload = {
        "format_version": 1,
        "method": "toy_ssl",
        "hparams": {},
        "encoder_config": enc.config.to_dict(),
        "leads": list(LEADS),
        "fs": data.fs,
        "n_samples": data.n_samples,
        "data_fingerprint": "x",
        "model": {},
        "encoder": enc.state_dict(),
    }
    payload.update(overrides)
    save_checkpoint(path, payload)
    return path


# --------------------------------------------------------------------------------------------------- sampler
def _sample(data, fraction, seed, protocol="multilabel"):
    keep, y, _ = data.labels("toy", protocol)
    return keep, y, evaluation.sample_label_fraction(data.records, keep, y, fraction, seed)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5])
def test_sampler_patients_whole_train_only_reproducible(data, fraction):
    keep, y, pos = _sample(data, fraction, seed=3)
    rec = data.records.iloc[keep]
    assert set(rec["split"].iloc[pos]) == {"train"}
    chosen_patients = set(rec["patient_id"].iloc[pos])
    train = rec[rec["split"] == "train"]
    assert len(pos) == train["patient_id"].isin(chosen_patients).sum()  # every record of a chosen patient
    assert np.array_equal(pos, _sample(data, fraction, seed=3)[2])
    assert not np.array_equal(pos, _sample(data, fraction, seed=4)[2]) or fraction >= 0.5
    assert (y[pos].sum(0) >= 1).all()  # every class keeps a positive
    n_train = (rec["split"] == "train").sum()
    assert len(pos) <= max(fraction * n_train * 2 + 8, 8)  # roughly the requested size


def test_sampler_fraction_one_is_all_train(data):
    keep, y, pos = _sample(data, 1.0, seed=0)
    assert np.array_equal(pos, np.flatnonzero(data.records["split"].to_numpy()[keep] == "train"))


def test_sampler_never_reads_val_or_test(data):
    keep, y, _ = data.labels("toy", "multilabel")
    base = evaluation.sample_label_fraction(data.records, keep, y, 0.1, 1)
    records = data.records.copy()
    other = records["split"] != "train"
    records.loc[other, "patient_id"] = "scrambled"  # change everything about val/test records
    y2 = y.copy()
    y2[other.to_numpy()] = 1 - y2[other.to_numpy()]
    assert np.array_equal(base, evaluation.sample_label_fraction(records, keep, y2, 0.1, 1))


def test_sampler_singlelabel_and_bad_fraction(data):
    keep, y, pos = _sample(data, 0.05, seed=0, protocol="singlelabel")
    present = y.sum(0) > 0
    train_has = y[data.records["split"].to_numpy()[keep] == "train"].sum(0) > 0
    assert (y[pos].sum(0)[present & train_has] >= 1).all()
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="fraction"):
            evaluation.sample_label_fraction(data.records, keep, y, bad, 0)


# ------------------------------------------------------------------------------- checkpoints and embeddings
def test_incompatible_checkpoint_is_refused_with_both_values(data, tmp_path):
    meta = {"leads": list(LEADS), "fs": data.fs, "n_samples": data.n_samples}
    assert evaluation.check_compatible(meta, data) == list(range(12))
    assert evaluation.check_compatible({**meta, "leads": ["II", "V1"]}, data) == [1, 6]
    with pytest.raises(CheckpointError, match=r"fs=100.*fs=50"):
        evaluation.check_compatible({**meta, "fs": 100}, data)
    with pytest.raises(CheckpointError, match=r"n_samples=1000.*n_samples=128"):
        evaluation.check_compatible({**meta, "n_samples": 1000}, data)
    ckpt = _save_checkpoint(tmp_path / "bad.pt", data, fs=500.0)
    with pytest.raises(CheckpointError, match="fs=500"):
        evaluation.run_sweep([ckpt], data, "toy", fractions=[1.0], seeds=1, out_dir=tmp_path / "o", show_progress=False)
    assert not list((tmp_path / "o").glob("cells/*"))


def test_embeddings_cached_by_sha_and_fingerprint(data, tmp_path, monkeypatch):
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    assert evaluation.embedding_cache_dir() == tmp_path / "cache" / "embeddings"
    src = evaluation.load_source(_save_checkpoint(tmp_path / "run" / "encoder.pt", data))
    assert src.label == "run" and len(src.key) == 64
    state = {k: v.clone() for k, v in src.encoder.state_dict().items()}
    emb, path = evaluation.cached_embeddings(src, data, batch_size=16, device="cpu")
    assert path.parent == tmp_path / "cache" / "embeddings" and src.key[:16] in path.name
    assert emb.shape == (len(data), 12 * TINY["feature_dim"]) and emb.dtype == np.float32
    with torch.no_grad():  # equal to a direct forward pass in eval mode; BN statistics untouched
        direct = src.encoder.eval()(torch.from_numpy(data.signals[:5])).embedding.numpy()
    np.testing.assert_allclose(emb[:5], direct, rtol=1e-4, atol=1e-5)
    assert all(torch.equal(v, src.encoder.state_dict()[k]) for k, v in state.items())
    calls = []
    monkeypatch.setattr(evaluation.embeddings, "extract_embeddings", lambda *a, **k: calls.append(1))
    again, path2 = evaluation.cached_embeddings(src, data)
    assert path2 == path and not calls and np.array_equal(again, emb)
    monkeypatch.undo()
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # cut short (a full disk, a kill)
    with pytest.warns(UserWarning, match="unreadable.*recomputing"):
        fixed, _ = evaluation.cached_embeddings(src, data, batch_size=16, device="cpu")
    np.testing.assert_allclose(fixed, emb, rtol=1e-5, atol=1e-6)


def test_random_init_is_seeded(data):
    a = evaluation.random_init_source(TINY, 3, LEADS, data.fs, data.n_samples)
    b = evaluation.random_init_source(TINY, 3, LEADS, data.fs, data.n_samples)
    c = evaluation.random_init_source(TINY, 4, LEADS, data.fs, data.n_samples)
    assert a.key == b.key != c.key
    assert all(torch.equal(x, y) for x, y in zip(a.encoder.parameters(), b.encoder.parameters()))


# -------------------------------------------------------------------------------------------------- probe
def test_linear_probe_matches_sklearn_logistic_regression():
    """One class, one L2 strength: our L-BFGS probe equals sklearn's LogisticRegression (C = 1 / (n * l2))."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    y = (x @ rng.normal(size=6) + rng.normal(size=200) > 0).astype(float)[:, None]
    l2 = 0.05
    res = evaluation.linear_probe(x, y, x[:50], y[:50], x, "multilabel", grid=[l2])
    xs = (x - x.mean(0)) / x.std(0)
    ref = LogisticRegression(C=1.0 / (len(x) * l2), tol=1e-10, max_iter=10000).fit(xs, y[:, 0])
    np.testing.assert_allclose(res.test_scores[:, 0], ref.predict_proba(xs)[:, 1], atol=1e-5)


def test_linear_probe_selects_on_validation_only():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 20))
    y = np.stack([(x[:, 0] + 0.5 * rng.normal(size=300) > 0), (x[:, 1] > 0.8)], 1).astype(float)
    tr, va, te = slice(0, 150), slice(150, 220), slice(220, 300)
    res = evaluation.linear_probe(x[tr], y[tr], x[va], y[va], x[te], "multilabel")
    assert set(res.val_scores) == set(evaluation.EvalConfig().probe_grid)
    assert res.best_l2 == max(res.val_scores, key=lambda k: (res.val_scores[k], k))
    assert roc_auc_score(y[te], res.test_scores, average="macro") > 0.85
    soft = evaluation.linear_probe(
        x[tr], np.eye(2)[y[tr, 0].astype(int)], x[va], np.eye(2)[y[va, 0].astype(int)], x[te], "singlelabel"
    )
    np.testing.assert_allclose(soft.test_scores.sum(1), 1.0, atol=1e-9)
    with pytest.raises(ConfigError, match="protocol"):
        evaluation.linear_probe(x[tr], y[tr], x[va], y[va], x[te], "multiclass")


# ------------------------------------------------------------------------------------------- training loop
@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_train_classifier_early_stopping_restores_best(data):
    from aclecg.models import build_classifier, build_encoder

    keep, y, _ = data.labels("toy")
    split = data.records["split"].to_numpy()
    tr, va = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    model = build_classifier(build_encoder({**TINY, "leads": list(LEADS)}, seed=0), 3)
    log = evaluation.train_classifier(
        model,
        data.signals[tr],
        y[tr],
        data.signals[va],
        y[va],
        "multilabel",
        lr=3e-3,
        max_steps=30,
        eval_every=5,
        patience=10,
        batch_size=32,
        seed=0,
        device="cpu",
        show_progress=False,
    )
    crits = [h["criterion"] for h in log.history]
    steps = [h["step"] for h in log.history]
    assert log.best_step == steps[int(np.argmax(crits))]
    assert log.steps_run <= 30 and steps[-1] == log.steps_run
    assert log.converged == (log.steps_run - log.best_step >= 10)
    scores = evaluation.predict_classifier(model, data, va, list(range(12)), "multilabel", device="cpu")
    assert stats.macro_auroc(y[va], scores) == pytest.approx(max(crits), abs=2e-3)


# --------------------------------------------------------------------------------------------------- sweep
@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_sweep_end_to_end_tidy_and_resumable(data, tmp_path, monkeypatch):
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    ckpt = _save_checkpoint(tmp_path / "toy_run" / "encoder.pt", data)
    cfg = evaluation.EvalConfig(max_steps=4, eval_every=2, patience=2, batch_size=32, n_bootstrap=50, device="cpu")
    events: list[evaluation.SweepProgress] = []
    kwargs = dict(
        checkpoints=[ckpt],
        data=data,
        label_set="toy",
        protocol="multilabel",
        fractions=[0.1, 1.0],
        seeds=2,
        arms=["linear_probe", "random_init", "supervised"],
        out_dir=tmp_path / "sweep",
        config=cfg,
        show_progress=False,
    )
    res = evaluation.run_sweep(progress=events.append, **kwargs)
    n_cells = 3 * 2 * 2
    assert res.n_computed == n_cells and res.n_cached == 0
    assert sum(e.status == "computed" for e in events) == n_cells
    rows = res.results
    assert len(rows) == n_cells * (2 + 2 * len(CLASSES))
    assert set(rows["arm"]) == {"toy_run:linear_probe", "random_init", "supervised"}
    assert {"macro_auroc", "macro_auprc", "auroc:A", "auroc:C", "auprc:B"} <= set(rows["metric"])
    macro = rows[rows["metric"] == "macro_auroc"]
    assert ((macro["ci_low"] <= macro["value"]) & (macro["value"] <= macro["ci_high"])).all()
    probe = macro[macro["arm"] == "toy_run:linear_probe"]
    assert probe["p_vs_supervised"].notna().all() and probe["p_vs_random_init"].notna().all()
    # the saved predictions reproduce the reported value and the DeLong p-value
    cell = json.loads(next((tmp_path / "sweep" / "cells").glob("toy_run_linear_probe__f1__s0__*.json")).read_text())
    with np.load(tmp_path / "sweep" / "cells" / f"{cell['cell']}.npz") as z:
        y_true, score = z["y_true"], z["y_score"]
    value = macro[(macro["arm"] == "toy_run:linear_probe") & (macro["fraction"] == 1.0) & (macro["seed"] == 0)]
    ok = [c for c in range(len(CLASSES)) if 0 < y_true[:, c].sum() < len(y_true)]
    expected = np.mean([roc_auc_score(y_true[:, c], score[:, c]) for c in ok])
    assert value["value"].iloc[0] == pytest.approx(expected, abs=1e-12)
    assert value["excluded"].fillna("").iloc[0] == ";".join(c for i, c in enumerate(CLASSES) if i not in ok)
    for name in ("results.csv", "results.json", "summary.csv", "comparisons.csv", "sweep.json"):
        assert (tmp_path / "sweep" / name).is_file()
    summ = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert len(summ) == len(rows) // 2
    assert ((summ["n_seeds"] == 2) | summ["mean"].isna()).all()  # NaN only for a class absent from test
    # second call: nothing recomputed, same numbers
    events.clear()
    again = evaluation.run_sweep(progress=events.append, **kwargs)
    assert again.n_computed == 0 and again.n_cached == n_cells
    assert {e.status for e in events} == {"cached"}
    pd.testing.assert_frame_equal(again.results, res.results)
    # a cell cut short is recomputed (with a warning), not a traceback on every later call
    damaged = tmp_path / "sweep" / "cells" / f"{cell['cell']}.npz"
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable; recomputing|unreadable .*recomputing"):
        third = evaluation.run_sweep(**kwargs)
    assert third.n_computed == 1 and third.n_cached == n_cells - 1
    pd.testing.assert_frame_equal(third.results, res.results)


def test_sweep_singlelabel_fine_tune_and_no_checkpoint(data, tmp_path, monkeypatch):
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    ckpt = _save_checkpoint(tmp_path / "a.pt", data)
    cfg = evaluation.EvalConfig(
        max_steps=2, eval_every=1, patience=1, batch_size=64, n_bootstrap=20, device="cpu", lr_grid=(1e-3,)
    )
    res = evaluation.run_sweep(
        [ckpt], data, "toy", "singlelabel", [1.0], [5], ["fine_tune"], tmp_path / "ft", config=cfg, show_progress=False
    )
    assert set(res.results["arm"]) == {"a:fine_tune"} and res.results["value"].notna().any()
    ref = evaluation.run_sweep(
        [],
        data,
        "toy",
        "multilabel",
        [1.0],
        1,
        ["random_init"],
        tmp_path / "ri",
        config=cfg,
        encoder_config=TINY,
        show_progress=False,
    )
    assert set(ref.results["arm"]) == {"random_init"}


def test_sweep_bad_input_is_a_clear_error(data, tmp_path):
    common = dict(data=data, out_dir=tmp_path / "x", show_progress=False)
    with pytest.raises(ConfigError, match="unknown arm"):
        evaluation.run_sweep([], label_set="toy", arms=["linear_probe", "magic"], **common)
    with pytest.raises(ConfigError, match="fractions"):
        evaluation.run_sweep([], label_set="toy", fractions="0,0.5", arms=["random_init"], **common)
    with pytest.raises(ConfigError, match="label set 'nope'.*toy"):
        evaluation.run_sweep([], label_set="nope", arms=["random_init"], **common)
    with pytest.raises(ConfigError, match="need at least one --checkpoint"):
        evaluation.run_sweep([], label_set="toy", arms=["linear_probe"], **common)
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluation.run_sweep([tmp_path / "missing.pt"], label_set="toy", **common)
    with pytest.raises(ConfigError, match="seeds"):
        evaluation.run_sweep([], label_set="toy", seeds=0, arms=["random_init"], **common)
    no_val = FakePrepared(n_patients=30)
    no_val.records.loc[no_val.records["split"] == "val", "split"] = "train"
    with pytest.raises(DataError, match="no labelled val records"):
        evaluation.run_sweep([], no_val, "toy", arms=["random_init"], out_dir=tmp_path / "nv", show_progress=False)
    with pytest.raises(ConfigError, match="max_steps"):
        evaluation.EvalConfig(max_steps=0)
    with pytest.raises(ConfigError, match="lr_grid"):
        evaluation.EvalConfig(lr_grid=(1e-3, 0.0))
    with pytest.raises(ConfigError, match="lr_selection"):
        evaluation.EvalConfig(lr_selection="best")


def test_cli_help_and_bad_input(capsys):
    from aclecg.cli import main

    for cmd in ("sweep", "embed"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
        assert "examples:" in capsys.readouterr().out
    code = main(
        [
            "sweep",
            "--data",
            "/nonexistent/prepared",
            "--label-set",
            "x",
            "--out",
            "/tmp/never",
            "--arms",
            "bogus",
            "--no-progress",
        ]
    )
    assert code == 2 and "unknown arm" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- real data (if any)
def _bundled_ptbxl():
    data_mod = pytest.importorskip("aclecg.data")
    path = Path(getattr(data_mod, "BUNDLED_DIR", ""))
    if not hasattr(data_mod, "PreparedDataset") or not (path / "manifest.json").is_file():
        pytest.skip("prepared bundled PTB-XL not present (run `python -m aclecg bundled` first)")
    return data_mod.PreparedDataset(path)


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_real_prepared_ptbxl_with_real_checkpoint(tmp_path, monkeypatch):
    """Real PreparedDataset + real load_encoder: probe of a tiny 8-lead encoder at 10 % labels."""
    ds = _bundled_ptbxl()
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    from aclecg.checkpoint import save_checkpoint
    from aclecg.models import build_encoder

    leads = ["II", "III", "V1", "V2", "V3", "V4", "V5", "V6"]
    enc = build_encoder({**TINY, "leads": leads}, seed=0)
    ckpt = tmp_path / "tiny" / "encoder.pt"
    save_checkpoint(
        ckpt,
        {
            "format_version": 1,
            "method": "toy",
            "hparams": {},
            "encoder_config": enc.config.to_dict(),
            "leads": leads,
            "fs": ds.fs,
            "n_samples": ds.n_samples,
            "data_fingerprint": ds.fingerprint,
            "model": {},
            "encoder": enc.state_dict(),
        },
    )
    res = evaluation.run_sweep(
        [ckpt],
        ds,
        "superdiagnostic",
        "multilabel",
        [0.1],
        1,
        ["linear_probe"],
        tmp_path / "s",
        config=evaluation.EvalConfig(n_bootstrap=50, device="cpu"),
        show_progress=False,
    )
    macro = res.results[res.results["metric"] == "macro_auroc"]
    assert len(macro) == 1 and 0.5 < macro["value"].iloc[0] <= 1.0
    keep, y, _ = ds.labels("superdiagnostic", "multilabel")
    assert macro["n_test"].iloc[0] == (ds.records["split"].to_numpy()[keep] == "test").sum()
    from aclecg.cli import main  # the embed command reuses the cache the sweep just filled

    assert main(["embed", "--checkpoint", str(ckpt), "--data", str(ds.path), "--out", str(tmp_path / "e.npy")]) == 0
    assert np.load(tmp_path / "e.npy").shape == (len(ds), len(leads) * TINY["feature_dim"])
    wrong = tmp_path / "wrong.pt"
    save_checkpoint(
        wrong,
        {
            "format_version": 1,
            "method": "toy",
            "hparams": {},
            "encoder_config": enc.config.to_dict(),
            "leads": leads,
            "fs": 500.0,
            "n_samples": 5000,
            "data_fingerprint": "",
            "model": {},
            "encoder": enc.state_dict(),
        },
    )
    with pytest.raises(CheckpointError, match="fs=500.0 Hz.*fs=100"):
        evaluation.run_sweep(
            [wrong], ds, "superdiagnostic", arms=["linear_probe"], out_dir=tmp_path / "w", show_progress=False
        )


@pytest.mark.slow
def test_full_probe_sweep_on_bundled_ptbxl(tmp_path, monkeypatch):
    """The default fractions x 3 seeds, random_init arm with the small preset, on the real bundled data."""
    ds = _bundled_ptbxl()
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    res = evaluation.run_sweep(
        [],
        ds,
        "superdiagnostic",
        "multilabel",
        evaluation.DEFAULT_FRACTIONS,
        3,
        ["random_init"],
        tmp_path / "s",
        config=evaluation.EvalConfig(device="cpu"),
        show_progress=False,
    )
    macro = res.summary[res.summary["metric"] == "macro_auroc"].set_index("fraction")["mean"]
    assert macro.between(0.5, 1.0).all() and macro.loc[1.0] > macro.loc[0.01]


def test_rotate_folds_moves_test_and_val_and_keeps_the_official_split_for_fold_10():
    import pandas as pd

    from aclecg.errors import ConfigError
    from aclecg.evaluation import rotate_folds

    records = pd.DataFrame({"fold": list(range(1, 11)) * 2, "split": (["train"] * 8 + ["val", "test"]) * 2})
    assert rotate_folds(records, 10)["split"].tolist() == records["split"].tolist()
    rot = rotate_folds(records, 9)
    assert set(rot.loc[rot["split"] == "test", "fold"]) == {9}
    assert set(rot.loc[rot["split"] == "val", "fold"]) == {8}
    assert set(rot.loc[rot["split"] == "train", "fold"]) == {1, 2, 3, 4, 5, 6, 7, 10}
    assert set(rotate_folds(records, 1).query("split == 'val'")["fold"]) == {10}
    assert records["split"].tolist()[:10] == ["train"] * 8 + ["val", "test"]  # the input is not modified
    with pytest.raises(ConfigError, match="test_fold"):
        rotate_folds(records, 11)


def test_encode_windows_equals_the_batched_extraction_and_checks_compatibility(bundled_prepared):
    from aclecg.data import PreparedDataset
    from aclecg.errors import CheckpointError

    ds = PreparedDataset(bundled_prepared)
    src = evaluation.load_source(REPO / "checkpoints" / "acl_ecg" / "encoder.pt")
    rows = np.array([0, 5, 17])
    lead_idx = evaluation.check_compatible(src.meta, ds)
    direct = evaluation.extract_embeddings(src.encoder, ds, lead_idx, rows, device="cpu")
    windows = evaluation.encode_windows(src, ds.signals[rows], ds.fs, ds.leads, batch_size=2)
    np.testing.assert_allclose(windows, direct, rtol=1e-5, atol=1e-5)
    lead_feats = evaluation.encode_windows(src, ds.signals[rows], ds.fs, ds.leads, output="lead_features")
    assert lead_feats.shape[:2] == (3, len(src.leads))
    with pytest.raises(CheckpointError, match="fs=500"):
        evaluation.encode_windows(src, ds.signals[rows], 500.0, ds.leads)
