"""Random draws of the augmentations: every random number a step uses comes from here.

The generator rule (see :mod:`aclecg.augment`): a ``torch.Generator`` on the signal's device draws there; a CPU
generator draws on the CPU and the numbers are moved to the signal's device, so a CPU generator gives the same
augmentation on CPU and GPU; ``None`` uses torch's global RNG of the signal's device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from aclecg.errors import ConfigError

__all__ = ["normal", "randint", "uniform"]


def _on_generator_device(generator: torch.Generator, device: torch.device) -> bool:
    """Whether ``generator`` draws on ``device`` itself (``False``: on the CPU, then moved); raises otherwise."""
    gdev = torch.device(generator.device)
    if gdev.type == device.type and (gdev.index or 0) == (device.index or 0):
        return True
    if gdev.type == "cpu":
        return False
    raise ConfigError(f"generator is on {gdev} but the signal is on {device}; use a generator on {device} or the CPU")


def uniform(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``U[0, 1)`` float32 draws on ``device``, following the generator rule."""
    if generator is None:
        return torch.rand(tuple(shape), device=device)
    if _on_generator_device(generator, device):
        return torch.rand(tuple(shape), generator=generator, device=device)
    return torch.rand(tuple(shape), generator=generator).to(device)


def normal(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal float32 draws on ``device``, following the generator rule."""
    if generator is None:
        return torch.randn(tuple(shape), device=device)
    if _on_generator_device(generator, device):
        return torch.randn(tuple(shape), generator=generator, device=device)
    return torch.randn(tuple(shape), generator=generator).to(device)


def randint(low: int, high: int, u: Tensor) -> Tensor:
    """Integers uniform in ``[low, high]`` (inclusive) from uniform draws ``u``."""
    return (torch.floor(u.double() * (high - low + 1)) + low).clamp_(max=high).long()
