"""The baseline augmentations of contrastive ECG work: time-out (with random resized crop, the LCD/ELIC authors'
"standard" pipeline), Gaussian noise, amplitude scaling, baseline wander and lead dropout."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from aclecg.augment.base import Augmentation, Info
from aclecg.augment.draws import Draws, normal, uniform
from aclecg.augment.params import check_step
from aclecg.augment.rpeaks import time_index, zero_where
from aclecg.augment.warp import Warp
from aclecg.constraints import Boolean, Integer, Pair, Real

__all__ = ["AmplitudeScale", "BaselineWander", "GaussianNoise", "LeadDropout", "TimeOut"]


class TimeOut(Augmentation):
    """Time-out (LCD/ELIC "standard" pipeline): zero a random span of ``f * T`` samples in every lead.

    ``f ~ U(fraction)`` (default [0, 0.5]); the span's start is uniform over the positions that fit.
    info: ``start``, ``end`` (B,) long, the zeroed ``[start, end)``.
    """

    name = "time_out"
    PARAMS = {
        "fraction": "[low, high] fraction of the length zeroed, inside [0, 1]; default [0, 0.5]",
        "p": "probability per sample, [0, 1]; default 1",
    }
    CONSTRAINTS = {"fraction": Pair(Real(0.0, 1.0))}

    def __init__(self, fraction: Sequence[float] = (0.0, 0.5), p: float = 1.0, fs: float = 100.0) -> None:
        super().__init__(p, fs)
        self.fraction = check_step(self.name, self.CONSTRAINTS, {"fraction": fraction})["fraction"]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "fraction": list(self.fraction), "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: Draws) -> dict[str, Tensor]:
        batch, _, length = x.shape
        u = uniform((batch, 2), generator, x.device).double()
        lo, hi = self.fraction
        width = torch.round((u[:, 0] * (hi - lo) + lo) * length).long().clamp_(0, length)
        start = torch.minimum(torch.floor(u[:, 1] * (length - width + 1)).long(), length - width)
        return {"start": start, "end": start + width}

    warp_kind = "mask"

    def warp_update(
        self, warp: Warp, x: Tensor, params: Mapping[str, Tensor], info: Info, applied: Tensor | None
    ) -> Warp:
        spans = torch.stack([params["start"], params["end"]], dim=-1)[:, None, :]
        if applied is not None:
            spans = torch.where(applied[:, None, None], spans, torch.full_like(spans, -1))
        leads = torch.ones((x.shape[0], 1, x.shape[1]), dtype=torch.bool, device=x.device)
        return warp.with_spans(spans, leads)


class GaussianNoise(Augmentation):
    """Add white Gaussian noise with a per-sample standard deviation ``sigma ~ U(std)`` (signal units).

    Prepared signals are z-scored per lead, so ``std`` is relative to the lead's standard deviation.
    info: ``std`` (B,) float.
    """

    name = "gaussian_noise"
    PARAMS = {
        "std": "[low, high] noise standard deviation inside [0, 5]; default [0.01, 0.1]",
        "p": "probability per sample, [0, 1]; default 1",
    }
    CONSTRAINTS = {"std": Pair(Real(0.0, 5.0))}

    def __init__(self, std: Sequence[float] = (0.01, 0.1), p: float = 1.0, fs: float = 100.0) -> None:
        super().__init__(p, fs)
        self.std = check_step(self.name, self.CONSTRAINTS, {"std": std})["std"]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "std": list(self.std), "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: Draws) -> dict[str, Tensor]:
        lo, hi = self.std
        sigma = lo + (hi - lo) * uniform((x.shape[0],), generator, x.device)
        return {"std": sigma, "noise": normal(x.shape, generator, x.device)}

    def plan(
        self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True, need_peaks: bool = True
    ) -> tuple[Tensor, Info]:
        return rpeaks, {"std": params["std"]}

    def render(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info) -> Tensor:
        return x + (params["std"][:, None, None] * params["noise"]).to(x.dtype)


class AmplitudeScale(Augmentation):
    """Multiply by a gain ``g ~ U(scale)``, one per sample or (``per_lead``) one per sample and lead.

    info: ``scale`` (B, L) float (equal across leads unless ``per_lead``).
    """

    name = "amplitude_scale"
    PARAMS = {
        "scale": "[low, high] gain inside [0, 10]; default [0.8, 1.2]",
        "per_lead": "true to draw a gain per lead; default false",
        "p": "probability per sample, [0, 1]; default 1",
    }
    CONSTRAINTS = {"scale": Pair(Real(0.0, 10.0)), "per_lead": Boolean()}

    def __init__(
        self, scale: Sequence[float] = (0.8, 1.2), per_lead: bool = False, p: float = 1.0, fs: float = 100.0
    ) -> None:
        super().__init__(p, fs)
        checked = check_step(self.name, self.CONSTRAINTS, {"scale": scale, "per_lead": per_lead})
        self.scale, self.per_lead = checked["scale"], checked["per_lead"]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "scale": list(self.scale), "per_lead": self.per_lead, "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: Draws) -> dict[str, Tensor]:
        batch, n_leads, _ = x.shape
        lo, hi = self.scale
        u = uniform((batch, n_leads if self.per_lead else 1), generator, x.device)
        return {"scale": (lo + (hi - lo) * u).expand(batch, n_leads)}

    def render(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info) -> Tensor:
        return x * params["scale"][:, :, None].to(x.dtype)


class BaselineWander(Augmentation):
    """Add low-frequency sinusoids mimicking respiration and electrode drift.

    ``n_components`` sinusoids per sample, each with frequency ``~ U(freq_hz)``, phase ``~ U[0, 2 pi)`` (shared by
    the leads of a sample) and a per-lead amplitude ``~ U(amplitude)``.
    info: ``freq`` (B, n) Hz, ``phase`` (B, n) rad, ``amplitude`` (B, L, n).
    """

    name = "baseline_wander"
    PARAMS = {
        "amplitude": "[low, high] amplitude per component inside [0, 5]; default [0, 0.2]",
        "freq_hz": "[low, high] frequency in Hz inside [0, 2]; default [0.05, 0.5]",
        "n_components": "integer in [1, 8]; default 2",
        "p": "probability per sample, [0, 1]; default 1",
    }
    CONSTRAINTS = {
        "amplitude": Pair(Real(0.0, 5.0)),
        "freq_hz": Pair(Real(0.0, 2.0)),
        "n_components": Integer(1, 8, whole_floats=True),
    }

    def __init__(
        self,
        amplitude: Sequence[float] = (0.0, 0.2),
        freq_hz: Sequence[float] = (0.05, 0.5),
        n_components: int = 2,
        p: float = 1.0,
        fs: float = 100.0,
    ) -> None:
        super().__init__(p, fs)
        checked = check_step(
            self.name, self.CONSTRAINTS, {"amplitude": amplitude, "freq_hz": freq_hz, "n_components": n_components}
        )
        self.amplitude, self.freq_hz, self.n_components = (
            checked["amplitude"],
            checked["freq_hz"],
            checked["n_components"],
        )

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "amplitude": list(self.amplitude),
            "freq_hz": list(self.freq_hz),
            "n_components": self.n_components,
            "p": self.p,
        }

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: Draws) -> dict[str, Tensor]:
        batch, n_leads, _ = x.shape
        n = self.n_components
        u = uniform((batch, n * (2 + n_leads)), generator, x.device)
        f_lo, f_hi = self.freq_hz
        a_lo, a_hi = self.amplitude
        return {
            "freq": f_lo + (f_hi - f_lo) * u[:, :n],
            "phase": 2 * math.pi * u[:, n : 2 * n],
            "amplitude": a_lo + (a_hi - a_lo) * u[:, 2 * n :].reshape(batch, n_leads, n),
        }

    def render(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info) -> Tensor:
        t = time_index(x.shape[-1], x.device).float() / self.fs
        waves = torch.sin(2 * math.pi * params["freq"][:, :, None] * t + params["phase"][:, :, None])  # (B, n, T)
        drift = torch.bmm(params["amplitude"], waves)  # (B, L, T)
        return x + drift.to(x.dtype)


class LeadDropout(Augmentation):
    """Zero each lead independently with probability ``drop_prob``; at least ``min_keep`` leads survive.

    When more would be dropped, the leads with the largest random keys are kept. info: ``dropped`` (B, L) bool.
    """

    name = "lead_dropout"
    PARAMS = {
        "drop_prob": "probability a lead is zeroed, [0, 1]; default 0.2",
        "min_keep": "leads always kept, integer in [0, 12]; default 1",
        "p": "probability per sample, [0, 1]; default 1",
    }
    CONSTRAINTS = {"drop_prob": Real(0.0, 1.0), "min_keep": Integer(0, 12, whole_floats=True)}

    def __init__(self, drop_prob: float = 0.2, min_keep: int = 1, p: float = 1.0, fs: float = 100.0) -> None:
        super().__init__(p, fs)
        checked = check_step(self.name, self.CONSTRAINTS, {"drop_prob": drop_prob, "min_keep": min_keep})
        self.drop_prob, self.min_keep = checked["drop_prob"], checked["min_keep"]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "drop_prob": self.drop_prob, "min_keep": self.min_keep, "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: Draws) -> dict[str, Tensor]:
        return {"keys": uniform(x.shape[:2], generator, x.device)}

    def plan(
        self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True, need_peaks: bool = True
    ) -> tuple[Tensor, Info]:
        keys = params["keys"]
        dropped = keys < self.drop_prob
        keep = min(self.min_keep, x.shape[1])
        if keep:
            rank = torch.argsort(torch.argsort(keys, dim=1, descending=True), dim=1)  # 0 = largest key
            dropped = dropped & (rank >= keep)
        return rpeaks, {"dropped": dropped}

    def render(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info) -> Tensor:
        return zero_where(x, info["dropped"][:, :, None])
