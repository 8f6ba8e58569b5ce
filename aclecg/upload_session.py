"""The server side of uploads: parsing in a sandboxed child, and one browser session's staged files.

:func:`parse_upload` reads a staged record (:func:`aclecg.upload.load_uploaded_record`) in a child process with a
memory and a time limit (:mod:`aclecg.sandbox`), so a file that crashes a parser, inflates without bound or never
finishes is refused with a message instead of taking the server, and every user's session, down with it.

:class:`UploadSession` holds one browser session's upload: its staging folder, the record names, the parsed record
and the messages to show. A rejected upload's folder is removed at once; :meth:`UploadSession.close` (called by the
app when the session ends) and garbage collection of the session remove the rest.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from aclecg import sandbox, upload
from aclecg.errors import DataError

__all__ = ["PARSE_LIMITS", "UploadSession", "parse_upload"]

#: What parsing one staged record may use (:mod:`aclecg.sandbox`). The largest upload (a 20 MB 16-bit ``.dat``)
#: needs 260-380 MB beyond the imports (256 MB fails, 384 MB works) and 1-3 s; a crash, a bomb or a hang is
#: refused instead of taking the server down. The largest legitimate answer (an 8-bit 20 MB record as float64 mV)
#: is about 170 MB.
PARSE_LIMITS = sandbox.Limits(memory_bytes=768 << 20, timeout_s=20.0, max_result_bytes=256 << 20)
#: Imported by the waiting sandbox child before an upload arrives, so a parse does not wait for them.
PARSE_PRELOAD = ("aclecg.upload_session", "aclecg.data.challenge", "aclecg.data.prepare", "wfdb", "scipy.io")


def _parse_in_child(folder: str, record: str | None, fs: float, seconds: float) -> dict[str, object]:
    """Runs in the sandbox child: :func:`aclecg.upload.load_uploaded_record`, as plain arrays and values."""
    rec = upload.load_uploaded_record(Path(folder), record, fs=fs, seconds=seconds)
    return {
        "record_id": rec.record_id,
        "raw_mv": np.asarray(rec.raw_mv, dtype=np.float64),
        "raw_fs": float(rec.raw_fs),
        "windows": np.asarray(rec.windows, dtype=np.float32),
        "rpeaks": [np.asarray(p, dtype=np.int64) for p in rec.rpeaks],
        "labels": {str(k): [str(c) for c in v] for k, v in rec.labels.items()},
        "age": float(rec.age),
        "sex": str(rec.sex),
        "warnings": [str(w) for w in rec.warnings],
    }


#: The function :func:`parse_upload` runs in the sandbox (tests swap in one that crashes).
_parse_target = _parse_in_child


def _no_paths(message: str, folder: Path | None = None) -> str:
    """``message`` without server paths: the staging ``folder`` becomes "the upload" (its files keep their names),
    any other absolute path is cut to its last part."""
    if folder is not None:
        message = message.replace(f"{folder}/", "").replace(str(folder), "the upload")
    return re.sub(r"(?<![\w.~])/(?:[^\s'\"/:]+/)+([^\s'\"/:]*)", r"\1", message)


def _record_from(out: object, folder: Path, fs: float) -> upload.UploadedRecord:
    """The child's answer as an :class:`UploadedRecord`, after checking every field's type and shape."""
    try:
        assert isinstance(out, dict)
        raw, windows, rpeaks = out["raw_mv"], out["windows"], out["rpeaks"]
        assert isinstance(raw, np.ndarray) and raw.ndim == 2 and raw.dtype == np.float64
        assert isinstance(windows, np.ndarray) and windows.ndim == 3 and windows.dtype == np.float32
        assert isinstance(rpeaks, list) and all(isinstance(p, np.ndarray) and p.ndim == 1 for p in rpeaks)
        labels = out["labels"]
        assert isinstance(labels, dict) and all(isinstance(v, list) for v in labels.values())
        return upload.UploadedRecord(
            record_id=str(out["record_id"]),
            folder=folder,
            raw_mv=raw,
            raw_fs=float(out["raw_fs"]),
            windows=windows,
            rpeaks=[p.astype(np.int64, copy=False) for p in rpeaks],
            fs=fs,
            labels={str(k): [str(c) for c in v] for k, v in labels.items()},
            age=float(out["age"]),
            sex=str(out["sex"]),
            warnings=[str(w) for w in out["warnings"]],
        )
    except (AssertionError, KeyError, TypeError, ValueError):
        raise DataError("the upload could not be parsed safely: the parser returned a malformed result") from None


def parse_upload(
    folder: Path,
    record: str | None = None,
    fs: float = 100.0,
    seconds: float = 10.0,
    limits: sandbox.Limits | None = None,
) -> upload.UploadedRecord:
    """:func:`aclecg.upload.load_uploaded_record` in a sandboxed child (:mod:`aclecg.sandbox`); the app calls this.

    The header and signal files are read only in the child. A crash, a timeout or running out of memory there is a
    :class:`DataError` such as ``the upload could not be parsed safely: the parser crashed (signal 11, SIGSEGV)``;
    the calling process is unaffected. Messages name the upload's files, never the staging folder's path.
    """
    folder = Path(folder)
    try:
        out = sandbox.run(
            _parse_target,
            str(folder),
            record,
            float(fs),
            float(seconds),
            limits=limits or PARSE_LIMITS,
            what="the parser",
            preload=PARSE_PRELOAD,
        )
    except sandbox.SandboxRejected as exc:
        raise DataError(f"the upload could not be parsed safely: {_no_paths(str(exc), folder)}") from None
    except DataError as exc:
        raise DataError(_no_paths(str(exc), folder)) from None
    return _record_from(out, folder, fs)


class UploadSession:
    """One browser session's upload: staged folder, record names, parsed record and messages.

    ``offer`` stages the files the uploader widget holds (once per distinct upload), ``record`` parses one record
    (sandboxed, cached), ``close`` removes the staging folder. A rejected upload is removed at once and its verdict
    kept, so the same files are not staged and parsed again on every rerun. The folder is also removed when the
    object is garbage collected or the process exits (``weakref.finalize``).
    """

    def __init__(self) -> None:
        self.signature: object = None
        self.folder: Path | None = None
        self.names: list[str] = []
        self.left_out: list[tuple[str, str]] = []  # (file name, reason) of files staged without
        self.error: str | None = None  # the verdict to show for the current upload, if it was rejected
        self._record: tuple[tuple[str, float, float], upload.UploadedRecord] | None = None
        self._finalizer: weakref.finalize | None = None

    def _drop_folder(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # removes the folder now (and only once)
        self._finalizer = None
        self.folder = None
        self.names = []
        self._record = None

    def close(self) -> None:
        """Remove the staged files and forget the upload."""
        self._drop_folder()
        self.signature = None
        self.left_out = []
        self.error = None

    def offer(self, signature: object, files: Callable[[], Sequence[tuple[str, bytes]]]) -> None:
        """Stage ``files()`` unless the upload with this ``signature`` was already handled (staged or rejected)."""
        if signature == self.signature:
            return
        self.close()
        self.signature = signature
        left_out: list[tuple[str, str]] = []
        try:
            folder = upload.stage_upload(files(), rejected=left_out)
            self._finalizer = weakref.finalize(self, upload.discard, folder)
            self.folder = folder
            self.names = upload.list_records(folder)
        except DataError as exc:
            self._drop_folder()
            self.error = f"Upload rejected: {_no_paths(str(exc))}"
        except OSError as exc:  # the server could not write the staging folder (disk full, permissions)
            self._drop_folder()
            self.error = f"Upload could not be stored on the server ({exc.strerror or type(exc).__name__})"
        self.left_out = [(name, _no_paths(reason)) for name, reason in left_out]

    def record(self, name: str, fs: float, seconds: float) -> upload.UploadedRecord | None:
        """The parsed record ``name`` (cached); None, with :attr:`error` set and the upload removed, if it fails."""
        key = (name, float(fs), float(seconds))
        if self._record is not None and self._record[0] == key:
            return self._record[1]
        if self.folder is None or name not in self.names:
            return None
        try:
            rec = parse_upload(self.folder, name, fs=fs, seconds=seconds)
        except DataError as exc:
            self._drop_folder()
            self.error = f"Upload could not be read (and was removed): {exc}"
            return None
        self._record = (key, rec)
        return rec
