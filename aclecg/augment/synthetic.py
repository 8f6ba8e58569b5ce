"""Synthetic ECGs for demos, tests and benchmarks (not physiological)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from aclecg.augment.draws import normal, uniform

__all__ = ["make_synthetic_batch"]


def make_synthetic_batch(
    batch: int,
    n_leads: int = 12,
    length: int = 1000,
    fs: float = 100.0,
    bpm: Sequence[float] = (60.0, 100.0),
    irregular: float = 0.0,
    max_peaks: int = 32,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """A batch of crude synthetic ECGs and their R-peaks: ``(x (B, L, T) float32, rpeaks (B, K) int64)``.

    Each record has a heart rate ``~ U(bpm)``; RR intervals are jittered by a relative ``irregular`` (0 = regular,
    0.3 = AF-like). Beats are Gaussian P, QRS and T waves with per-lead gains. Not physiological; for tests and
    timing only.
    """
    device = torch.device("cpu")
    rate = bpm[0] + (bpm[1] - bpm[0]) * uniform((batch, 1), generator, device)
    rr = 60.0 * fs / rate * (1 + irregular * (2 * uniform((batch, max_peaks), generator, device) - 1))
    first = uniform((batch, 1), generator, device) * rr[:, :1]
    peaks = torch.round(first + torch.cumsum(rr, dim=1) - rr[:, :1]).long()
    peaks = torch.where(peaks < length, peaks, torch.full_like(peaks, -1))
    gains = 0.5 + uniform((batch, n_leads, 3), generator, device)
    t = torch.arange(length, dtype=torch.float32)
    dist = t[None, None, :] - torch.where(peaks >= 0, peaks, -10 * length).float()[:, :, None]  # (B, K, T)
    waves = []
    for offset, width, amp in ((-0.18 * fs, 0.025 * fs, 0.15), (0.0, 0.012 * fs, 1.0), (0.3 * fs, 0.05 * fs, 0.3)):
        waves.append(amp * torch.exp(-0.5 * ((dist - offset) / width) ** 2).sum(dim=1))  # (B, T)
    x = sum(gains[:, :, i : i + 1] * waves[i][:, None, :] for i in range(3))
    x = x + 0.01 * normal((batch, n_leads, length), generator, device)
    return x.float(), peaks
