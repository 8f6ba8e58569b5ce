"""The time geometry of the augmentations: a :class:`Warp` (crop -> span masks -> shift, per sample) and
:func:`render_warp`, which draws one in a single pass with torch ops on any device and dtype.

Random scale crop, time-out, zero-fill cycle masking and temporal shift each describe themselves as a warp
(:meth:`aclecg.augment.Augmentation.warp_update`); :class:`aclecg.augment.Compose` folds consecutive ones, in the
order of :data:`WARP_ORDER`, into one warp and renders it once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from aclecg.augment.rpeaks import time_index

__all__ = ["WARP_ORDER", "Warp", "render_warp"]

#: the order in which warp steps fold into one warp
WARP_ORDER = {"crop": 1, "mask": 2, "shift": 3}

#: on the CPU the signal is rendered this many bytes at a time, so that the temporaries stay in cache and are reused
#: instead of being allocated (and page-faulted) at full batch size
CPU_BLOCK_BYTES = 2 << 20


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

    start: Tensor  # (B,) float64, input sample of crop output 0
    step: Tensor  # (B,) float64, input samples per crop output sample (<= 1 for a crop)
    shift: Tensor  # (B,) int64, delay in samples
    mode: str  # "circular", "zero" or "edge"
    spans: Tensor  # (B, M, 2) int64 [start, end) in crop-output samples, -1 padded
    span_leads: Tensor  # (B, M, L) bool, the leads each span applies to
    has_crop: bool = False
    has_shift: bool = False

    @classmethod
    def identity(cls, x: Tensor) -> Warp:
        """The warp that leaves ``x`` unchanged."""
        batch, n_leads, _ = x.shape
        return cls(
            start=torch.zeros(batch, dtype=torch.float64, device=x.device),
            step=torch.ones(batch, dtype=torch.float64, device=x.device),
            shift=torch.zeros(batch, dtype=torch.long, device=x.device),
            mode="circular",
            spans=torch.full((batch, 0, 2), -1, dtype=torch.long, device=x.device),
            span_leads=torch.zeros((batch, 0, n_leads), dtype=torch.bool, device=x.device),
        )

    def rows(self, index: slice) -> Warp:
        """The warp of samples ``index`` (a slice of the batch)."""
        return replace(
            self,
            start=self.start[index],
            step=self.step[index],
            shift=self.shift[index],
            spans=self.spans[index],
            span_leads=self.span_leads[index],
        )

    def with_spans(self, spans: Tensor, leads: Tensor) -> Warp:
        """This warp with more masked spans: ``spans`` (B, M, 2) in crop-output samples, ``leads`` (B, M, L)."""
        return replace(
            self,
            spans=torch.cat([self.spans, spans.long()], dim=1),
            span_leads=torch.cat([self.span_leads, leads.bool()], dim=1),
        )


def render_warp(x: Tensor, warp: Warp) -> Tensor:
    """Draw ``warp`` (see :class:`Warp`) on ``x`` (B, L, T): two gathers and a ``lerp`` for the crop, then the masks.

    Any device and dtype; the output is a new tensor. On the CPU (without gradients) the batch is rendered in
    blocks of about :data:`CPU_BLOCK_BYTES` of signal, each one vectorised.
    """
    batch, n_leads, length = x.shape
    if x.device.type != "cpu" or x.requires_grad:
        return _render_block(x, warp, None)
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    block = max(1, CPU_BLOCK_BYTES // max(1, n_leads * length * x.element_size()))
    for b0 in range(0, batch, block):  # blocks of samples (43 of 12 x 1000)
        rows = slice(b0, b0 + block)
        _render_block(x[rows], warp.rows(rows), y[rows])
    return y


def _render_block(x: Tensor, warp: Warp, out: Tensor | None) -> Tensor:
    """:func:`render_warp` on ``x`` in one go; writes into ``out`` when given (contiguous, no gradients)."""
    _, n_leads, length = x.shape
    src = time_index(length, x.device)[None, :] - warp.shift[:, None]
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
