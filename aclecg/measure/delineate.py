"""Wave boundaries on a median beat: P, QRS and T onsets, peaks and offsets, per lead and for all leads together.

All rows are delineated at once (one row per lead, plus a *global* row that combines the leads: the spatial
magnitude of the slope for the QRS, of the amplitude for P and T). Positions are fractional samples of the beat.

* **QRS** from the slope ``|dx/dt|``: from the steepest slope before (after) the R-peak, outwards to where the
  slope stays under :data:`QRS_FRACTION` of that peak slope (above the beat's slope floor) for
  :data:`QUIET_S`; the crossing is interpolated between samples. Starting at the slope peaks, not at the R-peak,
  keeps the search clear of the zero slope at the R apex, and the quiet run clear of a notch's.
* **Isoelectric level** per lead: the mean of the PR segment just before the global QRS onset.
* **T** from the amplitude ``|x - iso|`` after the QRS: the peak, then onset and offset by the tangent method
  (the tangent at the steepest rise / fall meets the level of the segment beside it), as QT is usually measured.
* **P** the same way in the window between the previous beat's T end and the QRS onset; it counts as found when
  its peak stands :data:`P_MIN_FRACTION` of the QRS amplitude above the segment before it and is not at the
  window's edge (AF and flutter often fail this: their waves do not line up from beat to beat).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["delineate_rows"]

#: The QRS boundary is where the slope falls under this fraction of the nearest slope peak (above the floor).
QRS_FRACTION = 0.12
#: ... and stays under it for this long.
QUIET_S = 0.02
#: A P (T) wave must stand this fraction of the row's QRS amplitude above its surroundings to count as found.
P_MIN_FRACTION, T_MIN_FRACTION = 0.04, 0.05
#: Longest QRS half-widths searched (seconds before / after the R-peak).
QRS_BEFORE_S, QRS_AFTER_S = 0.16, 0.22
#: Longest PR interval searched.
PR_MAX_S = 0.34

NAMES = ("p_on", "p_peak", "p_off", "qrs_on", "qrs_off", "t_on", "t_peak", "t_off")


def _masked(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, fill: float) -> np.ndarray:
    """``y (R, W)`` with ``fill`` outside ``[lo, hi]`` (per row, inclusive)."""
    idx = np.arange(y.shape[1])[None, :]
    return np.where((idx >= lo[:, None]) & (idx <= hi[:, None]), y, fill)


def _argmax_in(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.argmax(_masked(y, lo, hi, -np.inf), axis=1)


def _argmin_in(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.argmin(_masked(y, lo, hi, np.inf), axis=1)


def _min_in(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.min(_masked(y, lo, np.maximum(lo, hi), np.inf), axis=1)


def _take(y: np.ndarray, i: np.ndarray) -> np.ndarray:
    return y[np.arange(y.shape[0]), np.clip(i, 0, y.shape[1] - 1)]


def _quiet_edge(
    s: np.ndarray, thr: np.ndarray, start: np.ndarray, stop: np.ndarray, run: int, back: bool
) -> np.ndarray:
    """Per row, the fractional position where ``s`` drops under ``thr`` for ``run`` samples, walking from ``start``
    towards ``stop`` (backwards when ``back``); ``stop`` when it never does."""
    rows, width = s.shape
    below = (s < thr[:, None]).astype(np.int64)
    csum = np.concatenate([np.zeros((rows, 1), dtype=np.int64), np.cumsum(below, axis=1)], axis=1)
    idx = np.arange(width)
    if back:  # samples i - run + 1 .. i all below
        lo = np.clip(idx - run + 1, 0, width)
        quiet = (csum[:, idx + 1] - csum[:, lo]) == (idx + 1 - lo)
        ok = quiet & (idx[None, :] <= start[:, None]) & (idx[None, :] >= stop[:, None])
        i = np.where(ok.any(axis=1), width - 1 - np.argmax(ok[:, ::-1], axis=1), stop)
        j = np.clip(i + 1, 0, width - 1)  # the crossing lies between i (below) and j (above)
    else:  # samples i .. i + run - 1 all below
        hi = np.clip(idx + run, 0, width)
        quiet = (csum[:, hi] - csum[:, idx]) == (hi - idx)
        ok = quiet & (idx[None, :] >= start[:, None]) & (idx[None, :] <= stop[:, None])
        i = np.where(ok.any(axis=1), np.argmax(ok, axis=1), stop)
        j = np.clip(i - 1, 0, width - 1)
    si, sj = _take(s, i), _take(s, j)
    frac = np.clip((thr - si) / np.where(sj - si != 0, sj - si, np.inf), 0.0, 1.0)
    return i + frac * (j - i)


def _tangent(a: np.ndarray, da: np.ndarray, k: np.ndarray, base: np.ndarray, rising: bool) -> np.ndarray:
    """Where the tangent to ``a`` at ``k`` meets the level ``base`` (fractional samples)."""
    slope = _take(da, k)
    height = _take(a, k) - base
    step = height / np.where(np.abs(slope) > 1e-12, np.abs(slope), np.inf)
    return k - step if rising else k + step


def _smooth(y: np.ndarray, fs: float, seconds: float) -> np.ndarray:
    width = int(round(seconds * fs))
    return ndimage.uniform_filter1d(y, size=width, axis=1, mode="nearest") if width >= 2 else y


def _qrs(slope: np.ndarray, r: int, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """QRS onset and offset per row from the slope magnitudes ``(R, W)``."""
    rows, width = slope.shape
    full = np.full(rows, 0)
    floor = np.percentile(slope, 10, axis=1)
    before = np.full(rows, max(r - int(round(QRS_BEFORE_S * fs)), 0))
    after = np.full(rows, min(r + int(round(QRS_AFTER_S * fs)), width - 1))
    near = max(int(round(0.05 * fs)), 1)
    k_on = _argmax_in(slope, np.maximum(full + r - near, before), full + r)
    k_off = _argmax_in(slope, full + r, np.minimum(full + r + near, after))
    run = max(int(round(QUIET_S * fs)), 2)
    thr_on = floor + QRS_FRACTION * (_take(slope, k_on) - floor)
    thr_off = floor + QRS_FRACTION * (_take(slope, k_off) - floor)
    on = _quiet_edge(slope, thr_on, k_on, before, run, back=True)
    off = _quiet_edge(slope, thr_off, k_off, after, run, back=False)
    return on, off


def _wave(a: np.ndarray, da: np.ndarray, lo: np.ndarray, hi: np.ndarray, min_height: np.ndarray) -> dict:
    """Peak, onset and offset of the largest wave of ``a`` in ``[lo, hi]`` (tangent method); ``found`` per row."""
    peak = _argmax_in(a, lo, hi)
    k_rise = _argmax_in(da, lo, np.maximum(lo, peak))
    k_fall = _argmin_in(da, np.minimum(peak, hi), hi)
    base_on = _min_in(a, lo, k_rise)
    base_off = _min_in(a, k_fall, hi)
    on = np.clip(_tangent(a, da, k_rise, base_on, rising=True), lo, peak)
    off = np.clip(_tangent(a, da, k_fall, base_off, rising=False), peak, hi)
    height = _take(a, peak) - np.maximum(base_on, _min_in(a, lo, peak))
    found = (height >= min_height) & (peak > lo) & (peak < hi) & (hi > lo)
    return {"on": on, "peak": peak.astype(float), "off": off, "found": found}


def delineate_rows(beat: np.ndarray, r: int, fs: float, rr_s: float | None) -> dict[str, np.ndarray]:
    """Boundaries on a median beat ``(L, W)`` with the R-peak at column ``r``: a dict of ``(L + 1,)`` fractional
    sample positions per name in :data:`NAMES` (row ``L`` is the global one), ``nan`` where a wave is not found,
    plus ``p_found`` and ``t_found`` (bool)."""
    leads, width = beat.shape
    d = np.gradient(beat, axis=1) * fs
    slope = np.vstack([np.abs(d), np.sqrt((d**2).sum(axis=0))[None, :]])
    slope = _smooth(slope, fs, 0.012)
    qrs_on, qrs_off = _qrs(slope, r, fs)
    g_on = qrs_on[-1]
    iso_lo, iso_hi = max(int(np.floor(g_on - 0.03 * fs)), 0), max(int(np.floor(g_on - 0.005 * fs)), 0)
    iso = beat[:, iso_lo : iso_hi + 1].mean(axis=1) if iso_hi >= iso_lo else beat[:, 0]
    dev = beat - iso[:, None]
    amp = np.vstack([np.abs(dev), np.sqrt((dev**2).sum(axis=0))[None, :]])
    amp = _smooth(amp, fs, 0.02)
    damp = np.gradient(amp, axis=1)
    qrs_amp = _masked(amp, np.floor(qrs_on).astype(int), np.ceil(qrs_off).astype(int), 0.0).max(axis=1)
    rows = leads + 1
    rr = rr_s if rr_s else 0.9
    t_hi = np.full(rows, min(r + int(round(0.7 * rr * fs)), width - 1))
    t_lo = np.ceil(qrs_off).astype(int) + int(round(0.04 * fs))
    t = _wave(amp, damp, t_lo, t_hi, T_MIN_FRACTION * qrs_amp)
    t["on"] = np.maximum(t["on"], qrs_off)
    prev_t_end = (t["off"][-1] if t["found"][-1] else r + 0.45 * fs) - rr * fs
    p_lo_g = max(0, int(np.ceil(max(g_on - PR_MAX_S * fs, prev_t_end + 0.04 * fs))))
    p_hi = np.full(rows, max(int(np.floor(g_on)) - 1, 0))
    p = _wave(amp, damp, np.full(rows, p_lo_g), p_hi, P_MIN_FRACTION * qrs_amp)
    out = {
        "p_on": p["on"],
        "p_peak": p["peak"],
        "p_off": np.minimum(p["off"], g_on),
        "qrs_on": qrs_on,
        "qrs_off": qrs_off,
        "t_on": t["on"],
        "t_peak": t["peak"],
        "t_off": t["off"],
    }
    for name in ("p_on", "p_peak", "p_off"):
        out[name] = np.where(p["found"], out[name], np.nan)
    for name in ("t_on", "t_peak", "t_off"):
        out[name] = np.where(t["found"], out[name], np.nan)
    out["p_found"], out["t_found"] = p["found"], t["found"]
    return out
