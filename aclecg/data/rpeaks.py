"""A fast, vectorised multi-lead R-peak (QRS) detector.

The idea is Pan & Tompkins' (IEEE TBME 32(3), 1985) — band-pass to the QRS band, differentiate, square,
integrate over a moving window, threshold with a refractory period — applied to all leads at once:

1. zero-phase Butterworth band-pass 5-15 Hz of every lead (QRS energy band; high edge capped at 0.45 fs);
2. each lead scaled to unit 99th percentile, squared first difference summed over leads (robust to a lead in
   which the QRS is small or cancels, and to an artefact in one lead);
3. moving-window integration over 120 ms;
4. ``scipy.signal.find_peaks`` with an adaptive height (35 % of the running maximum over 2.5 s, never below
   10 % of the median running maximum) and a 250 ms refractory period (at most 240 beats/min);
5. each peak moved to the sample of largest band-passed energy within +-60 ms (the QRS centre).

On real PTB-XL and Challenge records its beats agree with ``wfdb.processing.xqrs_detect`` within 100 ms
(tests/test_data_rpeaks.py; F1 >= 0.9 per record) while running about 10x faster than XQRS on a single lead
(2-7 ms against 20-35 ms for a 10 s, 12-lead record at 500 Hz; about 1 ms at 100 Hz).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

from aclecg.data.preprocess import bandpass

QRS_BAND = (5.0, 15.0)
INTEGRATION_S = 0.12
REFRACTORY_S = 0.25
SEARCH_S = 0.06
RUNNING_MAX_S = 2.5


def qrs_energy(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the band-passed energy ``(n,)`` and its moving-window integral ``(n,)`` for ``x`` ``(L, n)``."""
    band = bandpass(np.asarray(x, dtype=np.float64), fs, *QRS_BAND, order=2)
    # Equalise the leads (99th percentile of |band| -> 1) so one lead's artefact cannot drown the others.
    scale = np.percentile(np.abs(band), 99, axis=-1, keepdims=True)
    band = band / np.where(scale > 0, scale, 1.0)
    energy = (band**2).sum(axis=0)
    slope = (np.diff(band, axis=-1, prepend=band[:, :1]) ** 2).sum(axis=0)
    width = max(int(round(INTEGRATION_S * fs)), 1)
    envelope = ndimage.uniform_filter1d(slope, size=width, mode="nearest")
    return energy, envelope


def detect_rpeaks(x: np.ndarray, fs: float, refractory_s: float = REFRACTORY_S) -> np.ndarray:
    """R-peak sample positions (sorted int64) in ``x`` ``(leads, samples)`` sampled at ``fs`` Hz."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = x.shape[-1]
    if n < int(fs * 0.5) or not np.isfinite(x).all():
        return np.zeros(0, dtype=np.int64)
    energy, env = qrs_energy(x, fs)
    running = ndimage.maximum_filter1d(env, size=max(int(RUNNING_MAX_S * fs), 1), mode="nearest")
    typical = np.median(running)
    if typical <= 0:
        return np.zeros(0, dtype=np.int64)
    height = np.maximum(0.35 * running, 0.1 * typical)
    peaks, _ = signal.find_peaks(env, height=height, distance=max(int(refractory_s * fs), 1))
    if peaks.size == 0:
        return peaks.astype(np.int64)
    half = max(int(round(SEARCH_S * fs)), 1)
    idx = np.clip(peaks[:, None] + np.arange(-half, half + 1)[None, :], 0, n - 1)  # (P, 2h+1)
    refined = idx[np.arange(len(peaks)), np.argmax(energy[idx], axis=1)]
    refined = np.unique(refined)
    # Refinement can pull two candidates closer than the refractory period: keep the stronger one.
    keep = np.ones(refined.size, dtype=bool)
    close = np.flatnonzero(np.diff(refined) < refractory_s * fs)
    for j in close:  # rare: a few per record at most
        if keep[j] and keep[j + 1]:
            keep[j if energy[refined[j]] < energy[refined[j + 1]] else j + 1] = False
    return refined[keep].astype(np.int64)


#: Classes whose wide or notched QRS can move the detected peak onto an S wave or a second R (RBBB, LBBB,
#: non-specific intraventricular conduction delay, WPW, paced rhythm): the rhythm summary says so for them.
WIDE_QRS_CLASSES = frozenset(
    {"CRBBB", "CLBBB", "RBBB", "LBBB", "CRBBB|RBBB", "CLBBB|LBBB", "IVCD", "NSIVCB", "IRBBB", "WPW", "PR", "PACE", "CD"}
)
#: Beat-to-beat variation (coefficient of variation of RR) above which the rhythm is called irregular.
IRREGULAR_RR_CV = 0.2


def rhythm_summary(peaks: np.ndarray, fs: float, labels: frozenset[str] | set[str] = frozenset()) -> dict:
    """Heart rate and RR from detected R-peaks, with a note where the figures are not reliable.

    Returns ``n_beats``, ``hr_bpm`` (60 / median RR), ``rr_s`` (median RR), ``rr_cv`` and ``note`` (empty when
    nothing limits the figures). Fewer than three beats give no rate; an irregular rhythm or a wide-QRS class in
    ``labels`` is named in the note.

    >>> s = rhythm_summary(np.array([10, 90, 170, 250]), 100.0)
    >>> s["hr_bpm"], s["rr_s"], s["note"]
    (75.0, 0.8, '')
    """
    p = np.sort(np.asarray(peaks, dtype=np.float64))
    p = p[p >= 0]
    out: dict = {"n_beats": int(p.size), "hr_bpm": None, "rr_s": None, "rr_cv": None, "note": ""}
    if p.size < 3:
        out["note"] = f"only {p.size} R-peak(s) detected: no rate"
        return out
    rr = np.diff(p) / fs
    median = float(np.median(rr))
    out.update(hr_bpm=round(60.0 / median, 1), rr_s=round(median, 3), rr_cv=round(float(rr.std() / rr.mean()), 3))
    notes = []
    if out["rr_cv"] > IRREGULAR_RR_CV:
        notes.append(f"irregular rhythm (RR varies by {out['rr_cv']:.0%}): the median RR is shown")
    wide = sorted(set(labels) & WIDE_QRS_CLASSES)
    if wide:
        notes.append(f"{', '.join(wide)}: the detected peak may sit on an S wave or a second R")
    out["note"] = "; ".join(notes)
    return out
