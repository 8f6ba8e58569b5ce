"""Validating a sweep's fractions, arms and seeds, shared by :func:`~aclecg.evaluation.run_sweep`, the CLI and the app.

Each accepts a list or the CLI's comma-separated text and raises :class:`~aclecg.errors.ConfigError` with the
same messages wherever the sweep is launched from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np

from aclecg.errors import ConfigError
from aclecg.evaluation.config import ARMS

__all__ = ["parse_sweep_form"]


def _parse_arms(arms: Sequence[str] | str) -> list[str]:
    if isinstance(arms, str):
        arms = [a.strip() for a in arms.split(",") if a.strip()]
    arms = list(dict.fromkeys(arms))
    if not arms:
        raise ConfigError(f"choose at least one arm from {', '.join(ARMS)}")
    bad = [a for a in arms if a not in ARMS]
    if bad:
        raise ConfigError(f"unknown arm(s) {bad}; choose from {', '.join(ARMS)}")
    return arms


def _parse_fractions(fractions: Sequence[float] | str) -> list[float]:
    if isinstance(fractions, str):
        try:
            fractions = [float(f) for f in fractions.split(",") if f.strip()]
        except ValueError:
            raise ConfigError(f"fractions must be comma-separated numbers in (0, 1], got {fractions!r}") from None
    out = sorted(dict.fromkeys(float(f) for f in fractions))
    if not out or any(not 0.0 < f <= 1.0 for f in out):
        raise ConfigError(f"fractions must be numbers in (0, 1], got {list(fractions)}")
    return out


def _parse_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {seeds}")
        return list(range(int(seeds)))
    # Not an int here, so a sequence (a bool falls through too and fails in the iteration, as before).
    out = [int(s) for s in cast(Sequence[int], seeds)]
    if not out:
        raise ConfigError("seeds must name at least one seed")
    return list(dict.fromkeys(out))


def parse_sweep_form(
    fractions: Sequence[float] | str, arms: Sequence[str] | str, n_checkpoints: int, seeds: int | Sequence[int] = 1
) -> tuple[list[float], list[str], list[int]]:
    """Validate a sweep's fractions, arms and seeds as ``run_sweep`` would, before anything is launched.

    Raises :class:`ConfigError` with the CLI's messages, so the app and ``python -m aclecg sweep`` say the same.
    """
    fracs, arm_list, seed_list = _parse_fractions(fractions), _parse_arms(arms), _parse_seeds(seeds)
    needs = [a for a in arm_list if a in ("linear_probe", "fine_tune")]
    if needs and n_checkpoints < 1:
        raise ConfigError(f"arms {needs} need at least one --checkpoint")
    return fracs, arm_list, seed_list
