"""Your own encoder in the study: ``--encoder-factory MODULE:FACTORY`` + ``--encoder-contract FILE`` enters sweeps
(linear probe), embeddings and neighbours like a checkpoint, checked against the data the same way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aclecg import evaluation
from aclecg.cli import main
from aclecg.contract import implied
from aclecg.errors import CheckpointError, ConfigError
from aclecg.evaluation.custom import load_contract_file, load_factory_source
from tests.test_evaluate import FakePrepared

FACTORY = "tests.helpers.tiny_encoder:build"


def _contract(tmp_path: Path, fs: float, n: int, name: str = "c.json", **changes) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({**implied(fs, n).to_dict(), **changes}))
    return path


def test_a_factory_encoder_enters_a_sweep_beside_the_references(tmp_path):
    data = FakePrepared(n_patients=60, t=64)
    contract = _contract(tmp_path, data.fs, data.n_samples)
    source = load_factory_source(FACTORY, contract)
    assert source.meta["embedding_dim"] == 8 and source.key.startswith("factory-")
    cfg = evaluation.EvalConfig(n_bootstrap=10, device="cpu")
    kwargs = dict(fractions=[1.0], seeds=1, arms=["linear_probe"], config=cfg, show_progress=False)
    out = tmp_path / "sweep"
    result = evaluation.run_sweep([source], data, "toy", out_dir=out, cache_dir=tmp_path / "emb", **kwargs)
    arms = set(result.summary["arm"])
    assert arms == {"build:linear_probe"}
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["checkpoints"]["build"]["method"] == FACTORY
    assert meta["reference_encoder_config"]["stem"] == "strided"  # the small preset: a factory has no aclecg config
    macro = result.summary[
        (result.summary["arm"] == "build:linear_probe") & (result.summary["metric"] == "macro_auroc")
    ]
    assert 0.5 < float(macro["mean"].iloc[0]) <= 1.0  # the tones of the toy classes are found
    again = evaluation.run_sweep(
        [load_factory_source(FACTORY, contract)], data, "toy", out_dir=out, cache_dir=tmp_path / "emb", **kwargs
    )
    assert again.n_cached == 1 and again.n_computed == 0  # the same weights give the same cell keys
    with pytest.raises(ConfigError, match="fine_tune needs an aclecg checkpoint; build"):
        evaluation.run_sweep([source], data, "toy", out_dir=tmp_path / "ft", **{**kwargs, "arms": ["fine_tune"]})


def test_a_factory_encoder_is_checked_against_the_data_like_a_checkpoint(tmp_path):
    data = FakePrepared(n_patients=20, t=64)
    wide = _contract(tmp_path, data.fs, data.n_samples, band_hz=[0.05, 22.5])
    source = load_factory_source(FACTORY, wide)
    with pytest.raises(CheckpointError, match=r"build does not fit this data: trained on 0\.05-22\.5 Hz band-passed"):
        evaluation.cached_embeddings(source, data, tmp_path / "emb")
    with pytest.raises(ConfigError, match=r"maps \(2, 12, 64\) to \(2, 8, 64\); expected embeddings \(2, E\)"):
        load_factory_source("tests.helpers.tiny_encoder:build_wrong_shape", wide)
    with pytest.raises(ConfigError, match="returned function, not a module"):
        load_factory_source("tests.helpers.tiny_encoder:build_not_a_module", wide)
    with pytest.raises(ConfigError, match="has no callable nothing"):
        load_factory_source("tests.helpers.tiny_encoder:nothing", wide)
    with pytest.raises(ConfigError, match="must be MODULE:FACTORY"):
        load_factory_source("os.system('x')", wide)
    toml = tmp_path / "c.toml"
    toml.write_text("[contract]\nfs = 50\nn_samples = 64\nband_hz = [0.5, 22.5]\n")
    assert load_contract_file(toml) == implied(50, 64)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match=r"--encoder-contract .*bad\.json: not valid json"):
        load_contract_file(tmp_path / "bad.json")


def test_cli_embed_sweep_and_neighbours_take_a_factory_encoder(bundled_prepared, tmp_path, capsys):
    contract = _contract(tmp_path, 100, 1000)
    common = ["--encoder-factory", FACTORY, "--encoder-contract", str(contract), "--data", str(bundled_prepared)]
    cache = ["--cache-dir", str(tmp_path / "emb")]
    assert main(["embed", *common, "--out", str(tmp_path / "e.npy")]) == 0
    emb = np.load(tmp_path / "e.npy")
    assert emb.shape[1] == 8 and np.isfinite(emb).all()
    assert main(["neighbours", *common, "--record", "1", "-k", "2", *cache]) == 0
    assert "2 nearest records to record 1" in capsys.readouterr().out
    sweep = ["sweep", *common, "--label-set", "superdiagnostic", "--fractions", "1", "--seeds", "1"]
    out = tmp_path / "sweep"
    assert main([*sweep, "--arms", "linear_probe", "--bootstrap", "10", "--no-progress", "--out", str(out)]) == 0
    assert "build:linear_probe" in set(json.loads((out / "sweep.json").read_text())["arms"])
    capsys.readouterr()
    assert main(["embed", "--encoder-factory", FACTORY, "--data", str(bundled_prepared)]) == 2
    assert "needs --encoder-contract FILE" in capsys.readouterr().err
    assert main(["embed", *common[:3], str(_contract(tmp_path, 500, 5000, "c500.json")), *common[4:]]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "fs=500.0 Hz; this data is at fs=100.0 Hz" in err


@pytest.mark.slow  # fits a probe on every bundled record's embedding: about 10 s
def test_cli_attribute_explains_a_factory_encoder_by_occlusion(bundled_prepared, tmp_path, capsys):
    contract = _contract(tmp_path, 100, 1000)
    common = ["--encoder-factory", FACTORY, "--encoder-contract", str(contract), "--data", str(bundled_prepared)]
    out = tmp_path / "attr.csv"
    code = main(["attribute", *common, "--record", "1", "--cache-dir", str(tmp_path / "emb"), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(out)
    assert {"region", "lead"} <= set(table["kind"]) and np.isfinite(table["drop"]).all()
    assert set(table[table["kind"] == "region"]["unit"]) == {"septal", "anterior", "lateral", "inferior"}
    capsys.readouterr()
    assert main(["attribute", "--data", str(bundled_prepared), "--record", "1"]) == 2
    assert "give an encoder: --checkpoint FILE or --encoder-factory" in capsys.readouterr().err
