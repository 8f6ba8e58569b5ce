"""CPSC 2018 reader, original release (Liu et al., J Med Imaging Health Inform 8(7), 2018).

Each record is a MATLAB file holding a struct ``ECG`` with fields ``sex``, ``age`` and ``data`` (12 x N, mV,
500 Hz, leads I, II, III, aVR, aVL, aVF, V1-V6), read by :mod:`aclecg.data.matfile` (never ``scipy.io.loadmat``).
``REFERENCE.csv`` gives up to three labels per record as codes 1-9. Patients are not identified in the release, so
each record is its own patient.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from aclecg.data.base import Reader, RecordItem, age_value, register_reader, sex_code
from aclecg.data.limits import MAX_MAT_BYTES, MAX_TABLE_BYTES, max_samples
from aclecg.data.matfile import parse_mat
from aclecg.data.records import Skipped
from aclecg.data.safeio import read_confined, read_table
from aclecg.errors import DataError
from aclecg.leads import LEADS

FS = 500.0
#: REFERENCE.csv code -> class name, in the official order.
CLASSES: tuple[str, ...] = ("Normal", "AF", "I-AVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE")
LABEL_SET = "cpsc2018"
REFERENCE = "REFERENCE.csv"


def read_reference(path: Path, root: Path | None = None) -> dict[str, list[str]]:
    """Record name -> class names from ``REFERENCE.csv`` (raises :class:`DataError` for a bad file).

    The file must be a regular file inside ``root`` (default: its folder), see :func:`~aclecg.data.safeio.read_table`.
    """
    root = Path(path).parent if root is None else root
    table = read_table(path, root, "CPSC 2018 reference", MAX_TABLE_BYTES, dtype=str)
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


@register_reader
class Cpsc2018Reader(Reader):
    """Reads a folder of CPSC 2018 ``.mat`` files with its ``REFERENCE.csv`` (searched recursively)."""

    format = "cpsc2018"
    stratify_by = "cpsc2018"

    @property
    def dataset(self) -> str:
        return "cpsc2018"

    def label_sets(self) -> dict[str, list[str]]:
        return {LABEL_SET: list(CLASSES)}

    def _locate(self) -> tuple[list[RecordItem], list[Skipped]]:
        refs = sorted(self.root.rglob(REFERENCE))
        if not refs:
            raise DataError(f"{self.root}: not a CPSC 2018 folder ({REFERENCE} is missing)")
        reference = read_reference(refs[0], self.root)
        items: list[RecordItem] = []
        skipped: list[Skipped] = []
        first: dict[str, str] = {}
        for mat in sorted(self.root.rglob("*.mat")):
            source = self.relative(mat)
            labels = reference.get(mat.stem)
            if mat.stem in first:  # record ids must be unique: the first in sorted order is kept
                skipped.append(Skipped(source, f"duplicate record name {mat.stem} (first: {first[mat.stem]}); skipped"))
                continue
            first[mat.stem] = source
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
        content = parse_mat(read_confined(item.path, self.root, item.source, MAX_MAT_BYTES, "MATLAB file"), item.source)
        ecg = content.get("ECG")
        if not isinstance(ecg, dict) or "data" not in ecg:
            raise DataError(f"{item.source}: no struct ECG with a data field (not a CPSC 2018 record)")
        if ecg["data"] is None:
            raise DataError(f"{item.source}: struct ECG is empty (no record in the file)")
        data = ecg["data"]
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[0] != len(LEADS):
            shape = data.shape if isinstance(data, np.ndarray) else "text"
            raise DataError(f"{item.source}: ECG.data has shape {shape}, expected (12, n)")
        if data.shape[1] > max_samples(FS):
            raise DataError(f"{item.source}: ECG.data holds {data.shape[1]} samples, over the {max_samples(FS)} limit")
        item.age = age_value(ecg["age"]) if isinstance(ecg.get("age"), np.ndarray) else float("nan")
        item.sex = sex_code(ecg["sex"]) if isinstance(ecg.get("sex"), str) else ""
        return data.astype(np.float64), list(LEADS), FS
