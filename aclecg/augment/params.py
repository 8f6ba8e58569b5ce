"""Validation of the augmentation steps' parameters: each check raises :class:`ConfigError` naming the step, the key
and the accepted range, and returns the value in its canonical type."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from aclecg.errors import ConfigError

__all__ = ["check_bool", "check_choice", "check_number", "check_range", "step_label"]


def step_label(step: str) -> str:
    """How error messages name a step."""
    return f"augmentation {step!r}"


def check_number(step: str, key: str, value: Any, lo: float, hi: float, integer: bool = False) -> float:
    """A finite number (an integer when ``integer``) inside ``[lo, hi]``."""
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer and float(value) != int(value):
        ok = False
    if not ok or not lo <= value <= hi:
        raise ConfigError(f"{step_label(step)}: {key!r} must be {kind} in [{lo}, {hi}], got {value!r}")
    return int(value) if integer else float(value)


def check_range(step: str, key: str, value: Any, lo: float, hi: float, integer: bool = False) -> tuple[float, float]:
    """A ``[low, high]`` pair inside ``[lo, hi]`` with ``low <= high``; a single number means ``[v, v]``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{step_label(step)}: {key!r} must be a [low, high] pair inside [{lo}, {hi}], got {value!r}")
    low = check_number(step, key, value[0], lo, hi, integer)
    high = check_number(step, key, value[1], lo, hi, integer)
    if low > high:
        raise ConfigError(f"{step_label(step)}: {key!r} must have low <= high, got {list(value)!r}")
    return (low, high)


def check_choice(step: str, key: str, value: Any, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{step_label(step)}: {key!r} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(value)


def check_bool(step: str, key: str, value: Any) -> bool:
    """``True`` or ``False`` (not a truthy value)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{step_label(step)}: {key!r} must be true or false, got {value!r}")
    return value
