"""Validating a sweep's fractions, arms and seeds, shared by :func:`~aclecg.evaluation.run_sweep`, the CLI and the app.

Each accepts a list or the CLI's comma-separated text and raises :class:`~aclecg.errors.ConfigError` with the
same messages wherever the sweep is launched from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aclecg.constraints import SWEEP_FORM_PARAMS, validate
from aclecg.errors import ConfigError
from aclecg.evaluation.arms import ARM_KINDS, is_trained

__all__ = ["job_cell_count", "parse_sweep_form"]


def _parse_arms(arms: Sequence[str] | str) -> list[str]:
    if isinstance(arms, str):
        arms = [a.strip() for a in arms.split(",") if a.strip()]
    arms = list(dict.fromkeys(arms))
    known = ARM_KINDS.names()
    if not arms:
        raise ConfigError(f"choose at least one arm from {', '.join(known)}")
    bad = [a for a in arms if a not in known]
    if bad:
        raise ConfigError(f"unknown arm(s) {bad}; choose from {', '.join(known)}")
    return arms


def _plain(value: Any) -> Any:
    """NumPy scalars (and lists or tuples of them) as Python numbers, for the constraints."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return value


def _parse_fractions_and_seeds(
    fractions: Sequence[float] | str, seeds: int | Sequence[int]
) -> tuple[list[float], list[int]]:
    """Both checked against :data:`aclecg.constraints.SWEEP_FORM_PARAMS`; fractions sorted, seeds a list, each
    without repeats."""
    if isinstance(fractions, str):
        try:
            fractions = [float(f) for f in fractions.split(",") if f.strip()]
        except ValueError:
            raise ConfigError(f"fractions must be comma-separated numbers in (0, 1], got {fractions!r}") from None
    checked = validate("sweep", SWEEP_FORM_PARAMS, {"fractions": _plain(fractions), "seeds": _plain(seeds)})
    seed_list = list(range(checked["seeds"])) if isinstance(checked["seeds"], int) else checked["seeds"]
    return sorted(dict.fromkeys(checked["fractions"])), list(dict.fromkeys(seed_list))


def parse_sweep_form(
    fractions: Sequence[float] | str, arms: Sequence[str] | str, n_checkpoints: int, seeds: int | Sequence[int] = 1
) -> tuple[list[float], list[str], list[int]]:
    """Validate a sweep's fractions, arms and seeds as ``run_sweep`` would, before anything is launched.

    Raises :class:`ConfigError` with the CLI's messages, so the app and ``python -m aclecg sweep`` say the same.
    """
    fracs, seed_list = _parse_fractions_and_seeds(fractions, seeds)
    arm_list = _parse_arms(arms)
    needs = [a for a in arm_list if ARM_KINDS.get(a).per_checkpoint]
    if needs and n_checkpoints < 1:
        raise ConfigError(f"arms {needs} need at least one --checkpoint")
    return fracs, arm_list, seed_list


def job_cell_count(args: Sequence[str]) -> int | None:
    """How many (arm, fraction, seed) cells a sweep job computes, from its ``aclecg sweep`` arguments (a job's
    ``job.json`` ``args``); an option it leaves out takes the sweep's default (:mod:`aclecg.evaluation.config`).
    ``None`` when the arguments do not parse.

    >>> job_cell_count(["--checkpoint", "a.pt", "--checkpoint", "b.pt", "--seeds", "2"])
    48
    """
    from aclecg.evaluation.config import DEFAULT_ARMS, DEFAULT_FRACTIONS, DEFAULT_SEEDS

    args = [str(a) for a in args]
    given = {k: args[i + 1] for i, k in enumerate(args[:-1]) if k.startswith("--")}
    n_checkpoints = sum(1 for a in args if a == "--checkpoint")
    try:
        fracs, arms, seeds = parse_sweep_form(
            given.get("--fractions", list(DEFAULT_FRACTIONS)),
            given.get("--arms", list(DEFAULT_ARMS)),
            n_checkpoints,
            int(given.get("--seeds", DEFAULT_SEEDS)),
        )
    except (ConfigError, ValueError):
        return None
    per = sum(n_checkpoints if ARM_KINDS.get(a).per_checkpoint else 1 for a in arms)
    return per * len(fracs) * len(seeds)


#: Rough seconds per optimiser step of a trained-arm cell (default batch size, small encoder, its validations
#: included). CPU: the ``supervised`` arm on the bundled PTB-XL data on a 2-core CPU shared with other work, about
#: 1.6 steps/s (measured 2026-12-05). GPU: a rough figure, not measured on this project's GPUs. No benchmark in
#: ``benchmarks/`` times a trained-arm step, so these stand in for one.
STEP_SECONDS = {"cpu": 0.6, "cuda": 0.05}
#: A trained-arm cell that may take longer than this (seconds) is worth a warning before launching.
LONG_CELL_S = 300.0


def trained_cell_estimate(
    arms: Sequence[str], n_checkpoints: int, n_fractions: int, n_seeds: int, device: str = "cpu"
) -> tuple[int, float, float] | None:
    """How long the trained-arm cells (fine-tune, supervised, reference CNN) of a sweep may take, roughly:
    ``(cells, seconds of one cell, seconds of all of them)``, ``None`` without a trained arm.

    A cell runs at most ``EvalConfig().max_steps`` steps; the first seed of each arm and fraction tries every
    learning rate of the grid, the other seeds only the chosen one. Early stopping often ends a cell sooner, so these
    are upper bounds from :data:`STEP_SECONDS`, not predictions.

    >>> trained_cell_estimate(["linear_probe", "supervised"], 1, 2, 3)
    (6, 1200.0, 14400.0)
    """
    from aclecg.evaluation.config import EvalConfig

    cfg = EvalConfig()
    per_arm = sum(n_checkpoints if ARM_KINDS.get(a).per_checkpoint else 1 for a in arms if is_trained(a))
    if not per_arm:
        return None
    cell = cfg.max_steps * STEP_SECONDS["cuda" if device.startswith("cuda") else "cpu"]
    runs = per_arm * n_fractions * (len(cfg.lr_grid) + max(n_seeds - 1, 0))  # fits of max_steps each
    return per_arm * n_fractions * n_seeds, cell, runs * cell
