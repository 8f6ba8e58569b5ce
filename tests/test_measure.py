"""Measurements (aclecg.measure): intervals against synthetic ECGs with known intervals, invariance, speed, the
dataset cache, the ``measure`` command and the rhythm preservation of the augmentations."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from aclecg.cli import main
from aclecg.errors import DataError
from aclecg.measure import DISCLAIMER, measure_record, synthetic_ecg

# --- the measurement against known intervals -------------------------------------------------------------------

CASES = [  # fs, hr, pr, qrs, qt, wide
    (500, 62, 170, 88, 400, False),
    (500, 95, 210, 100, 330, False),
    (500, 70, 180, 150, 440, True),
    (100, 62, 170, 88, 400, False),
    (100, 80, 150, 140, 420, True),
]


@pytest.mark.parametrize(("fs", "hr", "pr", "qrs", "qt", "wide"), CASES)
def test_synthetic_intervals_are_recovered(fs, hr, pr, qrs, qt, wide):
    x, truth = synthetic_ecg(fs, hr_bpm=hr, pr_ms=pr, qrs_ms=qrs, qt_ms=qt, wide=wide, noise_mv=0.02, wander_mv=0.1)
    m = measure_record(x, fs)
    assert abs(m.hr_bpm - truth.hr_bpm) < 1.0
    assert abs(m.pr_ms - pr) <= 20
    assert abs(m.qrs_ms - qrs) <= 20
    assert abs(m.qt_ms - qt) <= 30
    assert m.qtc_bazett_ms == pytest.approx(m.qt_ms / np.sqrt(m.rr_ms / 1000), abs=0.2)
    assert m.qtc_fridericia_ms == pytest.approx(m.qt_ms / np.cbrt(m.rr_ms / 1000), abs=0.2)
    assert set(m.leads) == {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"}
    assert m.points["p_on"] < m.points["p_peak"] < m.points["p_off"] <= m.points["qrs_on"] < 0 < m.points["qrs_off"]
    assert m.points["qrs_off"] <= m.points["t_on"] < m.points["t_peak"] < m.points["t_off"]


@pytest.mark.parametrize("hr", [45, 72, 120])
def test_a_regular_rhythm_rr_agrees_with_its_rate(hr):
    x, truth = synthetic_ecg(250, hr_bpm=hr, qt_ms=300 if hr > 100 else 380, seed=3)
    m = measure_record(x, 250)
    assert abs(m.hr_bpm - hr) < 1.0
    assert m.hr_bpm * m.rr_ms / 60_000 == pytest.approx(1.0, abs=0.002)
    assert m.rr_sdnn_ms < 5 and m.rr_rmssd_ms < 5 and m.rr_cv < 0.01


def test_intervals_are_unchanged_under_gain_and_small_shifts():
    x, _ = synthetic_ecg(500, hr_bpm=75, noise_mv=0.01, seed=5)
    ref = measure_record(x, 500).summary()
    for gain in (0.1, 4.0):
        assert measure_record(gain * x, 500).summary() == pytest.approx(ref, abs=0.15)
    fields = ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms")
    for shift in (1, 7, 40):
        moved = measure_record(x[:, shift:], 500).summary()
        assert all(abs(moved[f] - ref[f]) <= 4 for f in fields), (shift, moved, ref)


def test_an_irregular_rhythm_without_p_waves_has_no_pr():
    x, _ = synthetic_ecg(500, hr_bpm=90, p_wave=False, rr_jitter=0.45, noise_mv=0.01, seed=2)
    m = measure_record(x, 500)
    assert m.pr_ms is None and m.points["p_on"] is None
    assert any("irregular" in n for n in m.notes) and any("no P wave" in n for n in m.notes)
    assert m.qrs_ms is not None and m.qt_ms is not None
    assert DISCLAIMER in json.dumps(m.as_dict())


@pytest.mark.parametrize(
    ("x", "fs", "message"),
    [
        (np.full((12, 5000), np.nan), 500, "NaN"),
        (np.zeros((3, 5000)), 500, "12 leads"),
        (np.zeros((12, 300)), 500, "at least 2 s"),
        (np.zeros((12, 5000)), 0, "sampling rate"),
        (np.zeros((12, 5000)), float("nan"), "sampling rate"),
    ],
)
def test_bad_input_is_one_clear_error(x, fs, message):
    with pytest.raises(DataError, match=message) as info:
        measure_record(x, fs)
    assert "\n" not in str(info.value)


def test_flat_or_beatless_records_are_measured_as_nothing():
    flat = measure_record(np.zeros((12, 5000)), 500)
    assert flat.hr_bpm is None and flat.qrs_ms is None and "flat" in flat.notes[0]
    noise = measure_record(np.random.default_rng(0).normal(size=(12, 1000)) * 1e-3, 100, rpeaks=np.array([500]))
    assert noise.hr_bpm is None and "only 1 beat" in noise.notes[0]


def test_measuring_one_record_takes_under_100_ms():
    x, _ = synthetic_ecg(500, seconds=10, hr_bpm=70, noise_mv=0.02)
    measure_record(x, 500)
    best = min(_timed(lambda: measure_record(x, 500)) for _ in range(5))
    assert best < 0.1, f"{best * 1000:.0f} ms"


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --- a whole dataset, cached --------------------------------------------------------------------------------------


def _tiny_prepared(source: Path, target: Path, rows: int = 6, fingerprint: str = "f" * 64) -> Path:
    """The first ``rows`` rows of a prepared dataset, with their own fingerprint."""
    from aclecg.data import PreparedDataset

    ds = PreparedDataset(source)
    target.mkdir(parents=True)
    np.save(target / "signals.npy", np.asarray(ds.signals[:rows]))
    ds.records.iloc[:rows].to_csv(target / "records.csv", index=False)
    peaks = [ds.rpeaks(i) for i in range(rows)]
    np.save(target / "rpeaks.npy", np.concatenate(peaks).astype(np.int32))
    np.save(target / "rpeak_offsets.npy", np.concatenate([[0], np.cumsum([len(p) for p in peaks])]).astype(np.int64))
    manifest = dict(ds.manifest, fingerprint=fingerprint)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


@pytest.fixture
def tiny(bundled_prepared, tmp_path) -> Path:
    return _tiny_prepared(bundled_prepared, tmp_path / "tiny")


def test_dataset_measurements_are_cached_by_fingerprint_and_code_version(tiny, tmp_path, monkeypatch):
    from aclecg.measure import dataset as mds

    table, path = mds.measure_dataset(tiny, cache_dir=tmp_path / "cache")
    assert path.name == f"ptbxl__{'f' * 24}__{mds.code_version()}.csv"
    assert len(table) == 6 and table["hr_bpm"].notna().all() and list(table["row"]) == list(range(6))
    direct = measure_record(np.load(tiny / "signals.npy")[2], 100.0, rpeaks=mds.PreparedDataset(tiny).rpeaks(2))
    assert table.loc[2, "qrs_ms"] == pytest.approx(direct.qrs_ms)

    def refuse(*args, **kwargs):
        raise AssertionError("measured again although cached")

    monkeypatch.setattr(mds, "measure_record", refuse)
    again, same = mds.measure_dataset(tiny, cache_dir=tmp_path / "cache")
    assert same == path
    pd.testing.assert_frame_equal(again, table, check_dtype=False)
    monkeypatch.undo()
    monkeypatch.setattr(mds, "code_version", lambda: "0123456789ab")  # new code: a new file
    _, other = mds.measure_dataset(tiny, cache_dir=tmp_path / "cache")
    assert other != path and other.name.endswith("__0123456789ab.csv")
    other.write_text("garbage\n")  # a damaged cache file is measured again
    fixed, _ = mds.measure_dataset(tiny, cache_dir=tmp_path / "cache")
    assert len(fixed) == 6 and len(pd.read_csv(other)) == 6


# --- the command --------------------------------------------------------------------------------------------------


def test_measure_command_prints_json_and_table_for_a_record(tiny, capsys):
    assert main(["measure", "--data", str(tiny), "--record", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"]["row"] == 2 and out["hr_bpm"] > 30 and out["qrs_ms"] > 40
    assert out["disclaimer"] == DISCLAIMER and set(out["leads_ms"]) >= {"II", "V1"}
    assert main(["measure", "--data", str(tiny), "--record", "3", "--format", "table"]) == 0
    text = capsys.readouterr().out
    assert "QTc Bazett" in text and "not a diagnosis" in text and "V6" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--record", "99999"], "'99999' is not in"),
        (["--record", "1", "--upload", "x.hea"], "without --data"),
        (["--preservation", "--record", "1"], "--preservation needs"),
        (["--preservation", "--views", "0"], "--views must be"),
    ],
)
def test_measure_command_refuses_bad_options_in_one_line(tiny, capsys, argv, message):
    assert main(["measure", "--data", str(tiny), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
def test_measure_command_reads_an_upload_at_its_own_rate(challenge_upload, capsys):
    assert main(["measure", "--upload", str(challenge_upload / "JS00001.hea")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"]["fs"] == 500.0 and out["source"]["units"] == "mV"
    assert 30 < out["hr_bpm"] < 200 and out["qrs_ms"] is not None


def test_measure_command_caches_a_dataset(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    assert main(["measure", "--data", str(tiny), "--out", str(tmp_path / "m.csv")]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[0])
    assert out["records"] == 6 and Path(out["cache"]).parent == tmp_path / "cache" / "measurements"
    assert len(pd.read_csv(tmp_path / "m.csv")) == 6


def test_measure_command_writes_the_preservation_table(tiny, tmp_path, capsys):
    out = tmp_path / "results" / "rhythm-preservation.md"
    assert (
        main(["measure", "--preservation", "--data", str(tiny), "--records", "2", "--views", "1", "--out", str(out)])
        == 0
    )
    text = out.read_text()
    assert "--records 2 --views 1 --seed 0" in text and "2 of 6 records" in text
    names = (
        "`none`",
        "`physio`",
        "`physio_v1`",
        "`random_scale_crop`",
        "`cardiac_cycle_mask`",
        "`random_resized_crop`",
    )
    for name in names:
        assert name in text
    table = pd.read_csv(out.with_suffix(".csv"))
    control = table[table["augmentation"] == "none"].iloc[0]
    assert control["hr_bpm_median"] == 0 and control["qt_ms_p95"] == 0 and control["hr_moved_share"] == 0


# --- rhythm preservation: the expected direction -----------------------------------------------------------------


def _hr_after(spec, hr=75.0, seeds=range(3)) -> list[float]:
    from aclecg.augment import build_augmentation

    x, truth = synthetic_ecg(100, hr_bpm=hr, noise_mv=0.01, seed=1)
    xt = torch.from_numpy(x[None].astype(np.float32))
    peaks = torch.tensor([list(truth.r_peaks)])
    aug = build_augmentation(spec, fs=100)
    return [
        measure_record(aug(xt, peaks, generator=torch.Generator().manual_seed(s))[0].numpy(), 100).hr_bpm for s in seeds
    ]


@pytest.mark.parametrize("fraction", [0.6, 0.8])
def test_crop_and_resize_changes_the_rate_in_proportion_to_its_scale(fraction):
    for hr in _hr_after([{"name": "random_resized_crop", "scale": [fraction, fraction]}]):
        assert hr / 75.0 == pytest.approx(fraction, abs=0.03)


@pytest.mark.parametrize(
    "spec",
    [[{"name": "cardiac_cycle_mask", "n_cycles": [1, 2]}], [{"name": "temporal_shift", "max_shift": "rr"}]],
)
def test_cycle_masking_and_temporal_shift_keep_the_rate(spec):
    for hr in _hr_after(spec):
        assert abs(hr - 75.0) < 2.0


def test_physio_crop_keeps_the_rate():
    from aclecg.augment import PRESETS

    crop = PRESETS["physio"][0]
    assert crop["name"] == "random_scale_crop" and crop["resample"] is False
    for hr in _hr_after([{**crop, "scale": [0.6, 0.6]}]):
        assert abs(hr - 75.0) < 2.0
    for hr in _hr_after("physio"):
        assert abs(hr - 75.0) < 2.0


def test_physio_v1_is_the_resampling_crop_the_older_encoders_were_trained_with():
    from aclecg.augment import PRESETS

    assert PRESETS["physio_v1"][0] == {"name": "random_scale_crop", "scale": [0.5, 1.0]}
    assert PRESETS["physio_v1"][1:] == PRESETS["physio"][1:]
    for hr in _hr_after([{**PRESETS["physio_v1"][0], "scale": [0.6, 0.6]}]):
        assert hr / 75.0 == pytest.approx(0.6, abs=0.03)
