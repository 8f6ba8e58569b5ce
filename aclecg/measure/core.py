"""``measure_record``: heart rate, RR variability and the PR, QRS, QT and QTc intervals of one 12-lead record.

Pipeline: band-pass 0.5-40 Hz -> R-peaks (:func:`aclecg.data.rpeaks.detect_rpeaks`, or the caller's) -> rate and RR
variability from the R-peaks -> median beat (:mod:`aclecg.measure.beat`) -> boundaries per lead and global
(:mod:`aclecg.measure.delineate`) -> intervals from the global boundaries. Every value is an algorithmic estimate,
not a diagnosis (:data:`DISCLAIMER`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aclecg.data.preprocess import bandpass
from aclecg.data.rpeaks import IRREGULAR_RR_CV, detect_rpeaks
from aclecg.errors import DataError
from aclecg.leads import LEADS
from aclecg.measure.beat import median_beat
from aclecg.measure.delineate import NAMES, delineate_rows

__all__ = ["DISCLAIMER", "GLOBAL_FIELDS", "Measurement", "measure_record"]

DISCLAIMER = (
    "Algorithmic estimates from a median beat, not a diagnosis: check them on the tracing before relying on them."
)
#: The scalar fields of a measurement, in table order (ms unless named otherwise).
GLOBAL_FIELDS: tuple[str, ...] = (
    "hr_bpm",
    "rr_ms",
    "rr_sdnn_ms",
    "rr_rmssd_ms",
    "rr_cv",
    "pr_ms",
    "qrs_ms",
    "qt_ms",
    "qtc_bazett_ms",
    "qtc_fridericia_ms",
    "n_beats",
    "n_beats_used",
)
#: Shortest record measured (seconds) and the plausible rate range (beats per minute).
MIN_SECONDS = 2.0
HR_RANGE = (20.0, 250.0)


@dataclass
class Measurement:
    """What :func:`measure_record` found. Intervals in ms, rate in bpm, ``None`` where not measurable.

    ``points`` holds the global boundaries and ``leads`` the per-lead ones, in ms from the median beat's R-peak
    (``p_on``, ``p_peak``, ``p_off``, ``qrs_on``, ``qrs_off``, ``t_on``, ``t_peak``, ``t_off``).
    """

    fs: float
    n_beats: int = 0
    n_beats_used: int = 0
    hr_bpm: float | None = None
    rr_ms: float | None = None
    rr_sdnn_ms: float | None = None
    rr_rmssd_ms: float | None = None
    rr_cv: float | None = None
    pr_ms: float | None = None
    qrs_ms: float | None = None
    qt_ms: float | None = None
    qtc_bazett_ms: float | None = None
    qtc_fridericia_ms: float | None = None
    points: dict[str, float | None] = field(default_factory=dict)
    leads: dict[str, dict[str, float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The scalar fields (see :data:`GLOBAL_FIELDS`)."""
        return {k: getattr(self, k) for k in GLOBAL_FIELDS}

    def as_dict(self) -> dict[str, Any]:
        """Everything as plain JSON data, with the disclaimer."""
        return {
            **self.summary(),
            "fs": self.fs,
            "points_ms": dict(self.points),
            "leads_ms": {k: dict(v) for k, v in self.leads.items()},
            "notes": list(self.notes),
            "disclaimer": DISCLAIMER,
        }


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def _check(x: Any, fs: Any, leads: Sequence[str]) -> np.ndarray:
    if not isinstance(fs, (int, float)) or isinstance(fs, bool) or not math.isfinite(fs) or not 50 <= fs <= 10_000:
        raise DataError(f"fs must be a sampling rate in [50, 10000] Hz, got {fs!r}")
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] != len(leads):
        raise DataError(f"signal must be (leads, samples) with {len(leads)} leads, got shape {np.shape(x)}")
    if arr.shape[1] < MIN_SECONDS * fs:
        raise DataError(f"signal is {arr.shape[1] / fs:.2f} s long; at least {MIN_SECONDS:g} s are needed")
    if not np.isfinite(arr).all():
        raise DataError("signal holds NaN or infinite samples; measure a record without gaps")
    return arr


def _rhythm(m: Measurement, peaks: np.ndarray, fs: float) -> float | None:
    """Fill the rate and RR variability; return the median RR in seconds (``None`` with fewer than 3 beats)."""
    m.n_beats = int(peaks.size)
    if peaks.size < 3:
        m.notes.append(f"only {peaks.size} beat(s) found: no rate or intervals")
        return None
    rr = np.diff(peaks) / fs
    median = float(np.median(rr))
    m.hr_bpm, m.rr_ms = _round(60.0 / median), _round(1000.0 * median)
    m.rr_sdnn_ms = _round(1000.0 * float(rr.std(ddof=1)) if rr.size > 1 else 0.0)
    m.rr_rmssd_ms = _round(1000.0 * float(np.sqrt(np.mean(np.diff(rr) ** 2))) if rr.size > 1 else 0.0)
    m.rr_cv = _round(float(rr.std() / rr.mean()), 3)
    if m.rr_cv is not None and m.rr_cv > IRREGULAR_RR_CV:
        m.notes.append(f"irregular rhythm (RR varies by {m.rr_cv:.0%}): the median beat blurs P and T")
    if not HR_RANGE[0] <= 60.0 / median <= HR_RANGE[1]:
        m.notes.append(f"rate {60.0 / median:.0f} bpm is outside {HR_RANGE[0]:g}-{HR_RANGE[1]:g}: check the beats")
    return median


def _points(rows: dict[str, np.ndarray], r: int, fs: float, index: int) -> dict[str, float | None]:
    return {name: _round(1000.0 * (rows[name][index] - r) / fs) for name in NAMES}


def measure_record(
    x: np.ndarray,
    fs: float,
    rpeaks: np.ndarray | None = None,
    leads: Sequence[str] = LEADS,
    filtered: bool = False,
) -> Measurement:
    """Measure one record ``x (leads, samples)`` at ``fs`` Hz (any unit, any gain: only timing is read).

    ``rpeaks`` are R-peak sample positions (``-1`` entries ignored); ``None`` detects them. ``filtered=True`` skips
    the 0.5-40 Hz band-pass (for signals already filtered that way, e.g. prepared data). Raises :class:`DataError`
    for a signal that is not ``(len(leads), n)``, is shorter than :data:`MIN_SECONDS` or holds NaN.
    """
    arr = _check(x, fs, leads)
    fs = float(fs)
    sig = arr if filtered else bandpass(arr, fs, 0.5, 40.0)
    m = Measurement(fs=fs)
    if float(np.abs(sig).max(initial=0.0)) == 0.0:
        m.notes.append("flat signal: nothing to measure")
        return m
    peaks = detect_rpeaks(sig, fs) if rpeaks is None else np.asarray(rpeaks, dtype=np.int64)
    peaks = np.unique(peaks[(peaks >= 0) & (peaks < sig.shape[1])])
    rr_s = _rhythm(m, peaks, fs)
    if rr_s is None:
        return m
    beat = median_beat(sig, fs, peaks, rr_s)
    if beat is None:
        m.notes.append("no whole beat inside the record")
        return m
    m.n_beats_used = beat.n_used
    rows = delineate_rows(beat.beat, beat.r, fs, rr_s)
    m.points = _points(rows, beat.r, fs, -1)
    m.leads = {lead: _points(rows, beat.r, fs, i) for i, lead in enumerate(leads)}
    p = m.points
    if p["qrs_on"] is not None and p["qrs_off"] is not None:
        m.qrs_ms = _round(p["qrs_off"] - p["qrs_on"])
    if p["p_on"] is not None and p["qrs_on"] is not None:
        m.pr_ms = _round(p["qrs_on"] - p["p_on"])
    else:
        m.notes.append("no P wave found (AF, flutter, junctional rhythm or a low P): no PR")
    if p["t_off"] is not None and p["qrs_on"] is not None:
        qt = p["t_off"] - p["qrs_on"]
        m.qt_ms = _round(qt)
        m.qtc_bazett_ms = _round(qt / math.sqrt(rr_s))
        m.qtc_fridericia_ms = _round(qt / rr_s ** (1.0 / 3.0))
    else:
        m.notes.append("no T wave end found: no QT")
    return m
