"""The inputs of an augmentation call and the time helpers the steps share: the signal check, R-peak sanitising,
compaction and median RR, and ``[start, end)`` span masks.

R-peaks are a ``(B, K)`` int64 tensor of sample positions, ``-1`` padded; *compact* means each row holds its valid
peaks sorted ascending first and the padding after, as :func:`sanitize_rpeaks` returns them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aclecg.errors import DataError

__all__ = [
    "DEFAULT_RR_S",
    "check_signal",
    "compact",
    "median_rr",
    "sanitize_rpeaks",
    "spans_to_mask",
    "time_index",
    "zero_where",
]

#: Default RR interval (seconds) used when a record has too few R-peaks to measure one (75 bpm).
DEFAULT_RR_S = 0.8


def check_signal(x: Tensor) -> None:
    """Raise :class:`DataError` unless ``x`` is a floating-point ``(B, L, T)`` tensor with ``T >= 2``."""
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
    return compact(rpeaks.clamp(min=-1), length)


def compact(peaks: Tensor, length: int) -> Tensor:
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


def time_index(length: int, device: torch.device) -> Tensor:
    """The sample indices ``0 .. length - 1`` on ``device``."""
    return torch.arange(length, device=device)


def zero_where(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` with zeros where the (broadcastable) boolean ``mask`` is set."""
    return torch.where(mask, torch.zeros((), dtype=x.dtype, device=x.device), x)


def spans_to_mask(spans: Tensor, length: int) -> Tensor:
    """``(B, M, 2)`` ``[start, end)`` spans (``-1`` padded) to a ``(B, T)`` boolean time mask."""
    t = time_index(length, spans.device)
    inside = (t >= spans[..., 0:1]) & (t < spans[..., 1:2])
    return inside.any(dim=1)
