"""Random draws of the augmentations: every random number a step uses comes from here.

The generator rule (see :mod:`aclecg.augment`): a ``torch.Generator`` on the signal's device draws there; a CPU
generator draws on the CPU and the numbers are moved to the signal's device, so a CPU generator gives the same
augmentation on CPU and GPU; ``None`` uses torch's global RNG of the signal's device.

:class:`SampleDraws` is the third kind of source, used by pretraining: counter-based draws keyed per sample. Row
``i`` of every draw is a hash of ``(keys[i], draw number, element)``, so a sample's augmentation depends on its
own key only, never on which other samples share its batch or on which process augments it. A process that
augments only its own rows of a global batch therefore makes exactly the views one process makes of those rows,
for any number of processes, on CPU and GPU alike (integer arithmetic, no device RNG).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from aclecg.errors import ConfigError

__all__ = ["Draws", "SampleDraws", "normal", "randint", "sample_keys", "uniform"]

_MASK64 = (1 << 64) - 1


def _i64(value: int) -> int:
    """An unsigned 64-bit constant as the signed int64 torch stores (two's complement)."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN, _MIX1, _MIX2 = _i64(0x9E3779B97F4A7C15), _i64(0xBF58476D1CE4E5B9), _i64(0x94D049BB133111EB)
_STREAM = _i64(0xD1B54A32D192ED03)  # odd multiplier separating draw numbers


def _shr(x: Tensor, bits: int) -> Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return torch.bitwise_right_shift(x, bits).bitwise_and_((1 << (64 - bits)) - 1)


def _mix(x: Tensor) -> Tensor:
    """SplitMix64's finaliser on int64 tensors (wrapping arithmetic): a bijection that spreads every input bit.

    In place on one copy of ``x`` (fresh multi-megabyte temporaries cost more than the arithmetic)."""
    z = x.add(_GOLDEN)
    z.bitwise_xor_(_shr(z, 30)).mul_(_MIX1)
    z.bitwise_xor_(_shr(z, 27)).mul_(_MIX2)
    return z.bitwise_xor_(_shr(z, 31))


def _mix_int(value: int) -> int:
    """:func:`_mix` of one Python integer (the same bits)."""
    return int(_mix(torch.tensor([_i64(value)], dtype=torch.int64))[0])


def sample_keys(seed: int, epoch: int, view: int, index: Tensor) -> Tensor:
    """One int64 key per sample: a hash of (seed, epoch, view, sample index). ``index`` holds dataset rows."""
    base = _mix_int(_mix_int(_mix_int(int(seed)) + int(epoch)) + int(view))
    return _mix(index.to(torch.int64) * _STREAM + base)


class SampleDraws:
    """Counter-based random source: every draw's row ``i`` comes from ``keys[i]`` alone (see the module docstring).

    >>> k = sample_keys(0, 1, 1, torch.arange(4))
    >>> a, b = SampleDraws(k), SampleDraws(k[2:])
    >>> bool(torch.equal(a.uniform((4, 3), torch.device("cpu"))[2:], b.uniform((2, 3), torch.device("cpu"))))
    True
    """

    def __init__(self, keys: Tensor):
        if keys.ndim != 1 or keys.dtype != torch.int64:
            raise ConfigError(f"sample keys must be a 1-D int64 tensor, got {tuple(keys.shape)} {keys.dtype}")
        self.keys = keys
        self.draws = 0

    def bits(self, shape: Sequence[int], device: torch.device) -> Tensor:
        """64 random bits per element of ``shape`` (``shape[0]`` = the number of keys); advances the counter."""
        shape = tuple(int(n) for n in shape)
        if not shape or shape[0] != len(self.keys):
            raise ConfigError(f"a draw of shape {shape} needs one row per sample key ({len(self.keys)})")
        per_row = 1
        for n in shape[1:]:
            per_row *= n
        stream = _mix(self.keys.to(device) + _i64(_mix_int(self.draws) * _STREAM))
        self.draws += 1
        element = torch.arange(per_row, device=device, dtype=torch.int64) * _GOLDEN
        return _mix(stream[:, None] ^ element[None, :]).reshape(shape)

    def uniform(self, shape: Sequence[int], device: torch.device) -> Tensor:
        """``U[0, 1)`` float32: the top 24 bits of each element's hash (exact in float32)."""
        return _shr(self.bits(shape, device), 40).to(torch.float32) * (1.0 / (1 << 24))

    def normal(self, shape: Sequence[int], device: torch.device) -> Tensor:
        """Standard normal float32 by Box-Muller from the two 24-bit halves of one hash per element."""
        h = self.bits(shape, device)
        scale = 1.0 / (1 << 24)
        u1 = _shr(h, 40).to(torch.float32).add_(0.5).mul_(scale)  # (0, 1): the log stays finite
        u2 = h.bitwise_and_((1 << 24) - 1).to(torch.float32).mul_(scale * 2.0 * torch.pi)
        return u1.log_().mul_(-2.0).sqrt_().mul_(u2.cos_())


#: A random source the augmentations accept: a ``torch.Generator``, :class:`SampleDraws`, or ``None`` (torch's RNG).
Draws = torch.Generator | SampleDraws | None


def _on_generator_device(generator: torch.Generator, device: torch.device) -> bool:
    """Whether ``generator`` draws on ``device`` itself (``False``: on the CPU, then moved); raises otherwise."""
    gdev = torch.device(generator.device)
    if gdev.type == device.type and (gdev.index or 0) == (device.index or 0):
        return True
    if gdev.type == "cpu":
        return False
    raise ConfigError(f"generator is on {gdev} but the signal is on {device}; use a generator on {device} or the CPU")


def uniform(shape: Sequence[int], generator: Draws, device: torch.device) -> Tensor:
    """``U[0, 1)`` float32 draws on ``device``, following the generator rule."""
    if isinstance(generator, SampleDraws):
        return generator.uniform(shape, device)
    if generator is None:
        return torch.rand(tuple(shape), device=device)
    if _on_generator_device(generator, device):
        return torch.rand(tuple(shape), generator=generator, device=device)
    return torch.rand(tuple(shape), generator=generator).to(device)


def normal(shape: Sequence[int], generator: Draws, device: torch.device) -> Tensor:
    """Standard normal float32 draws on ``device``, following the generator rule."""
    if isinstance(generator, SampleDraws):
        return generator.normal(shape, device)
    if generator is None:
        return torch.randn(tuple(shape), device=device)
    if _on_generator_device(generator, device):
        return torch.randn(tuple(shape), generator=generator, device=device)
    return torch.randn(tuple(shape), generator=generator).to(device)


def randint(low: int, high: int, u: Tensor) -> Tensor:
    """Integers uniform in ``[low, high]`` (inclusive) from uniform draws ``u``."""
    return (torch.floor(u.double() * (high - low + 1)) + low).clamp_(max=high).long()
