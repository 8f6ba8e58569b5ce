"""Physio-AUG one step at a time, for teaching: crop, then crop + mask, then crop + mask + shift, same seed.

Every step of a pipeline draws its randomness from the one generator in pipeline order, so the first ``k`` steps
run with a generator seeded the same way draw exactly what the full pipeline draws for them: each step's view is
the previous step's view with one more change (the Augmentations page's teaching mode shows them side by side).

>>> [s.title for s in TEACHING_STEPS]
['crop', 'mask', 'shift']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from aclecg.augment.registry import build_augmentation
from aclecg.errors import ConfigError

__all__ = ["TEACHING_STEPS", "TeachingStep", "step_views"]


@dataclass(frozen=True)
class TeachingStep:
    """One Physio-AUG step: its registry name, a short title and why it keeps the rhythm (one sentence)."""

    name: str
    title: str
    why: str


TEACHING_STEPS = (
    TeachingStep(
        "random_scale_crop",
        "crop",
        "The crop keeps a window of the record at the record's own rate and zeroes the rest, so every beat inside "
        "it keeps its RR interval, heart rate and wave durations.",
    ),
    TeachingStep(
        "cardiac_cycle_mask",
        "mask",
        "The mask hides whole cardiac cycles between R-peaks, never part of a beat, so the beats left are intact "
        "and the R-peaks still fall where the rhythm puts them.",
    ),
    TeachingStep(
        "temporal_shift",
        "shift",
        "The shift moves the whole trace in time by at most one RR interval, so the beats and the intervals "
        "between them are unchanged; only where the record starts moves.",
    ),
)


def step_views(
    spec: Sequence[Mapping[str, Any]],
    x: torch.Tensor,
    rpeaks: torch.Tensor,
    seed: int,
    upto: int,
    fs: float = 100.0,
) -> list[tuple[torch.Tensor, dict]]:
    """The views after the first 1, 2, … ``upto`` steps of ``spec`` (crop, mask, shift), each with its ``info``.

    Each prefix runs with ``torch.Generator().manual_seed(seed)``, so view ``k`` is view ``k - 1`` with step
    ``k`` applied. ``spec`` must be Physio-AUG's steps in :data:`TEACHING_STEPS`' order.
    """
    names = [dict(s).get("name") for s in spec]
    if names != [s.name for s in TEACHING_STEPS]:
        raise ConfigError(f"teaching mode shows {[s.name for s in TEACHING_STEPS]} in that order, got {names}")
    if not 1 <= int(upto) <= len(spec):
        raise ConfigError(f"teaching step must be 1 to {len(spec)}, got {upto}")
    views = []
    for k in range(1, int(upto) + 1):
        pipeline = build_augmentation([dict(s) for s in spec[:k]], fs=fs)
        views.append(pipeline.forward_with_info(x, rpeaks, generator=torch.Generator().manual_seed(int(seed))))
    return views
