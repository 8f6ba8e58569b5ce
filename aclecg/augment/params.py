"""Validation of the augmentation steps' parameters with :mod:`aclecg.constraints`: each step class declares a
``CONSTRAINTS`` table (every step also takes :data:`STEP_CONSTRAINTS`), and :func:`check_step` checks a step's
values against it, raising :class:`ConfigError` naming the step, the key and what it accepts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aclecg.constraints import Constraint, Real, validate

__all__ = ["STEP_CONSTRAINTS", "check_step", "step_label"]

#: The parameters every step takes: the per-sample probability and the sampling rate (Hz).
STEP_CONSTRAINTS: dict[str, Constraint] = {"p": Real(0.0, 1.0), "fs": Real(1.0, 100_000.0)}


def step_label(step: str) -> str:
    """How error messages name a step."""
    return f"augmentation {step!r}"


def check_step(step: str, table: Mapping[str, Constraint], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` checked against ``table`` (canonical forms: floats, int, tuples for ``[low, high]`` pairs)."""
    return validate(step_label(step), table, values, quote=True)
