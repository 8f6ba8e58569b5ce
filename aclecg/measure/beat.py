"""The median beat: the beats of a record cut around their R-peaks, aligned, and their sample-wise median.

A median over beats keeps the dominant morphology and rejects what differs from beat to beat (noise, an ectopic
beat, a masked or cropped-away beat), so the waves' boundaries are found once, on a clean beat, instead of on
every beat. Beats are aligned on their QRS by cross-correlation (a detected R-peak can sit one or two samples off
on a wide or notched complex), and beats that do not look like the first median (correlation under
:data:`MIN_CORRELATION`, e.g. a premature ventricular beat) are left out of the second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MedianBeat", "median_beat"]

#: Seconds of the beat window before and after the R-peak (the window is shortened to fit short RR).
PRE_S, POST_S = 0.40, 0.75
#: Beats correlating less than this with the first median beat (all leads, QRS to T) are left out.
MIN_CORRELATION = 0.8
#: Largest alignment correction, seconds either side.
ALIGN_S = 0.02


@dataclass(frozen=True)
class MedianBeat:
    """A median beat ``beat (L, W)`` with the R-peak (fiducial) at column ``r``, from ``n_used`` of ``n_beats``."""

    beat: np.ndarray
    r: int
    fs: float
    n_beats: int
    n_used: int


def _windows(x: np.ndarray, peaks: np.ndarray, pre: int, post: int) -> np.ndarray:
    """``(B, L, pre + post + 1)`` windows of ``x (L, n)`` around each peak (all inside the record)."""
    idx = peaks[:, None] + np.arange(-pre, post + 1)[None, :]
    return np.transpose(x[:, idx], (1, 0, 2))


def _align(beats: np.ndarray, template: np.ndarray, centre: int, half: int, lag_max: int) -> np.ndarray:
    """Per-beat lag in ``[-lag_max, lag_max]`` that best matches ``template``'s QRS (``centre +- half``)."""
    ref = template[:, centre - half : centre + half + 1]
    scores = np.stack(
        [
            np.einsum("blt,lt->b", beats[:, :, centre - half + lag : centre + half + 1 + lag], ref)
            for lag in range(-lag_max, lag_max + 1)
        ],
        axis=1,
    )
    return np.argmax(scores, axis=1) - lag_max


def _correlation(beats: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Pearson correlation of each beat (all leads flattened) with the template."""
    b = beats.reshape(beats.shape[0], -1)
    b = b - b.mean(axis=1, keepdims=True)
    t = template.reshape(-1) - template.mean()
    denom = np.linalg.norm(b, axis=1) * np.linalg.norm(t)
    return np.where(denom > 0, b @ t / np.where(denom > 0, denom, 1.0), 0.0)


def median_beat(x: np.ndarray, fs: float, peaks: np.ndarray, rr_s: float | None = None) -> MedianBeat | None:
    """The median beat of ``x (L, n)`` (filtered) around ``peaks``; ``None`` when no beat fits in the record.

    The window is :data:`PRE_S` before to :data:`POST_S` after the R-peak, cut to 45 % / 95 % of ``rr_s`` (the
    median RR) when the rhythm is fast, so that it holds one beat.
    """
    n = x.shape[-1]
    pre_s, post_s = PRE_S, POST_S
    if rr_s:
        pre_s, post_s = min(pre_s, max(0.45 * rr_s, 0.2)), min(post_s, max(0.95 * rr_s, 0.3))
    lag = max(int(round(ALIGN_S * fs)), 1)
    pre, post = int(round(pre_s * fs)) + lag, int(round(post_s * fs)) + lag
    p = np.asarray(peaks, dtype=np.int64)
    p = p[(p - pre >= 0) & (p + post < n)]
    if p.size == 0:
        return None
    wide = _windows(x, p, pre, post)
    centre, half = pre, max(int(round(0.06 * fs)), 1)
    first = np.median(wide, axis=0)
    shifts = _align(wide, first, centre, half, lag) if p.size > 1 else np.zeros(1, dtype=np.int64)
    beats = _windows(x, p + shifts, pre - lag, post - lag)
    template = np.median(beats, axis=0)
    keep = _correlation(beats, template) >= MIN_CORRELATION if p.size > 2 else np.ones(p.size, dtype=bool)
    if keep.sum() >= max(2, (p.size + 1) // 2):
        template = np.median(beats[keep], axis=0)
    else:
        keep = np.ones(p.size, dtype=bool)
    return MedianBeat(
        beat=template, r=pre - lag, fs=float(fs), n_beats=int(np.asarray(peaks).size), n_used=int(keep.sum())
    )
