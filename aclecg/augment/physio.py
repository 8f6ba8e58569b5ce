"""Physio-AUG's three parts (ACL-ECG): random scale cropping, temporal shifting and cardiac-cycle masking.

Each keeps the rhythm intact and carries the R-peaks through: the crop maps them into its output, the shift moves
them, and the cycle mask reads them to find whole cycles. The ``physio`` preset applies crop -> cycle mask -> shift
(see :mod:`aclecg.augment`); all three are warp steps, rendered in one pass by :class:`~aclecg.augment.Compose`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from aclecg.augment.base import Augmentation, Info
from aclecg.augment.draws import Draws, randint, uniform
from aclecg.augment.params import check_step, step_label
from aclecg.augment.rpeaks import DEFAULT_RR_S, compact, median_rr, spans_to_mask
from aclecg.augment.warp import Warp
from aclecg.constraints import CYCLE_WINDOWS, MASK_FILLS, SHIFT_MODES, Boolean, Either, Integer, Options, Pair, Real
from aclecg.errors import ConfigError, DataError
from aclecg.leads import LEADS, RegionMap, canonical_lead, default_region_map

__all__ = ["CardiacCycleMask", "RandomScaleCrop", "TemporalShift"]


class RandomScaleCrop(Augmentation):
    """Random scale cropping: keep a window of ``fraction * T`` samples; resample it to ``T`` or keep its rate.

    The window length is ``w = round(f * T)`` with ``f ~ U(scale)``, its start ``s`` uniform over the integer
    positions that fit.

    ``resample=True`` (the random resized crop of LCD/ELIC, and Physio-AUG's crop before 2026-12-05, preset
    ``physio_v1``): output sample ``j`` reads the input at ``s + j * (w - 1) / (T - 1)`` with linear interpolation
    (end points included), so ``f = 1`` is the identity. R-peaks inside the window are mapped to
    ``floor((r - s) * (T - 1) / (w - 1) + 1/2)`` (exact integer arithmetic: halves round up); the others are
    dropped. The time axis stretches by ``1 / f``, so the heart rate of the view falls by the factor ``f``.

    ``resample=False`` (Physio-AUG's rhythm-preserving crop, preset ``physio``): the window stays where it was, at
    the record's own rate, and the samples outside it are zeroed (the z-scored baseline); R-peaks outside it are
    dropped. Heart rate, RR intervals and wave durations are unchanged.

    info: ``start``, ``end`` (B,) long, ``[start, end)`` in input samples; ``fraction`` (B,) float (``w / T``);
    ``resampled`` (B,) bool (``resample``).
    """

    name = "random_scale_crop"
    PARAMS = {
        "scale": "[low, high] fraction of the length kept, inside [0.05, 1.0]; default [0.5, 1.0]",
        "resample": "true: stretch the window to the full length (changes the rate); false: keep its rate, zero "
        "the rest; default true",
        "p": "probability per sample, [0, 1]; default 1",
    }
    CONSTRAINTS = {"scale": Pair(Real(0.05, 1.0)), "resample": Boolean()}

    def __init__(
        self, scale: Sequence[float] = (0.5, 1.0), resample: bool = True, p: float = 1.0, fs: float = 100.0
    ) -> None:
        super().__init__(p, fs)
        checked = check_step(self.name, self.CONSTRAINTS, {"scale": scale, "resample": resample})
        self.scale, self.resample = checked["scale"], checked["resample"]

    def config(self) -> dict[str, Any]:
        extra = {} if self.resample else {"resample": False}  # the resampling crop's config is as it always was
        return {"name": self.name, "scale": list(self.scale), **extra, "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: Draws) -> dict[str, Tensor]:
        batch, _, length = x.shape
        u = uniform((batch, 2), generator, x.device).double()  # the window is derived in float64
        lo, hi = self.scale
        width = torch.round((u[:, 0] * (hi - lo) + lo) * length).long().clamp_(2, length)
        start = torch.minimum(torch.floor(u[:, 1] * (length - width + 1)).long(), length - width)
        return {"start": start, "width": width}

    def plan(
        self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True, need_peaks: bool = True
    ) -> tuple[Tensor, Info]:
        length = x.shape[-1]
        start, width = params["start"], params["width"]
        info = {"start": start, "end": start + width, "fraction": width.float() / length} if detail else {}
        if detail:
            info["resampled"] = torch.full_like(start, self.resample, dtype=torch.bool)
        if not need_peaks:
            return rpeaks, info
        inside = (rpeaks >= start[:, None]) & (rpeaks < (start + width)[:, None])
        if not self.resample:
            return compact(torch.where(inside, rpeaks, -1), length), info
        span = 2 * (width[:, None] - 1)  # round((r - s) / step) with step = (w - 1) / (T - 1), in integers
        mapped = torch.div((rpeaks - start[:, None]) * (2 * (length - 1)) + span // 2, span, rounding_mode="floor")
        return compact(torch.where(inside, mapped.clamp_(0, length - 1), -1), length), info

    @property
    def warp_kind(self) -> str | None:  # type: ignore[override]
        return "crop" if self.resample else "mask"

    def warp_update(
        self, warp: Warp, x: Tensor, params: Mapping[str, Tensor], info: Info, applied: Tensor | None
    ) -> Warp:
        if not self.resample:  # zero [0, start) and [end, T): two spans in every lead
            start, end = params["start"], params["start"] + params["width"]
            zero, length = torch.zeros_like(start), torch.full_like(start, x.shape[-1])
            spans = torch.stack([torch.stack([zero, start], -1), torch.stack([end, length], -1)], dim=1)
            if applied is not None:
                spans = torch.where(applied[:, None, None], spans, torch.full_like(spans, -1))
            leads = torch.ones((x.shape[0], 2, x.shape[1]), dtype=torch.bool, device=x.device)
            return warp.with_spans(spans, leads)
        start = params["start"].double()
        step = (params["width"] - 1).double() / (x.shape[-1] - 1)
        if applied is not None:
            start, step = torch.where(applied, start, warp.start), torch.where(applied, step, warp.step)
        return replace(warp, start=start, step=step, has_crop=True)


class TemporalShift(Augmentation):
    """Shift the signal in time by an integer number of samples ``d`` (positive = later), ``|d| <= max``.

    ``max_shift``: ``"rr"`` (default) uses each sample's median RR interval (about one beat; 1 s when fewer than two
    R-peaks), a number is seconds. ``mode``: ``"circular"`` (default; every sample and beat is kept, with one seam),
    ``"zero"`` (vacated samples are 0, the z-scored baseline) or ``"edge"`` (vacated samples repeat the edge value).
    R-peaks move with the signal; in padded modes peaks pushed out of the window are dropped.

    In ``"circular"`` mode the seam (output sample ``d mod T``) joins the record's end to its start, so the two
    R-peaks either side of it do not bound a real cycle; this is why Physio-AUG masks cycles *before* shifting.

    info: ``shift`` (B,) long samples; ``max_shift`` (B,) float samples.
    """

    name = "temporal_shift"
    PARAMS = {
        "max_shift": "'rr' (median RR of the sample, 1 s without peaks) or seconds in [0, 10]; default 'rr'",
        "mode": "'circular', 'zero' or 'edge'; default 'circular'",
        "p": "probability per sample, [0, 1]; default 1",
    }
    MODES = SHIFT_MODES
    CONSTRAINTS = {"max_shift": Either((Options(("rr",)), Real(0.0, 10.0))), "mode": Options(MODES)}

    def __init__(
        self, max_shift: float | str = "rr", mode: str = "circular", p: float = 1.0, fs: float = 100.0
    ) -> None:
        super().__init__(p, fs)
        checked = check_step(self.name, self.CONSTRAINTS, {"max_shift": max_shift, "mode": mode})
        self.max_shift: float | str = checked["max_shift"]
        self.mode: str = checked["mode"]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "max_shift": self.max_shift, "mode": self.mode, "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: Draws) -> dict[str, Tensor]:
        batch, _, length = x.shape
        if self.max_shift == "rr":
            limit = median_rr(rpeaks, default=1.0 * self.fs).double()
        else:
            limit = torch.full((batch,), float(self.max_shift) * self.fs, dtype=torch.float64, device=x.device)
        limit = torch.floor(limit.clamp_(0, length - 1))
        u = uniform((batch,), generator, x.device)
        shift = torch.minimum(torch.floor(u.double() * (2 * limit + 1)) - limit, limit)  # uniform in [-limit, limit]
        return {"shift": shift.long(), "max_shift": limit.float()}

    @property
    def reads_rpeaks(self) -> bool:  # type: ignore[override]
        return self.max_shift == "rr"

    def plan(
        self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True, need_peaks: bool = True
    ) -> tuple[Tensor, Info]:
        length = x.shape[-1]
        shift = params["shift"]
        info = {"shift": shift, "max_shift": params["max_shift"] if "max_shift" in params else shift.abs().float()}
        if not need_peaks:
            return rpeaks, info
        moved = rpeaks + shift[:, None]
        if self.mode == "circular":
            keep = rpeaks >= 0
            moved = torch.remainder(moved, length)
        else:
            keep = (rpeaks >= 0) & (moved >= 0) & (moved < length)
        return compact(torch.where(keep, moved, -1), length), info

    warp_kind = "shift"

    def warp_update(
        self, warp: Warp, x: Tensor, params: Mapping[str, Tensor], info: Info, applied: Tensor | None
    ) -> Warp:
        shift = params["shift"].long()
        if applied is not None:
            shift = torch.where(applied, shift, torch.zeros_like(shift))
        return replace(warp, shift=shift, mode=self.mode, has_shift=True)


class CardiacCycleMask(Augmentation):
    """Mask whole cardiac cycles, located by the R-peaks, in all leads or in the leads of one anatomical region.

    Cycle definition (``window``):

    * ``"rr"`` (default): from one R-peak to the next, ``[r_k, r_{k+1})``; a record with ``n`` peaks has ``n - 1``
      cycles. The partial beats before the first and after the last peak are never masked.
    * ``"pqrst"``: a P-onset to T-end window around each R-peak, ``[r_k - pre_s*fs, r_k + post_s*fs]`` clipped to
      the signal and so that it never reaches a neighbouring R-peak; ``n`` peaks give ``n`` cycles.

    Per sample, ``n ~ U{n_cycles}`` distinct cycles are chosen uniformly among the available ones (fewer when the
    record has fewer). Irregular rhythms (AF) need nothing special: cycles are whatever the peaks say.

    Fallback: a sample with no cycle (fewer than two peaks for ``"rr"``, none for ``"pqrst"``, or ``rpeaks=None``)
    gets one span of ``fallback_s`` seconds (default 0.8 s, a 75 bpm beat) at a uniform random position.

    ``scope``: ``"all"`` leads (default), ``"random_region"`` (one region per sample from the region map), or a
    region name. ``fill``: ``"zero"`` (default) or ``"median"`` (each lead's median over the record, lower median).

    info: ``cycles`` (B, M, 2) long ``[start, end)`` spans in this step's time axis, ``-1`` padded
    (M = ``n_cycles`` high); ``cycle_index`` (B, M) index of the cycle (its first R-peak), ``-1`` for none or a
    fallback span; ``fallback`` (B,) bool; ``region`` (B,) long index into ``region_names`` (-1 = all leads);
    ``region_names`` (list of str); ``lead_mask`` (B, L) bool, the masked leads.
    """

    name = "cardiac_cycle_mask"
    PARAMS = {
        "n_cycles": "[low, high] whole cycles per sample, integers inside [0, 16]; default [1, 2]",
        "window": "'rr' (R-peak to next R-peak) or 'pqrst' (P-onset to T-end around each R); default 'rr'",
        "pre_s": "seconds before R for 'pqrst', [0, 1]; default 0.25",
        "post_s": "seconds after R for 'pqrst', [0, 1.5]; default 0.45",
        "scope": "'all', 'random_region' or a region name; default 'all'",
        "fill": "'zero' or 'median'; default 'zero'",
        "fallback_s": "span masked when a sample has no cycle, seconds in [0, 5]; default 0.8",
        "p": "probability per sample, [0, 1]; default 1",
    }
    WINDOWS = CYCLE_WINDOWS
    FILLS = MASK_FILLS
    #: ``scope`` is checked against the regions of the step's leads when it is built
    CONSTRAINTS = {
        "n_cycles": Pair(Integer(0, 16, whole_floats=True)),
        "window": Options(WINDOWS),
        "pre_s": Real(0.0, 1.0),
        "post_s": Real(0.0, 1.5),
        "fill": Options(FILLS),
        "fallback_s": Real(0.0, 5.0),
    }

    # long: one keyword per hyper-parameter of the augmentation (its config is these keywords)
    def __init__(
        self,
        n_cycles: Sequence[int] | int = (1, 2),
        window: str = "rr",
        pre_s: float = 0.25,
        post_s: float = 0.45,
        scope: str = "all",
        fill: str = "zero",
        fallback_s: float = DEFAULT_RR_S,
        p: float = 1.0,
        fs: float = 100.0,
        leads: Sequence[str] = LEADS,
        region_map: RegionMap | None = None,
    ) -> None:
        super().__init__(p, fs)
        given = {"n_cycles": n_cycles, "window": window, "pre_s": pre_s, "post_s": post_s, "fill": fill}
        checked = check_step(self.name, self.CONSTRAINTS, {**given, "fallback_s": fallback_s})
        self.n_cycles: tuple[int, int] = checked["n_cycles"]
        self.window: str = checked["window"]
        self.pre_s: float = checked["pre_s"]
        self.post_s: float = checked["post_s"]
        self.fill: str = checked["fill"]
        self.fallback_s: float = checked["fallback_s"]
        try:
            self.leads = tuple(canonical_lead(lead) for lead in leads)
        except ValueError as exc:
            raise ConfigError(f"{step_label(self.name)}: leads: {exc}") from None
        region_map = region_map or default_region_map()
        members = region_map.indices(self.leads)
        self.region_names = list(members)
        scopes = ["all", "random_region", *self.region_names]
        self.scope: str = check_step(self.name, {"scope": Options(tuple(scopes))}, {"scope": scope})["scope"]
        if self.scope == "random_region" and not self.region_names:
            raise ConfigError(
                f"{step_label(self.name)}: 'scope' is 'random_region' but no region has a lead in "
                f"{', '.join(self.leads)}"
            )
        table = torch.zeros((max(len(members), 1), len(self.leads)), dtype=torch.bool)
        for row, idx in enumerate(members.values()):
            table[row, idx] = True
        self._region_table = table

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_cycles": list(self.n_cycles),
            "window": self.window,
            "pre_s": self.pre_s,
            "post_s": self.post_s,
            "scope": self.scope,
            "fill": self.fill,
            "fallback_s": self.fallback_s,
            "p": self.p,
        }

    def _cycle_spans(self, rpeaks: Tensor, length: int) -> tuple[Tensor, Tensor, Tensor]:
        """All candidate cycles: ``start``, ``end`` (B, C) and ``valid`` (B, C)."""
        if self.window == "rr":
            if rpeaks.shape[1] < 2:
                empty = rpeaks[:, :0]
                return empty, empty, empty.bool()
            start, end = rpeaks[:, :-1], rpeaks[:, 1:]
            return start, end, end >= 0
        valid = rpeaks >= 0
        pre, post = round(self.pre_s * self.fs), round(self.post_s * self.fs)
        prev = torch.cat([torch.full_like(rpeaks[:, :1], -1), rpeaks[:, :-1]], dim=1)
        nxt = torch.cat([rpeaks[:, 1:], torch.full_like(rpeaks[:, :1], -1)], dim=1)
        start = torch.maximum(rpeaks - pre, prev + 1).clamp(min=0)
        end = (rpeaks + post + 1).clamp(max=length)
        end = torch.where(nxt >= 0, torch.minimum(end, nxt), end)
        return start, end, valid

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: Draws) -> dict[str, Tensor]:
        batch = x.shape[0]
        n_cand = max(rpeaks.shape[1] - 1, 0) if self.window == "rr" else rpeaks.shape[1]
        u = uniform((batch, 3 + n_cand), generator, x.device)
        return {
            "count": randint(self.n_cycles[0], self.n_cycles[1], u[:, 0]),
            "region_u": u[:, 1],
            "fallback_u": u[:, 2],
            "keys": u[:, 3:],
        }

    reads_rpeaks = True

    def plan(
        self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True, need_peaks: bool = True
    ) -> tuple[Tensor, Info]:
        batch, n_leads, length = x.shape
        if self.scope != "all" and n_leads != len(self.leads):
            raise DataError(
                f"{step_label(self.name)}: x has {n_leads} leads but the step was built for "
                f"{len(self.leads)} ({', '.join(self.leads)}); pass `leads` to build_augmentation"
            )
        m_max = self.n_cycles[1]
        start, end, valid = self._cycle_spans(rpeaks, length)
        n_cand = start.shape[1]
        n_valid = valid.sum(dim=1)
        count = params["count"]
        # choose min(count, n_valid) distinct cycles: those with the smallest random keys among the valid ones
        keys = torch.where(valid, params["keys"], 2.0)
        order = torch.sort(keys, dim=1, stable=True).indices[:, :m_max]  # equal keys: the earlier cycle first
        if order.shape[1] < m_max:  # fewer candidates than the largest count
            pad = torch.zeros((batch, m_max - order.shape[1]), dtype=torch.long, device=x.device)
            order = torch.cat([order, pad], dim=1)
        chosen = torch.arange(m_max, device=x.device)[None, :] < torch.minimum(count, n_valid)[:, None]
        if n_cand:
            s = torch.where(chosen, torch.gather(start, 1, order), -1)
            e = torch.where(chosen, torch.gather(end, 1, order), -1)
        else:
            s, e = torch.full_like(order, -1), torch.full_like(order, -1)
        # fallback span where no cycle exists but a mask was asked for
        fallback = (n_valid == 0) & (count > 0)
        if m_max and bool(fallback.any()):
            span = min(max(round(self.fallback_s * self.fs), 0), length)
            f_start = torch.floor(params["fallback_u"].double() * (length - span + 1)).long().clamp(max=length - span)
            s[:, 0] = torch.where(fallback, f_start, s[:, 0])
            e[:, 0] = torch.where(fallback, f_start + span, e[:, 0])
        # which leads
        if self.scope == "all":
            region = None
            lead_mask = torch.ones((batch, n_leads), dtype=torch.bool, device=x.device)
        else:
            if self.scope == "random_region":
                region = randint(0, len(self.region_names) - 1, params["region_u"])
            else:
                region = torch.full((batch,), self.region_names.index(self.scope), dtype=torch.long, device=x.device)
            lead_mask = self._region_table.to(x.device)[region]
        if not detail:  # rendering needs the spans (in any order) and the leads
            return rpeaks, {"cycles": torch.stack([s, e], dim=-1), "lead_mask": lead_mask}
        index = torch.where(chosen, order, -1)
        # list the spans in time order (-1 padding last)
        order_t = torch.argsort(torch.where(s >= 0, s, length + 1), dim=1)
        s, e, index = (torch.gather(t, 1, order_t) for t in (s, e, index))
        if region is None:
            region = torch.full((batch,), -1, dtype=torch.long, device=x.device)
        info = {
            "cycles": torch.stack([s, e], dim=-1),
            "cycle_index": index,
            "fallback": fallback,
            "region": region,
            "region_names": list(self.region_names),
            "lead_mask": lead_mask,
        }
        return rpeaks, info

    @property
    def warp_kind(self) -> str | None:  # type: ignore[override]
        return "mask" if self.fill == "zero" else None

    def render(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info) -> Tensor:
        if self.fill == "zero":
            return super().render(x, rpeaks, params, info)
        time_mask = spans_to_mask(info["cycles"], x.shape[-1])[:, None, :]
        mask = time_mask & info["lead_mask"][:, :, None]
        return torch.where(mask, torch.median(x, dim=-1, keepdim=True).values, x)

    def warp_update(
        self, warp: Warp, x: Tensor, params: Mapping[str, Tensor], info: Info, applied: Tensor | None
    ) -> Warp:
        spans = info["cycles"]
        if applied is not None:
            spans = torch.where(applied[:, None, None], spans, torch.full_like(spans, -1))
        leads = info["lead_mask"][:, None, :].expand(-1, spans.shape[1], -1)
        return warp.with_spans(spans, leads)
