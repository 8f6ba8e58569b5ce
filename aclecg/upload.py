"""Validated user uploads of ECG records (WFDB ``.hea`` + ``.dat``/``.mat``, or a zip of them).

Everything a user uploads is untrusted. This module:

* limits the total upload to :data:`MAX_UPLOAD_BYTES` (also Streamlit's ``server.maxUploadSize``);
* accepts only ``.hea``, ``.dat``, ``.mat`` and ``.zip`` names, reduced to a safe base name
  (:func:`sanitize_filename`); names with path parts (``../``, absolute paths, drive letters) are rejected;
* opens zips without extracting them to disk blindly: entries are counted from the end record before the
  directory is parsed, and every check runs before the first member is inflated: declared and actual
  uncompressed sizes are capped (zip bombs), only stored/deflated members are read, traversal names, links and
  devices are rejected, nested archives and directories are ignored;
* writes files only into a fresh temporary directory made for this upload (``tempfile.mkdtemp``);
* checks that each header refers only to signal files that were uploaded next to it (a header could
  otherwise point the WFDB reader at any path);
* reads the record through the data layer (:func:`aclecg.data.wfdbio.read_wfdb` via a reader) and
  preprocesses it with :func:`aclecg.data.prepare.process_record`, the function ``prepare`` uses, so an
  uploaded record is resampled, filtered, windowed and z-scored exactly like the prepared datasets. The server
  never calls this itself: :func:`aclecg.upload_session.parse_upload` runs it in a sandboxed child process.

Every problem is a :class:`aclecg.errors.DataError` with a message meant for the user.
"""

from __future__ import annotations

import io
import re
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aclecg.errors import DataError

if TYPE_CHECKING:
    from wfdb import MultiRecord, Record

#: Largest upload accepted (sum of all files), in bytes. Keep equal to ``server.maxUploadSize`` (MB).
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Largest total uncompressed size of a zip's accepted members.
MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
#: Largest compression ratio of a single zip member (higher = likely a zip bomb).
MAX_COMPRESSION_RATIO = 200.0
MAX_ZIP_MEMBERS = 200
#: Largest central directory of a zip (its file list), checked before the list is parsed.
MAX_ZIP_DIRECTORY_BYTES = 1 << 20
MAX_RECORDS = 50
RECORD_SUFFIXES = (".hea", ".dat", ".mat")
UPLOAD_SUFFIXES = RECORD_SUFFIXES + (".zip",)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class UploadedRecord:
    """An uploaded record, raw (mV, own rate) and preprocessed like a prepared dataset."""

    record_id: str
    folder: Path  # the temporary directory holding the staged files
    raw_mv: np.ndarray  # (12, n) float64, canonical lead order, mV
    raw_fs: float
    windows: np.ndarray  # (W, 12, T) float32, z-scored windows (same as signals.npy rows)
    rpeaks: list[np.ndarray]  # per window, sample positions at ``fs``
    fs: float
    labels: dict[str, list[str]] = field(default_factory=dict)
    age: float = float("nan")
    sex: str = ""
    warnings: list[str] = field(default_factory=list)

    def raw_window(self, seconds: float = 10.0) -> np.ndarray:
        """The first ``seconds`` of the raw record (mV, at ``raw_fs``), as the paper grid draws it."""
        return self.raw_mv[:, : int(round(seconds * self.raw_fs))]

    def rpeaks_padded(self, max_peaks: int = 32) -> np.ndarray:
        """``(W, max_peaks)`` int64, -1 padded, as :meth:`PreparedDataset.rpeaks_padded`."""
        out = np.full((len(self.rpeaks), max_peaks), -1, dtype=np.int64)
        for i, peaks in enumerate(self.rpeaks):
            take = np.asarray(peaks, dtype=np.int64)[:max_peaks]
            out[i, : take.size] = take
        return out


def sanitize_filename(name: str) -> str:
    """Safe base name for an uploaded file, or :class:`DataError` when the name carries a path.

    ``"A0001.hea"`` stays; spaces and odd characters become ``_``; ``"../x.hea"``, ``"/etc/x.hea"``,
    ``"C:\\x.hea"`` and ``"dir/x.hea"`` are rejected (the last only outside zips, see :func:`_member_name`).
    """
    raw = str(name)
    if not raw.strip():
        raise DataError("an uploaded file has an empty name")
    if len(raw) > 255:
        raise DataError(f"file name {raw[:40]!r}… is {len(raw)} characters long; at most 255 are accepted")
    if "/" in raw or "\\" in raw or raw.startswith("..") or re.match(r"^[A-Za-z]:", raw) or "\x00" in raw:
        raise DataError(f"file name {raw!r} contains a path; upload plain file names only")
    clean = _SAFE.sub("_", raw.strip()).lstrip(".")
    if not clean or clean in (".", ".."):
        raise DataError(f"file name {raw!r} is not usable")
    return clean[:120]


def _member_name(info: zipfile.ZipInfo) -> str | None:
    """Base name of a zip member, None for directories and ignored files; DataError for unsafe members.

    Traversal names (absolute, ``..``, drive letters) and anything but plain files and folders (symbolic links,
    devices, FIFOs, sockets, as a Unix zip tool records them in the member's mode bits) reject the zip.
    """
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name) or "\x00" in name:
        raise DataError(f"zip member {name!r} has an unsafe path (absolute or '..'); the zip was rejected")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise DataError(f"zip member {name!r} is a symbolic link; the zip was rejected")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise DataError(f"zip member {name!r} is a device or other special file; the zip was rejected")
    if name.endswith("/") or kind == stat.S_IFDIR:
        return None
    base = parts[-1]
    if base.startswith(".") or parts[0] == "__MACOSX":
        return None  # hidden files and macOS resource forks
    return sanitize_filename(base)


def _check_suffix(name: str, allowed: Sequence[str]) -> None:
    if Path(name).suffix.lower() not in allowed:
        raise DataError(
            f"{name}: unsupported file type; upload WFDB records ({', '.join(RECORD_SUFFIXES)}) or a .zip of them"
        )


def _check_zip_directory(name: str, data: bytes) -> None:
    """Entry count and directory size from the end record, before :mod:`zipfile` parses the directory.

    ``zipfile`` builds an object per directory entry; a small zip can declare hundreds of thousands of them.
    """
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if end < 0 or end + 22 > len(data):
        raise DataError(f"{name}: not a valid zip file")
    entries, directory_size = struct.unpack_from("<HI", data, end + 10)
    if entries > MAX_ZIP_MEMBERS:
        raise DataError(f"{name}: the zip holds {entries} entries, more than the limit of {MAX_ZIP_MEMBERS}")
    if directory_size > MAX_ZIP_DIRECTORY_BYTES:
        raise DataError(f"{name}: the zip's directory is {directory_size} bytes; at most {MAX_ZIP_DIRECTORY_BYTES}")


def _zip_plan(name: str, infos: list[zipfile.ZipInfo]) -> list[tuple[zipfile.ZipInfo, str]]:
    """The members to extract, as (info, safe name); every check runs here, before anything is inflated."""
    if len(infos) > MAX_ZIP_MEMBERS:
        raise DataError(f"{name}: the zip holds {len(infos)} entries, more than the limit of {MAX_ZIP_MEMBERS}")
    plan: list[tuple[zipfile.ZipInfo, str]] = []
    total = 0
    for info in infos:
        base = _member_name(info)
        if base is None or Path(base).suffix.lower() not in RECORD_SUFFIXES:
            continue
        if info.flag_bits & 0x1:
            raise DataError(f"{name}: member {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise DataError(
                f"{name}: member {info.filename!r} uses compression method {info.compress_type}; "
                "only stored and deflated members are accepted"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > MAX_COMPRESSION_RATIO:
            raise DataError(f"{name}: member {info.filename!r} expands {ratio:.0f}x; refused as a possible zip bomb")
        total += info.file_size
        if total > MAX_UNCOMPRESSED_BYTES:
            raise DataError(f"{name}: uncompressed content exceeds {MAX_UNCOMPRESSED_BYTES // 2**20} MB")
        plan.append((info, base))
    return plan


def _read_zip(name: str, data: bytes) -> list[tuple[str, bytes]]:
    """Accepted members of a zip as (safe name, bytes): all limits are checked before the first member is read."""
    _check_zip_directory(name, data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, NotImplementedError, struct.error):
        raise DataError(f"{name}: not a valid zip file") from None
    out: list[tuple[str, bytes]] = []
    with archive:
        for info, base in _zip_plan(name, archive.infolist()):
            # at most the declared size + 1 byte: a lying header cannot make us inflate more
            try:
                with archive.open(info) as handle:
                    content = handle.read(info.file_size + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, ValueError):
                raise DataError(f"{name}: member {info.filename!r} is damaged") from None
            if len(content) != info.file_size:
                raise DataError(f"{name}: member {info.filename!r} is larger than its declared size")
            out.append((base, content))
    if not out:
        raise DataError(f"{name}: the zip holds no WFDB files ({', '.join(RECORD_SUFFIXES)})")
    return out


def stage_upload(
    files: Sequence[tuple[str, bytes]], max_bytes: int = MAX_UPLOAD_BYTES, rejected: list[tuple[str, str]] | None = None
) -> Path:
    """Validate uploaded ``(name, bytes)`` pairs and write them into a fresh temporary directory.

    Zips are opened (see module docstring). Returns the directory; it holds only flat, sanitised names.

    Every file gets a verdict. Without ``rejected``, any bad file rejects the upload with a
    :class:`DataError` that lists *every* bad file and its reason. With a list, bad files are left out and
    appended to it as ``(name, reason)``, and the good ones are staged; only an upload with no usable header left
    is an error.
    """
    if not files:
        raise DataError("no file was uploaded")
    size = sum(len(data) for _, data in files)
    if size > max_bytes:
        raise DataError(f"upload is {size / 2**20:.1f} MB, more than the limit of {max_bytes / 2**20:.0f} MB")
    flat: dict[str, bytes] = {}
    bad: list[tuple[str, str]] = []
    for name, data in files:
        shown = str(name) if len(str(name)) <= 60 else str(name)[:57] + "..."
        try:
            clean = sanitize_filename(name)
            _check_suffix(clean, UPLOAD_SUFFIXES)
            members = _read_zip(clean, data) if clean.lower().endswith(".zip") else [(clean, data)]
            for member, content in members:
                if member in flat and flat[member] != content:
                    raise DataError(f"two different files are named {member}")
            flat.update(members)
        except DataError as exc:
            bad.append((shown, str(exc)))
    if bad and rejected is None:
        verdicts = "; ".join(f"{n}: {reason}" for n, reason in bad)
        raise DataError(f"{len(bad)} of {len(files)} uploaded file(s) rejected: {verdicts}")
    if rejected is not None:
        rejected.extend(bad)
    if not any(n.lower().endswith(".hea") for n in flat):
        extra = f" ({len(bad)} file(s) rejected: {'; '.join(f'{n}: {r}' for n, r in bad)})" if bad else ""
        raise DataError("no .hea header file in the upload; a WFDB record needs its .hea plus its .dat or .mat" + extra)
    clean_stale_uploads()
    check_upload_quota(sum(len(c) for c in flat.values()))
    folder = Path(tempfile.mkdtemp(prefix="aclecg-upload-"))
    try:
        for member, content in flat.items():
            (folder / member).write_bytes(content)
    except BaseException:
        discard(folder)  # a half-written upload (disk full) is not left behind
        raise
    return folder


#: Environment variable: the disk all staged uploads together may hold, in MB (default 512; 0: no quota).
UPLOAD_QUOTA_ENV = "ACLECG_UPLOADS_QUOTA_MB"
DEFAULT_UPLOAD_QUOTA_MB = 512.0


def staged_bytes() -> int:
    """Bytes held by every staged upload folder of this machine's temporary directory."""
    total = 0
    for folder in Path(tempfile.gettempdir()).glob("aclecg-upload-*"):
        try:
            total += sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        except OSError:
            continue
    return total


def check_upload_quota(incoming: int) -> None:
    """A :class:`DataError` when staging ``incoming`` more bytes would pass the uploads' disk quota (every browser
    session's upload together; sessions remove theirs when they end)."""
    import os

    raw = os.environ.get(UPLOAD_QUOTA_ENV, "")
    try:
        quota_mb = float(raw) if raw.strip() else DEFAULT_UPLOAD_QUOTA_MB
    except ValueError:
        raise DataError(f"{UPLOAD_QUOTA_ENV} must be a number of MB, got {raw!r}") from None
    if quota_mb <= 0:
        return
    if staged_bytes() + incoming > quota_mb * 2**20:
        raise DataError(
            f"the server holds {quota_mb:.0f} MB of uploads already (its quota); try again when other sessions end"
        )


#: Staging folders older than this are removed by the next upload: a backstop for a server killed before it could
#: remove them (sessions remove their own, see :class:`aclecg.upload_session.UploadSession`).
STALE_UPLOAD_S = 24 * 3600


def clean_stale_uploads(max_age_s: float = STALE_UPLOAD_S) -> int:
    """Remove this module's staging folders that were last touched more than ``max_age_s`` ago; returns how many."""
    import time

    removed = 0
    for folder in Path(tempfile.gettempdir()).glob("aclecg-upload-*"):
        try:
            if folder.is_dir() and time.time() - folder.stat().st_mtime > max_age_s:
                discard(folder)
                removed += 1
        except OSError:
            continue
    return removed


def list_records(folder: Path) -> list[str]:
    """Record names (header stems) in a staged upload folder."""
    names = sorted(p.stem for p in Path(folder).glob("*.hea"))
    if len(names) > MAX_RECORDS:
        raise DataError(f"the upload holds {len(names)} records, more than the limit of {MAX_RECORDS}")
    return names


def _read_header(folder: Path, record: str) -> Record | MultiRecord:
    """``wfdb.rdheader`` with failures turned into one-line :class:`DataError` s."""
    import wfdb

    path = Path(folder) / f"{record}.hea"
    lines = [ln for ln in path.read_bytes().decode("utf-8", "replace").splitlines() if ln.strip()]
    if not [ln for ln in lines if not ln.lstrip().startswith("#")]:
        raise DataError(
            f"{record}.hea: the header file is empty (a WFDB header starts with a record line such as "
            f"'{record} 12 500 5000')"
        )
    try:
        header = wfdb.rdheader(str(Path(folder) / record))
    except Exception as exc:  # wfdb raises many types for a bad header
        text = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200]
        raise DataError(f"{record}.hea: not a readable WFDB header ({text})") from None
    if not header.n_sig or not header.sig_name:
        raise DataError(f"{record}.hea: the header lists no signals; is this a WFDB record?")
    return header


def _check_header_files(folder: Path, record: str) -> None:
    """The header must name only plain signal files that exist next to it."""
    header = _read_header(folder, record)
    for file_name in sorted(set(header.file_name or [])):
        if "/" in file_name or "\\" in file_name or file_name.startswith(".."):
            raise DataError(f"{record}.hea: refers to signal file {file_name!r} outside the upload")
        if not (folder / file_name).is_file():
            raise DataError(
                f"{record}.hea: signal file {file_name} is missing; upload it together with the "
                "header (or both in one zip)"
            )


def load_uploaded_record(
    folder: Path, record: str | None = None, fs: float = 100.0, seconds: float = 10.0
) -> UploadedRecord:
    """Read one staged record and preprocess it like ``prepare`` (resample to ``fs``, filter, window, z-score)."""
    from aclecg.data.base import RecordItem, age_value, sex_code
    from aclecg.data.challenge import ChallengeReader, labels_from_codes, parse_comments
    from aclecg.data.prepare import PrepareConfig, process_record
    from aclecg.data.records import Skipped

    folder = Path(folder)
    names = list_records(folder)
    if not names:
        raise DataError("no .hea header file in the upload")
    record = record or names[0]
    if record not in names:
        raise DataError(f"record {record!r} is not in the upload; found {', '.join(names)}")
    _check_header_files(folder, record)
    source = f"{record} (uploaded)"
    header = _read_header(folder, record)
    fields = parse_comments(header.comments or [], source)
    codes = [c.strip() for c in fields.get("dx", "").split(",") if c.strip().isdigit()]
    item = RecordItem(
        path=str(folder / record),
        source=source,
        record_id=record,
        patient_id=record,
        labels=labels_from_codes(codes) if codes else {},
        age=age_value(fields.get("age", "nan")),
        sex=sex_code(fields.get("sex", "")),
    )
    reader = ChallengeReader(folder)
    try:
        raw = reader.read(item)  # canonical 12 leads in mV, DataError naming the file when malformed
    except DataError:
        raise
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0][:160]
        raise DataError(f"{record}: could not be read: unexpected {type(exc).__name__} ({first})") from None
    result = process_record(reader, item, 0, PrepareConfig(fs=fs, seconds=seconds))
    if isinstance(result, Skipped):
        raise DataError(f"{record}: cannot be used: {result.reason}")
    return UploadedRecord(
        record_id=record,
        folder=folder,
        raw_mv=raw.signals,
        raw_fs=raw.fs,
        windows=result.windows,
        rpeaks=[np.asarray(p) for p in result.rpeaks],
        fs=fs,
        labels=item.labels,
        age=result.age,
        sex=result.sex,
        warnings=list(raw.warnings),
    )


def discard(folder: Path) -> None:
    """Remove a staged upload folder (only folders this module created)."""
    folder = Path(folder)
    if folder.name.startswith("aclecg-upload-") and folder.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(folder, ignore_errors=True)


def _files_at(target: Path) -> list[tuple[str, bytes]]:
    if target.is_dir():
        paths = sorted(p for p in target.iterdir() if p.is_file() and p.suffix.lower() in UPLOAD_SUFFIXES)
    elif target.is_file():
        paths = [target]
        if target.suffix.lower() == ".hea":
            paths += sorted(p for p in target.parent.glob(f"{target.stem}.*") if p != target)
            paths = [p for p in paths if p.suffix.lower() in RECORD_SUFFIXES]
    else:
        raise DataError(f"{target}: upload file or folder does not exist")
    if not paths:
        raise DataError(f"{target}: no WFDB files ({', '.join(UPLOAD_SUFFIXES)}) found")
    return [(p.name, p.read_bytes()) for p in paths]


def read_upload_path(target: str | Path, fs: float = 100.0, seconds: float = 10.0) -> UploadedRecord:
    """A record given on the command line, through the same checks as a browser upload.

    ``target`` is a WFDB ``.hea`` (its signal file beside it), a folder of such files or a ``.zip``; the files are
    staged with :func:`stage_upload` (size, name and zip limits), the first record is parsed with
    :func:`parse_upload` (in the sandbox), and the staging folder is removed.
    """
    from aclecg.upload_session import parse_upload

    folder = stage_upload(_files_at(Path(target)))
    try:
        names = list_records(folder)
        return parse_upload(folder, names[0] if names else None, fs=fs, seconds=seconds)
    finally:
        discard(folder)
