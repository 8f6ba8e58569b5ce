"""A corpus of malformed inputs built here: each gets a one-line reason naming its file; --strict exits non-zero."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from aclecg.cli import main
from aclecg.data import BUNDLED_RAW_DIR, ChallengeReader, PtbXlReader, Record, Skipped, prepare_dataset
from aclecg.data.cpsc2018 import Cpsc2018Reader
from aclecg.errors import DataError
from aclecg.leads import LEADS

SRC = BUNDLED_RAW_DIR / "challenge-2021" / "training" / "cpsc_2018"


def _copy(name: str, dest: Path, new: str) -> Path:
    """Copy a real Challenge record under a new name (header text rewritten to the new name)."""
    text = (SRC / f"{name}.hea").read_text().replace(name, new)
    (dest / f"{new}.hea").write_text(text)
    shutil.copy(SRC / f"{name}.mat", dest / f"{new}.mat")
    return dest / f"{new}.hea"


def _write(
    dest: Path,
    name: str,
    signals: np.ndarray,
    leads: list[str],
    fs: float = 500,
    comments: tuple[str, ...] = ("Age: 50", "Sex: Male", "Dx: 426783006"),
) -> None:
    n = len(leads)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * n,
        sig_name=leads,
        p_signal=signals.T,
        fmt=["16"] * n,
        adc_gain=[1000.0] * n,
        baseline=[0] * n,
        comments=list(comments),
        write_dir=str(dest),
    )


def _real_signals() -> np.ndarray:
    return wfdb.rdrecord(str(SRC / "A0002")).p_signal.T[:, :5000]


def build_corpus(root: Path) -> dict[str, str]:
    """Write good and bad Challenge records into ``root``; return {bad record stem: expected reason fragment}."""
    root.mkdir(parents=True, exist_ok=True)
    x = _real_signals()
    _copy("A0001", root, "GOOD1")
    _write(root, "GOOD2", x, list(LEADS))
    x1 = x.copy()
    x1[4] = 0.0
    _write(root, "ONEFLAT", x1, list(LEADS))  # a single flat lead is kept with a warning
    expected = {}
    hea = _copy("A0001", root, "NOMAT")
    (root / "NOMAT.mat").unlink()
    expected["NOMAT"] = "signal file NOMAT.mat is missing"
    _copy("A0001", root, "TRUNC")
    data = (root / "TRUNC.mat").read_bytes()
    (root / "TRUNC.mat").write_bytes(data[: len(data) // 3])
    expected["TRUNC"] = "cannot read the record"
    hea = _copy("A0001", root, "LENGTH")
    lines = hea.read_text().splitlines()
    first = lines[0].split()
    first[3] = str(int(first[3]) + 500)
    lines[0] = " ".join(first)
    hea.write_text("\n".join(lines) + "\n")
    expected["LENGTH"] = "header says 8000 samples but LENGTH.mat holds 7500"
    hea = _copy("A0001", root, "CHECKSUM")
    lines = hea.read_text().splitlines()
    parts = lines[3].split()
    parts[6] = str(int(parts[6]) + 7)
    lines[3] = " ".join(parts)
    hea.write_text("\n".join(lines) + "\n")
    expected["CHECKSUM"] = "disagree with the header checksum for leads III"
    hea = _copy("A0001", root, "BADLEAD")
    hea.write_text(hea.read_text().replace(" V6", " X9"))
    expected["BADLEAD"] = "unknown lead name 'X9'"
    _write(root, "SIXLEAD", x[:6], list(LEADS[:6]))
    expected["SIXLEAD"] = "missing leads V1, V2, V3, V4, V5, V6"
    xn = x.copy()
    xn[7, 100:200] = np.nan
    _write(root, "NAN", xn, list(LEADS))
    expected["NAN"] = "non-finite values (NaN/inf) in leads V2"
    xz = x.copy()
    xz[6:] = 0.0
    _write(root, "ZEROS", xz, list(LEADS))
    expected["ZEROS"] = "6 flat (constant) leads: V1, V2, V3, V4, V5, V6"
    _write(root, "LOWFS", x[:, ::10], list(LEADS), fs=50)
    expected["LOWFS"] = "sampling rate 50 Hz is below the target 100 Hz"
    _write(root, "SHORT", x[:, :2000], list(LEADS))
    expected["SHORT"] = "shorter than 80% of the 10 s window"
    hea = _copy("A0001", root, "BADDX")
    hea.write_text(hea.read_text().replace("#Dx: 59118001", "#Dx: RBBB?"))
    expected["BADDX"] = "unreadable '#Dx:' labels"
    hea = _copy("A0001", root, "NODX")
    hea.write_text(hea.read_text().replace("#Dx: 59118001\n", ""))
    expected["NODX"] = "no '#Dx:' label line"
    (root / "NOTES.hea").write_text("this is not a header, just some notes\n")
    expected["NOTES"] = "not a WFDB header (first line 'this is not a header"
    (root / "BINARY.hea").write_bytes(bytes(range(256)))
    expected["BINARY"] = "not a text WFDB header"
    shutil.copy(SRC / "A0003.mat", root / "ORPHAN.mat")
    expected["ORPHAN.mat"] = "signal file without a .hea header"
    # issue 12: gains, sampling rates and signal files that used to crash or be misreported
    hea = _copy("A0001", root, "ZEROGAIN")  # the WFDB specification: a gain of 0 means the default, 200: kept
    lines = hea.read_text().splitlines()
    parts = lines[1].split()
    parts[2] = "0/mV"
    lines[1] = " ".join(parts)
    hea.write_text("\n".join(lines) + "\n")
    for name, gain, reason in (
        ("NEGGAIN", "-1000", "has ADC gain -1000.0"),
        ("NANGAIN", "nan", "lead I has unknown unit 'nan/mV'"),
    ):  # wfdb reads "nan/mV" as units
        hea = _copy("A0001", root, name)
        lines = hea.read_text().splitlines()
        parts = lines[1].split()
        parts[2] = f"{gain}/mV"
        lines[1] = " ".join(parts)
        hea.write_text("\n".join(lines) + "\n")
        expected[name] = reason
    hea = _copy("A0001", root, "NANFS")
    lines = hea.read_text().splitlines()
    first = lines[0].split()
    first[2] = "nan"
    lines[0] = " ".join(first)
    hea.write_text("\n".join(lines) + "\n")
    expected["NANFS"] = "header gives sampling rate 'nan', not a positive number"
    _copy("A0001", root, "TEXTMAT")
    (root / "TEXTMAT.mat").write_text("not a matlab file\n" * 40)
    expected["TEXTMAT"] = "signal file TEXTMAT.mat is not a MATLAB file"
    _copy("A0001", root, "TWOLEAD")  # the header lists 12 leads, the .mat holds 2
    import scipy.io

    val = scipy.io.loadmat(root / "TWOLEAD.mat")["val"]
    scipy.io.savemat(root / "TWOLEAD.mat", {"val": val[:2]}, format="4")
    expected["TWOLEAD"] = "TWOLEAD.mat holds 2 leads but the header lists 12"
    return expected


def _outcomes(root: Path) -> tuple[dict[str, Record], dict[str, Skipped]]:
    good, bad = {}, {}
    for result in ChallengeReader(root):
        if isinstance(result, Record):
            good[result.record_id] = result
        else:
            bad[Path(result.file).name] = result
    return good, bad


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("malformed") / "challenge"
    return root, build_corpus(root)


def test_reader_reasons(corpus):
    root, expected = corpus
    good, bad = _outcomes(root)
    assert set(good) >= {"GOOD1", "GOOD2", "ONEFLAT", "ZEROGAIN", "LOWFS", "SHORT"}  # the last two fail in prepare
    reader_level = {k: v for k, v in expected.items() if k not in ("LOWFS", "SHORT")}
    assert set(bad) == set(reader_level)
    for name, fragment in reader_level.items():
        assert fragment in bad[name].reason, (name, bad[name].reason)
        assert "\n" not in bad[name].reason
    assert any("flat lead aVL kept" in w for w in good["ONEFLAT"].warnings)


def test_prepare_skips_and_lists_every_bad_record(corpus, tmp_path, capsys):
    root, expected = corpus
    out = tmp_path / "prep"
    code = main(["prepare", "--format", "challenge", "--input", str(root), "--output", str(out), "--quiet"])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    skipped = {Path(s["file"]).name: s["reason"] for s in manifest["skipped"]}
    assert set(skipped) == set(expected)
    for name, fragment in expected.items():
        assert fragment in skipped[name]
    assert manifest["counts"]["records_kept"] == 4  # GOOD1, GOOD2, ONEFLAT, ZEROGAIN
    assert manifest["counts"]["records_found"] == 4 + len(expected)
    printed = capsys.readouterr().out
    assert "skipped NOMAT: signal file NOMAT.mat is missing" in printed
    assert "Traceback" not in printed


def test_strict_mode_exits_non_zero_with_the_message(corpus, tmp_path, capsys):
    root, expected = corpus
    out = tmp_path / "strict"
    code = main(["prepare", "--format", "challenge", "--input", str(root), "--output", str(out), "--strict", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert any(name.split(".")[0] in err and fragment in err for name, fragment in expected.items())
    assert not out.exists()
    # a strict run on clean data succeeds
    clean = tmp_path / "clean"
    clean.mkdir()
    _copy("A0001", clean, "A0001")
    assert (
        main(
            [
                "prepare",
                "--format",
                "challenge",
                "--input",
                str(clean),
                "--output",
                str(tmp_path / "ok"),
                "--strict",
                "--quiet",
            ]
        )
        == 0
    )


def test_ptbxl_wrong_rate_missing_file_and_bad_labels(tmp_path):
    src = BUNDLED_RAW_DIR / "ptb-xl"
    root = tmp_path / "ptbxl"
    (root / "records100" / "00000").mkdir(parents=True)
    shutil.copy(src / "scp_statements.csv", root)
    lines = (src / "ptbxl_database.csv").read_text().splitlines()[:6]
    lines[3] = lines[3].replace("'NORM'", "'NOTACODE'", 1)
    lines[4] = lines[4].replace("{", "{{", 1)
    (root / "ptbxl_database.csv").write_text("\n".join(lines) + "\n")
    for i in (1, 2, 5):
        for ext in ("hea", "dat"):
            shutil.copy(src / "records100" / "00000" / f"{i:05d}_lr.{ext}", root / "records100" / "00000")
    (root / "records100" / "00000" / "00005_lr.dat").unlink()
    hea = root / "records100" / "00000" / "00002_lr.hea"
    hea.write_text(hea.read_text().replace("00002_lr 12 100 1000", "00002_lr 12 500 1000"))
    results = {Path(r.file if isinstance(r, Skipped) else r.source).name: r for r in PtbXlReader(root)}
    assert isinstance(results["00001_lr"], Record)
    assert "sampling rate 500 Hz in the header, expected 100 Hz" in results["00002_lr"].reason
    assert "unknown SCP codes NOTACODE" in results["00003_lr"].reason
    assert "unreadable scp_codes" in results["00004_lr"].reason
    assert results["00005_lr"].reason == "signal file 00005_lr.dat is missing"
    assert len(results) == 5


def test_cpsc_not_a_matlab_file_and_missing_reference_row(tmp_path, shared_data):
    root = tmp_path / "cpsc"
    root.mkdir()
    shutil.copy(shared_data / "cpsc2018" / "REFERENCE.csv", root)
    shutil.copy(shared_data / "cpsc2018" / "A1980.mat", root)
    (root / "A1981.mat").write_text("not matlab")
    shutil.copy(shared_data / "cpsc2018" / "A1982.mat", root / "Z9999.mat")
    results = {Path(r.file if isinstance(r, Skipped) else r.source).name: r for r in Cpsc2018Reader(root)}
    assert isinstance(results["A1980.mat"], Record)
    assert "not a readable MATLAB file" in results["A1981.mat"].reason
    assert "has no row in REFERENCE.csv" in results["Z9999.mat"].reason


def test_input_folder_problems_are_one_line_errors(tmp_path, capsys):
    assert main(["prepare", "--format", "ptbxl", "--input", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert "not a PTB-XL folder (ptbxl_database.csv is missing)" in capsys.readouterr().err
    assert (
        main(["prepare", "--format", "challenge", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")])
        == 2
    )
    assert "input folder does not exist" in capsys.readouterr().err


def test_ptbxl_rows_that_used_to_crash_prepare_are_named_skips(tmp_path, capsys):
    """Issue 12's triggers: text/None/inf likelihoods, a path out of --input, an absolute path, a NaN gain, and no
    age/sex columns. prepare keeps the good records, names every bad one, and raises nothing."""
    import pandas as pd

    src = BUNDLED_RAW_DIR / "ptb-xl"
    root = tmp_path / "ptbxl"
    (root / "records100" / "00000").mkdir(parents=True)
    shutil.copy(src / "scp_statements.csv", root)
    db = pd.read_csv(src / "ptbxl_database.csv", dtype={"ecg_id": str}).iloc[:9].copy()
    for i in range(1, 10):
        for ext in ("hea", "dat"):
            shutil.copy(src / "records100" / "00000" / f"{i:05d}_lr.{ext}", root / "records100" / "00000")
    outside = tmp_path / "outside"
    outside.mkdir()
    for ext in ("hea", "dat"):  # a readable record that lies outside --input: it must never be read
        shutil.copy(src / "records100" / "00000" / f"00009_lr.{ext}", outside)
    db.loc[1, "scp_codes"] = "{'NORM': 'abc'}"
    db.loc[2, "scp_codes"] = "{'NORM': None}"
    db.loc[3, "scp_codes"] = "{'NORM': 1e400}"
    db.loc[4, "filename_lr"] = "../outside/00009_lr"
    db.loc[5, "filename_lr"] = str(outside / "00009_lr")
    hea = root / "records100" / "00000" / "00007_lr.hea"
    lines = hea.read_text().splitlines()
    fields = lines[1].split()
    fields[2] = "nan(0)/mV"
    lines[1] = " ".join(fields)
    hea.write_text("\n".join(lines) + "\n")
    db.drop(columns=["age", "sex"]).to_csv(root / "ptbxl_database.csv", index=False)

    manifest = prepare_dataset(root, tmp_path / "out", "ptbxl", progress=False)
    reasons = {s["file"]: s["reason"] for s in manifest["skipped"]}
    assert "likelihood of 'NORM' is 'abc', not a finite number" in reasons["records100/00000/00002_lr"]
    assert "likelihood of 'NORM' is None" in reasons["records100/00000/00003_lr"]
    assert "likelihood of 'NORM' is inf" in reasons["records100/00000/00004_lr"]
    assert "leads outside the input folder" in reasons["../outside/00009_lr"]
    assert "is empty or absolute; refused" in reasons[str(outside / "00009_lr")]
    assert "signal line 1 of the header cannot be parsed" in reasons["records100/00000/00007_lr"]
    assert manifest["counts"]["records_kept"] == 3 and manifest["counts"]["records_skipped"] == 6
    kept = pd.read_csv(tmp_path / "out" / "records.csv")
    assert sorted(kept["record_id"].astype(str)) == ["1", "8", "9"]  # rows 2-7 were the bad ones


def test_cpsc_reference_and_struct_problems_are_named_skips(tmp_path):
    """REFERENCE labels inf / 1e400, an empty ECG struct, an empty sex field, complex data: named skips (or, for
    the empty sex, a kept record with unknown sex), never an exception."""
    import scipy.io

    root = tmp_path / "cpsc"
    root.mkdir()
    rng = np.random.default_rng(0)

    def mat(name, data, sex="Male"):  # sex as MATLAB char, as in the release (a cell array is refused)
        ecg = {"sex": sex if sex is not None else "", "age": np.array([[55.0]]), "data": data}
        scipy.io.savemat(root / f"{name}.mat", {"ECG": ecg})

    good = rng.normal(size=(12, 5000)) * 0.1
    mat("A0001", good)
    mat("A0002", good)
    mat("A0003", good)
    mat("A0004", good.astype(complex) * (1 + 1j))
    mat("A0005", good, sex=None)
    scipy.io.savemat(root / "A0006.mat", {"ECG": np.zeros((0, 0), dtype=[("data", object)])})
    (root / "REFERENCE.csv").write_text(
        "Recording,First_label,Second_label,Third_label\n"
        "A0001,1,,\nA0002,inf,,\nA0003,1e400,,\nA0004,2,,\nA0005,1,,\nA0006,1,,\n"
    )
    results = {Path(r.file if isinstance(r, Skipped) else r.source).stem: r for r in Cpsc2018Reader(root)}
    assert isinstance(results["A0001"], Record) and results["A0001"].sex == "M"
    assert "unreadable labels" in results["A0002"].reason and "?inf" in results["A0002"].reason
    assert "unreadable labels" in results["A0003"].reason
    assert "complex numbers" in results["A0004"].reason
    assert isinstance(results["A0005"], Record) and results["A0005"].sex == ""
    assert "struct ECG is empty" in results["A0006"].reason or "no struct ECG" in results["A0006"].reason


def test_a_nan_sampling_rate_is_reported_as_such_not_as_wfdb_default(tmp_path):
    from aclecg.data.wfdbio import read_wfdb

    src = BUNDLED_RAW_DIR / "ptb-xl" / "records100" / "00000"
    for ext in ("hea", "dat"):
        shutil.copy(src / f"00001_lr.{ext}", tmp_path)
    hea = tmp_path / "00001_lr.hea"
    hea.write_text(hea.read_text().replace("00001_lr 12 100 1000", "00001_lr 12 nan 1000", 1))
    with pytest.raises(DataError, match="header gives sampling rate 'nan', not a positive number"):
        read_wfdb(tmp_path / "00001_lr", "00001_lr")


def test_a_duplicate_ptbxl_ecg_id_keeps_the_first_row_and_names_the_second(tmp_path):
    import pandas as pd

    src = BUNDLED_RAW_DIR / "ptb-xl"
    root = tmp_path / "ptbxl"
    (root / "records100" / "00000").mkdir(parents=True)
    shutil.copy(src / "scp_statements.csv", root)
    db = pd.read_csv(src / "ptbxl_database.csv", dtype={"ecg_id": str}).iloc[:3].copy()
    db.loc[2, "ecg_id"] = db.loc[1, "ecg_id"]
    db.to_csv(root / "ptbxl_database.csv", index=False)
    for i in range(1, 4):
        for ext in ("hea", "dat"):
            shutil.copy(src / "records100" / "00000" / f"{i:05d}_lr.{ext}", root / "records100" / "00000")
    results = list(PtbXlReader(root))
    skipped = [r for r in results if isinstance(r, Skipped)]
    assert len(skipped) == 1 and skipped[0].file.endswith("00003_lr")
    assert f"duplicate ecg_id {db.loc[1, 'ecg_id']} (first row: records100/00000/00002_lr)" in skipped[0].reason
    assert sorted(r.record_id for r in results if isinstance(r, Record)) == ["1", "2"]


def test_links_and_paths_out_of_the_input_folder_are_refused(tmp_path):
    """A record file linked in from elsewhere, and a header naming its signal file with a path, are never read."""
    root = tmp_path / "challenge"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    _copy("A0001", root, "GOOD1")
    _copy("A0001", outside, "SECRET")
    (root / "LINKED.hea").symlink_to(outside / "SECRET.hea")
    (root / "LINKED.mat").symlink_to(outside / "SECRET.mat")
    _copy("A0001", root, "MATLINK")
    (root / "MATLINK.mat").unlink()
    (root / "MATLINK.mat").symlink_to(outside / "SECRET.mat")
    hea = _copy("A0001", root, "PATHMAT")
    hea.write_text(hea.read_text().replace("PATHMAT.mat", "../outside/SECRET.mat"))
    good, bad = _outcomes(root)
    assert set(good) == {"GOOD1"}
    assert "links outside the input folder" in bad["LINKED"].reason
    assert "signal file MATLINK.mat links outside the record's folder; refused" in bad["MATLINK"].reason
    # wfdb itself refuses a signal line whose file name has a path; aclecg's own check stands behind it
    assert "invalid syntax in signal line" in bad["PATHMAT"].reason


def test_a_header_that_is_not_utf8_is_a_named_skip(tmp_path):
    """Decision: a lead name (or any header text) that is not UTF-8 makes the record unusable; it is skipped."""
    root = tmp_path / "challenge"
    root.mkdir()
    _copy("A0001", root, "GOOD1")
    hea = _copy("A0001", root, "LATIN1")
    hea.write_bytes(hea.read_bytes().replace(b" V6", b" V\xe96"))
    good, bad = _outcomes(root)
    assert set(good) == {"GOOD1"} and "not a text WFDB header (UnicodeDecodeError)" in bad["LATIN1"].reason
