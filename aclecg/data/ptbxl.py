"""PTB-XL reader (Wagner et al., Sci Data 7:154, 2020) with the label sets of the official benchmark.

Label aggregation follows Strodthoff et al., "Deep learning for ECG analysis: benchmarks and insights from
PTB-XL", IEEE JBHI 25(5), 2021: every SCP code of a record counts regardless of its likelihood value;

* ``superdiagnostic`` (5) / ``subdiagnostic`` (23): codes with ``diagnostic == 1`` in ``scp_statements.csv``
  mapped through ``diagnostic_class`` / ``diagnostic_subclass``;
* ``diagnostic`` (44), ``form`` (19), ``rhythm`` (12): the codes flagged in those columns;
* ``all`` (71): every SCP code.

Folds are the official ``strat_fold`` (1-8 train, 9 val, 10 test); the patient id is ``patient_id``.
"""

from __future__ import annotations

import ast
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aclecg.data.base import Reader, RecordItem, age_value, register_reader, sex_code
from aclecg.data.limits import MAX_TABLE_BYTES
from aclecg.data.records import Skipped
from aclecg.data.safeio import read_table
from aclecg.data.wfdbio import read_wfdb
from aclecg.errors import DataError

LABEL_SETS: tuple[str, ...] = ("superdiagnostic", "subdiagnostic", "diagnostic", "form", "rhythm", "all")
DATABASE = "ptbxl_database.csv"
STATEMENTS = "scp_statements.csv"
#: PTB-XL codes ages above 89 as 300; stored as 90.
AGE_CAP = 90.0


def load_statements(path: Path, root: Path | None = None) -> pd.DataFrame:
    """Read ``scp_statements.csv`` (index = SCP code) and check the columns the aggregation needs.

    The file must be a regular file inside ``root`` (default: its folder), see :func:`~aclecg.data.safeio.read_table`.
    """
    table = read_table(
        path, Path(path).parent if root is None else root, "SCP statements", MAX_TABLE_BYTES, index_col=0
    )
    need = {"diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass"}
    if not need <= set(table.columns):
        raise DataError(f"{path}: missing columns {', '.join(sorted(need - set(table.columns)))}")
    table.index = table.index.astype(str).str.strip()
    return table


def label_mapping(statements: pd.DataFrame) -> dict[str, dict[str, str]]:
    """For each label set, SCP code -> class name (codes outside the set are absent)."""
    diag = statements[statements["diagnostic"] == 1.0]
    return {
        "superdiagnostic": diag["diagnostic_class"].astype(str).to_dict(),
        "subdiagnostic": diag["diagnostic_subclass"].astype(str).to_dict(),
        "diagnostic": {code: code for code in diag.index},
        "form": {code: code for code in statements.index[statements["form"] == 1.0]},
        "rhythm": {code: code for code in statements.index[statements["rhythm"] == 1.0]},
        "all": {code: code for code in statements.index},
    }


def parse_scp_codes(text: object, source: str) -> dict[str, float]:
    """Parse the ``scp_codes`` column (a Python dict literal of code -> likelihood)."""
    try:
        value = ast.literal_eval(str(text))
    except (ValueError, SyntaxError):
        raise DataError(f"{source}: unreadable scp_codes {str(text)[:60]!r}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise DataError(f"{source}: scp_codes is not a dict of SCP codes: {str(text)[:60]!r}")
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            raise DataError(f"{source}: scp_codes likelihood of {k!r} is {v!r}, not a finite number")
        out[k.strip()] = float(v)
    return out


def aggregate(codes: dict[str, float], mapping: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """Labels per label set for one record (sorted, de-duplicated)."""
    return {name: sorted({table[c] for c in codes if c in table}) for name, table in mapping.items()}


def _is_age_code(value: object) -> bool:
    """Whether ``value`` is PTB-XL's 300, its code for an age above 89."""
    try:
        return float(value) == 300.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


@register_reader
class PtbXlReader(Reader):
    """Reads a PTB-XL root (``ptbxl_database.csv``, ``scp_statements.csv``, ``records100/`` or ``records500/``).

    ``resolution`` is ``"lr"`` (100 Hz), ``"hr"`` (500 Hz) or ``"auto"`` (500 Hz only when ``target_fs`` > 100
    and ``records500`` exists).
    """

    format = "ptbxl"
    stratify_by = "superdiagnostic"

    def __init__(self, root: str | Path, resolution: str = "auto", target_fs: float = 100.0):
        super().__init__(root)
        for name in (DATABASE, STATEMENTS):  # a FIFO, device or link out is refused by name when read
            if not os.path.lexists(self.root / name):
                raise DataError(f"{self.root}: not a PTB-XL folder ({name} is missing)")
        if resolution == "auto":
            resolution = "hr" if target_fs > 100 and (self.root / "records500").is_dir() else "lr"
        if resolution not in ("lr", "hr"):
            raise DataError(f"resolution must be 'lr', 'hr' or 'auto', got {resolution!r}")
        self.resolution = resolution
        self.expected_fs = 100.0 if resolution == "lr" else 500.0
        self.statements = load_statements(self.root / STATEMENTS, self.root)
        self._known_codes = frozenset(self.statements.index)
        self.mapping = label_mapping(self.statements)

    @classmethod
    def open(cls, root: str | Path, fs: float = 100.0) -> PtbXlReader:
        return cls(root, target_fs=fs)

    @property
    def dataset(self) -> str:
        return "ptbxl"

    def label_sets(self) -> dict[str, list[str]]:
        return {name: sorted(set(table.values())) for name, table in self.mapping.items()}

    def _locate(self) -> tuple[list[RecordItem], list[Skipped]]:
        path = self.root / DATABASE
        db = read_table(path, self.root, "PTB-XL database", MAX_TABLE_BYTES, dtype={"ecg_id": str})
        column = f"filename_{self.resolution}"
        need = {"ecg_id", "patient_id", "scp_codes", "strat_fold", column}
        if not need <= set(db.columns):
            raise DataError(f"{path}: missing columns {', '.join(sorted(need - set(db.columns)))}")
        items, skipped = [], []
        first_row: dict[str, str] = {}
        first_file: dict[str, str] = {}
        for row in db.itertuples(index=False):
            filename = str(getattr(row, column))
            ecg_id = str(row.ecg_id)
            file_key = os.path.normpath(filename)
            if ecg_id in first_row:  # decision: the first row of an ecg_id is kept, later ones are skipped
                skipped.append(
                    Skipped(filename, f"duplicate ecg_id {ecg_id} (first row: {first_row[ecg_id]}); skipped")
                )
                continue
            if file_key in first_file:  # one recording under two ids would sit in two folds
                skipped.append(
                    Skipped(filename, f"file also listed for ecg_id {first_file[file_key]} (kept there); skipped")
                )
                continue
            first_row[ecg_id] = filename
            first_file[file_key] = ecg_id
            try:
                items.append(self._item(row, filename))
            except DataError as exc:
                skipped.append(Skipped(filename, str(exc).split(": ", 1)[-1]))
            except Exception as exc:
                skipped.append(Skipped(filename, f"unreadable row of {DATABASE} ({type(exc).__name__}: {exc})"))
        return items, skipped

    def _confined(self, filename: str) -> Path:
        """``root / filename``, refused when the name is absolute or leads outside the input folder."""
        if not filename or filename == "nan" or Path(filename).is_absolute():
            raise DataError(f"{filename}: {self.resolution} file name {filename!r} is empty or absolute; refused")
        path = (self.root / filename).resolve()
        if not path.is_relative_to(self.root):  # the root is resolved once, in Reader.__init__
            raise DataError(f"{filename}: file name leads outside the input folder {self.root}; refused")
        return self.root / filename

    def _item(self, row: Any, filename: str) -> RecordItem:
        source = filename
        path = self._confined(filename)
        codes = parse_scp_codes(row.scp_codes, source)
        unknown = sorted(set(codes) - self._known_codes)
        if unknown:
            raise DataError(f"{source}: unknown SCP codes {', '.join(unknown)}")
        try:
            fold = int(float(row.strat_fold))
        except (TypeError, ValueError):
            fold = -1
        if not 1 <= fold <= 10:
            raise DataError(f"{source}: strat_fold {row.strat_fold!r} is not an integer 1..10")
        patient = row.patient_id
        patient_id = str(int(patient)) if isinstance(patient, float) and math.isfinite(patient) else str(patient)
        age = age_value(getattr(row, "age", None))  # age and sex are optional columns; 0..130 or unknown
        if _is_age_code(getattr(row, "age", None)):
            age = AGE_CAP
        return RecordItem(
            path=str(path),
            source=source,
            record_id=str(row.ecg_id),
            patient_id=patient_id,
            labels=aggregate(codes, self.mapping),
            fold=fold,
            age=age,
            sex=sex_code(getattr(row, "sex", None)),
        )

    def _read_signals(self, item: RecordItem) -> tuple[np.ndarray, list[str], float]:
        raw = read_wfdb(Path(item.path), item.source, expected_fs=self.expected_fs, root=self.root)
        return raw.signals, raw.lead_names, raw.fs
