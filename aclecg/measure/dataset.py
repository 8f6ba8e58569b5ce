"""The measurements of every record of a prepared dataset, cached on disk like the embeddings.

The cache file is ``<cache root>/measurements/<data fingerprint>__<code version>.csv``: the data's fingerprint
(from its manifest) and :func:`code_version`, a digest of the source of the code that computes the values (this
package's measuring modules, the R-peak detector and the band-pass), so an edit to any of them measures again.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aclecg import atomicio
from aclecg.data.cache import PreparedDataset
from aclecg.errors import DataError
from aclecg.measure.core import GLOBAL_FIELDS, Measurement, measure_record
from aclecg.paths import cache_root

__all__ = [
    "cache_path",
    "code_version",
    "measure_dataset",
    "measure_row",
    "measurement_cache_dir",
    "row_of_record",
]

#: Modules whose source decides the measured values (the cache key's code version is their digest).
CODE_MODULES: tuple[str, ...] = (
    "aclecg.measure.core",
    "aclecg.measure.beat",
    "aclecg.measure.delineate",
    "aclecg.data.rpeaks",
    "aclecg.data.preprocess",
)
COLUMNS: tuple[str, ...] = ("row", "record_id", "window", *GLOBAL_FIELDS, "notes")


def code_version() -> str:
    """The first 12 hex digits of the sha256 of :data:`CODE_MODULES`' source files."""
    import importlib

    digest = hashlib.sha256()
    for name in CODE_MODULES:
        module = importlib.import_module(name)
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:12]


def measurement_cache_dir() -> Path:
    """``<cache root>/measurements`` (see :func:`aclecg.paths.cache_root`)."""
    return cache_root() / "measurements"


def cache_path(dataset: PreparedDataset, cache_dir: str | Path | None = None) -> Path:
    """Where :func:`measure_dataset` keeps ``dataset``'s measurements."""
    fingerprint = str(dataset.fingerprint or "")
    if not fingerprint:
        raise DataError(f"{dataset.path}: prepared dataset has no fingerprint: cannot cache measurements safely")
    folder = Path(cache_dir) if cache_dir is not None else measurement_cache_dir()
    return folder / f"{dataset.name}__{fingerprint[:24]}__{code_version()}.csv"


def _measure_rows(dataset: PreparedDataset, rows: np.ndarray, progress: bool) -> pd.DataFrame:
    from tqdm.auto import tqdm

    ids = dataset.records["record_id"].astype(str).to_numpy()
    windows = dataset.records["window"].to_numpy() if "window" in dataset.records else np.zeros(len(dataset), int)
    out: list[dict[str, Any]] = []
    for i in tqdm(rows, desc="measuring", disable=not progress, leave=False):
        m = measure_record(np.asarray(dataset.signals[i]), dataset.fs, rpeaks=dataset.rpeaks(int(i)))
        out.append(
            {"row": int(i), "record_id": ids[i], "window": int(windows[i]), **m.summary(), "notes": "; ".join(m.notes)}
        )
    return pd.DataFrame(out, columns=list(COLUMNS))


def _read_cache(path: Path, n: int) -> pd.DataFrame | None:
    try:
        table = pd.read_csv(
            path,
            dtype={"record_id": str, "notes": str},
            keep_default_na=False,
            na_values={k: [""] for k in GLOBAL_FIELDS},
        )
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    if list(table.columns) != list(COLUMNS) or len(table) != n:
        return None
    return table


def measure_dataset(
    dataset: PreparedDataset | str | Path,
    cache_dir: str | Path | None = None,
    refresh: bool = False,
    progress: bool = False,
) -> tuple[pd.DataFrame, Path]:
    """Measurements of every row of a prepared dataset (one row each, :data:`COLUMNS`), and the cache file.

    Read from the cache when it holds this data and code version (``refresh`` measures again); a damaged cache
    file is measured again and rewritten. The dataset's stored R-peaks are used (those ``prepare`` detected with
    the same detector on the same filtered signal).
    """
    ds = dataset if isinstance(dataset, PreparedDataset) else PreparedDataset(dataset)
    path = cache_path(ds, cache_dir)
    if path.is_file() and not refresh:
        table = _read_cache(path, len(ds))
        if table is not None:
            return table, path
    table = _measure_rows(ds, np.arange(len(ds)), progress)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    atomicio.write_text(path, buffer.getvalue())
    return table, path


def row_of_record(dataset: PreparedDataset, record: str) -> int:
    """The row of record id ``record`` (``ID`` or ``ID · window K`` as the app names rows, or ``ID:K``)."""
    from aclecg.data.labels import row_choices

    choices = row_choices(dataset.records, limit=len(dataset))
    key = str(record).strip()
    if ":" in key and key not in choices:
        rid, _, win = key.partition(":")
        key = rid if win.strip() in ("", "0") else f"{rid} · window {win.strip()}"
    if key not in choices:
        sample = ", ".join(list(choices)[:5])
        raise DataError(f"--record {record!r} is not in {dataset.path} ({len(dataset)} rows; ids such as {sample})")
    return choices[key]


def measure_row(dataset: PreparedDataset, row: int) -> Measurement:
    """The measurement of prepared row ``row``, as ``aclecg measure --record``, the Explorer and the printout
    report it: the prepared signal at the dataset's rate, with the R-peaks prepared beside it."""
    return measure_record(np.asarray(dataset.signals[row]), dataset.fs, rpeaks=dataset.rpeaks(row))
