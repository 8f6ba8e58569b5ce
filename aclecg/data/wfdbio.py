"""Reading one WFDB record (``.hea`` + ``.dat``/``.mat``) with the ``wfdb`` package, checked against its header."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import wfdb

from aclecg.data.records import unit_scale
from aclecg.errors import DataError


@dataclass
class RawSignals:
    """Signals as stored: ``(n_leads, n)`` float64 in mV, with the header's lead names and sampling rate."""

    signals: np.ndarray
    lead_names: list[str]
    fs: float
    comments: list[str]


def read_header(path: Path, source: str) -> wfdb.Record:
    """``wfdb.rdheader`` with every failure turned into a one-line :class:`DataError`."""
    base = Path(path).with_suffix("")
    if not base.with_suffix(".hea").is_file():
        raise DataError(f"{source}: header file {base.name}.hea is missing")
    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises many types for a bad header
        raise DataError(
            f"{source}: not a readable WFDB header ({type(exc).__name__}: {exc})".replace("\n", " ")
        ) from None
    if not header.n_sig or not header.sig_name:
        raise DataError(f"{source}: header lists no signals")
    if header.fs is None or not np.isfinite(header.fs) or header.fs <= 0:
        raise DataError(f"{source}: header has an invalid sampling rate {header.fs!r}")
    return header


def _not_matlab(base: Path) -> str | None:
    """Explain a failed read when the header's ``.mat`` signal file is not a MATLAB file at all."""
    try:
        files = sorted(set(wfdb.rdheader(str(base)).file_name or []))
    except Exception:
        return None
    for name in files:
        path = base.parent / name
        if path.suffix == ".mat" and path.is_file():
            try:
                scipy.io.matlab.matfile_version(path)  # reads the header only: a truncated MAT file passes
            except Exception:
                return f"signal file {name} is not a MATLAB file"
    return None


def _size_mismatch(base: Path) -> str | None:
    """Explain a failed read when the header's sample count disagrees with the signal file's size."""
    try:
        header = wfdb.rdheader(str(base))
        files = sorted(set(header.file_name or []))
        if len(files) != 1 or not header.sig_len:
            return None
        path = base.parent / files[0]
        if path.suffix == ".mat":
            val = scipy.io.loadmat(path).get("val")
            if val is not None and val.ndim == 2 and int(val.shape[0]) != header.n_sig:
                return f"{files[0]} holds {val.shape[0]} leads but the header lists {header.n_sig}"
            held = None if val is None or val.ndim != 2 else int(val.shape[1])
        elif set(header.fmt or []) == {"16"}:
            held = path.stat().st_size // (2 * header.n_sig)
        else:
            return None
    except Exception:
        return None
    if held is None or held == header.sig_len:
        return None
    return f"header says {header.sig_len} samples but {files[0]} holds {held}"


def read_header_comments(path: Path, source: str) -> list[str]:
    """The ``#`` comment lines of a ``.hea`` file (text only, fast; full validation happens on reading)."""
    try:
        text = Path(path).with_suffix(".hea").read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise DataError(f"{source}: header file {Path(path).with_suffix('.hea').name} is missing") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{source}: not a text WFDB header ({type(exc).__name__})") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0].split() if lines else []
    if len(first) < 2 or first[0].startswith("#") or not first[1].isdigit():
        raise DataError(f"{source}: not a WFDB header (first line {lines[0][:40] if lines else ''!r})")
    return [line.lstrip("#").strip() for line in lines if line.startswith("#")]


def _declared_fs(hea: Path, source: str) -> None:
    """Refuse a record line whose sampling-rate field is present but not a positive number.

    wfdb falls back to its default of 250 Hz for an unreadable field, which would then be reported (and used) as
    if the header said so.
    """
    try:
        lines = [ln for ln in hea.read_text(errors="replace").splitlines() if ln.strip() and not ln.startswith("#")]
    except OSError:
        return
    tokens = lines[0].split() if lines else []
    if len(tokens) < 3:
        return  # no sampling-rate field: the WFDB default applies
    text = tokens[2].split("/")[0].split("(")[0]
    try:
        fs = float(text)
    except ValueError:
        if not text[:1].isdigit() and text.lower() not in ("nan", "inf", "-inf", "+inf"):
            return  # not a frequency field (a header whose third token is the sample count, say)
        fs = float("nan")
    if not np.isfinite(fs) or fs <= 0:
        raise DataError(f"{source}: header gives sampling rate {tokens[2]!r}, not a positive number")


def _confined_signal_files(base: Path, source: str) -> None:
    """Refuse signal file names in a header that carry a path or lead (through a link) out of the record's folder."""
    try:
        names = wfdb.rdheader(str(base)).file_name or []
    except Exception:
        return  # rdrecord reports a bad header itself
    folder = base.parent.resolve()
    for name in set(names):
        if "/" in name or "\\" in name or name in (".", ".."):
            raise DataError(f"{source}: the header names signal file {name!r} with a path; refused")
        if (base.parent / name).exists() and not (base.parent / name).resolve().is_relative_to(folder):
            raise DataError(f"{source}: signal file {name} links outside the record's folder; refused")


def read_wfdb(path: Path, source: str, expected_fs: float | None = None) -> RawSignals:
    """Read a WFDB record with ``wfdb.rdrecord`` and check it against its header.

    Checks: header and signal files present, sampling rate valid (and equal to ``expected_fs`` when given),
    sample count and per-lead checksums agree with the header. ``path`` may carry an extension; it is
    dropped. Digital values flagged invalid by the format become NaN (and are then rejected upstream).
    """
    base = Path(path).with_suffix("")
    if not base.with_suffix(".hea").is_file():
        raise DataError(f"{source}: header file {base.name}.hea is missing")
    _declared_fs(base.with_suffix(".hea"), source)
    _confined_signal_files(base, source)
    try:
        rec = wfdb.rdrecord(str(base), physical=False)
    except FileNotFoundError as exc:
        missing = Path(exc.filename).name if exc.filename else "a signal file"
        raise DataError(f"{source}: signal file {missing} is missing") from None
    except Exception as exc:  # wfdb raises many types for a bad header or signal file
        hint = _not_matlab(base) or _size_mismatch(base)
        if hint:
            raise DataError(f"{source}: {hint}") from None
        raise DataError(f"{source}: cannot read the record ({type(exc).__name__}: {exc})".replace("\n", " ")) from None
    if not rec.n_sig or not rec.sig_name:
        raise DataError(f"{source}: header lists no signals")
    if rec.fs is None or not np.isfinite(rec.fs) or rec.fs <= 0:
        raise DataError(f"{source}: header has an invalid sampling rate {rec.fs!r}")
    if expected_fs is not None and abs(float(rec.fs) - expected_fs) > 1e-6:
        raise DataError(f"{source}: sampling rate {rec.fs:g} Hz in the header, expected {expected_fs:g} Hz")
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
