"""``aclecg overlap``: records of one prepared dataset that duplicate records of another.

The corpus is built here from the bundled raw PTB-XL records (100 Hz), written as Challenge-format records at 500 Hz
the way the Challenge 2021 holds PTB-XL (HR00001 is PTB-XL record 1): a noisy copy of record 17 starting 0.3 s later, a
20-s record made of records 30 and 31, a copy of record 17 with its phases scrambled (the same spectrum per lead, so
the same fingerprint, but not the same signal), and bundled Challenge records that are not in PTB-XL. Record 18 is
the same patient as record 17, recorded 52 minutes later: similar, not a duplicate.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import wfdb
from scipy.signal import resample_poly

from aclecg.cli import main
from aclecg.data import BUNDLED_RAW_DIR, PreparedDataset, ensure_bundled, prepare_dataset
from aclecg.errors import ConfigError, DataError
from aclecg.leads import LEADS
from aclecg.overlap import (
    PAIR_COLUMNS,
    OverlapConfig,
    common_leads,
    enforce,
    find_overlap,
    overlap_with_folds,
    pretraining_rows,
)
from aclecg.overlap_match import top_k

PTBXL_RAW = BUNDLED_RAW_DIR / "ptb-xl" / "records100" / "00000"
CHALLENGE_RAW = BUNDLED_RAW_DIR / "challenge-2021" / "training"


def _ptbxl_500hz(record: int) -> np.ndarray:
    """``(5000, 12)`` mV: bundled PTB-XL record ``record`` (100 Hz) resampled to 500 Hz."""
    signal = wfdb.rdrecord(str(PTBXL_RAW / f"{record:05d}_lr")).p_signal
    return resample_poly(signal, 5, 1, axis=0)


def _write(folder: Path, name: str, signal: np.ndarray) -> None:
    wfdb.wrsamp(
        name,
        fs=500,
        units=["mV"] * 12,
        sig_name=list(LEADS),
        p_signal=signal,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        comments=["Dx: 426783006"],
        write_dir=str(folder),
    )


def _scrambled(signal: np.ndarray, seed: int = 0) -> np.ndarray:
    """The same magnitude spectrum per lead (and cross-spectra), random phases."""
    spec = np.fft.rfft(signal, axis=0)
    phase = np.exp(1j * np.random.default_rng(seed).uniform(0, 2 * np.pi, spec.shape[0]))
    phase[0] = phase[-1] = 1.0
    return np.fft.irfft(spec * phase[:, None], signal.shape[0], axis=0)


@pytest.fixture(scope="module")
def raw_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("overlap") / "raw"
    raw.mkdir()
    rec17 = _ptbxl_500hz(17)
    noise = np.random.default_rng(1).normal(0, 0.1, rec17.shape)  # 0.1 mV of broadband noise, 10 % more gain
    _write(raw, "DUP17", 1.1 * rec17[150:] + noise[150:])  # 0.3 s later: 9.7 s, one window (zero-padded)
    _write(raw, "LONG3031", np.concatenate([_ptbxl_500hz(30), _ptbxl_500hz(31)]))  # 20 s: two windows
    _write(raw, "SCRAMBLED17", _scrambled(rec17))
    for name in ("A0002", "A0003", "JS00002", "JS00004"):  # 10-s records that are not PTB-XL records
        for source in CHALLENGE_RAW.rglob(f"{name}.*"):
            (raw / source.name).write_bytes(source.read_bytes())
    return raw


@pytest.fixture(scope="module")
def corpus(raw_corpus: Path) -> Path:
    """The corpus prepared like the Challenge data: 100 Hz, 10-s windows."""
    out = raw_corpus.parent / "prepared"
    prepare_dataset(raw_corpus, out, "challenge", name="corpus", progress=False)
    return out


@pytest.fixture(scope="module")
def ptbxl(bundled_prepared: Path) -> Path:
    return bundled_prepared


def _found(pairs: pd.DataFrame) -> set[tuple[str, int, str]]:
    return {(a, int(w), b) for a, w, b in pairs[["a_record_id", "a_window", "b_record_id"]].values}


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
def test_planted_copies_are_found_with_their_lag_and_nothing_else(corpus, ptbxl):
    result = find_overlap(corpus, ptbxl)
    pairs = result.pairs
    assert list(pairs.columns) == list(PAIR_COLUMNS)
    # not SCRAMBLED17 (same spectrum), not record 18 (same patient as 17), not the Challenge records
    assert _found(pairs) == {("DUP17", 0, "17"), ("LONG3031", 0, "30"), ("LONG3031", 1, "31")}
    assert (pairs["r"] >= 0.97).all()
    lags = dict(zip(pairs["a_record_id"] + pairs["a_window"].astype(str), pairs["lag_s"]))
    assert lags["DUP170"] == pytest.approx(0.3, abs=0.011)  # DUP17 starts 0.3 s into record 17
    assert lags["LONG30310"] == pytest.approx(0.0, abs=0.011) and lags["LONG30311"] == pytest.approx(0.0, abs=0.011)
    ds = PreparedDataset(ptbxl)
    row17 = int(np.flatnonzero(ds.records["record_id"] == "17")[0])
    dup = pairs[pairs["a_record_id"] == "DUP17"].iloc[0]
    assert dup["b_row"] == row17 and dup["b_fold"] == ds.folds[row17]
    assert result.a_rows == 8 and result.b_rows == len(ds) and result.fs == 100.0
    assert result.summary().startswith("corpus (8 rows) vs ptbxl (987 rows): 3 row(s) of corpus duplicate 3 row(s)")
    # the noisy copy (r about 0.985) drops out above its correlation, the clean ones (about 0.999) stay
    assert 0.97 <= dup["r"] < 0.99
    assert _found(find_overlap(corpus, ptbxl, OverlapConfig(threshold=0.99)).pairs) == {
        ("LONG3031", 0, "30"),
        ("LONG3031", 1, "31"),
    }


def test_same_spectrum_and_same_patient_are_candidates_but_rejected(corpus, ptbxl):
    everything = find_overlap(corpus, ptbxl, OverlapConfig(threshold=0.01)).pairs
    by_pair = {(a, b): r for a, b, r in everything[["a_record_id", "b_record_id", "r"]].values}
    assert ("SCRAMBLED17", "17") in by_pair  # its fingerprint led to record 17 ...
    assert by_pair[("SCRAMBLED17", "17")] < 0.5  # ... and the correlation turned it down
    assert ("DUP17", "18") in by_pair and by_pair[("DUP17", "18")] < 0.9  # the same patient's next recording


def test_resampled_longer_windows_are_compared_tile_by_tile(raw_corpus, ptbxl, tmp_path):
    prepare_dataset(raw_corpus, tmp_path / "hz500", "challenge", fs=500, seconds=20, progress=False)
    result = find_overlap(tmp_path / "hz500", ptbxl)
    assert result.fs == 100.0  # the lower rate
    pairs = result.pairs
    assert _found(pairs) == {("LONG3031", 0, "30"), ("LONG3031", 0, "31")}  # 9.7-s DUP17 is too short for 20 s
    lags = dict(zip(pairs["b_record_id"], pairs["lag_s"]))
    assert lags["30"] == pytest.approx(0.0, abs=0.011)
    assert lags["31"] == pytest.approx(-10.0, abs=0.011)  # record 31 is A's second 10 s, B's first
    assert (pairs["r"] >= 0.97).all()


def test_challenge_2021_copies_of_ptbxl(shared_data, ptbxl, tmp_path):
    """The evidence of the issue: the Challenge 2021 records HR00001-HR00010 are PTB-XL records 1-10 (at 500 Hz);
    HR06000-HR06009 (PTB-XL 6000-6009) are not in the bundled PTB-XL subset."""
    prepare_dataset(shared_data / "physionet-challenge-2021" / "training" / "ptb-xl", tmp_path / "hr", "challenge")
    pairs = find_overlap(tmp_path / "hr", ptbxl).pairs
    assert {(a, b) for a, b in pairs[["a_record_id", "b_record_id"]].values} == {
        (f"HR{k:05d}", str(k)) for k in range(1, 11)
    }
    assert (pairs["r"] >= 0.97).all() and (pairs["lag_s"] == 0).all()


def test_bundled_challenge_and_ptbxl_share_no_record(ptbxl):
    """The bundled Challenge subset (CPSC 2018 and Chapman-Shaoxing) holds no PTB-XL record: checked by hand over
    all 21 x 987 pairs, the best is JS00011 vs PTB-XL 147 at r 0.60."""
    challenge = ensure_bundled(["challenge"], progress=False)["challenge"]
    result = find_overlap(challenge, ptbxl)
    assert result.pairs.empty and (result.a_rows, result.b_rows) == (21, 987)
    assert result.compared == 21 * 5
    assert "0 row(s) of challenge duplicate 0 row(s) of ptbxl" in result.summary()


def test_overlap_with_folds_warns_or_refuses(corpus, ptbxl):
    ds = PreparedDataset(ptbxl)
    fold = {r: int(ds.folds[np.flatnonzero(ds.records["record_id"] == r)[0]]) for r in ("17", "30", "31")}
    assert fold["17"] == fold["30"] != fold["31"]  # records 17 and 30 are in fold 9, record 31 in fold 6
    leaked = overlap_with_folds(pretrain=corpus, evaluation=ds, folds=[fold["17"], 1])
    assert leaked.leaks and leaked.per_fold == {1: 0, fold["17"]: 2}
    assert set(zip(leaked.pairs["a_record_id"], leaked.pairs["b_record_id"])) == {("17", "DUP17"), ("30", "LONG3031")}
    assert leaked.overlap.a_rows == int(np.isin(ds.folds, [1, fold["17"]]).sum())
    with pytest.raises(DataError, match=r"fold\(s\) 1, 9: 2 test row\(s\) duplicate pretraining records \(fold 9: 2; "):
        enforce(leaked, "refuse")
    assert enforce(leaked, "warn").startswith("warning: pretraining data corpus vs ptbxl fold(s) 1, 9: 2 test row(s)")
    assert enforce(leaked, "ignore") is None
    # pretrained on every corpus row but the 20-s record and the copy of record 17: fold 9 is clean
    pre = PreparedDataset(corpus)
    others = np.flatnonzero(~pre.records["record_id"].isin(["DUP17", "LONG3031"]))
    clean = overlap_with_folds(pre, ds, [fold["17"]], pretrain_rows=others)
    assert not clean.leaks and enforce(clean, "refuse") is None and "no duplicate records" in clean.line()
    with pytest.raises(ConfigError, match="overlap policy must be one of ignore, warn, refuse"):
        enforce(clean, "strict")
    # the rows a run with the default exclusions (the test split) and one excluded fold reads
    seen = pretraining_rows(ds, exclude_folds=[fold["17"]])
    expected = (ds.records["split"] != "test").to_numpy() & (ds.folds != fold["17"])
    np.testing.assert_array_equal(seen, np.flatnonzero(expected))
    assert 0 < len(seen) < len(ds) and len(pretraining_rows(ds, exclude_splits=())) == len(ds)


def test_cli_writes_the_pairs_and_a_summary(corpus, ptbxl, tmp_path, capsys):
    out = tmp_path / "pairs.csv"
    assert main(["overlap", str(corpus), str(ptbxl), "--out", str(out), "--quiet", "--b-folds", "1-10"]) == 0
    text = capsys.readouterr().out
    written = pd.read_csv(out, dtype={"a_record_id": str, "b_record_id": str})
    assert list(written.columns) == list(PAIR_COLUMNS) and len(written) == 3
    assert set(written["b_record_id"]) == {"17", "30", "31"}
    assert text.strip().splitlines()[-1].endswith(f"pairs written to {out}")
    assert main(["overlap", str(corpus), str(ptbxl), "--quiet", "--fail-on-overlap", "--a-folds", "1-10"]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["MISSING", "PTBXL"], "MISSING: prepared dataset folder does not exist"),
        (["CORPUS", "PTBXL", "--leads", "II,X9"], "leads: unknown lead name 'X9'"),
        (["CORPUS", "PTBXL", "--edge", "0.2"], "edge_s (--edge) 0.2 must be at least max_lag_s (--max-lag) 0.5"),
        (["CORPUS", "PTBXL", "--a-folds", "11"], "--a-folds: "),
        (["CORPUS", "PTBXL", "--b-folds", "x"], "--b-folds: expected fold numbers like 9,10 or 1-8, got 'x'"),
        (["CORPUS", "PTBXL", "--out", "TMP"], "is a folder; name the CSV file to write"),
        (["CORPUS", "PTBXL", "--out", "FILE/pairs.csv"], "cannot write "),  # a file where a folder should be
    ],
)
def test_bad_input_is_one_line(corpus, ptbxl, tmp_path, capsys, args, message):
    (tmp_path / "FILE").write_text("")
    names = {"MISSING": str(tmp_path / "MISSING"), "CORPUS": str(corpus), "PTBXL": str(ptbxl), "TMP": str(tmp_path)}
    names["FILE/pairs.csv"] = str(tmp_path / "FILE" / "pairs.csv")
    assert main(["overlap", *[names.get(a, a) for a in args]]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # progress lines, if it got that far, then the error
    assert err[-1].startswith("error: ") and message in err[-1] and not any(x.startswith("error") for x in err[:-1])
    assert "Traceback" not in "\n".join(err)


def test_common_leads():
    a = SimpleNamespace(leads=("I", "II", "V2"), path=Path("A"))
    b = SimpleNamespace(leads=("II", "V2", "V5"), path=Path("B"))
    assert common_leads(a, b) == ("II", "V2")  # type: ignore[arg-type]
    assert common_leads(a, b, ["v2", "ii"]) == ("V2", "II")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="B: has no lead I "):
        common_leads(a, b, ["I"])  # type: ignore[arg-type]
    with pytest.raises(DataError, match="A and B have no lead in common"):
        common_leads(a, SimpleNamespace(leads=("V6",), path=Path("B")))  # type: ignore[arg-type]


def test_top_k_equals_a_full_sort():
    rng = np.random.default_rng(0)
    for n in (1, 3, 64, 65, 200, 5001):
        sims = rng.normal(size=(40, n)).astype(np.float32)
        for k in (1, 5):
            expected = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            np.testing.assert_array_equal(top_k(sims, k), expected)


@pytest.mark.parametrize("policy", ["warn", "refuse"])
def test_a_study_whose_pretraining_data_duplicates_a_test_fold_warns_or_refuses(corpus, ptbxl, tmp_path, policy):
    """The study plan checks every pretraining dataset against the test folds before anything runs: the corpus
    holds a copy of PTB-XL record 31, which is in fold 6, a test fold of this study."""
    from aclecg.studyplan import load_study
    from aclecg.studyplan.tasks import StudyPlan

    repo = Path(__file__).resolve().parents[1]
    toml = tmp_path / "leaky.toml"
    toml.write_text(
        f"""
[study]
name = "leaky"
runs = "{tmp_path / "runs"}"
checkpoints = "{repo / "checkpoints"}"

[data]
pretrain = ["{corpus}"]
downstream = "{ptbxl}"
label_set = "superdiagnostic"
overlap = "{policy}"

[folds]
test = [10, 6]
validation = 9
official = 10

[pretrain]
methods = ["acl_ecg"]

[pretrain.seeds]
10 = 0
6 = 4

[[sweep]]
group = "probe"
arms = ["linear_probe"]
encoders = "all"
fractions = [1.0]
protocols = ["multilabel"]
"""
    )
    plan = StudyPlan(load_study(toml))
    if policy == "refuse":
        with pytest.raises(DataError, match="duplicate pretraining records"):
            plan.overlap_lines()
    else:
        (line,) = plan.overlap_lines()
        assert "warning:" in line and "fold 6: 1" in line
