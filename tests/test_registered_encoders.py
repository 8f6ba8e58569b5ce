"""Your own encoder in the app: `aclecg encoders add` registers MODULE:FACTORY + contract once from the command line,
and every encoder picker (and every --checkpoint) takes the registration; the app only reads the folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aclecg.checkpoint import discover_checkpoints
from aclecg.cli import main
from aclecg.contract import implied
from aclecg.errors import ConfigError
from aclecg.evaluation import load_source

FACTORY = "tests.helpers.tiny_encoder:build"
REPO = Path(__file__).resolve().parent.parent


def _contract(tmp_path: Path) -> Path:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(implied(100, 1000).to_dict()))
    return path


def _register(tmp_path: Path, name: str = "mine") -> Path:
    root = tmp_path / "encoders"
    args = ["encoders", "add", name, "--encoder-factory", FACTORY, "--encoder-contract", str(_contract(tmp_path))]
    assert main([*args, "--root", str(root)]) == 0
    return root


def test_a_registered_encoder_is_listed_loaded_and_taken_by_checkpoint_options(tmp_path, bundled_prepared, capsys):
    root = _register(tmp_path)
    path = root / "mine.encoder.json"
    assert json.loads(path.read_text())["factory"] == FACTORY
    found = discover_checkpoints(tmp_path / "none", tmp_path / "none", root)
    assert found == {"mine (yours)": path}
    source = load_source(path)
    assert source.label == "mine" and source.meta["embedding_dim"] == 8 and source.key.startswith("factory-")
    out = tmp_path / "e.npy"
    assert main(["embed", "--checkpoint", str(path), "--data", str(bundled_prepared), "--out", str(out)]) == 0
    assert np.load(out).shape[1] == 8
    capsys.readouterr()
    assert main(["encoders", "list", "--root", str(root)]) == 0
    assert FACTORY in capsys.readouterr().out
    assert main(["encoders", "remove", "mine", "--root", str(root)]) == 0
    assert not path.exists() and discover_checkpoints(tmp_path / "none", tmp_path / "none", root) == {}


def test_bad_names_and_damaged_registrations_are_one_line_errors(tmp_path, capsys):
    contract = _contract(tmp_path)
    for name in ("../up", "a/b", "", ".hidden"):
        args = ["encoders", "add", name, "--encoder-factory", FACTORY, "--encoder-contract", str(contract)]
        assert main([*args, "--root", str(tmp_path / "enc")]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "enc").exists() or not any((tmp_path / "enc").iterdir())
    bad = tmp_path / "broken.encoder.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable registered encoder"):
        load_source(bad)
    bad.write_text(json.dumps({"contract": implied(100, 1000).to_dict()}))
    with pytest.raises(ConfigError, match="needs a 'factory'"):
        load_source(bad)
    bad.write_text(json.dumps({"factory": "os:system", "contract": implied(100, 1000).to_dict()}))
    with pytest.raises(ConfigError, match=r"system\(\) failed: TypeError"):  # called with no arguments
        load_source(bad)


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
def test_the_representations_page_maps_a_registered_encoder(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    root = _register(tmp_path)
    monkeypatch.setenv("ACLECG_ENCODERS", str(root))
    monkeypatch.setenv("ACLECG_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("ACLECG_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("ACLECG_UMAP_CACHE", str(tmp_path / "cache" / "umap"))
    monkeypatch.setenv("ACLECG_PUBLISHED", str(tmp_path / "published"))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/5_Representations.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="rep_ckpt").options == ["mine (yours)"]
    assert at.selectbox(key="rep_ckpt").value == "mine (yours)"
    assert at.get("vega_lite_chart"), "no map drawn for the registered encoder"


def test_region_similarity_explains_why_an_encoder_without_per_lead_features_has_none():
    from aclecg.analysis.similarity import region_similarity
    from aclecg.errors import DataError
    from aclecg.leads import LEADS, default_region_map

    with pytest.raises(DataError, match="not one per lead \\(12\\): region similarity needs per-lead features"):
        region_similarity(np.ones((5, 1, 8)), LEADS, default_region_map())
