"""Prepared-dataset round trip, windowing, atomicity, fingerprints and the bundled cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import wfdb
from scipy import signal as sps

import aclecg.data.prepare as prep
from aclecg.cli import main
from aclecg.data import (
    BUNDLED_RAW_DIR,
    PreparedDataset,
    available_datasets,
    ensure_bundled,
    is_prepared,
    prepare_dataset,
)
from aclecg.errors import DataError
from aclecg.leads import LEADS, canonical_lead


def test_round_trip_on_bundled_ptbxl(bundled_prepared):
    ds = PreparedDataset(bundled_prepared)
    assert len(ds) == 987 and ds.signals.shape == (987, 12, 1000) and ds.signals.dtype == np.float32
    assert isinstance(ds.signals, np.memmap)
    assert ds.fs == 100 and ds.n_samples == 1000 and ds.leads == LEADS
    assert [int((ds.records["fold"] == k).sum()) for k in range(1, 11)] == [101, 92, 77, 97, 85, 76, 108, 87, 136, 128]
    assert set(ds.records.loc[ds.records["fold"] <= 8, "split"]) == {"train"}
    assert len(ds.split_indices("val")) == 136 and len(ds.split_indices("test")) == 128
    keep, y, classes = ds.labels("superdiagnostic")
    assert dict(zip(classes, y.sum(0).astype(int).tolist())) == {
        "CD": 193,
        "HYP": 97,
        "MI": 183,
        "NORM": 528,
        "STTC": 230,
    }
    assert len(keep) == 975 and (y.sum(1) >= 1).all()
    keep1, y1, _ = ds.labels("superdiagnostic", "singlelabel")
    assert len(keep1) == 773 and (y1.sum(1) == 1).all() and set(keep1) <= set(keep)
    for name in ds.label_sets:
        for protocol in ("multilabel", "singlelabel"):
            assert len(ds.labels(name, protocol)[0]) == ds.manifest["counts"]["protocols"][name][protocol]
    _, y_all, c_all = ds.labels("all", drop_empty_classes=True)
    assert (y_all.sum(0) > 0).all() and len(c_all) <= 71
    with pytest.raises(DataError, match="unknown label set 'nope'"):
        ds.labels("nope")
    with pytest.raises(DataError, match="unknown protocol"):
        ds.labels("all", "multi")


def test_manifest_contract(bundled_prepared):
    m = json.loads((bundled_prepared / "manifest.json").read_text())
    for key in (
        "format_version",
        "dataset",
        "format",
        "fs",
        "seconds",
        "n_samples",
        "leads",
        "label_sets",
        "preprocessing",
        "counts",
        "skipped",
        "fingerprint",
    ):
        assert key in m
    assert m["leads"] == list(LEADS) and m["skipped"] == [] and len(m["fingerprint"]) == 64
    assert m["counts"]["protocols"]["superdiagnostic"] == {"multilabel": 975, "singlelabel": 773}
    ds = PreparedDataset(bundled_prepared)
    assert ds.compute_fingerprint() == ds.fingerprint
    ds.verify()


def test_signals_equal_an_independent_preprocessing(bundled_prepared):
    """Rows equal wfdb.rdrecord -> 0.5-40 Hz zero-phase Butterworth -> z-score, computed here with scipy."""
    ds = PreparedDataset(bundled_prepared)
    sos = sps.butter(2, [0.5, 40.0], btype="bandpass", fs=100, output="sos")
    for i in (0, 400, 986):
        row = ds.records.iloc[i]
        rec = wfdb.rdrecord(str(BUNDLED_RAW_DIR / "ptb-xl" / row["source"]))
        order = [[canonical_lead(n) for n in rec.sig_name].index(lead) for lead in LEADS]
        x = sps.sosfiltfilt(sos, rec.p_signal.T[order], axis=-1)
        z = (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)
        np.testing.assert_allclose(ds.signals[i], z, atol=1e-4)
    block = np.asarray(ds.signals[:50], dtype=np.float64)
    np.testing.assert_allclose(block.mean(-1), 0, atol=1e-4)
    np.testing.assert_allclose(block.std(-1), 1, atol=1e-3)


def test_rpeaks_and_batches(bundled_prepared):
    ds = PreparedDataset(bundled_prepared)
    idx = np.array([5, 0, 986, 5, 300])
    padded = ds.rpeaks_padded(idx, max_peaks=8)
    assert padded.shape == (5, 8) and padded.dtype == np.int64
    for row, i in zip(padded, idx):
        peaks = ds.rpeaks(i)
        assert ((peaks >= 0) & (peaks < ds.n_samples)).all() and (np.diff(peaks) > 0).all()
        n = min(len(peaks), 8)
        np.testing.assert_array_equal(row[:n], peaks[:n])
        assert (row[n:] == -1).all()
    counts = np.diff(np.load(bundled_prepared / "rpeak_offsets.npy"))
    assert 6 <= np.median(counts) <= 15  # 10 s of adult ECG: about 60-90 beats/min
    x, r = ds.batch(idx)
    assert x.shape == (5, 12, 1000) and x.dtype == np.float32 and not isinstance(x, np.memmap)
    np.testing.assert_array_equal(x, np.asarray(ds.signals)[idx])
    np.testing.assert_array_equal(r, ds.rpeaks_padded(idx))


def _write_record(folder: Path, name: str, seconds: float, fs: int = 500) -> None:
    t = np.arange(int(seconds * fs)) / fs
    beats = np.exp(-(((t[None, :] % 0.8) - 0.4) ** 2) / (2 * 0.01**2))  # a spike every 0.8 s
    x = np.vstack([beats * (1 + 0.1 * k) + 0.05 * np.sin(2 * np.pi * (k + 1) * t) for k in range(12)])
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * 12,
        sig_name=list(LEADS),
        p_signal=x.T,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        comments=["Dx: 426783006"],
        write_dir=str(folder),
    )


def test_windowing_long_short_and_padded(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, seconds in (("LONG", 28.5), ("PAD", 8.5), ("TOOSHORT", 7.0), ("EXACT", 10.0)):
        _write_record(raw, name, seconds)
    m = prepare_dataset(raw, tmp_path / "out", "challenge", progress=False)
    ds = PreparedDataset(tmp_path / "out")
    rows = ds.records
    assert rows["record_id"].tolist().count("LONG") == 3  # 10 + 10 + 8.5 s (>= 80 %, padded)
    assert rows["record_id"].tolist().count("PAD") == 1 and rows["record_id"].tolist().count("EXACT") == 1
    assert [s["file"] for s in m["skipped"]] == ["TOOSHORT"]
    assert "7.00 s long, shorter than 80% of the 10 s window" in m["skipped"][0]["reason"]
    long_rows = rows.index[rows["record_id"] == "LONG"].to_numpy()
    assert rows.loc[long_rows, "start"].tolist() == [0, 1000, 2000]
    assert rows.loc[long_rows, "n_valid"].tolist() == [1000, 1000, 850]
    assert (rows.loc[long_rows, "patient_id"] == "LONG").all() and rows.loc[long_rows, "fold"].nunique() == 1
    last = ds.signals[long_rows[-1]]
    assert (last[:, 850:] == 0).all() and np.abs(last[:, :850].std(-1) - 1).max() < 1e-3
    # synthetic beats every 0.8 s: detected once per beat in every window
    for i in long_rows[:2]:
        peaks = ds.rpeaks(i)
        assert len(peaks) in (12, 13) and np.allclose(np.diff(peaks), 80, atol=2)


def test_invalid_folders_raise_data_error(tmp_path, bundled_prepared):
    with pytest.raises(DataError, match="does not exist"):
        PreparedDataset(tmp_path / "missing")
    with pytest.raises(DataError, match=r"not a prepared dataset \(missing manifest.json, signals.npy"):
        PreparedDataset(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ("signals.npy", "records.csv", "rpeaks.npy", "rpeak_offsets.npy"):
        os.symlink(bundled_prepared / f, broken / f)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable manifest"):
        PreparedDataset(broken)
    (broken / "manifest.json").write_text(json.dumps({"dataset": "x"}))
    with pytest.raises(DataError, match="missing format_version"):
        PreparedDataset(broken)
    manifest = json.loads((bundled_prepared / "manifest.json").read_text())
    manifest["n_samples"] = 500
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"expected \(N, 12, 500\)"):
        PreparedDataset(broken)
    assert not is_prepared(tmp_path) and is_prepared(bundled_prepared)


def test_interrupted_prepare_leaves_no_valid_looking_cache(tmp_path, monkeypatch):
    src = BUNDLED_RAW_DIR / "challenge-2021"
    out = tmp_path / "ch"
    calls = {"n": 0}
    real = prep.process_record

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(prep, "process_record", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(src, out, "challenge", progress=False)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    # an existing good cache survives an interrupted re-run untouched
    monkeypatch.setattr(prep, "process_record", real)
    first = prepare_dataset(src, out, "challenge", progress=False)
    calls["n"] = 0
    monkeypatch.setattr(prep, "process_record", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(src, out, "challenge", progress=False, fs=50)
    assert PreparedDataset(out).fingerprint == first["fingerprint"] and PreparedDataset(out).fs == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ch"]
    assert available_datasets(tmp_path) == [out.resolve()]


@pytest.mark.slow  # a spawned worker pool: ~3 s
def test_prepare_is_deterministic_and_workers_agree(tmp_path):
    src = BUNDLED_RAW_DIR / "challenge-2021"
    a = prepare_dataset(src, tmp_path / "a", "challenge", progress=False)
    b = prepare_dataset(src, tmp_path / "b", "challenge", progress=False, workers=2)
    assert a["fingerprint"] == b["fingerprint"]
    ds = PreparedDataset(tmp_path / "a")
    assert ds.records.groupby("patient_id")["fold"].nunique().max() == 1
    assert set(ds.records["fold"]) == set(range(1, 11))


def test_ensure_bundled_is_idempotent(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path))
    first = ensure_bundled(["challenge"])
    assert first["challenge"] == tmp_path / "prepared" / "challenge"
    stamp = (first["challenge"] / "manifest.json").stat().st_mtime_ns
    assert main(["bundled", "--only", "challenge"]) == 0
    assert (first["challenge"] / "manifest.json").stat().st_mtime_ns == stamp
    assert "challenge: " in capsys.readouterr().out
    ds = PreparedDataset(first["challenge"])
    assert len(ds) == 21 and ds.manifest["bundled"] is True
    assert main(["info", str(first["challenge"])]) == 0
    out = capsys.readouterr().out
    assert "label set chapman_rhythm (4 classes)" in out and "rows kept" in out


def test_source_stamp_rereads_the_raw_files_only_when_they_change(tmp_path, monkeypatch):
    import shutil

    from aclecg.data.bundled import BUNDLED, source_stamp

    raw, other = tmp_path / "raw", tmp_path / "other"
    shutil.copytree(BUNDLED["challenge"][1], raw)
    shutil.copytree(BUNDLED["challenge"][1], other)
    first = source_stamp(raw, "challenge", 100.0, 10.0)
    source_stamp(other, "challenge", 100.0, 10.0)  # a second folder (ensure_bundled checks two) keeps the first
    reads: list[Path] = []
    original = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or original(self))
    assert source_stamp(raw, "challenge", 100.0, 10.0) == first and reads == []  # nothing changed: no file read
    assert source_stamp(raw, "challenge", 250.0, 10.0) != first and reads  # other parameters: a new stamp
    header = next(raw.rglob("*.hea"))
    text = header.read_text()
    header.write_text(text.replace(" ", "  ", 1))
    os.utime(header, ns=(1, 1))
    assert source_stamp(raw, "challenge", 100.0, 10.0) != first  # changed content is seen
    header.write_text(text)
    assert source_stamp(raw, "challenge", 100.0, 10.0) == first
