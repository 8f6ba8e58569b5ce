"""Adding a dataset reader or a self-supervised method is one class plus its registration: the rest picks it up.

Each test registers a dummy in this file only (no other file is edited), checks that ``prepare``, the command
line and the lists see it, and unregisters it afterwards.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from aclecg import cli
from aclecg.constraints import DATA_FORMATS, Constraint, Real
from aclecg.data.base import READERS, Reader, RecordItem, register_reader
from aclecg.data.records import Skipped
from aclecg.errors import ConfigError
from aclecg.leads import LEADS


# ------------------------------------------------------------------------------------------------ a dummy reader
class ToyReader(Reader):
    """Records stored as ``<id>.npy`` arrays (12 leads x samples, mV, 100 Hz); even ids are class A, odd B."""

    format = "toy"
    stratify_by = "toy_classes"

    def _locate(self) -> tuple[list[RecordItem], list[Skipped]]:
        items = []
        for path in sorted(self.root.glob("*.npy")):
            labels = {"toy_classes": ["A" if int(path.stem) % 2 == 0 else "B"]}
            items.append(RecordItem(str(path), self.relative(path), path.stem, f"p{path.stem}", labels))
        return items, []

    def _read_signals(self, item: RecordItem) -> tuple[np.ndarray, list[str], float]:
        return np.load(item.path), list(LEADS), 100.0

    def label_sets(self) -> dict[str, list[str]]:
        return {"toy_classes": ["A", "B"]}


@pytest.fixture
def toy_reader() -> Iterator[type[Reader]]:
    register_reader(ToyReader)
    try:
        yield ToyReader
    finally:
        READERS.unregister("toy")


def _toy_folder(root: Path, n: int = 12) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(1000) / 100.0
    for i in range(n):
        beat = np.sin(2 * np.pi * (1.0 + 0.1 * i) * t)
        np.save(root / f"{i}.npy", 0.5 * beat[None, :] + 0.05 * rng.normal(size=(12, t.size)))
    return root


def _format_action(parser: argparse.ArgumentParser) -> argparse.Action:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in sub.choices["prepare"]._actions if "--format" in a.option_strings)


def test_the_built_in_formats_are_the_registry_and_the_torch_free_tuple():
    assert tuple(READERS.names()) == DATA_FORMATS
    assert tuple(_format_action(cli.build_parser()).choices) == DATA_FORMATS
    assert {name: cls.stratify_by for name, cls in READERS.items()} == {
        "ptbxl": "superdiagnostic",
        "cpsc2018": "cpsc2018",
        "challenge": "snomed",
    }
    assert all(cls.format == name for name, cls in READERS.items())


def test_a_registered_reader_is_prepared_by_the_command_line(toy_reader, tmp_path: Path, capsys):
    from aclecg.data import PreparedDataset, make_reader

    raw = _toy_folder(tmp_path / "raw")
    action = _format_action(cli.build_parser())
    assert "toy" in action.choices and list(action.choices)[-1] == "toy"
    assert isinstance(make_reader("toy", raw), ToyReader)

    out = tmp_path / "prepared"
    code = cli.main(["prepare", "--format", "toy", "--input", str(raw), "--output", str(out), "--workers", "0"])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "toy" and manifest["counts"]["records_kept"] == 12
    assert manifest["preprocessing"]["folds"] == "patient-wise stratified by toy_classes (seed 0)"
    assert manifest["label_sets"] == {"toy_classes": ["A", "B"]}
    ds = PreparedDataset(out)
    assert len(ds) == 12 and set(ds.records["labels_toy_classes"]) == {"A", "B"}


def test_an_unregistered_format_is_refused_with_the_registered_ones_listed(tmp_path: Path, capsys):
    from aclecg.data import make_reader

    with pytest.raises(ConfigError, match="unknown format 'toy'; expected one of ptbxl, cpsc2018, challenge"):
        make_reader("toy", tmp_path)
    with pytest.raises(SystemExit):
        cli.main(["prepare", "--format", "toy", "--input", str(tmp_path), "--output", str(tmp_path / "o")])
    assert "invalid choice: 'toy' (choose from 'ptbxl', 'cpsc2018', 'challenge')" in capsys.readouterr().err


def test_a_reader_without_its_format_or_stratification_is_not_registered():
    class Nameless(ToyReader):
        format = ""

    class Unstratified(ToyReader):
        format = "unstratified"
        stratify_by = ""

    for cls in (Nameless, Unstratified):
        with pytest.raises(TypeError, match="needs a non-empty class attribute"):
            register_reader(cls)
    assert tuple(READERS.names()) == DATA_FORMATS


# ------------------------------------------------------------------------------------------------ a dummy method
@pytest.fixture
def toy_method() -> Iterator[type]:
    import torch

    from aclecg.methods import METHODS, SSLMethod, register_method

    class ToySSL(SSLMethod):
        """Pulls the embeddings of the two views together (a test's method, not a real objective)."""

        NAME = "toy_ssl"
        TITLE = "Toy SSL"
        PAPER = "none (a test's method)"
        DESCRIPTION = "Mean squared distance between the two views' embeddings."
        DEFAULTS: ClassVar[dict[str, Any]] = {"augmentation": "standard", "scale": 1.0}
        PARAMS: ClassVar[dict[str, Constraint]] = {"scale": Real(0, lo_open=True)}

        def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> dict[str, torch.Tensor]:
            z1, z2 = self.encoder(view1).embedding, self.encoder(view2).embedding
            return {"loss": self.hparams["scale"] * (z1 - z2).pow(2).mean()}

    register_method(ToySSL)
    try:
        yield ToySSL
    finally:
        METHODS.unregister("toy_ssl")


def test_a_registered_method_is_listed_built_and_validated(toy_method, capsys):
    from aclecg.commands.methods import collect
    from aclecg.methods import create_method, list_methods, loss_terms
    from aclecg.training import PretrainConfig, build_method

    assert [m.name for m in list_methods()][-1] == "toy_ssl"
    assert loss_terms("toy_ssl") == ("loss",)
    tiny = {"stem_width": 4, "widths": [8], "blocks": [1], "kernel_size": 3, "feature_dim": 8}
    method = build_method(PretrainConfig(method="toy_ssl", encoder=tiny, method_hparams={"scale": 2.0}))
    assert isinstance(method, toy_method) and method.hparams["scale"] == 2.0
    with pytest.raises(ConfigError, match="scale"):
        build_method(PretrainConfig(method="toy_ssl", encoder=tiny, method_hparams={"scale": -1.0}))
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        create_method("toy_ssl", tiny, temperature=0.1)

    rows = {row["name"]: row for row in collect(tiny)}
    assert rows["toy_ssl"]["title"] == "Toy SSL" and rows["toy_ssl"]["parameters"]["trainable"] > 0


def test_the_methods_command_lists_a_registered_method(toy_method, monkeypatch, capsys):
    """``aclecg methods`` prints every registered method, the dummy included (counts stubbed: no encoders built)."""
    from aclecg.commands import methods as command
    from aclecg.methods import list_methods

    monkeypatch.setattr(
        command,
        "collect",
        lambda encoder, leads: [
            {**m.to_dict(), "parameters": {"encoder": 1, "trainable": 1, "total": 1}} for m in list_methods()
        ],
    )
    assert cli.main(["methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("toy_ssl ") and "none (a test's method)" in line for line in lines)


def test_an_unregistered_method_is_gone_after_its_test():
    from aclecg.methods import METHODS, list_methods
    from aclecg.training import PretrainConfig, build_method

    assert "toy_ssl" not in METHODS and "toy_ssl" not in [m.name for m in list_methods()]
    with pytest.raises(ConfigError, match="unknown method 'toy_ssl'"):
        build_method(PretrainConfig(method="toy_ssl"))


# ------------------------------------------------------------------------------------------------ the arms
def test_the_arms_registry_is_the_torch_free_tuple_and_drives_the_lists():
    from aclecg.constraints import ARMS
    from aclecg.evaluation.arms import ARM_KINDS, baseline_arms, reference_arms, trained_arms

    assert tuple(ARM_KINDS.names()) == ARMS
    assert [a.name for a in reference_arms()] == ["supervised", "reference_cnn", "random_init"]
    assert [a.name for a in trained_arms()] == ["fine_tune", "supervised", "reference_cnn"]
    assert [a.name for a in baseline_arms()] == ["supervised", "random_init"]  # the p_vs_* columns


def test_the_per_sweep_report_draws_every_reference_arm_as_one():
    """The reference CNN is a reference arm in the report too: after the methods, between the other two, dashed."""
    from aclecg.results.report import _arm_order

    arms = ["random_init", "reference_cnn", "simclr:linear_probe", "supervised", "acl_ecg:linear_probe"]
    assert _arm_order(arms, "acl_ecg") == [
        "acl_ecg:linear_probe",
        "simclr:linear_probe",
        "supervised",
        "reference_cnn",
        "random_init",
    ]


# ------------------------------------------------------------------------------------------------ a dummy metric
def _brier(y_true: np.ndarray, y_score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-class Brier score of sigmoid probabilities for each weight row (lower is better)."""
    err = (1.0 / (1.0 + np.exp(-y_score)) - y_true) ** 2
    return (weights @ err) / weights.sum(axis=1, keepdims=True)


@pytest.fixture
def brier() -> Iterator[Any]:
    from aclecg.metrics import METRICS, Metric, register_metric

    metric = register_metric(Metric("brier", "macro Brier score", _brier, higher_is_better=False))
    try:
        yield metric
    finally:
        METRICS.unregister("brier")


def test_a_registered_metric_reaches_the_tables_and_reports_without_retraining(brier, tmp_path: Path, monkeypatch):
    """Cells computed before the metric existed: rerunning the sweep reuses every cell (nothing trained) and the
    tables, the per-sweep report, the study table and the hierarchical bootstrap all carry the new metric."""
    from aclecg import evaluation
    from aclecg.metrics import METRICS
    from aclecg.results import hypothesis, report, study
    from tests.test_evaluate import FakePrepared, _save_checkpoint

    data = FakePrepared(n_patients=40, t=64)
    ckpt = _save_checkpoint(tmp_path / "acl_ecg" / "encoder.pt", data)
    cfg = evaluation.EvalConfig(n_bootstrap=20, device="cpu")
    out = tmp_path / "sweeps" / "multilabel-test10-probe"

    def sweep() -> Any:
        args = ([ckpt], data, "toy", "multilabel", [1.0], 1, ["linear_probe", "random_init"], out)
        return evaluation.run_sweep(*args, config=cfg, show_progress=False, cache_dir=tmp_path / "cache")

    METRICS.unregister("brier")
    first = sweep()  # the cells, computed without the metric
    assert first.n_computed == 2 and "macro_brier" not in set(first.results["metric"])
    from aclecg.metrics import register_metric

    register_metric(brier)
    again = sweep()
    assert again.n_computed == 0 and again.n_cached == 2  # no retraining
    rows = again.results[again.results["metric"] == "macro_brier"]
    assert len(rows) == 2 and rows["value"].between(0, 1).all() and (rows["ci_low"] <= rows["ci_high"]).all()
    assert {"brier:A", "brier:B", "brier:C"} <= set(again.results["metric"])
    assert "macro_brier" in set(again.summary["metric"])

    drawn: list[str] = []  # the figures are not drawn here (matplotlib is slow to start): their metrics are noted
    monkeypatch.setattr(report, "plot_sweep", lambda sweep, metric, path, focus: drawn.append(metric) or path)
    text = report.build_report([out], tmp_path / "results.md", focus="acl_ecg").read_text()
    assert "### macro Brier score" in text and drawn == ["macro_auroc", "macro_auprc", "macro_brier"]

    cells = study.load_cells(tmp_path / "sweeps")
    assert cells["brier"].between(0, 1).all()
    assert not study.paper_table(cells, "multilabel", "brier").empty

    with (
        np.load(next((out / "cells").glob("acl_ecg*__f1__*.npz"))) as a,
        np.load(next((out / "cells").glob("random_init*__f1__*.npz"))) as b,
    ):
        run = hypothesis.RunScores(a["y_true"], [a["y_score"]], [b["y_score"]])
    assert np.isfinite(hypothesis.hierarchical_bootstrap([run], "brier", n_resamples=50).diff)


# -------------------------------------------------------------------------------------------------- a dummy page
def test_a_registered_page_is_listed_and_rendered_by_the_app(tmp_path, monkeypatch):
    """A page is its file plus one registration: the app's navigation (st.navigation in app.py) then serves it."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from aclecg import app_pages
    from aclecg.registry import Registry

    for name in ("RUNS", "CHECKPOINTS", "UMAP_CACHE", "PUBLISHED"):  # an empty project: Home stays quick
        monkeypatch.setenv(f"ACLECG_{name}", str(tmp_path / name.lower()))
    page_file = tmp_path / "9_Dummy.py"
    page_file.write_text('import streamlit as st\n\nst.title("Dummy page")\nst.write("served by the registry")\n')
    registry: Registry[app_pages.AppPage] = Registry("app page")
    for page in app_pages.app_pages():
        registry.register(page.url_path, page)
    monkeypatch.setattr(app_pages, "APP_PAGES", registry)
    app_pages.register_page(app_pages.AppPage("dummy", str(page_file), "Dummy", ":material/star:"))
    assert [p.url_path for p in app_pages.app_pages()][-1] == "dummy"

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page(str(page_file)).run()  # ValueError unless st.navigation registered the page
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Dummy page"]
    assert "served by the registry" in [m.value for m in at.markdown]


def test_the_pages_registry_lists_every_page_file_once():
    from aclecg.app_pages import app_pages

    repo = Path(__file__).resolve().parents[1]
    files = [page.file for page in app_pages()]
    assert all((repo / f).is_file() for f in files)
    assert sorted(files) == sorted(f"pages/{p.name}" for p in (repo / "pages").glob("[0-9]*.py"))
    assert len({page.url_path for page in app_pages()}) == len(files)
