"""The scale benchmark's corpus maker writes raw layouts that ``prepare`` reads like a download, and its arithmetic.

benchmarks/make_scale_corpus.py clones bundled records (synthetic, for speed/memory only); these tests make a
handful of clones in tmp_path and read them back through the project's own readers."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from aclecg.data.matfile import parse_mat
from aclecg.data.prepare import prepare_dataset

ROOT = Path(__file__).resolve().parent.parent


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


corpus = _module("make_scale_corpus")
bench = _module("bench_scale")


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
def test_ptbxl_clones_prepare_like_a_download(tmp_path: Path) -> None:
    raw = tmp_path / "ptbxl"
    done = corpus.make_corpus("ptbxl", 12, raw, seed=0, max_sources=4)  # 3 generations of 4 sources
    assert (done["records"], done["sources"], done["reused"]) == (12, 4, False)
    manifest = prepare_dataset(raw, tmp_path / "prep", "ptbxl", progress=False)
    counts = manifest["counts"]
    assert (counts["records_found"], counts["records_kept"], counts["rows"]) == (12, 12, 12)
    assert manifest["skipped"] == []
    db = pd.read_csv(raw / "ptbxl_database.csv")
    source = pd.read_csv(corpus.SOURCES["ptbxl"] / "ptbxl_database.csv").head(4)
    assert db["ecg_id"].tolist() == list(range(1, 13))
    assert db["patient_id"].nunique() == 12  # each generation gets its own patients
    expected_folds = [(f - 1 + g) % 10 + 1 for g in range(3) for f in source["strat_fold"]]
    assert db["strat_fold"].tolist() == expected_folds
    assert db["scp_codes"].tolist() == source["scp_codes"].tolist() * 3
    first = (raw / "records100" / "00000" / "00001_lr.dat").read_bytes()
    assert first != (corpus.SOURCES["ptbxl"] / "records100" / "00000" / "00001_lr.dat").read_bytes()
    assert first != (raw / "records100" / "00000" / "00005_lr.dat").read_bytes()  # same source, next generation
    assert corpus.make_corpus("ptbxl", 12, raw, seed=0, max_sources=4)["reused"] is True


def test_ptbxl_clone_bytes_are_what_wrsamp_writes(tmp_path: Path) -> None:
    raw = tmp_path / "ptbxl"
    corpus.make_corpus("ptbxl", 1, raw)
    rec = wfdb.rdrecord(str(raw / "records100" / "00000" / "00001_lr"), physical=False)
    wfdb.wrsamp(
        "00001_lr",
        fs=rec.fs,
        units=rec.units,
        sig_name=rec.sig_name,
        d_signal=rec.d_signal,
        fmt=rec.fmt,
        adc_gain=rec.adc_gain,
        baseline=rec.baseline,
        write_dir=str(tmp_path),
    )
    for suffix in (".hea", ".dat"):
        written = (raw / "records100" / "00000" / f"00001_lr{suffix}").read_bytes()
        assert written == (tmp_path / f"00001_lr{suffix}").read_bytes(), suffix


def test_challenge_clones_prepare_without_skips(tmp_path: Path) -> None:
    raw = tmp_path / "challenge"
    corpus.make_corpus("challenge", 6, raw)
    manifest = prepare_dataset(raw, tmp_path / "prep", "challenge", progress=False)
    counts = manifest["counts"]
    assert (counts["records_found"], counts["records_kept"], counts["records_skipped"]) == (6, 6, 0)
    assert manifest["skipped"] == [] and counts["rows"] >= 6
    headers = sorted(raw.rglob("*.hea"))
    assert len(headers) == 6 and len({h.stem for h in headers}) == 6
    rec = wfdb.rdrecord(str(headers[0].with_suffix("")), physical=False)
    assert rec.fs == 500 and rec.n_sig == 12
    val = parse_mat(headers[0].with_suffix(".mat").read_bytes(), "clone")["val"]
    np.testing.assert_array_equal(val, rec.d_signal.T)
    assert any(line.startswith("#Dx:") for line in headers[0].read_text().splitlines())
    assert json.loads((raw / corpus.MARKER).read_text())["note"] == corpus.WARNING


def test_corpus_refuses_bad_sizes_and_short_disk(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="must be 1..21799"):
        corpus.make_corpus("ptbxl", 21800, tmp_path / "x")
    assert corpus.free_space_problem(tmp_path, 10**18, "a test").startswith(f"{tmp_path}: a test needs about")
    assert corpus.free_space_problem(tmp_path, 1, "a test") is None
    assert 0.5e9 < corpus.estimate_bytes("ptbxl", 21799) < 1e9


def test_growth_exponent_on_known_numbers() -> None:
    assert bench.growth_exponent(1000, 2.0, 2000, 4.0) == pytest.approx(1.0)
    assert bench.growth_exponent(1000, 1.0, 10000, 100.0) == pytest.approx(2.0)
    assert bench.growth_exponent(1000, 3.0, 5000, 3.0) == pytest.approx(0.0)
    assert bench.growth_exponent(1000, 0.0, 5000, 3.0) is None
    assert bench.growth_exponent(1000, 1.0, 1000, 3.0) is None
    rows = [
        {"format": "ptbxl", "step": "embed", "n": n, "wall_s": w, "maxrss_mb": 100.0, "anon_peak_mb": m, "rc": 0}
        for n, w, m in ((5000, 10.0, 50.0), (1000, 2.0, 50.0))
    ]
    (item,) = bench.exponents(rows)
    assert (item["n1"], item["n2"], item["wall_s"], item["maxrss_mb"]) == (1000, 5000, 1.0, 0.0)


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
def test_run_measured_sees_a_childs_memory(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-c",
        "import time; b = bytearray(120 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.4)",
    ]
    row = bench.run_measured(cmd, tmp_path / "log", env={}, timeout=30)
    assert row["rc"] == 0 and row["maxrss_mb"] >= 120 and row["anon_peak_mb"] >= 100
