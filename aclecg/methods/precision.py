"""Losses in float32, whatever the autocast context around them.

Under ``torch.autocast`` (bf16/fp16 on CUDA, bf16 on CPU) matrix products and reductions run in the low-precision
dtype. That is fine for the encoder, but not for the objectives: a softmax over ``1 / tau``-scaled logits, a
Barlow Twins cross-correlation near the identity or a VICReg covariance lose most of their significant digits
(an 8 bit mantissa gives ~0.4 % relative error per product). :func:`float32_loss` wraps a loss function so that
its floating-point tensor arguments are cast to float32 and autocast is switched off inside it; the casts are
differentiable, so gradients flow back to the low-precision activations as usual.

Example:
    >>> import torch
    >>> @float32_loss
    ... def sq(x):
    ...     return (x @ x.T).sum()
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     sq(torch.randn(4, 3).bfloat16()).dtype
    torch.float32
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

__all__ = ["float32_loss", "to_float32"]

F = TypeVar("F", bound=Callable[..., Any])


def to_float32(value: Any) -> Any:
    """A floating-point tensor as float32 (float64 is kept); anything else unchanged."""
    if torch.is_tensor(value) and value.is_floating_point() and value.dtype != torch.float64:
        return value.float()
    return value


def _device_type(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    for value in (*args, *kwargs.values()):
        if torch.is_tensor(value):
            return value.device.type
    return "cpu"


def float32_loss(fn: F) -> F:
    """Decorator: run ``fn`` with autocast disabled and its floating-point tensor arguments in float32."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        device_type = _device_type(args, kwargs)
        with torch.autocast(device_type, enabled=False):
            return fn(*(to_float32(a) for a in args), **{k: to_float32(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]
