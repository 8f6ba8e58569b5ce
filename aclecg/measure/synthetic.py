"""Synthetic 12-lead ECGs whose intervals are known exactly, to validate the measurements.

Every wave is a sum of half-cosine bumps with *compact support*, so its onset and offset are exact instants (a
Gaussian wave has none): the P wave spans ``[P_on, P_on + p_dur)``, the QRS complex ``[QRS_on, QRS_on + qrs)``
(Q, R, S, and for a wide complex a second R', as overlapping bumps) and the T wave ``[T_on, QRS_on + qt)`` with a
slower rise than fall. Lead gains (polarity and size of each wave) are drawn per lead from ``seed``, so the leads
differ the way real leads do while sharing one timing, the premise of a global (earliest onset, latest offset)
measurement. Optional white noise, baseline wander and RR jitter make the task harder; the truth is returned
beside the signal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from aclecg.errors import ConfigError

__all__ = ["SyntheticTruth", "synthetic_ecg"]


@dataclass(frozen=True)
class SyntheticTruth:
    """The intervals a synthetic record was built with (ms, bpm) and its R-peak positions (samples)."""

    hr_bpm: float
    rr_ms: float
    pr_ms: float
    qrs_ms: float
    qt_ms: float
    r_peaks: tuple[int, ...]

    def as_dict(self) -> dict:
        out = asdict(self)
        out["r_peaks"] = list(self.r_peaks)
        return out


def _bump(t: np.ndarray, start: float, peak: float, end: float) -> np.ndarray:
    """A smooth bump: 0 outside ``[start, end]``, 1 at ``peak``, half-cosine rise and fall."""
    out = np.zeros_like(t)
    rise = (t >= start) & (t < peak)
    fall = (t >= peak) & (t <= end)
    out[rise] = 0.5 - 0.5 * np.cos(np.pi * (t[rise] - start) / max(peak - start, 1e-9))
    out[fall] = 0.5 + 0.5 * np.cos(np.pi * (t[fall] - peak) / max(end - peak, 1e-9))
    return out


def _beat_waves(t: np.ndarray, q0: float, pr: float, qrs: float, qt: float, wide: bool) -> dict[str, np.ndarray]:
    """The unit waves of one beat whose QRS starts at ``q0`` (all in seconds)."""
    p_dur = min(0.10, 0.7 * pr)
    p_on = q0 - pr
    t_dur = min(0.22, 0.55 * (qt - qrs))
    t_on = q0 + qt - t_dur
    waves = {"P": _bump(t, p_on, p_on + 0.5 * p_dur, p_on + p_dur)}
    waves["Q"] = _bump(t, q0, q0 + 0.1 * qrs, q0 + 0.22 * qrs)
    if wide:  # RSR': two R bumps and an S between
        waves["R"] = _bump(t, q0 + 0.12 * qrs, q0 + 0.3 * qrs, q0 + 0.48 * qrs)
        waves["S"] = _bump(t, q0 + 0.4 * qrs, q0 + 0.5 * qrs, q0 + 0.6 * qrs)
        waves["R2"] = _bump(t, q0 + 0.52 * qrs, q0 + 0.76 * qrs, q0 + qrs)
    else:
        waves["R"] = _bump(t, q0 + 0.15 * qrs, q0 + 0.4 * qrs, q0 + 0.65 * qrs)
        waves["S"] = _bump(t, q0 + 0.55 * qrs, q0 + 0.75 * qrs, q0 + qrs)
        waves["R2"] = np.zeros_like(t)
    waves["T"] = _bump(t, t_on, t_on + 0.62 * t_dur, q0 + qt)
    return waves


def _lead_gains(rng: np.random.Generator, n_leads: int) -> dict[str, np.ndarray]:
    """Per-lead amplitudes (mV) of each wave; signs vary so the leads differ like real ones."""
    sign = np.where(rng.random(n_leads) < 0.25, -1.0, 1.0)
    return {
        "P": rng.uniform(0.06, 0.2, n_leads) * np.where(rng.random(n_leads) < 0.15, -1.0, 1.0),
        "Q": -rng.uniform(0.0, 0.25, n_leads) * sign,
        "R": rng.uniform(0.4, 1.6, n_leads) * sign,
        "S": -rng.uniform(0.1, 0.9, n_leads) * sign,
        "R2": rng.uniform(0.3, 1.0, n_leads) * sign,
        "T": rng.uniform(0.1, 0.5, n_leads) * np.where(rng.random(n_leads) < 0.2, -1.0, 1.0),
    }


# long: one keyword per property of the synthetic beat that a test controls
def synthetic_ecg(
    fs: float = 500.0,
    seconds: float = 10.0,
    hr_bpm: float = 70.0,
    pr_ms: float = 160.0,
    qrs_ms: float = 90.0,
    qt_ms: float = 380.0,
    *,
    wide: bool = False,
    p_wave: bool = True,
    noise_mv: float = 0.0,
    wander_mv: float = 0.0,
    rr_jitter: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, SyntheticTruth]:
    """A 12-lead record ``(12, round(seconds * fs))`` in mV with the given intervals, and its truth.

    ``wide=True`` draws an RSR' complex (bundle-branch-block-like); ``p_wave=False`` leaves the P wave out (with
    ``rr_jitter`` about 0.4, an AF-like record). ``noise_mv`` is the standard deviation of white
    noise, ``wander_mv`` the amplitude of a 0.3 Hz baseline wander, ``rr_jitter`` the relative jitter of each RR
    (0 = regular). The truth's ``rr_ms``/``hr_bpm`` are those of the median RR actually laid out.
    """
    if not (qrs_ms < qt_ms and 40 <= pr_ms <= 400 and 20 <= qrs_ms <= 250 and 150 <= qt_ms <= 700):
        raise ConfigError(f"synthetic_ecg: implausible intervals PR {pr_ms}, QRS {qrs_ms}, QT {qt_ms} ms")
    if not 20 <= hr_bpm <= 250 or fs < 50 or seconds < 2:
        raise ConfigError(f"synthetic_ecg: hr_bpm {hr_bpm}, fs {fs} or seconds {seconds} out of range")
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    rr = 60.0 / hr_bpm
    pr, qrs, qt = pr_ms / 1000, qrs_ms / 1000, qt_ms / 1000
    r_offset = (0.76 if wide else 0.4) * qrs  # R (or R') apex after QRS onset
    onsets, q0 = [], rng.uniform(pr + 0.05, pr + 0.05 + rr) - rr  # the first beat may be partly before t = 0
    while q0 < seconds + pr:
        onsets.append(q0)
        q0 += rr * (1.0 + rr_jitter * rng.uniform(-1, 1))
    gains = _lead_gains(rng, 12)
    if not p_wave:
        gains["P"] = np.zeros(12)
    x = np.zeros((12, n))
    for q in onsets:
        lo, hi = np.searchsorted(t, q - pr - 0.01), np.searchsorted(t, q + qt + 0.01)
        waves = _beat_waves(t[lo:hi], q, pr, qrs, qt, wide)
        for name, wave in waves.items():
            x[:, lo:hi] += gains[name][:, None] * wave[None, :]
    if wander_mv:
        x += wander_mv * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 2 * np.pi, (12, 1)))
    if noise_mv:
        x += rng.normal(0.0, noise_mv, x.shape)
    peaks = np.array([round((q + r_offset) * fs) for q in onsets])
    peaks = peaks[(peaks >= 0) & (peaks < n)]
    laid = np.diff(onsets)
    median_rr = float(np.median(laid)) if laid.size else rr
    truth = SyntheticTruth(
        hr_bpm=60.0 / median_rr,
        rr_ms=1000.0 * median_rr,
        pr_ms=pr_ms,
        qrs_ms=qrs_ms,
        qt_ms=qt_ms,
        r_peaks=tuple(int(p) for p in peaks),
    )
    return x, truth
