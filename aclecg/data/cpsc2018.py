"""CPSC 2018 reader, original release (Liu et al., J Med Imaging Health Inform 8(7), 2018).

Each record is a MATLAB file holding a struct ``ECG`` with fields ``sex``, ``age`` and ``data`` (12 x N, mV,
500 Hz, leads I, II, III, aVR, aVL, aVF, V1-V6). ``REFERENCE.csv`` gives up to three labels per record as codes
1-9. Patients are not identified in the release, so each record is its own patient.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from aclecg.data.base import Reader, RecordItem, age_value, sex_code
from aclecg.data.records import Skipped
from aclecg.errors import DataError
from aclecg.leads import LEADS

FS = 500.0
#: REFERENCE.csv code -> class name, in the official order.
CLASSES: tuple[str, ...] = ("Normal", "AF", "I-AVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE")
LABEL_SET = "cpsc2018"
REFERENCE = "REFERENCE.csv"


def read_reference(path: Path) -> dict[str, list[str]]:
    """Record name -> class names from ``REFERENCE.csv`` (raises :class:`DataError` for a bad file)."""
    try:
        table = pd.read_csv(path, dtype=str)
    except Exception as exc:
        raise DataError(f"{path}: cannot read the CPSC 2018 reference ({exc})") from None
    label_cols = [c for c in table.columns if c.lower().endswith("_label")]
    if "Recording" not in table.columns or not label_cols:
        raise DataError(f"{path}: expected columns Recording, First_label, Second_label, Third_label")
    out: dict[str, list[str]] = {}
    for row in table.itertuples(index=False):
        name = str(row.Recording).strip()
        codes = [str(getattr(row, c)).strip() for c in label_cols]
        labels: list[str] = []
        for code in codes:
            if code in ("", "nan"):
                continue
            try:
                number = float(code)
                value = int(number) if math.isfinite(number) and number == int(number) else 0
            except (ValueError, OverflowError):
                value = 0
            labels.append(CLASSES[value - 1] if 1 <= value <= 9 else f"?{code}")
        out[name] = labels
    return out


class Cpsc2018Reader(Reader):
    """Reads a folder of CPSC 2018 ``.mat`` files with its ``REFERENCE.csv`` (searched recursively)."""

    format = "cpsc2018"

    @property
    def dataset(self) -> str:
        return "cpsc2018"

    def label_sets(self) -> dict[str, list[str]]:
        return {LABEL_SET: list(CLASSES)}

    def _locate(self) -> tuple[list[RecordItem], list[Skipped]]:
        refs = sorted(self.root.rglob(REFERENCE))
        if not refs:
            raise DataError(f"{self.root}: not a CPSC 2018 folder ({REFERENCE} is missing)")
        reference = read_reference(refs[0])
        items, skipped = [], []
        for mat in sorted(self.root.rglob("*.mat")):
            source = self.relative(mat)
            labels = reference.get(mat.stem)
            if labels is None:
                skipped.append(Skipped(source, f"record {mat.stem} has no row in {REFERENCE}"))
            elif not labels or any(lab.startswith("?") for lab in labels):
                skipped.append(Skipped(source, f"unreadable labels in {REFERENCE}: {labels or 'none'}"))
            else:
                items.append(
                    RecordItem(
                        path=str(mat),
                        source=source,
                        record_id=mat.stem,
                        patient_id=mat.stem,
                        labels={LABEL_SET: sorted(set(labels), key=CLASSES.index)},
                    )
                )
        return items, skipped

    def _read_signals(self, item: RecordItem) -> tuple[np.ndarray, list[str], float]:
        try:
            content = scipy.io.loadmat(item.path)
        except Exception as exc:
            raise DataError(f"{item.source}: not a readable MATLAB file ({type(exc).__name__}: {exc})") from None
        ecg = content.get("ECG")
        if ecg is None or ecg.dtype.names is None or "data" not in ecg.dtype.names:
            raise DataError(f"{item.source}: no struct ECG with a data field (not a CPSC 2018 record)")
        if ecg.size == 0:
            raise DataError(f"{item.source}: struct ECG is empty (no record in the file)")
        data = np.asarray(ecg["data"].ravel()[0])
        if np.iscomplexobj(data):
            raise DataError(f"{item.source}: ECG.data holds complex numbers, not a voltage signal")
        if data.ndim != 2 or data.shape[0] != len(LEADS) or not np.issubdtype(data.dtype, np.number):
            raise DataError(f"{item.source}: ECG.data has shape {data.shape}, expected (12, n)")
        names = ecg.dtype.names
        item.age = age_value(ecg["age"].ravel()[0]) if "age" in names else float("nan")
        item.sex = _first_text(ecg["sex"].ravel()[0]) if "sex" in names else ""
        return data.astype(np.float64), list(LEADS), FS


def _first_text(value: object) -> str:
    """The sex code of a MATLAB cell (``''`` when the field is empty)."""
    while isinstance(value, np.ndarray):  # MATLAB cells and char arrays nest
        if value.size == 0:
            return ""
        value = value.ravel()[0]
    return sex_code(value)
