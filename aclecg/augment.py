"""Physio-AUG and the baseline ECG augmentations as batched, seedable torch operations.

Physio-AUG is the physiology-aware augmentation of ACL-ECG (Liu, Wu, Yuan, "ACL-ECG: Anatomy-Aware Contrastive
Learning for Multi-Lead Electrocardiograms", Sensors 26(3):1080, 2026, DOI 10.3390/s26031080). The paper names
three parts that keep the rhythm intact: random scale cropping, cardiac-cycle masking and temporal shifting. Their
exact parameters are not public; the defaults here are a reconstruction and are documented as such in
``docs/augmentations.md``. The preset applies crop -> cycle mask -> shift: the crop maps the R-peaks into its
output so the mask hits whole cycles of the cropped signal, and the (circular) shift comes last so its seam never
creates a false "cycle".

The baseline augmentations are those of contrastive ECG work: random resized crop + time-out (the "standard"
pipeline of the LCD/ELIC authors), Gaussian noise, amplitude scaling, baseline wander and lead dropout.

Conventions
-----------
* ``x`` is a float tensor ``(B, L, T)`` (batch, leads, samples) on any device; the output has the same shape,
  dtype and device.
* ``rpeaks`` is an integer tensor ``(B, K)`` of R-peak sample positions at the signal's rate, ``-1`` padded.
  Peaks are sorted per sample on entry; geometric steps (crop, shift) map them so later steps see where the
  beats are *now*.
* Every random parameter is drawn per sample with one vectorised call; there is no Python loop over samples.
* Randomness comes from ``generator``: a ``torch.Generator`` on ``x``'s device, or a CPU generator whose draws
  are made on the CPU and then moved to ``x``'s device (so a CPU generator gives the same augmentation on CPU
  and GPU). ``None`` uses torch's global RNG of ``x``'s device.

>>> import torch
>>> aug = build_augmentation("physio", fs=100)
>>> x, rp = make_synthetic_batch(4, fs=100, generator=torch.Generator().manual_seed(0))
>>> y, info = aug.forward_with_info(x, rp, generator=torch.Generator().manual_seed(1))
>>> y.shape, sorted(info)
(torch.Size([4, 12, 1000]), ['0:random_scale_crop', '1:cardiac_cycle_mask', '2:temporal_shift'])
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Mapping, Sequence

import torch
from torch import Tensor

from aclecg import native
from aclecg.errors import ConfigError, DataError
from aclecg.leads import LEADS, RegionMap, canonical_lead, default_region_map

__all__ = [
    "AUGMENTATIONS", "PRESETS", "Augmentation", "Compose", "RandomScaleCrop", "CardiacCycleMask", "TemporalShift",
    "TimeOut", "GaussianNoise", "AmplitudeScale", "BaselineWander", "LeadDropout", "build_augmentation",
    "Warp", "render_warp", "sanitize_rpeaks", "median_rr", "make_synthetic_batch",
]

Info = dict[str, Any]

#: Default RR interval (seconds) used when a record has too few R-peaks to measure one (75 bpm).
DEFAULT_RR_S = 0.8


# ----------------------------------------------------------------------------------------------------------------
# random draws, input checks and R-peak helpers
# ----------------------------------------------------------------------------------------------------------------

def _uniform(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``U[0, 1)`` float32 draws on ``device``; see the module docstring for the generator rule."""
    if generator is None:
        return torch.rand(tuple(shape), device=device)
    gdev = torch.device(generator.device)
    if gdev.type == device.type and (gdev.index or 0) == (device.index or 0):
        return torch.rand(tuple(shape), generator=generator, device=device)
    if gdev.type == "cpu":
        return torch.rand(tuple(shape), generator=generator).to(device)
    raise ConfigError(f"generator is on {gdev} but the signal is on {device}; use a generator on {device} or the CPU")


def _normal(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal float32 draws, same generator rule as :func:`_uniform`."""
    if generator is None:
        return torch.randn(tuple(shape), device=device)
    gdev = torch.device(generator.device)
    if gdev.type == device.type and (gdev.index or 0) == (device.index or 0):
        return torch.randn(tuple(shape), generator=generator, device=device)
    if gdev.type == "cpu":
        return torch.randn(tuple(shape), generator=generator).to(device)
    raise ConfigError(f"generator is on {gdev} but the signal is on {device}; use a generator on {device} or the CPU")


def _randint(low: int, high: int, u: Tensor) -> Tensor:
    """Integers uniform in ``[low, high]`` (inclusive) from uniform draws ``u``."""
    return (torch.floor(u.double() * (high - low + 1)) + low).clamp_(max=high).long()


def _check_signal(x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise DataError(f"x must be a torch.Tensor of shape (B, L, T), got {type(x).__name__}")
    if x.ndim != 3:
        raise DataError(f"x must have shape (B, L, T), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise DataError(f"x must be a floating-point tensor, got {x.dtype}")
    if x.shape[-1] < 2:
        raise DataError(f"x must have at least 2 samples per lead, got T={x.shape[-1]}")


def sanitize_rpeaks(rpeaks: Tensor | None, x: Tensor) -> Tensor:
    """Return ``rpeaks`` as a ``(B, K)`` int64 tensor on ``x``'s device, valid peaks sorted first, ``-1`` after.

    ``None`` gives ``K = 0`` (no peaks). Negative entries are padding. Raises ``DataError`` when the shape does not
    match ``x`` or a peak lies at or beyond the signal length.
    """
    batch, _, length = x.shape
    if rpeaks is None:
        return torch.full((batch, 0), -1, dtype=torch.long, device=x.device)
    if not isinstance(rpeaks, Tensor):
        rpeaks = torch.as_tensor(rpeaks)
    if rpeaks.ndim != 2 or rpeaks.shape[0] != batch:
        raise DataError(f"rpeaks must have shape (B={batch}, K), got {tuple(rpeaks.shape)}")
    if rpeaks.is_floating_point() or rpeaks.dtype == torch.bool:
        raise DataError(f"rpeaks must be an integer tensor (sample positions), got {rpeaks.dtype}")
    rpeaks = rpeaks.to(device=x.device, dtype=torch.long)
    if rpeaks.numel() == 0:
        return rpeaks
    if int(rpeaks.max()) >= length:
        raise DataError(f"rpeaks holds a position {int(rpeaks.max())} beyond the signal length T={length}")
    key = torch.where(rpeaks >= 0, rpeaks, length)
    if bool((key[:, 1:] >= key[:, :-1]).all()):  # already sorted with the padding last (prepared data): no sort
        return torch.where(key < length, key, -1)
    return _compact(rpeaks.clamp(min=-1), length)


def _compact(peaks: Tensor, length: int) -> Tensor:
    """Sort each row ascending with invalid (negative) entries moved to the end as ``-1``."""
    if peaks.shape[1] == 0:
        return peaks
    key = torch.sort(torch.where(peaks >= 0, peaks, length + 1), dim=1).values
    return torch.where(key <= length, key, -1)


def median_rr(rpeaks: Tensor, default: float) -> Tensor:
    """Per-sample median RR interval in samples (lower median), ``default`` where fewer than two peaks.

    ``rpeaks`` must be compact (valid peaks sorted first, as :func:`sanitize_rpeaks` returns them).
    """
    batch = rpeaks.shape[0]
    if rpeaks.shape[1] < 2:
        return torch.full((batch,), float(default), device=rpeaks.device)
    valid = rpeaks[:, 1:] >= 0
    diffs = torch.where(valid, rpeaks[:, 1:] - rpeaks[:, :-1], torch.iinfo(torch.long).max)
    n = valid.sum(dim=1, keepdim=True)
    med = torch.gather(torch.sort(diffs, dim=1).values, 1, ((n - 1) // 2).clamp_(min=0)).squeeze(1)
    return torch.where(n.squeeze(1) > 0, med.float(), float(default))


def _time_index(length: int, device: torch.device) -> Tensor:
    return torch.arange(length, device=device)


def _zero_where(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` with zeros where the (broadcastable) boolean ``mask`` is set."""
    return torch.where(mask, torch.zeros((), dtype=x.dtype, device=x.device), x)


def _spans_to_mask(spans: Tensor, length: int) -> Tensor:
    """``(B, M, 2)`` ``[start, end)`` spans (``-1`` padded) to a ``(B, T)`` boolean time mask."""
    t = _time_index(length, spans.device)
    inside = (t >= spans[..., 0:1]) & (t < spans[..., 1:2])
    return inside.any(dim=1)


# ----------------------------------------------------------------------------------------------------------------
# parameter validation
# ----------------------------------------------------------------------------------------------------------------

def _where(step: str) -> str:
    return f"augmentation {step!r}"


def _check_number(step: str, key: str, value: Any, lo: float, hi: float, integer: bool = False) -> float:
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer and float(value) != int(value):
        ok = False
    if not ok or not lo <= value <= hi:
        raise ConfigError(f"{_where(step)}: {key!r} must be {kind} in [{lo}, {hi}], got {value!r}")
    return int(value) if integer else float(value)


def _check_range(step: str, key: str, value: Any, lo: float, hi: float, integer: bool = False) -> tuple[float, float]:
    """A ``[low, high]`` pair inside ``[lo, hi]`` with ``low <= high``; a single number means ``[v, v]``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{_where(step)}: {key!r} must be a [low, high] pair inside [{lo}, {hi}], got {value!r}")
    low = _check_number(step, key, value[0], lo, hi, integer)
    high = _check_number(step, key, value[1], lo, hi, integer)
    if low > high:
        raise ConfigError(f"{_where(step)}: {key!r} must have low <= high, got {list(value)!r}")
    return (low, high)


def _check_choice(step: str, key: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"{_where(step)}: {key!r} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(value)


def _check_bool(step: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{_where(step)}: {key!r} must be true or false, got {value!r}")
    return value


# ----------------------------------------------------------------------------------------------------------------
# base classes
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Warp:
    """The time geometry of a run of steps, per sample: **crop -> span masks -> shift**, rendered in one pass.

    Output sample ``t`` reads the crop output at ``s = src(t)``: ``(t - shift) mod T`` (``mode="circular"``),
    ``t - shift`` with 0 outside ``[0, T)`` (``"zero"``) or ``clamp(t - shift, 0, T - 1)`` (``"edge"``). The crop
    output ``s`` reads the input at ``start + s * step`` with linear interpolation, and is 0 in lead ``l`` when ``s``
    lies in a span ``[a, e)`` of ``spans`` (``a < 0``: unused) whose ``span_leads[b, m, l]`` is set.

    Random scale crop, time-out, zero-fill cycle masking and temporal shift each describe themselves as a warp
    (:meth:`Augmentation.warp_update`); :class:`Compose` folds consecutive ones in that order into one warp, and
    :func:`render_warp` draws it. ``has_crop``/``has_shift`` say whether a crop/shift is part of the warp (when
    neither is, rendering only masks).
    """

    start: Tensor       # (B,) float64, input sample of crop output 0
    step: Tensor        # (B,) float64, input samples per crop output sample (<= 1 for a crop)
    shift: Tensor       # (B,) int64, delay in samples
    mode: str           # "circular", "zero" or "edge"
    spans: Tensor       # (B, M, 2) int64 [start, end) in crop-output samples, -1 padded
    span_leads: Tensor  # (B, M, L) bool, the leads each span applies to
    has_crop: bool = False
    has_shift: bool = False

    @classmethod
    def identity(cls, x: Tensor) -> "Warp":
        """The warp that leaves ``x`` unchanged."""
        batch, n_leads, _ = x.shape
        return cls(start=torch.zeros(batch, dtype=torch.float64, device=x.device),
                   step=torch.ones(batch, dtype=torch.float64, device=x.device),
                   shift=torch.zeros(batch, dtype=torch.long, device=x.device), mode="circular",
                   spans=torch.full((batch, 0, 2), -1, dtype=torch.long, device=x.device),
                   span_leads=torch.zeros((batch, 0, n_leads), dtype=torch.bool, device=x.device))

    def rows(self, index: slice) -> "Warp":
        """The warp of samples ``index`` (a slice of the batch)."""
        return replace(self, start=self.start[index], step=self.step[index], shift=self.shift[index],
                       spans=self.spans[index], span_leads=self.span_leads[index])

    def with_spans(self, spans: Tensor, leads: Tensor) -> "Warp":
        """This warp with more masked spans: ``spans`` (B, M, 2) in crop-output samples, ``leads`` (B, M, L)."""
        return replace(self, spans=torch.cat([self.spans, spans.long()], dim=1),
                       span_leads=torch.cat([self.span_leads, leads.bool()], dim=1))


#: the order in which warp steps fold into one warp
_WARP_ORDER = {"crop": 1, "mask": 2, "shift": 3}


def render_warp(x: Tensor, warp: Warp) -> Tensor:
    """Draw ``warp`` (see :class:`Warp`) on ``x`` (B, L, T): the C kernel of :mod:`aclecg.native` for CPU float32
    batches when it is available, else the torch code below (any device and dtype; the specification of the
    kernel, which ``tests/test_native.py`` checks it against)."""
    y = native.timewarp(x, warp.start, warp.step, warp.shift, warp.mode, warp.spans, warp.span_leads)
    return y if y is not None else _render_warp_torch(x, warp)


#: on the CPU the torch code renders this many bytes of signal at a time, so that its temporaries stay in cache and
#: are reused instead of being allocated (and page-faulted) at full batch size
_CPU_BLOCK_BYTES = 2 << 20


def _render_warp_torch(x: Tensor, warp: Warp) -> Tensor:
    batch, n_leads, length = x.shape
    if x.device.type != "cpu" or x.requires_grad:
        return _render_warp_block(x, warp, None)
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    block = max(1, _CPU_BLOCK_BYTES // max(1, n_leads * length * x.element_size()))
    for b0 in range(0, batch, block):  # blocks of samples (43 of 12 x 1000), each one vectorised
        rows = slice(b0, b0 + block)
        _render_warp_block(x[rows], warp.rows(rows), y[rows])
    return y


def _render_warp_block(x: Tensor, warp: Warp, out: Tensor | None) -> Tensor:
    """:func:`render_warp`'s torch code on ``x``; writes into ``out`` when given (contiguous, no gradients)."""
    _, n_leads, length = x.shape
    src = _time_index(length, x.device)[None, :] - warp.shift[:, None]
    outside = None
    if warp.mode == "circular":
        src = torch.remainder(src, length)
    else:
        if warp.mode == "zero":
            outside = (src < 0) | (src >= length)
        src = src.clamp(0, length - 1)
    if warp.has_crop or warp.has_shift:
        compute = torch.promote_types(x.dtype, torch.float32)
        pos = (warp.start[:, None] + src.double() * warp.step[:, None]).clamp(0, length - 1)
        left = torch.floor(pos).clamp(max=length - 2)
        w1 = (pos - left).to(compute)[:, None, :]
        left = left.long()[:, None, :]
        a = torch.gather(x, 2, left.expand(-1, n_leads, -1)).to(compute)
        b = torch.gather(x, 2, (left + 1).expand(-1, n_leads, -1)).to(compute)
        y = (torch.lerp(a, b, w1) if x.requires_grad else a.lerp_(b, w1)).to(x.dtype)
    else:
        y = x
    masked = None if outside is None else outside[:, None, :]
    if warp.spans.shape[1]:
        lo, hi = warp.spans[..., 0:1], warp.spans[..., 1:2]
        inside = (lo >= 0) & (src[:, None, :] >= lo) & (src[:, None, :] < hi)  # (B, M, T)
        if bool(warp.span_leads.all()):
            hit = inside.any(dim=1)[:, None, :]
        else:
            hit = (inside[:, :, None, :] & warp.span_leads[:, :, :, None]).any(dim=1)  # (B, L, T)
        masked = hit if masked is None else masked | hit
    if masked is not None:
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        if out is not None:
            return torch.where(masked, zero, y, out=out)
        if y is x or y.requires_grad:
            return torch.where(masked, zero, y)
        return torch.where(masked, zero, y, out=y)
    if out is not None:
        return out.copy_(y)
    return y.clone() if y is x else y


class Augmentation:
    """Base class: a callable ``aug(x, rpeaks=None, generator=None) -> Tensor``.

    A step is split in four parts so that pipelines can be fused and tested against a reference:

    * :meth:`sample_params` draws every random number (vectorised over the batch);
    * :meth:`plan` turns parameters into the R-peaks after the step and the ``info`` dict (cheap, never reads the
      signal's values);
    * :meth:`render` computes the augmented signal;
    * steps that only move or blank samples (crop, cycle masks with zero fill, time-out, shift) set
      :attr:`warp_kind` and describe themselves with :meth:`warp_update`; :class:`Compose` then renders a run of
      them (crop -> masks -> shift) in one pass with :func:`render_warp`.

    ``p`` is the per-sample probability that the step is applied; samples where it is not pass through unchanged
    (``info["applied"]`` says which).
    """

    name: ClassVar[str] = "augmentation"
    #: "crop", "mask" or "shift" for steps rendered as a :class:`Warp`; ``None`` for the others
    warp_kind: str | None = None
    #: whether the step reads the R-peaks to draw its parameters or render (not just to move them)
    reads_rpeaks: bool = False
    #: parameter name -> one-line description with its accepted range (used by docs, errors and the app)
    PARAMS: ClassVar[dict[str, str]] = {}

    def __init__(self, p: float = 1.0, fs: float = 100.0) -> None:
        self.p = _check_number(self.name, "p", p, 0.0, 1.0)
        self.fs = _check_number(self.name, "fs", fs, 1.0, 100_000.0)

    # -- to be implemented -------------------------------------------------------------------------------------
    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        """Draw this step's per-sample random parameters (tensors on ``x``'s device; reads only its shape)."""
        return {}

    def plan(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True,
             need_peaks: bool = True) -> tuple[Tensor, Info]:
        """R-peaks after the step and the info dict (reads only ``x``'s shape and device).

        ``detail=False`` (augmenting without returning info, e.g. in training) lets a step put only what rendering
        needs in ``info``; ``need_peaks=False`` lets it return the R-peaks unmoved, when no later step reads them.
        """
        return rpeaks, dict(params)

    def render(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info) -> Tensor:
        """The augmented signal for fixed parameters (``info`` from :meth:`plan`)."""
        if self.warp_kind is None:
            raise NotImplementedError(f"{type(self).__name__} must implement render or warp_update")
        return self._render_as_warp(x, params, info, None)

    def _render_as_warp(self, x: Tensor, params: Mapping[str, Tensor], info: Info, applied: Tensor | None) -> Tensor:
        return render_warp(x, self.warp_update(Warp.identity(x), x, params, info, applied))

    def warp_update(self, warp: Warp, x: Tensor, params: Mapping[str, Tensor], info: Info,
                    applied: Tensor | None) -> Warp:
        """``warp`` followed by this step (only for steps with a :attr:`warp_kind`); samples where ``applied`` is
        False keep ``warp`` unchanged (``None``: applied everywhere)."""
        raise NotImplementedError(f"{type(self).__name__} is not a warp step")

    def config(self) -> dict[str, Any]:
        """The plain-data spec that rebuilds this step (``{"name": ..., **params}``)."""
        return {"name": self.name, "p": self.p}

    # -- shared machinery ----------------------------------------------------------------------------------------
    def apply(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Info]:
        """Apply with fixed ``params`` (ignores ``p``); return ``(y, rpeaks_after, info)``."""
        peaks, info = self.plan(x, rpeaks, params)
        return self.render(x, rpeaks, params, info), peaks, info

    def prepare(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None, detail: bool = True,
                need_peaks: bool = True) -> tuple[dict[str, Tensor], Tensor, Tensor, Info]:
        """Draw parameters and the ``p`` decision, plan; return ``(params, applied, rpeaks_after, info)``."""
        params = self.sample_params(x, rpeaks, generator)
        if self.p < 1.0:
            applied = _uniform((x.shape[0],), generator, x.device) < self.p
        else:
            applied = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        peaks, info = self.plan(x, rpeaks, params, detail=detail, need_peaks=need_peaks or self.p < 1.0)
        if self.p < 1.0:
            peaks = torch.where(applied[:, None], peaks, rpeaks)
        info["applied"] = applied
        info["rpeaks"] = peaks
        return params, applied, peaks, info

    def render_applied(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info,
                       applied: Tensor) -> Tensor:
        """:meth:`render`, passing through the samples where the step is not applied."""
        if self.warp_kind is not None:
            return self._render_as_warp(x, params, info, applied)
        y = self.render(x, rpeaks, params, info)
        return y if self.p >= 1.0 else torch.where(applied[:, None, None], y, x)

    def step(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None,
             detail: bool = True) -> tuple[Tensor, Tensor, Info]:
        """One step on sanitised inputs: draw, plan, render, honouring ``p``. With ``detail=False`` the info holds
        only what rendering needed and the returned R-peaks may be stale (see :meth:`plan`)."""
        params, applied, peaks, info = self.prepare(x, rpeaks, generator, detail=detail, need_peaks=detail)
        return self.render_applied(x, rpeaks, params, info, applied), peaks, info

    def forward_with_info(self, x: Tensor, rpeaks: Tensor | None = None,
                          generator: torch.Generator | None = None) -> tuple[Tensor, Info]:
        """Augment and describe what was done (a dict of per-sample tensors, see each class)."""
        _check_signal(x)
        peaks = sanitize_rpeaks(rpeaks, x)
        y, _, info = self.step(x, peaks, generator)
        return y, info

    def __call__(self, x: Tensor, rpeaks: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Augment; the same output as :meth:`forward_with_info` for the same generator state, without building
        the info (the fast path used in training)."""
        _check_signal(x)
        peaks = sanitize_rpeaks(rpeaks, x)
        return self.step(x, peaks, generator, detail=False)[0]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Compose(Augmentation):
    """Apply steps in order; R-peaks are carried through every geometric step.

    ``forward_with_info`` returns ``info`` keyed ``"<i>:<step name>"`` (in order), each value being that step's
    info dict. Every step's dict has ``applied`` (B,) and ``rpeaks`` (B, K) after the step.

    With ``fuse=True`` (default) consecutive warp steps in the order crop -> masks -> shift (Physio-AUG, and the
    standard crop + time-out) are folded into one :class:`Warp` and rendered in one pass; a step out of that order
    starts a new pass. The result equals rendering step by step (``fuse=False``): masks and shifts move whole
    samples, so only the crop interpolates, once either way.
    """

    name = "compose"

    def __init__(self, steps: Sequence[Augmentation], fs: float = 100.0, fuse: bool = True) -> None:
        super().__init__(p=1.0, fs=fs)
        self.steps = list(steps)
        self.fuse = fuse

    def step(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None,
             detail: bool = True) -> tuple[Tensor, Tensor, Info]:
        if not detail and self.fuse:
            y = self._physio_native(x, rpeaks, generator)
            if y is not None:
                return y, rpeaks, {}
        info: Info = {}
        pending: list[tuple[Augmentation, dict[str, Tensor], Info, Tensor]] = []
        stage = 0  # _WARP_ORDER of the last pending step
        for i, part in enumerate(self.steps):
            need_peaks = detail or any(later.reads_rpeaks for later in self.steps[i + 1:])
            params, applied, peaks, part_info = part.prepare(x, rpeaks, generator, detail=detail,
                                                             need_peaks=need_peaks)
            info[f"{i}:{part.name}"] = part_info
            kind = part.warp_kind if self.fuse else None
            if kind is None:
                x = self._flush(x, pending)
                pending, stage = [], 0
                x = part.render_applied(x, rpeaks, params, part_info, applied)
            else:
                order = _WARP_ORDER[kind]
                if pending and not (order > stage or (kind == "mask" and stage == order)):
                    x = self._flush(x, pending)
                    pending = []
                pending.append((part, params, part_info, applied))
                stage = order
            rpeaks = peaks
        return self._flush(x, pending), rpeaks, info

    def _physio_native(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None) -> Tensor | None:
        """Physio-AUG in one C call (:func:`aclecg.native.physio`), when the pipeline is exactly random scale crop ->
        cardiac-cycle mask with zero fill -> temporal shift, each with ``p = 1``, and the kernel takes ``x``; else
        ``None``, before drawing anything. It draws what the three steps' ``sample_params`` draw, in the same order,
        and derives the same parameters from them in C, so the views equal the torch planning's (tested)."""
        if len(self.steps) != 3 or not native.enabled():
            return None
        crop, mask, shift = self.steps
        if not (type(crop) is RandomScaleCrop and type(mask) is CardiacCycleMask and type(shift) is TemporalShift):
            return None
        batch, n_leads, length = x.shape
        if (min(crop.p, mask.p, shift.p) < 1.0 or mask.fill != "zero"
                or not native.accepts(x, rpeaks, mask.n_cycles[1] + 1)
                or (mask.scope != "all" and n_leads != len(mask.leads))):  # (the torch code reports a lead mismatch)
            return None
        n_cand = max(rpeaks.shape[1] - 1, 0) if mask.window == "rr" else rpeaks.shape[1]
        u_crop = _uniform((batch, 2), generator, x.device)
        u_mask = _uniform((batch, 3 + n_cand), generator, x.device)
        u_shift = _uniform((batch,), generator, x.device)
        scope = {"all": -2, "random_region": -1}.get(mask.scope)
        y = native.physio(
            x, rpeaks, u_crop, u_mask, u_shift, crop_scale=crop.scale, n_cycles=mask.n_cycles, window=mask.window,
            pre=round(mask.pre_s * mask.fs), post=round(mask.post_s * mask.fs),
            fallback_len=min(max(round(mask.fallback_s * mask.fs), 0), length),
            scope=mask.region_names.index(mask.scope) if scope is None else scope, region_table=mask._region_table,
            max_shift=-1.0 if shift.max_shift == "rr" else float(shift.max_shift) * shift.fs,
            rr_default=float(torch.tensor(1.0 * shift.fs, dtype=torch.float32)), mode=shift.mode)
        if y is None:
            raise RuntimeError("aclecg.native.physio refused a batch that native.accepts took")
        return y

    @staticmethod
    def _flush(x: Tensor, pending: Sequence[tuple[Augmentation, dict[str, Tensor], Info, Tensor]]) -> Tensor:
        """Render the pending run of warp steps onto ``x`` in one pass."""
        if not pending:
            return x
        warp = Warp.identity(x)
        for part, params, part_info, applied in pending:
            warp = part.warp_update(warp, x, params, part_info, None if part.p >= 1.0 else applied)
        return render_warp(x, warp)

    def config(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [part.config() for part in self.steps]

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.steps)) + "])"


# ----------------------------------------------------------------------------------------------------------------
# Physio-AUG parts
# ----------------------------------------------------------------------------------------------------------------

class RandomScaleCrop(Augmentation):
    """Random scale cropping / random resized crop: crop a window of ``fraction * T`` samples, resample to ``T``.

    The window length is ``w = round(f * T)`` with ``f ~ U(scale)``, its start ``s`` uniform over the integer
    positions that fit. Output sample ``j`` reads the input at ``s + j * (w - 1) / (T - 1)`` with linear
    interpolation (end points included), so ``f = 1`` is the identity. R-peaks inside the window are mapped to
    ``floor((r - s) * (T - 1) / (w - 1) + 1/2)`` (exact integer arithmetic: halves round up); the others are
    dropped.

    info: ``start``, ``end`` (B,) long, ``[start, end)`` in input samples; ``fraction`` (B,) float (``w / T``).
    This is the ACL-ECG "random scale cropping" and the LCD/ELIC "random resized crop" (scale 0.5-1.0).
    """

    name = "random_scale_crop"
    PARAMS = {"scale": "[low, high] fraction of the length kept, inside [0.05, 1.0]; default [0.5, 1.0]",
              "p": "probability per sample, [0, 1]; default 1"}

    def __init__(self, scale: Sequence[float] = (0.5, 1.0), p: float = 1.0, fs: float = 100.0) -> None:
        super().__init__(p, fs)
        self.scale = _check_range(self.name, "scale", scale, 0.05, 1.0)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "scale": list(self.scale), "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        batch, _, length = x.shape
        u = _uniform((batch, 2), generator, x.device).double()  # float64 arithmetic: the C fast path repeats it
        lo, hi = self.scale
        width = torch.round((u[:, 0] * (hi - lo) + lo) * length).long().clamp_(2, length)
        start = torch.minimum(torch.floor(u[:, 1] * (length - width + 1)).long(), length - width)
        return {"start": start, "width": width}

    def plan(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True,
             need_peaks: bool = True) -> tuple[Tensor, Info]:
        length = x.shape[-1]
        start, width = params["start"], params["width"]
        info = {"start": start, "end": start + width, "fraction": width.float() / length} if detail else {}
        if not need_peaks:
            return rpeaks, info
        inside = (rpeaks >= start[:, None]) & (rpeaks < (start + width)[:, None])
        span = 2 * (width[:, None] - 1)  # round((r - s) / step) with step = (w - 1) / (T - 1), in integers
        mapped = torch.div((rpeaks - start[:, None]) * (2 * (length - 1)) + span // 2, span, rounding_mode="floor")
        return _compact(torch.where(inside, mapped.clamp_(0, length - 1), -1), length), info

    warp_kind = "crop"

    def warp_update(self, warp: Warp, x: Tensor, params: Mapping[str, Tensor], info: Info,
                    applied: Tensor | None) -> Warp:
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
    PARAMS = {"max_shift": "'rr' (median RR of the sample, 1 s without peaks) or seconds in [0, 10]; default 'rr'",
              "mode": "'circular', 'zero' or 'edge'; default 'circular'",
              "p": "probability per sample, [0, 1]; default 1"}
    MODES = ("circular", "zero", "edge")

    def __init__(self, max_shift: float | str = "rr", mode: str = "circular", p: float = 1.0,
                 fs: float = 100.0) -> None:
        super().__init__(p, fs)
        self.max_shift = max_shift if max_shift == "rr" else _check_number(self.name, "max_shift", max_shift, 0.0, 10.0)
        self.mode = _check_choice(self.name, "mode", mode, self.MODES)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "max_shift": self.max_shift, "mode": self.mode, "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        batch, _, length = x.shape
        if self.max_shift == "rr":
            limit = median_rr(rpeaks, default=1.0 * self.fs).double()
        else:
            limit = torch.full((batch,), float(self.max_shift) * self.fs, dtype=torch.float64, device=x.device)
        limit = torch.floor(limit.clamp_(0, length - 1))
        u = _uniform((batch,), generator, x.device)
        shift = torch.minimum(torch.floor(u.double() * (2 * limit + 1)) - limit, limit)  # uniform in [-limit, limit]
        return {"shift": shift.long(), "max_shift": limit.float()}

    @property
    def reads_rpeaks(self) -> bool:  # type: ignore[override]
        return self.max_shift == "rr"

    def plan(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True,
             need_peaks: bool = True) -> tuple[Tensor, Info]:
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
        return _compact(torch.where(keep, moved, -1), length), info

    warp_kind = "shift"

    def warp_update(self, warp: Warp, x: Tensor, params: Mapping[str, Tensor], info: Info,
                    applied: Tensor | None) -> Warp:
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
    PARAMS = {"n_cycles": "[low, high] whole cycles per sample, integers inside [0, 16]; default [1, 2]",
              "window": "'rr' (R-peak to next R-peak) or 'pqrst' (P-onset to T-end around each R); default 'rr'",
              "pre_s": "seconds before R for 'pqrst', [0, 1]; default 0.25",
              "post_s": "seconds after R for 'pqrst', [0, 1.5]; default 0.45",
              "scope": "'all', 'random_region' or a region name; default 'all'",
              "fill": "'zero' or 'median'; default 'zero'",
              "fallback_s": "span masked when a sample has no cycle, seconds in [0, 5]; default 0.8",
              "p": "probability per sample, [0, 1]; default 1"}
    WINDOWS = ("rr", "pqrst")
    FILLS = ("zero", "median")

    def __init__(self, n_cycles: Sequence[int] | int = (1, 2), window: str = "rr", pre_s: float = 0.25,
                 post_s: float = 0.45, scope: str = "all", fill: str = "zero", fallback_s: float = DEFAULT_RR_S,
                 p: float = 1.0, fs: float = 100.0, leads: Sequence[str] = LEADS,
                 region_map: RegionMap | None = None) -> None:
        super().__init__(p, fs)
        low, high = _check_range(self.name, "n_cycles", n_cycles, 0, 16, integer=True)
        self.n_cycles = (int(low), int(high))
        self.window = _check_choice(self.name, "window", window, self.WINDOWS)
        self.pre_s = _check_number(self.name, "pre_s", pre_s, 0.0, 1.0)
        self.post_s = _check_number(self.name, "post_s", post_s, 0.0, 1.5)
        self.fill = _check_choice(self.name, "fill", fill, self.FILLS)
        self.fallback_s = _check_number(self.name, "fallback_s", fallback_s, 0.0, 5.0)
        try:
            self.leads = tuple(canonical_lead(lead) for lead in leads)
        except ValueError as exc:
            raise ConfigError(f"{_where(self.name)}: leads: {exc}") from None
        region_map = region_map or default_region_map()
        members = region_map.indices(self.leads)
        self.region_names = list(members)
        scopes = ["all", "random_region", *self.region_names]
        self.scope = _check_choice(self.name, "scope", scope, scopes)
        if self.scope == "random_region" and not self.region_names:
            raise ConfigError(f"{_where(self.name)}: 'scope' is 'random_region' but no region has a lead in "
                              f"{', '.join(self.leads)}")
        table = torch.zeros((max(len(members), 1), len(self.leads)), dtype=torch.bool)
        for row, idx in enumerate(members.values()):
            table[row, idx] = True
        self._region_table = table

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "n_cycles": list(self.n_cycles), "window": self.window, "pre_s": self.pre_s,
                "post_s": self.post_s, "scope": self.scope, "fill": self.fill, "fallback_s": self.fallback_s,
                "p": self.p}

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

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        batch = x.shape[0]
        n_cand = max(rpeaks.shape[1] - 1, 0) if self.window == "rr" else rpeaks.shape[1]
        u = _uniform((batch, 3 + n_cand), generator, x.device)
        return {"count": _randint(self.n_cycles[0], self.n_cycles[1], u[:, 0]),
                "region_u": u[:, 1], "fallback_u": u[:, 2], "keys": u[:, 3:]}

    reads_rpeaks = True

    def plan(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True,
             need_peaks: bool = True) -> tuple[Tensor, Info]:
        batch, n_leads, length = x.shape
        if self.scope != "all" and n_leads != len(self.leads):
            raise DataError(f"{_where(self.name)}: x has {n_leads} leads but the step was built for "
                            f"{len(self.leads)} ({', '.join(self.leads)}); pass `leads` to build_augmentation")
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
                region = _randint(0, len(self.region_names) - 1, params["region_u"])
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
        info = {"cycles": torch.stack([s, e], dim=-1), "cycle_index": index, "fallback": fallback, "region": region,
                "region_names": list(self.region_names), "lead_mask": lead_mask}
        return rpeaks, info

    @property
    def warp_kind(self) -> str | None:  # type: ignore[override]
        return "mask" if self.fill == "zero" else None

    def render(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info) -> Tensor:
        if self.fill == "zero":
            return super().render(x, rpeaks, params, info)
        time_mask = _spans_to_mask(info["cycles"], x.shape[-1])[:, None, :]
        mask = time_mask & info["lead_mask"][:, :, None]
        return torch.where(mask, torch.median(x, dim=-1, keepdim=True).values, x)

    def warp_update(self, warp: Warp, x: Tensor, params: Mapping[str, Tensor], info: Info,
                    applied: Tensor | None) -> Warp:
        spans = info["cycles"]
        if applied is not None:
            spans = torch.where(applied[:, None, None], spans, torch.full_like(spans, -1))
        leads = info["lead_mask"][:, None, :].expand(-1, spans.shape[1], -1)
        return warp.with_spans(spans, leads)


# ----------------------------------------------------------------------------------------------------------------
# baseline augmentations
# ----------------------------------------------------------------------------------------------------------------

class TimeOut(Augmentation):
    """Time-out (LCD/ELIC "standard" pipeline): zero a random span of ``f * T`` samples in every lead.

    ``f ~ U(fraction)`` (default [0, 0.5]); the span's start is uniform over the positions that fit.
    info: ``start``, ``end`` (B,) long, the zeroed ``[start, end)``.
    """

    name = "time_out"
    PARAMS = {"fraction": "[low, high] fraction of the length zeroed, inside [0, 1]; default [0, 0.5]",
              "p": "probability per sample, [0, 1]; default 1"}

    def __init__(self, fraction: Sequence[float] = (0.0, 0.5), p: float = 1.0, fs: float = 100.0) -> None:
        super().__init__(p, fs)
        self.fraction = _check_range(self.name, "fraction", fraction, 0.0, 1.0)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "fraction": list(self.fraction), "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        batch, _, length = x.shape
        u = _uniform((batch, 2), generator, x.device).double()
        lo, hi = self.fraction
        width = torch.round((u[:, 0] * (hi - lo) + lo) * length).long().clamp_(0, length)
        start = torch.minimum(torch.floor(u[:, 1] * (length - width + 1)).long(), length - width)
        return {"start": start, "end": start + width}

    warp_kind = "mask"

    def warp_update(self, warp: Warp, x: Tensor, params: Mapping[str, Tensor], info: Info,
                    applied: Tensor | None) -> Warp:
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
    PARAMS = {"std": "[low, high] noise standard deviation inside [0, 5]; default [0.01, 0.1]",
              "p": "probability per sample, [0, 1]; default 1"}

    def __init__(self, std: Sequence[float] = (0.01, 0.1), p: float = 1.0, fs: float = 100.0) -> None:
        super().__init__(p, fs)
        self.std = _check_range(self.name, "std", std, 0.0, 5.0)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "std": list(self.std), "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        lo, hi = self.std
        sigma = lo + (hi - lo) * _uniform((x.shape[0],), generator, x.device)
        return {"std": sigma, "noise": _normal(x.shape, generator, x.device)}

    def plan(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True,
             need_peaks: bool = True) -> tuple[Tensor, Info]:
        return rpeaks, {"std": params["std"]}

    def render(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info) -> Tensor:
        return x + (params["std"][:, None, None] * params["noise"]).to(x.dtype)


class AmplitudeScale(Augmentation):
    """Multiply by a gain ``g ~ U(scale)``, one per sample or (``per_lead``) one per sample and lead.

    info: ``scale`` (B, L) float (equal across leads unless ``per_lead``).
    """

    name = "amplitude_scale"
    PARAMS = {"scale": "[low, high] gain inside [0, 10]; default [0.8, 1.2]",
              "per_lead": "true to draw a gain per lead; default false",
              "p": "probability per sample, [0, 1]; default 1"}

    def __init__(self, scale: Sequence[float] = (0.8, 1.2), per_lead: bool = False, p: float = 1.0,
                 fs: float = 100.0) -> None:
        super().__init__(p, fs)
        self.scale = _check_range(self.name, "scale", scale, 0.0, 10.0)
        self.per_lead = _check_bool(self.name, "per_lead", per_lead)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "scale": list(self.scale), "per_lead": self.per_lead, "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        batch, n_leads, _ = x.shape
        lo, hi = self.scale
        u = _uniform((batch, n_leads if self.per_lead else 1), generator, x.device)
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
    PARAMS = {"amplitude": "[low, high] amplitude per component inside [0, 5]; default [0, 0.2]",
              "freq_hz": "[low, high] frequency in Hz inside [0, 2]; default [0.05, 0.5]",
              "n_components": "integer in [1, 8]; default 2",
              "p": "probability per sample, [0, 1]; default 1"}

    def __init__(self, amplitude: Sequence[float] = (0.0, 0.2), freq_hz: Sequence[float] = (0.05, 0.5),
                 n_components: int = 2, p: float = 1.0, fs: float = 100.0) -> None:
        super().__init__(p, fs)
        self.amplitude = _check_range(self.name, "amplitude", amplitude, 0.0, 5.0)
        self.freq_hz = _check_range(self.name, "freq_hz", freq_hz, 0.0, 2.0)
        self.n_components = int(_check_number(self.name, "n_components", n_components, 1, 8, integer=True))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "amplitude": list(self.amplitude), "freq_hz": list(self.freq_hz),
                "n_components": self.n_components, "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        batch, n_leads, _ = x.shape
        n = self.n_components
        u = _uniform((batch, n * (2 + n_leads)), generator, x.device)
        f_lo, f_hi = self.freq_hz
        a_lo, a_hi = self.amplitude
        return {"freq": f_lo + (f_hi - f_lo) * u[:, :n], "phase": 2 * math.pi * u[:, n:2 * n],
                "amplitude": a_lo + (a_hi - a_lo) * u[:, 2 * n:].reshape(batch, n_leads, n)}

    def render(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info) -> Tensor:
        t = _time_index(x.shape[-1], x.device).float() / self.fs
        waves = torch.sin(2 * math.pi * params["freq"][:, :, None] * t + params["phase"][:, :, None])  # (B, n, T)
        drift = torch.bmm(params["amplitude"], waves)  # (B, L, T)
        return x + drift.to(x.dtype)


class LeadDropout(Augmentation):
    """Zero each lead independently with probability ``drop_prob``; at least ``min_keep`` leads survive.

    When more would be dropped, the leads with the largest random keys are kept. info: ``dropped`` (B, L) bool.
    """

    name = "lead_dropout"
    PARAMS = {"drop_prob": "probability a lead is zeroed, [0, 1]; default 0.2",
              "min_keep": "leads always kept, integer in [0, 12]; default 1",
              "p": "probability per sample, [0, 1]; default 1"}

    def __init__(self, drop_prob: float = 0.2, min_keep: int = 1, p: float = 1.0, fs: float = 100.0) -> None:
        super().__init__(p, fs)
        self.drop_prob = _check_number(self.name, "drop_prob", drop_prob, 0.0, 1.0)
        self.min_keep = int(_check_number(self.name, "min_keep", min_keep, 0, 12, integer=True))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "drop_prob": self.drop_prob, "min_keep": self.min_keep, "p": self.p}

    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        return {"keys": _uniform(x.shape[:2], generator, x.device)}

    def plan(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True,
             need_peaks: bool = True) -> tuple[Tensor, Info]:
        keys = params["keys"]
        dropped = keys < self.drop_prob
        keep = min(self.min_keep, x.shape[1])
        if keep:
            rank = torch.argsort(torch.argsort(keys, dim=1, descending=True), dim=1)  # 0 = largest key
            dropped = dropped & (rank >= keep)
        return rpeaks, {"dropped": dropped}

    def render(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info) -> Tensor:
        return _zero_where(x, info["dropped"][:, :, None])


# ----------------------------------------------------------------------------------------------------------------
# registry, presets, builder
# ----------------------------------------------------------------------------------------------------------------

#: name -> class. ``random_resized_crop`` is the same operation as ``random_scale_crop`` under the baselines' name.
AUGMENTATIONS: dict[str, type[Augmentation]] = {
    "random_scale_crop": RandomScaleCrop,
    "random_resized_crop": RandomScaleCrop,
    "temporal_shift": TemporalShift,
    "cardiac_cycle_mask": CardiacCycleMask,
    "time_out": TimeOut,
    "gaussian_noise": GaussianNoise,
    "amplitude_scale": AmplitudeScale,
    "baseline_wander": BaselineWander,
    "lead_dropout": LeadDropout,
}

#: Preset pipelines as plain data. ``physio`` is Physio-AUG (ACL-ECG; parameters reconstructed, see the docs);
#: ``standard`` is the LCD/ELIC authors' random resized crop + time-out; ``none`` leaves the signal unchanged.
PRESETS: dict[str, list[dict[str, Any]]] = {
    "physio": [
        {"name": "random_scale_crop", "scale": [0.5, 1.0]},
        {"name": "cardiac_cycle_mask", "n_cycles": [1, 2], "window": "rr", "scope": "all", "fill": "zero"},
        {"name": "temporal_shift", "max_shift": "rr", "mode": "circular"},
    ],
    "standard": [
        {"name": "random_resized_crop", "scale": [0.5, 1.0]},
        {"name": "time_out", "fraction": [0.0, 0.5]},
    ],
    "none": [],
}


def _build_step(i: int, entry: Any, fs: float, leads: Sequence[str], region_map: RegionMap | None) -> Augmentation:
    if not isinstance(entry, Mapping) or "name" not in entry:
        raise ConfigError(f"augmentation step {i}: expected a mapping with a 'name' key, got {entry!r}")
    params = dict(entry)
    name = params.pop("name")
    if name not in AUGMENTATIONS:
        raise ConfigError(f"augmentation step {i}: unknown name {name!r}; expected one of {', '.join(AUGMENTATIONS)}")
    cls = AUGMENTATIONS[name]
    for key in params:
        if key not in cls.PARAMS:
            raise ConfigError(f"augmentation step {i} ({name!r}): unknown parameter {key!r}; accepted: "
                              f"{', '.join(cls.PARAMS)}")
    if cls is CardiacCycleMask:
        params.update(leads=leads, region_map=region_map)
    step = cls(fs=fs, **params)
    step.name = name  # keep the spelling of the spec (random_resized_crop vs random_scale_crop)
    return step


def build_augmentation(spec: str | Sequence[Mapping[str, Any]] | None, *, fs: float = 100.0,
                       leads: Sequence[str] = LEADS, region_map: RegionMap | None = None) -> Compose:
    """Build a pipeline from plain data: a preset name (see :data:`PRESETS`) or a list of ``{"name": ..., **params}``.

    ``fs`` is the sampling rate of the signals (seconds-valued parameters are converted with it), ``leads`` their
    lead order (for region masking) and ``region_map`` the anatomical regions (default
    :func:`aclecg.leads.default_region_map`). Raises :class:`ConfigError` naming the step, key and accepted range.
    """
    if spec is None:
        spec = "none"
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ConfigError(f"unknown augmentation preset {spec!r}; expected one of {', '.join(PRESETS)} "
                              "or a list of {'name': ..., ...} steps")
        spec = PRESETS[spec]
    if isinstance(spec, Mapping) or not isinstance(spec, Sequence):
        raise ConfigError(f"augmentation spec must be a preset name or a list of steps, got {type(spec).__name__}")
    fs = _check_number("pipeline", "fs", fs, 1.0, 100_000.0)
    steps = [_build_step(i, copy.deepcopy(entry), fs, leads, region_map) for i, entry in enumerate(spec)]
    return Compose(steps, fs=fs)


# ----------------------------------------------------------------------------------------------------------------
# synthetic data for demos, tests and benchmarks
# ----------------------------------------------------------------------------------------------------------------

def make_synthetic_batch(batch: int, n_leads: int = 12, length: int = 1000, fs: float = 100.0,
                         bpm: Sequence[float] = (60.0, 100.0), irregular: float = 0.0, max_peaks: int = 32,
                         generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """A batch of crude synthetic ECGs and their R-peaks: ``(x (B, L, T) float32, rpeaks (B, K) int64)``.

    Each record has a heart rate ``~ U(bpm)``; RR intervals are jittered by a relative ``irregular`` (0 = regular,
    0.3 = AF-like). Beats are Gaussian P, QRS and T waves with per-lead gains. Not physiological; for tests and
    timing only.
    """
    device = torch.device("cpu")
    rate = bpm[0] + (bpm[1] - bpm[0]) * _uniform((batch, 1), generator, device)
    rr = 60.0 * fs / rate * (1 + irregular * (2 * _uniform((batch, max_peaks), generator, device) - 1))
    first = _uniform((batch, 1), generator, device) * rr[:, :1]
    peaks = torch.round(first + torch.cumsum(rr, dim=1) - rr[:, :1]).long()
    peaks = torch.where(peaks < length, peaks, torch.full_like(peaks, -1))
    gains = 0.5 + _uniform((batch, n_leads, 3), generator, device)
    t = torch.arange(length, dtype=torch.float32)
    dist = t[None, None, :] - torch.where(peaks >= 0, peaks, -10 * length).float()[:, :, None]  # (B, K, T)
    waves = []
    for offset, width, amp in ((-0.18 * fs, 0.025 * fs, 0.15), (0.0, 0.012 * fs, 1.0), (0.3 * fs, 0.05 * fs, 0.3)):
        waves.append(amp * torch.exp(-0.5 * ((dist - offset) / width) ** 2).sum(dim=1))  # (B, T)
    x = sum(gains[:, :, i:i + 1] * waves[i][:, None, :] for i in range(3))
    x = x + 0.01 * _normal((batch, n_leads, length), generator, device)
    return x.float(), peaks
