"""Readers against the real files: signals equal wfdb/scipy, labels equal the CSV/header text."""

from __future__ import annotations

import ast
import csv
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import wfdb

from aclecg.data import BUNDLED_RAW_DIR, ChallengeReader, Cpsc2018Reader, PtbXlReader, Record
from aclecg.data.challenge import parse_comments, parse_dx
from aclecg.data.records import canonicalise
from aclecg.data.snomed import CHAPMAN_RHYTHM_CODES, abbreviation, scored_classes, snomed_table
from aclecg.errors import DataError
from aclecg.leads import LEADS, canonical_lead

PTBXL = BUNDLED_RAW_DIR / "ptb-xl"
CHALLENGE = BUNDLED_RAW_DIR / "challenge-2021"


def _wfdb_canonical(path: Path) -> tuple[np.ndarray, float]:
    rec = wfdb.rdrecord(str(path))
    order = [[canonical_lead(n) for n in rec.sig_name].index(lead) for lead in LEADS]
    return rec.p_signal.T[order], rec.fs


@pytest.fixture(scope="module")
def ptbxl_reader() -> PtbXlReader:
    return PtbXlReader(PTBXL)


def test_ptbxl_signals_equal_wfdb(ptbxl_reader):
    items, skipped = ptbxl_reader.locate()
    assert len(items) == 987 and not skipped
    for item in items[::97]:
        record = ptbxl_reader.read(item)
        expected, fs = _wfdb_canonical(Path(item.path))
        assert record.fs == fs == 100
        assert record.signals.shape == (12, 1000)
        np.testing.assert_array_equal(record.signals, expected)


def test_ptbxl_labels_equal_csv(ptbxl_reader):
    db = pd.read_csv(PTBXL / "ptbxl_database.csv")
    scp = pd.read_csv(PTBXL / "scp_statements.csv", index_col=0)
    diag_class = {c: scp.loc[c, "diagnostic_class"] for c in scp.index if scp.loc[c, "diagnostic"] == 1}
    rhythm = {c for c in scp.index if scp.loc[c, "rhythm"] == 1}
    items, _ = ptbxl_reader.locate()
    by_id = {it.record_id: it for it in items}
    for row in db.itertuples():
        codes = ast.literal_eval(row.scp_codes)
        item = by_id[str(row.ecg_id)]
        assert item.labels["all"] == sorted(codes)
        assert item.labels["superdiagnostic"] == sorted({diag_class[c] for c in codes if c in diag_class})
        assert item.labels["rhythm"] == sorted(set(codes) & rhythm)
        assert item.fold == row.strat_fold and item.patient_id == str(int(row.patient_id))
        assert item.sex == ("F" if row.sex == 1 else "M")


def test_ptbxl_documented_counts(ptbxl_reader):
    """Fold sizes and superclass counts stated in /work/shared/data/README.md for the 987 records."""
    items, _ = ptbxl_reader.locate()
    folds = Counter(it.fold for it in items)
    assert [folds[k] for k in range(1, 11)] == [101, 92, 77, 97, 85, 76, 108, 87, 136, 128]
    sup = Counter(lab for it in items for lab in it.labels["superdiagnostic"])
    assert dict(sup) == {"NORM": 528, "STTC": 230, "CD": 193, "MI": 183, "HYP": 97}
    assert sum(not it.labels["superdiagnostic"] for it in items) == 12
    single = Counter(it.labels["superdiagnostic"][0] for it in items if len(it.labels["superdiagnostic"]) == 1)
    assert dict(single) == {"NORM": 513, "STTC": 107, "CD": 73, "MI": 65, "HYP": 15}
    sizes = {k: len(v) for k, v in ptbxl_reader.label_sets().items()}
    assert sizes == {"superdiagnostic": 5, "subdiagnostic": 23, "diagnostic": 44, "form": 19, "rhythm": 12, "all": 71}
    assert len({it.patient_id for it in items}) == 919


def test_cpsc2018_original_reader(shared_data):
    root = shared_data / "cpsc2018"
    reader = Cpsc2018Reader(root)
    with open(root / "REFERENCE.csv", newline="") as fh:
        ref = {r["Recording"]: [r["First_label"], r["Second_label"], r["Third_label"]] for r in csv.DictReader(fh)}
    names = ["Normal", "AF", "I-AVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE"]
    records = [r for r in reader if isinstance(r, Record)]
    assert len(records) == 10
    for rec in records:
        mat = scipy.io.loadmat(root / f"{rec.record_id}.mat")["ECG"]
        np.testing.assert_array_equal(rec.signals, mat["data"][0, 0])
        assert rec.fs == 500
        assert rec.labels["cpsc2018"] == sorted({names[int(c) - 1] for c in ref[rec.record_id] if c}, key=names.index)
    first = {r.record_id: r.labels["cpsc2018"][0] for r in records}
    assert first["A1980"] == "PAC" and first["A1983"] == "Normal" and first["A1986"] == "RBBB"
    assert Counter(first.values()) == {"STD": 3, "I-AVB": 3, "RBBB": 2, "PAC": 1, "Normal": 1}


def _dx_codes(hea: Path) -> list[str]:
    line = next(l for l in hea.read_text().splitlines() if re.match(r"#\s*Dx:", l))
    return line.split(":", 1)[1].strip().split(",")


def test_challenge_signals_and_dx(tmp_path):
    reader = ChallengeReader(CHALLENGE)
    items, skipped = reader.locate()
    assert len(items) == 20 and not skipped
    for item in items:
        codes = _dx_codes(Path(item.path + ".hea"))
        assert item.labels["snomed"] == sorted({abbreviation(c) for c in codes})
    for item in items[::4]:
        rec = reader.read(item)
        expected, fs = _wfdb_canonical(Path(item.path))
        np.testing.assert_array_equal(rec.signals, expected)
        assert rec.fs == fs == 500


def test_challenge_dx_both_spellings_and_subfolders(tmp_path):
    """'#Dx:' and '# Dx:' headers in g1/ and g2/ sub-folders are all found and parsed the same."""
    src = sorted((CHALLENGE / "training" / "cpsc_2018").glob("*.hea"))[:4]
    for k, hea in enumerate(src):
        dest = tmp_path / f"g{k % 2 + 1}"
        dest.mkdir(exist_ok=True)
        shutil.copy(hea.with_suffix(".mat"), dest)
        text = hea.read_text()
        if k % 2:
            text = re.sub(r"^#(\w+):", r"# \1:", text, flags=re.M)
        (dest / hea.name).write_text(text)
    items, skipped = ChallengeReader(tmp_path).locate()
    assert not skipped and len(items) == 4
    for item, hea in zip(sorted(items, key=lambda i: i.record_id), src):
        assert item.labels["snomed"] == sorted({abbreviation(c) for c in _dx_codes(hea)})
        assert item.sex in ("M", "F") and item.age > 0


def test_parse_dx_rejects_bad_labels():
    assert parse_dx(parse_comments(["# Dx: 426783006, 164889003"], "x"), "x") == ["426783006", "164889003"]
    with pytest.raises(DataError, match="x: no '#Dx:'"):
        parse_dx(parse_comments(["Age: 5"], "x"), "x")
    with pytest.raises(DataError, match="unreadable"):
        parse_dx(parse_comments(["Dx: AF,NSR"], "x"), "x")


def test_chapman_rhythm_groups():
    reader = ChallengeReader(CHALLENGE)
    for item in reader.locate()[0]:
        codes = set(_dx_codes(Path(item.path + ".hea")))
        expected = sorted(g for g, members in CHAPMAN_RHYTHM_CODES.items() if codes & set(members))
        assert item.labels["chapman_rhythm"] == expected
    assert set(CHAPMAN_RHYTHM_CODES["AFIB"]) == {"164889003", "164890007"}
    assert len(CHAPMAN_RHYTHM_CODES["GSVT"]) == 6 and set(CHAPMAN_RHYTHM_CODES["SR"]) == {"426783006", "427393009"}


def test_snomed_table_covers_shared_data_and_scored(shared_data):
    table = snomed_table()
    codes = set()
    for hea in (shared_data / "physionet-challenge-2021").rglob("*.hea"):
        codes.update(_dx_codes(hea))
    assert codes and codes <= set(table), sorted(codes - set(table))
    scored = scored_classes()
    assert len(scored) == 30 and len(set(scored.values())) == 26
    assert len({row["abbreviation"] for row in table.values()}) == len(table)


def test_challenge_cpsc_labels_agree_with_reference(shared_data):
    """A0001-A0010 are CPSC 2018 records: their #Dx mapped to the 9 classes equals REFERENCE.csv."""
    names = ["Normal", "AF", "I-AVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE"]
    with open(shared_data / "cpsc2018" / "REFERENCE.csv", newline="") as fh:
        ref = {
            r["Recording"]: {names[int(r[c]) - 1] for c in ("First_label", "Second_label", "Third_label") if r[c]}
            for r in csv.DictReader(fh)
        }
    items, _ = ChallengeReader(shared_data / "physionet-challenge-2021" / "training" / "cpsc_2018").locate()
    assert len(items) == 10
    for item in items:
        assert set(item.labels["cpsc2018"]) == ref[item.record_id], item.record_id


def test_eight_lead_record_gets_derived_limb_leads(tmp_path):
    """A record holding II, III, V1-V6 only: I, aVR, aVL, aVF follow Einthoven/Goldberger from real data."""
    reader = ChallengeReader(CHALLENGE)
    item = reader.locate()[0][0]
    full = reader.read(item).signals
    keep = ["II", "III", "V1", "V2", "V3", "V4", "V5", "V6"]
    sub = full[[LEADS.index(l) for l in keep]]
    wfdb.wrsamp(
        "R8",
        fs=500,
        units=["mV"] * 8,
        sig_name=keep,
        p_signal=sub.T,
        fmt=["16"] * 8,
        adc_gain=[1000.0] * 8,
        baseline=[0] * 8,
        comments=["Dx: 426783006"],
        write_dir=str(tmp_path),
    )
    rec = next(r for r in ChallengeReader(tmp_path) if isinstance(r, Record))
    s = dict(zip(LEADS, rec.signals))
    np.testing.assert_allclose(s["I"], s["II"] - s["III"], atol=1e-9)
    np.testing.assert_allclose(s["aVR"], -(s["I"] + s["II"]) / 2, atol=1e-9)
    np.testing.assert_allclose(s["aVL"], s["I"] - s["II"] / 2, atol=1e-9)
    np.testing.assert_allclose(s["aVF"], s["II"] - s["I"] / 2, atol=1e-9)
    np.testing.assert_allclose(rec.signals[[LEADS.index(l) for l in keep]], sub, atol=1e-9)
    # the real recording's own limb leads agree with the derived ones up to the recording's quantisation
    assert np.abs(rec.signals[:6] - full[:6]).max() < 0.05
    assert any("derived" in w for w in rec.warnings)


def test_canonicalise_reorders_and_rejects():
    x = np.arange(24, dtype=float).reshape(12, 2)
    names = ["V6", "V5", "V4", "V3", "V2", "V1", "AVF", "AVL", "AVR", "III", "II", "I"]
    out, warnings = canonicalise(x, names, "f")
    np.testing.assert_array_equal(out, x[::-1])
    assert not warnings
    with pytest.raises(DataError, match="f: unknown lead name 'X1'"):
        canonicalise(x, names[:-1] + ["X1"], "f")
    with pytest.raises(DataError, match="f: lead V6 appears twice"):
        canonicalise(x, names[:-1] + ["V6"], "f")
    with pytest.raises(DataError, match="missing leads"):
        canonicalise(x[:6], names[:6], "f")
