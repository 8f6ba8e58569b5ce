"""Reading one WFDB record (``.hea`` + ``.dat``/``.mat``) with the ``wfdb`` package, checked against its header."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from aclecg.data.limits import (
    MAX_BYTE_OFFSET,
    MAX_FS_HZ,
    MAX_HEADER_BYTES,
    MAX_SECONDS,
    MAX_SIGNALS,
    MAX_VALUES,
    max_samples,
)
from aclecg.data.matfile import mat_version, parse_mat
from aclecg.data.records import unit_scale
from aclecg.data.safeio import read_confined
from aclecg.errors import DataError


@dataclass
class RawSignals:
    """Signals as stored: ``(n_leads, n)`` float64 in mV, with the header's lead names and sampling rate."""

    signals: np.ndarray
    lead_names: list[str]
    fs: float
    comments: list[str]


#: Bytes per sample of the uncompressed WFDB signal formats (the FLAC formats 508/516/524 are not read).
_BYTES_PER_SAMPLE = {
    "8": 1,
    "16": 2,
    "24": 3,
    "32": 4,
    "61": 2,
    "80": 1,
    "160": 2,
    "212": 1.5,
    "310": 4 / 3,
    "311": 4 / 3,
}


def _mat_hint(name: str, blob: bytes, header: wfdb.Record) -> str | None:
    """Explain a failed read from a ``.mat`` signal file's own contents (parsed by :mod:`aclecg.data.matfile`)."""
    if mat_version(blob) is None:
        return f"signal file {name} is not a MATLAB file"
    try:
        val = parse_mat(blob, name).get("val")
    except DataError:
        return None
    if not isinstance(val, np.ndarray) or val.ndim != 2:
        return None
    if int(val.shape[0]) != header.n_sig:
        return f"{name} holds {val.shape[0]} leads but the header lists {header.n_sig}"
    if header.sig_len and int(val.shape[1]) != header.sig_len:
        return f"header says {header.sig_len} samples but {name} holds {val.shape[1]}"
    return None


def _hint(header: wfdb.Record, blobs: dict[str, bytes]) -> str | None:
    """Explain a failed read: a ``.mat`` that is not MATLAB, or a sample count that disagrees with the file."""
    for name, blob in sorted(blobs.items()):
        if name.endswith(".mat") and mat_version(blob) is None:
            return f"signal file {name} is not a MATLAB file"
    if len(blobs) != 1 or not header.sig_len:
        return None
    name, blob = next(iter(blobs.items()))
    if name.endswith(".mat"):
        return _mat_hint(name, blob, header)
    if set(header.fmt or []) == {"16"}:
        held = len(blob) // (2 * header.n_sig)
        if held != header.sig_len:
            return f"header says {header.sig_len} samples but {name} holds {held}"
    return None


def read_header_comments(path: Path, source: str, root: Path | None = None) -> list[str]:
    """The ``#`` comment lines of a ``.hea`` file (text only, fast; full validation happens on reading).

    The header must be a regular file inside ``root`` (default: its own folder), at most
    :data:`~aclecg.data.limits.MAX_HEADER_BYTES`, see :func:`aclecg.data.safeio.read_confined`.
    """
    hea = Path(path).with_suffix(".hea")
    data = read_confined(hea, root if root is not None else hea.parent, source, MAX_HEADER_BYTES, "header file")
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise DataError(f"{source}: not a text WFDB header ({type(exc).__name__})") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0].split() if lines else []
    if len(first) < 2 or first[0].startswith("#") or not first[1].isdigit():
        raise DataError(f"{source}: not a WFDB header (first line {lines[0][:40] if lines else ''!r})")
    return [line.lstrip("#").strip() for line in lines if line.startswith("#")]


def _declared_fs(text: str, source: str) -> None:
    """Refuse a record line whose sampling-rate field is present but not a positive number.

    wfdb falls back to its default of 250 Hz for an unreadable field, which would then be reported (and used) as
    if the header said so.
    """
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    tokens = lines[0].split() if lines else []
    if len(tokens) < 3:
        return  # no sampling-rate field: the WFDB default applies
    field = tokens[2].split("/")[0].split("(")[0]
    try:
        fs = float(field)
    except ValueError:
        if not field[:1].isdigit() and field.lower() not in ("nan", "inf", "-inf", "+inf"):
            return  # not a frequency field (a header whose third token is the sample count, say)
        fs = float("nan")
    if not np.isfinite(fs) or fs <= 0:
        raise DataError(f"{source}: header gives sampling rate {tokens[2]!r}, not a positive number")


def _parse_header(copy: Path, source: str, expected_fs: float | None) -> wfdb.Record:
    """``wfdb.rdheader`` of the private copy, checked against the limits before any signal is read."""
    try:
        header = wfdb.rdheader(str(copy))
    except Exception as exc:  # wfdb raises many types for a bad header
        text = f"{source}: cannot read the record ({type(exc).__name__}: {exc})"
        raise DataError(text.replace("\n", " ").replace(str(copy.parent) + os.sep, "")) from None
    if isinstance(header, wfdb.MultiRecord) or getattr(header, "n_seg", None):
        raise DataError(
            f"{source}: a multi-segment record is not read (PTB-XL and Challenge records are single-segment); refused"
        )
    if not header.n_sig or not header.sig_name:
        raise DataError(f"{source}: header lists no signals")
    if header.n_sig > MAX_SIGNALS:
        raise DataError(f"{source}: header lists {header.n_sig} signals, more than {MAX_SIGNALS}; refused")
    fs = header.fs
    if fs is None or isinstance(fs, bool) or not np.isfinite(fs) or fs <= 0:
        raise DataError(f"{source}: header has an invalid sampling rate {fs!r}")
    if fs > MAX_FS_HZ:
        raise DataError(f"{source}: sampling rate {fs:g} Hz is above the {MAX_FS_HZ:g} Hz limit; refused")
    if expected_fs is not None and abs(float(fs) - expected_fs) > 1e-6:
        raise DataError(f"{source}: sampling rate {fs:g} Hz in the header, expected {expected_fs:g} Hz")
    limit = _sample_limit(header)
    if header.sig_len and header.sig_len > limit:
        raise DataError(
            f"{source}: header declares {header.sig_len} samples per lead ({header.sig_len / fs:.0f} s at {fs:g} Hz), "
            f"over the limit of {limit} ({MAX_SECONDS / 60:g} min, {MAX_VALUES} values in all); refused"
        )
    return header


def _sample_limit(header: wfdb.Record) -> int:
    return min(max_samples(float(header.fs)), MAX_VALUES // max(int(header.n_sig), 1))


def _signal_files(header: wfdb.Record, source: str) -> dict[str, int]:
    """Signal file name -> the most bytes it may hold, from the header (names with a path, compressed or unknown
    formats, large byte offsets and many samples per frame refused)."""
    n = int(header.n_sig)
    names = list(header.file_name or [None] * n)
    fmts = list(header.fmt or [None] * n)
    offsets = list(header.byte_offset or [None] * n)
    frames = list(header.samps_per_frame or [1] * n)
    frame_bytes: dict[str, float] = {}
    start: dict[str, int] = {}
    for name, fmt, offset, spf in zip(names, fmts, offsets, frames):
        if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("~"):
            raise DataError(f"{source}: the header names signal file {name!r}; only a plain file name is read")
        if str(fmt) not in _BYTES_PER_SAMPLE:
            raise DataError(f"{source}: signal format {fmt} of {name} is not read (uncompressed WFDB formats only)")
        if not isinstance(spf, int) or not 1 <= spf <= 16 or not 0 <= (offset or 0) <= MAX_BYTE_OFFSET:
            raise DataError(
                f"{source}: signal file {name} has {spf} samples per frame and byte offset {offset}; refused"
            )
        frame_bytes[name] = frame_bytes.get(name, 0.0) + spf * _BYTES_PER_SAMPLE[str(fmt)]
        start[name] = max(start.get(name, 0), int(offset or 0))
    limit = _sample_limit(header)
    return {name: start[name] + int(np.ceil(frame_bytes[name] * limit)) + 8 for name in frame_bytes}


#: A record's private copy goes to /dev/shm (memory) when it has this much room: far more than the largest copy
#: the limits allow (:data:`~aclecg.data.limits.MAX_VALUES` 32-bit samples), and 20x faster than a disk folder.
_SHM_MIN_FREE = 256 * 1024 * 1024


def _scratch_parent() -> str | None:
    """``/dev/shm`` when it exists, is writable and has room, else None (the default temporary folder)."""
    try:
        if os.access("/dev/shm", os.W_OK) and shutil.disk_usage("/dev/shm").free >= _SHM_MIN_FREE:
            return "/dev/shm"
    except OSError:
        pass
    return None


@contextmanager
def _scratch() -> Iterator[str]:
    """A private (mode 0700) temporary folder for one record's copy; its files and itself are removed on exit."""
    folder = tempfile.mkdtemp(prefix="aclecg-wfdb-", dir=_scratch_parent())
    try:
        yield folder
    finally:
        try:
            for entry in os.scandir(folder):
                os.unlink(entry.path)
            os.rmdir(folder)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)


def read_wfdb(path: Path, source: str, expected_fs: float | None = None, root: Path | None = None) -> RawSignals:
    """Read a WFDB record with ``wfdb.rdrecord`` and check it against its header.

    The header must be a regular file inside ``root`` (default: the record's folder) and its signal files regular
    files in the record's own folder (:func:`aclecg.data.safeio.read_confined`); both are read through a checked
    descriptor into a private temporary folder that ``wfdb`` then reads, so wfdb never opens a path of the input.
    Before any signal is read the header must declare one segment, a sampling rate up to
    :data:`~aclecg.data.limits.MAX_FS_HZ` (equal to ``expected_fs`` when given), at most
    :data:`~aclecg.data.limits.MAX_SECONDS` of samples and uncompressed signal formats. Checked after reading:
    sample count and per-lead checksums agree with the header. ``path`` may carry an extension; it is dropped.
    Digital values flagged invalid by the format become NaN (and are then rejected upstream).
    """
    base = Path(path).with_suffix("")
    root = Path(root) if root is not None else base.parent
    hea = read_confined(base.parent / f"{base.name}.hea", root, source, MAX_HEADER_BYTES, "header file")
    _declared_fs(hea.decode("ascii", errors="ignore"), source)
    with _scratch() as tmp:
        copy = Path(tmp) / base.name
        Path(tmp, f"{base.name}.hea").write_bytes(hea)
        header = _parse_header(copy, source, expected_fs)
        blobs: dict[str, bytes] = {}
        for name, cap in _signal_files(header, source).items():
            blobs[name] = read_confined(
                base.parent / name, base.parent, source, cap, "signal file", "the record's folder"
            )
            Path(tmp, name).write_bytes(blobs[name])
        try:
            rec = wfdb.rdrecord(str(copy), physical=False)
        except Exception as exc:  # wfdb raises many types for a bad header or signal file
            hint = _hint(header, blobs)
            if hint:
                raise DataError(f"{source}: {hint}") from None
            text = f"{source}: cannot read the record ({type(exc).__name__}: {exc})"
            raise DataError(text.replace("\n", " ").replace(tmp + os.sep, "")) from None
    if not rec.n_sig or not rec.sig_name:
        raise DataError(f"{source}: header lists no signals")
    for lead, gain in zip(rec.sig_name, rec.adc_gain or [None] * rec.n_sig):
        if gain is None or isinstance(gain, bool) or not np.isfinite(gain) or gain <= 0:
            raise DataError(f"{source}: lead {lead} has ADC gain {gain!r} in the header; it must be a positive number")
    digital = rec.d_signal
    if digital is None or digital.ndim != 2 or digital.shape[1] != rec.n_sig:
        raise DataError(f"{source}: signal data do not match the header's {rec.n_sig} leads")
    if rec.sig_len and digital.shape[0] != rec.sig_len:
        raise DataError(f"{source}: header says {rec.sig_len} samples but the signal file holds {digital.shape[0]}")
    if rec.checksum is not None and any(c is None for c in rec.checksum):
        lines = [str(i + 1) for i, c in enumerate(rec.checksum) if c is None]
        raise DataError(
            f"{source}: signal line {', '.join(lines)} of the header cannot be parsed (a malformed "
            f"gain, baseline, units or checksum field, e.g. a gain of NaN)"
        )
    if rec.checksum is not None:
        calc = np.asarray(rec.calc_checksum(), dtype=np.int64)
        bad = np.flatnonzero((calc - np.asarray(rec.checksum, dtype=np.int64)) % 65536 != 0)
        if bad.size:
            raise DataError(
                f"{source}: signal data disagree with the header checksum for leads "
                f"{', '.join(rec.sig_name[i] for i in bad)}"
            )
    try:
        physical = rec.dac(return_res=64)
    except Exception as exc:
        raise DataError(f"{source}: cannot convert to physical units ({exc})") from None
    units = rec.units or ["mV"] * rec.n_sig
    scale = np.array([unit_scale(u, source, lead) for u, lead in zip(units, rec.sig_name)])
    signals = (physical * scale).T
    return RawSignals(signals, list(rec.sig_name), float(rec.fs), list(rec.comments or []))
