"""Signal preprocessing for ``prepare``: resampling, band-pass filtering, fixed windows and z-scoring.

All functions work on whole arrays ``(leads, samples)`` or ``(windows, leads, samples)``; none loops over
samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import signal

from aclecg.errors import ConfigError, DataError

#: Windows (and whole records) shorter than this fraction of the window length are skipped, not padded.
MIN_FRACTION = 0.8


def resample(x: np.ndarray, fs: float, target_fs: float) -> np.ndarray:
    """Polyphase resampling along the last axis (``scipy.signal.resample_poly``, anti-aliasing FIR).

    The rate ratio is approximated by a fraction with a denominator up to 1000; a pair of rates it cannot express
    to 0.1 % (e.g. 200 kHz to 100 Hz, which would round to 0, or 150 kHz, which would round to 1/1000) raises
    :class:`DataError` instead of resampling to a wrong rate.
    """
    if abs(fs - target_fs) < 1e-9:
        return x
    exact = target_fs / fs
    ratio = Fraction(exact).limit_denominator(1000)
    if ratio <= 0 or abs(float(ratio) - exact) > 1e-3 * exact:
        raise DataError(
            f"cannot resample {fs:g} Hz to {target_fs:g} Hz: the ratio is not a fraction p/q with q <= 1000"
        )
    return signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)


@lru_cache(maxsize=32)
def butter_bandpass(low: float, high: float, fs: float, order: int = 2) -> np.ndarray:
    """Second-order sections of a Butterworth band-pass; ``high`` is capped at 0.45 fs."""
    if not 0 < low < high:
        raise ConfigError(f"band-pass edges must satisfy 0 < low < high, got {low}, {high}")
    high = min(high, 0.45 * fs)
    if low >= high:
        raise ConfigError(f"band-pass low edge {low} Hz is above the usable band at fs={fs} Hz")
    return signal.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")


def bandpass(x: np.ndarray, fs: float, low: float = 0.5, high: float = 40.0, order: int = 2) -> np.ndarray:
    """Zero-phase (forward-backward, ``sosfiltfilt``) Butterworth band-pass along the last axis.

    Forward-backward filtering doubles the effective order (order 2 -> 4) and has no phase delay, so QRS
    positions are not shifted.
    """
    sos = butter_bandpass(float(low), float(high), float(fs), int(order))
    padlen = min(3 * (2 * len(sos) + 1), x.shape[-1] - 1)
    return signal.sosfiltfilt(sos, x, axis=-1, padlen=max(padlen, 0))


@dataclass(frozen=True)
class Window:
    start: int  # first sample in the (resampled) record
    n_valid: int  # real samples; the rest of the window is zero padding


def plan_windows(n: int, length: int, min_fraction: float = MIN_FRACTION) -> list[Window]:
    """Non-overlapping windows of ``length`` samples covering ``n`` samples.

    Full windows first; a trailing remainder (or a whole record shorter than one window) becomes a
    zero-padded window when it holds at least ``min_fraction`` of a window, and is dropped otherwise.
    """
    full = n // length
    out = [Window(i * length, length) for i in range(full)]
    rest = n - full * length
    if rest and rest >= min_fraction * length:
        out.append(Window(full * length, rest))
    return out


def cut_windows(x: np.ndarray, windows: list[Window], length: int) -> np.ndarray:
    """Stack windows of ``x`` ``(L, n)`` into ``(W, L, length)``, zero-padding short ones."""
    out = np.zeros((len(windows), x.shape[0], length), dtype=x.dtype)
    for k, w in enumerate(windows):  # loop over windows (a handful per record), not samples
        out[k, :, : w.n_valid] = x[:, w.start : w.start + w.n_valid]
    return out


def zscore(windows: np.ndarray, n_valid: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Z-score each window and lead over its real samples; padding stays 0 and flat leads become 0.

    ``windows`` is ``(W, L, T)``, ``n_valid`` ``(W,)``.
    """
    T = windows.shape[-1]
    mask = (np.arange(T)[None, :] < np.asarray(n_valid)[:, None])[:, None, :]  # (W, 1, T)
    count = mask.sum(-1, keepdims=True)
    mean = (windows * mask).sum(-1, keepdims=True) / count
    centred = (windows - mean) * mask
    std = np.sqrt((centred**2).sum(-1, keepdims=True) / count)
    return np.where(std > eps, centred / np.maximum(std, eps), 0.0)
