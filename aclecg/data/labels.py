"""Words for class names (PTB-XL's SCP statements, the PhysioNet Challenge's SNOMED CT table) and for rows.

The PTB-XL descriptions come from the ``scp_statements.csv`` of the folder the dataset was prepared from (its
manifest's ``preprocessing.source_root``), falling back to the bundled copy; Challenge/CPSC classes from the
SNOMED CT table shipped with the package.

>>> describe_labels("NORM;MI", {"NORM": "normal ECG", "MI": "myocardial infarction"})
'NORM (normal ECG); MI (myocardial infarction)'
>>> sentence_case("1st degree av block")
'1st degree AV block'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aclecg.data.snomed import snomed_table

__all__ = [
    "LABEL_SEPARATOR",
    "SUPERCLASSES",
    "describe_labels",
    "join_labels",
    "label_colours",
    "label_descriptions",
    "record_row",
    "row_choices",
    "sentence_case",
    "source_root",
    "split_labels",
]

#: PTB-XL's five diagnostic superclasses.
SUPERCLASSES = {
    "NORM": "normal ECG",
    "MI": "myocardial infarction",
    "STTC": "ST/T change",
    "CD": "conduction disturbance",
    "HYP": "hypertrophy",
}
#: Challenge classes that merge two SNOMED codes (the 2021 Challenge's equivalent classes).
_MERGED = {
    "CRBBB|RBBB": "right bundle branch block",
    "PAC|SVPB": "premature atrial contraction",
    "PVC|VPB": "premature ventricular contraction",
    "CLBBB|LBBB": "left bundle branch block",
}
#: Abbreviations kept in capitals when a description is put in sentence case.
_ACRONYMS = ("av", "sa", "st", "qrs", "qt", "ecg", "lbbb", "rbbb", "lvh", "rvh", "wpw", "mi")


def source_root(manifest: Mapping[str, Any]) -> Path | None:
    """The raw folder a prepared dataset was made from, as its manifest records it (None if not recorded)."""
    root = (manifest.get("preprocessing") or {}).get("source_root")
    return Path(root) if root else None


def sentence_case(text: str) -> str:
    """Capitalise the first letter and the usual ECG abbreviations (``av`` -> ``AV``)."""
    words = [w.upper() if w.lower() in _ACRONYMS else w for w in str(text).split(" ")]
    out = " ".join(words)
    return out[:1].upper() + out[1:] if out else out


def _scp_descriptions(folders: list[Path]) -> dict[str, str]:
    """SCP code -> description from the first readable ``scp_statements.csv`` (a regular file inside its folder)."""
    from aclecg.data.limits import MAX_TABLE_BYTES
    from aclecg.data.safeio import read_table
    from aclecg.errors import DataError

    for folder in folders:
        path = folder / "scp_statements.csv"
        if not os.path.lexists(path):
            continue
        try:
            table = read_table(path, folder, "SCP statements", MAX_TABLE_BYTES, index_col=0)
        except DataError:
            continue
        if "description" in table.columns:
            return {str(k).strip(): str(v) for k, v in table["description"].items()}
    return {}


def label_descriptions(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Class name -> description for a prepared dataset's classes (and every SNOMED abbreviation)."""
    from aclecg.data.bundled import BUNDLED

    out = dict(SUPERCLASSES)
    if manifest.get("format") == "ptbxl":
        folders = [p for p in (source_root(manifest), BUNDLED["ptbxl"][1]) if p is not None]
        out.update(_scp_descriptions(folders))
    for code, row in snomed_table().items():
        out.setdefault(row["abbreviation"], row["name"])
        out.setdefault(code, row["name"])  # a label kept as its numeric code (prepared before the code was named)
    for name, words in _MERGED.items():
        out.setdefault(name, words)
    return {k: sentence_case(v) for k, v in out.items()}


#: How a record's labels of one label set are stored in ``records.csv`` (``labels_<set>``): ``"NORM;MI"``.
LABEL_SEPARATOR = ";"


def split_labels(text: object) -> list[str]:
    """A ``labels_<set>`` cell as a list: ``"NORM;MI"`` -> ``["NORM", "MI"]``; ``[]`` for ``""`` or a missing value.

    >>> split_labels("NORM;MI"), split_labels(""), split_labels(float("nan"))
    (['NORM', 'MI'], [], [])
    """
    return text.split(LABEL_SEPARATOR) if isinstance(text, str) and text else []


def join_labels(labels: Sequence[str]) -> str:
    """The ``labels_<set>`` cell of a record's labels (the inverse of :func:`split_labels`)."""
    return LABEL_SEPARATOR.join(labels)


def label_colours(cells: pd.Series) -> np.ndarray:
    """A colour group per ``labels_<set>`` cell: the label itself, ``"multiple"`` or ``"(none)"``.

    >>> label_colours(pd.Series(["NORM", "NORM;MI", "", None])).tolist()
    ['NORM', 'multiple', '(none)', '(none)']
    """
    n = np.array([len(split_labels(c)) for c in cells])
    raw = cells.fillna("").astype(str).to_numpy()
    return np.where(n > 1, "multiple", np.where(n == 0, "(none)", raw))


def describe_labels(text: str, descriptions: Mapping[str, str]) -> str:
    """``"NORM;MI"`` -> ``"NORM (normal ECG); MI (myocardial infarction)"``; ``"(none)"`` for no label."""
    labels = [lab for lab in re.split(r"[;,]", str(text or "")) if lab.strip()]
    if not labels:
        return "(none)"
    return "; ".join(f"{lab} ({descriptions[lab]})" if lab in descriptions else lab for lab in map(str.strip, labels))


def record_row(records: pd.DataFrame, record_id: str, where: str = "the dataset") -> int:
    """The row of a record's first window; ``DataError`` naming ``where`` when the id is not there."""
    from aclecg.errors import DataError

    rows = np.flatnonzero(records["record_id"].astype(str).to_numpy() == str(record_id))
    if rows.size == 0:
        raise DataError(f"record {record_id!r} is not in {where}")
    return int(rows[0])


def row_choices(
    records: pd.DataFrame, rows: Sequence[int] | np.ndarray | None = None, limit: int = 5000
) -> dict[str, int]:
    """Record id (plus ``· window k`` for a record's later windows) -> row, for the first ``limit`` of ``rows``.

    The one way every page names a prepared row, so a record id picked on one page means the same row on another.
    """
    ids = records["record_id"].astype(str).to_numpy()
    win = records["window"].to_numpy() if "window" in records else np.zeros(len(records), dtype=int)
    picked = np.arange(len(records)) if rows is None else np.asarray(rows, dtype=int)
    return {ids[i] + (f" · window {win[i]}" if win[i] else ""): int(i) for i in picked[:limit]}
