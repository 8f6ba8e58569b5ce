"""The preprocessing contract (aclecg.contract): recorded by prepare and by training, implied for older files (said
once), checked in full against the data with every difference named in one line, and printed on model cards."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from aclecg import contract
from aclecg.contract import Contract, ContractWarning, implied
from aclecg.errors import CheckpointError, ConfigError
from aclecg.leads import LEADS
from tests.helpers import e20
from tests.helpers.hostile import challenge_record

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_said(monkeypatch):
    """Forget which files were already said to lack a contract (the warning is once per process)."""
    monkeypatch.setattr(contract, "_SAID", set())


def _prepared(tmp_path: Path, band=(0.05, 150.0)) -> Path:
    from aclecg.data import prepare_dataset

    raw = tmp_path / "raw"
    for name in ("R1", "R2"):
        challenge_record(raw, name)
    prepare_dataset(raw, tmp_path / "out", "challenge", band_hz=band, progress=False)
    return tmp_path / "out"


def test_prepare_records_the_contract_and_an_old_manifest_implies_it_once(tmp_path, fresh_said):
    from aclecg.data import PreparedDataset

    out = _prepared(tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    # what prepare really did: the high edge capped at 0.45 fs, z-score per window and lead, mV, the lead order
    assert manifest["contract"] == {
        "fs": 100.0,
        "n_samples": 1000,
        "seconds": 10.0,
        "band_hz": [0.05, 45.0],
        "filter": "butterworth-zero-phase",
        "filter_order": 2,
        "resample": "resample_poly",
        "normalisation": "zscore-per-window-lead",
        "units": "mV",
        "leads": list(LEADS),
        "version": contract.PREPROCESSING_VERSION,
    }
    ds = PreparedDataset(out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a recorded contract is read silently
        assert ds.contract == Contract.from_dict(manifest["contract"])
    fingerprint = ds.compute_fingerprint()
    del manifest["contract"]  # a dataset prepared before the contract existed
    (out / "manifest.json").write_text(json.dumps(manifest))
    old = PreparedDataset(out)
    with pytest.warns(ContractWarning, match=r"records no preprocessing contract.*0\.05-45 Hz"):
        assert old.contract == ds.contract  # implied by its own preprocessing parameters
    assert old.compute_fingerprint() == fingerprint == old.fingerprint  # the fingerprint does not cover it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per dataset
        assert PreparedDataset(out).contract == ds.contract


def test_every_difference_is_named_in_one_line():
    trained = implied(100, 1000)
    data = SimpleNamespace(
        fs=100.0, n_samples=1000, leads=list(LEADS), contract=implied(100, 1000, band_hz=(0.05, 150))
    )
    from aclecg.evaluation import check_compatible

    meta = {"fs": 100.0, "n_samples": 1000, "leads": list(LEADS), "contract": trained.to_dict()}
    with pytest.raises(CheckpointError) as info:
        check_compatible(meta, data, "ck.pt")
    line = str(info.value)
    assert "\n" not in line
    assert (
        "ck.pt does not fit this data: trained on 0.5-40 Hz band-passed, z-scored windows; this data is 0.05-45 Hz"
        in line
    )
    other = Contract.from_dict({**trained.to_dict(), "fs": 500.0, "normalisation": "none", "units": "uV"})
    with pytest.raises(CheckpointError) as info:
        check_compatible({**meta, "fs": 500.0, "contract": other.to_dict()}, data, "ck.pt")
    line = str(info.value)
    for words in ("fs=500.0 Hz", "fs=100.0 Hz", "0.05-45 Hz", "normalisation none", "units uV"):
        assert words in line
    # the same contract on a subset of the leads fits; a newer preprocessing version alone is only a warning
    sub = Contract.from_dict({**data.contract.to_dict(), "leads": ["II", "V1"]})
    assert check_compatible({**meta, "leads": ["II", "V1"], "contract": sub.to_dict()}, data) == [1, 6]
    newer = Contract.from_dict({**data.contract.to_dict(), "version": contract.PREPROCESSING_VERSION + 1})
    with pytest.warns(ContractWarning, match="preprocessing version"):
        check_compatible({**meta, "contract": newer.to_dict()}, data)


def test_contract_from_plain_data_refuses_bad_fields_naming_them():
    good = implied(100, 1000).to_dict()
    assert Contract.from_dict({k: v for k, v in good.items() if k != "seconds"}).seconds == 10.0
    with pytest.raises(ConfigError, match=r"c\.json: unknown contract field\(s\) \['bandpass'\]"):
        Contract.from_dict({**good, "bandpass": [1, 2]}, "c.json")
    with pytest.raises(ConfigError, match="c.json: the contract lacks band_hz"):
        Contract.from_dict({k: v for k, v in good.items() if k != "band_hz"}, "c.json")
    with pytest.raises(ConfigError, match="c.json: contract field 'leads'"):
        Contract.from_dict({**good, "leads": ["I", "X9"]}, "c.json")
    with pytest.raises(ConfigError, match="c.json: contract field 'fs'"):
        Contract.from_dict({**good, "fs": -1}, "c.json")


def test_shipped_checkpoint_loads_unchanged_with_the_implied_contract_said_once(fresh_said):
    from aclecg.checkpoint import load_encoder, sha256_file, sidecar_digest

    path = e20.CHECKPOINTS / "acl_ecg" / "encoder.pt"  # written before checkpoints recorded their contract
    before = sha256_file(path)
    with pytest.warns(ContractWarning, match="acl_ecg/encoder.pt records no preprocessing contract"):
        _, meta = load_encoder(path)
    assert Contract.from_dict(meta["contract"]) == implied(100, 1000, LEADS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_encoder(path)  # said once
    assert sha256_file(path) == before == sidecar_digest(path)


def test_a_checkpoint_trained_on_other_preprocessing_is_refused_on_the_bundled_data(bundled_prepared, tmp_path):
    from aclecg.checkpoint import load_checkpoint, save_checkpoint
    from aclecg.evaluation import load_source, run_sweep

    payload = load_checkpoint(REPO / "checkpoints" / "acl_ecg" / "encoder.pt")
    payload = {k: v for k, v in payload.items() if k not in ("integrity", "checkpoint_sha256")}
    payload["contract"] = implied(100, 1000, band_hz=(0.05, 150)).to_dict()
    save_checkpoint(tmp_path / "wide.pt", payload)
    assert load_source(tmp_path / "wide.pt").meta["contract"]["band_hz"] == [0.05, 45.0]
    with pytest.raises(
        CheckpointError, match=r"trained on 0\.05-45 Hz band-passed, z-scored windows; this data is 0\.5-40 Hz"
    ):
        run_sweep(
            [tmp_path / "wide.pt"], bundled_prepared, "superdiagnostic", out_dir=tmp_path / "s", show_progress=False
        )


def test_model_card_prints_the_contract(tmp_path):
    from aclecg.results.report import contract_row

    row = contract_row({"fs": 100.0, "n_samples": 1000, "leads": list(LEADS)})
    assert row.startswith("| preprocessing | ") and "0.5-40 Hz band-passed" in row and "(implied" in row
    recorded = implied(100, 1000, band_hz=(0.05, 150)).to_dict()
    row = contract_row({"fs": 100.0, "n_samples": 1000, "leads": list(LEADS), "contract": recorded})
    assert "0.05-45 Hz band-passed" in row and "implied" not in row


def test_every_shipped_model_card_states_its_preprocessing_and_what_physio_meant():
    """The cards under checkpoints/ carry the row ship_checkpoint writes today, from their own checkpoint."""
    import warnings
    from pathlib import Path

    from aclecg.checkpoint import load_checkpoint
    from aclecg.results.report import augmentation_cell, contract_row

    cards = sorted((Path(__file__).resolve().parent.parent / "checkpoints").glob("*/README.md"))
    assert len(cards) >= 12
    for card in cards:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = load_checkpoint(card.parent / "encoder.pt")
        text = card.read_text()
        assert contract_row(payload) in text.splitlines(), card
        assert f"| augmentation | {augmentation_cell(payload)} |" in text.splitlines(), card
