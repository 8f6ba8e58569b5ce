"""Common reader interface: locate records (cheap, labels included), then read each one's signals.

Readers split their work in two so that ``prepare`` can read signals in worker processes:

* ``locate()`` scans the dataset folder and label files and returns picklable :class:`RecordItem` s plus the
  records that are already known to be unusable (as :class:`Skipped`);
* ``read(item)`` loads and checks one record's signals and returns a :class:`Record`, raising
  :class:`aclecg.errors.DataError` (message names the file) when the record is malformed.

Each reader class registers itself with :func:`register_reader` under its :attr:`Reader.format` (the value of
``prepare --format``), with the label set that generated folds are stratified by (:attr:`Reader.stratify_by`);
``prepare``, the command line's ``--format`` choices and the app read :data:`READERS`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from aclecg.data.records import Record, Skipped, canonicalise, check_values
from aclecg.errors import DataError
from aclecg.registry import Registry


@dataclass
class RecordItem:
    """What a reader knows about a record before reading its signals."""

    path: str  # absolute path of the record (without extension for WFDB records)
    source: str  # path relative to the dataset root, shown in messages and stored in records.csv
    record_id: str
    patient_id: str
    labels: dict[str, list[str]] = field(default_factory=dict)
    fold: int | None = None
    age: float = float("nan")
    sex: str = ""


class Reader(abc.ABC):
    """Base class of the dataset readers."""

    #: value of ``--format`` selecting this reader (its name in :data:`READERS`)
    format: str = ""
    #: label set that stratifies the generated folds of a dataset without official ones
    stratify_by: str = ""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise DataError(f"{root}: input folder does not exist")
        self._located: tuple[list[RecordItem], list[Skipped]] | None = None

    @classmethod
    def open(cls, root: str | Path, fs: float = 100.0) -> Reader:
        """The reader ``prepare`` uses for ``root`` when it resamples to ``fs`` Hz (a reader that can pick among
        stored rates overrides this)."""
        return cls(root)

    @property
    def dataset(self) -> str:
        """Short dataset name (folder name by default)."""
        return self.root.name

    @abc.abstractmethod
    def _locate(self) -> tuple[list[RecordItem], list[Skipped]]: ...

    @abc.abstractmethod
    def _read_signals(self, item: RecordItem) -> tuple[np.ndarray, list[str], float]:
        """Return raw signals ``(n_leads, n)`` in mV, their lead names and the sampling rate."""

    @abc.abstractmethod
    def label_sets(self) -> dict[str, list[str]]:
        """Label set name -> ordered class list."""

    def locate(self) -> tuple[list[RecordItem], list[Skipped]]:
        if self._located is None:
            self._located = self._locate()
        return self._located

    def read(self, item: RecordItem) -> Record:
        path = Path(item.path)
        for candidate in {path, path.with_suffix(".hea")}:  # a file linked in from elsewhere is never read
            if candidate.exists() and not candidate.resolve().is_relative_to(self.root):
                raise DataError(f"{item.source}: {candidate.name} links outside the input folder {self.root}; refused")
        signals, names, fs = self._read_signals(item)
        canon, warnings = canonicalise(signals, names, item.source)
        warnings += check_values(canon, item.source)
        return Record(
            record_id=item.record_id,
            patient_id=item.patient_id,
            signals=canon,
            fs=fs,
            source=item.source,
            labels=item.labels,
            fold=item.fold,
            age=item.age,
            sex=item.sex,
            original_leads=tuple(names),
            warnings=warnings,
        )

    def __iter__(self) -> Iterator[Record | Skipped]:
        """Yield every record in order, or a :class:`Skipped` for each one that cannot be used."""
        items, skipped = self.locate()
        yield from skipped
        for item in items:
            try:
                yield self.read(item)
            except DataError as exc:
                yield Skipped(item.source, _reason(exc, item.source))

    def relative(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)


#: Every reader class by its format name, in registration order (see :func:`register_reader`).
READERS: Registry[type[Reader]] = Registry("format")

R = TypeVar("R", bound="type[Reader]")


def register_reader(cls: R) -> R:
    """Class decorator adding a :class:`Reader` subclass to :data:`READERS` under ``cls.format``."""
    for attr in ("format", "stratify_by"):
        if not getattr(cls, attr, None):
            raise TypeError(f"{cls.__name__} needs a non-empty class attribute {attr} to be registered")
    READERS.register(cls.format, cls)
    return cls


def _reason(exc: Exception, source: str) -> str:
    """The message of ``exc`` without the leading ``source:`` (the file is stored separately)."""
    msg = str(exc)
    prefix = f"{source}: "
    return msg[len(prefix) :] if msg.startswith(prefix) else msg


def sex_code(value: object) -> str:
    """Normalise sex to ``'M'``, ``'F'`` or ``''`` (unknown)."""
    text = str(value).strip().lower()
    if text in ("m", "male", "0", "0.0"):
        return "M"
    if text in ("f", "female", "1", "1.0"):
        return "F"
    return ""


#: Ages outside 0..MAX_AGE years are unknown (NaN).
MAX_AGE = 130.0


def age_value(value: object) -> float:
    """Parse an age in years; unknown (``NaN``, empty, negative, above :data:`MAX_AGE`, e.g. 1e308) becomes NaN."""
    try:
        age = float(np.asarray(value).ravel()[0]) if not isinstance(value, (str, int, float)) else float(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return float("nan")
    return age if np.isfinite(age) and 0 <= age <= MAX_AGE else float("nan")
