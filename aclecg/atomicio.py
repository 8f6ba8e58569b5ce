"""Atomic file writes, shared by every module that writes a user's run, cache or results.

A reader (the app, a resuming run, a second process) sees either the old file or the complete new one, never a
half-written file: data go to a temporary file in the same folder, are flushed to disk, then renamed over the
target. A failing write (disk full, read-only file system, no permission) leaves the old file, removes the
temporary one and raises :class:`~aclecg.errors.StorageError` naming the path.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_json(folder / "status.json", {"state": "running", "step": 3})
>>> read_text = (folder / "status.json").read_text()
>>> '"step": 3' in read_text
True
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np

from aclecg.errors import StorageError

__all__ = ["json_default", "write_bytes", "write_json", "write_npz", "write_text"]

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, StorageError):
            raise
        raise StorageError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def json_default(obj: Any) -> Any:
    """JSON for the numpy scalars/arrays and paths that results carry."""
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | Path, payload: Any, indent: int | None = 1) -> None:
    """``payload`` as JSON (NaN allowed, as Python's json writes it), atomically."""
    write_text(path, json.dumps(payload, indent=indent, default=json_default, allow_nan=True))


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """A compressed ``.npz`` of ``arrays``, atomically."""
    buffer = io.BytesIO()
    # The stub types ``**kwds`` alongside the ``allow_pickle: bool`` keyword, so a ``**dict[str, ndarray]``
    # is checked against ``bool`` too; the values are arrays, passed on unchanged.
    np.savez_compressed(buffer, **cast(dict[str, Any], arrays))
    write_bytes(path, buffer.getvalue())
