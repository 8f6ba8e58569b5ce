"""The raw record behind a prepared row: for the clinical view at the record's own rate and in millivolts.

The raw folder is the one the dataset was prepared from (its manifest's ``preprocessing.source_root``), or the
bundled copy for the bundled datasets when that folder has moved. Readers are opened once per folder.

>>> from aclecg.data import PreparedDataset, ensure_bundled   # doctest: +SKIP
>>> signals, fs = raw_window_mv(PreparedDataset(ensure_bundled()["ptbxl"]), 0)   # doctest: +SKIP
>>> signals.shape, fs                                          # doctest: +SKIP
((12, 1000), 100.0)
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from aclecg.data.labels import source_root

__all__ = ["display_window", "index_raw", "raw_folder", "raw_window_mv"]


def raw_folder(dataset: Any) -> tuple[str, Path] | None:
    """``(format, folder)`` of a prepared dataset's raw files, or None when they are not on this machine."""
    from aclecg.data.bundled import BUNDLED

    fmt = str(dataset.manifest.get("format", ""))
    candidates = [source_root(dataset.manifest)]
    bundled = BUNDLED.get(str(dataset.manifest.get("dataset")))
    if bundled is not None and bundled[0] == fmt:
        candidates.append(bundled[1])
    for folder in candidates:
        if folder is not None and folder.is_dir():
            return fmt, folder
    return None


@functools.lru_cache(maxsize=8)
def _reader_items(fmt: str, folder: str) -> tuple[Any, dict[str, Any]]:
    from aclecg.data.prepare import make_reader

    reader = make_reader(fmt, folder)
    items, _ = reader.locate()
    return reader, {item.source: item for item in items}


def index_raw(dataset: Any) -> bool:
    """Open and index the raw folder behind ``dataset`` now (once per process; the app's launcher does it for the
    bundled datasets, so the first record shown waits for no index); whether its raw files are here."""
    found = raw_folder(dataset)
    if found is not None:
        _reader_items(found[0], str(found[1]))
    return found is not None


def raw_window_mv(dataset: Any, row: int) -> tuple[np.ndarray, float] | None:
    """The raw signals (leads x samples, mV) of prepared row ``row``, cut to the row's window, and their rate.

    None when the raw files are not available or no longer hold the row's record.
    """
    found = raw_folder(dataset)
    if found is None:
        return None
    rec = dataset.records.iloc[row]
    reader, items = _reader_items(found[0], str(found[1]))
    item = items.get(str(rec["source"]))
    if item is None:
        return None
    record = reader.read(item)
    start = int(round(float(rec.get("start", 0)) / dataset.fs * record.fs))
    seconds = float(dataset.manifest.get("seconds", dataset.n_samples / dataset.fs))
    return record.signals[:, start : start + int(round(seconds * record.fs))], float(record.fs)


def display_window(dataset: Any, row: int) -> tuple[np.ndarray, float, str]:
    """``(signals, fs, units)`` to draw a prepared row on paper: the raw record in mV when it can be read
    (:func:`raw_window_mv`), else the prepared window in z units."""
    raw = raw_window_mv(dataset, int(row))
    if raw is not None:
        return raw[0], raw[1], "mV"
    return np.asarray(dataset.signals[int(row)]), float(dataset.fs), "z"
