"""The named augmentation steps, the preset pipelines as plain data, and :func:`build_augmentation`, which turns a
preset name or a list of ``{"name": ..., **params}`` steps into a :class:`~aclecg.augment.Compose`."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from aclecg.augment.base import Augmentation, Compose
from aclecg.augment.baseline import AmplitudeScale, BaselineWander, GaussianNoise, LeadDropout, TimeOut
from aclecg.augment.params import STEP_CONSTRAINTS, check_step
from aclecg.augment.physio import CardiacCycleMask, RandomScaleCrop, TemporalShift
from aclecg.errors import ConfigError
from aclecg.leads import LEADS, RegionMap
from aclecg.registry import Registry

__all__ = ["AUGMENTATIONS", "PRESETS", "build_augmentation"]

#: step name -> class. ``random_resized_crop`` is an alias of ``random_scale_crop``: the same operation under the
#: baselines' name (a step built under it keeps that name in its config and info).
AUGMENTATIONS: Registry[type[Augmentation]] = Registry("augmentation")
AUGMENTATIONS.register(RandomScaleCrop.name, RandomScaleCrop, aliases=("random_resized_crop",))
AUGMENTATIONS.register(TemporalShift.name, TemporalShift)
AUGMENTATIONS.register(CardiacCycleMask.name, CardiacCycleMask)
AUGMENTATIONS.register(TimeOut.name, TimeOut)
AUGMENTATIONS.register(GaussianNoise.name, GaussianNoise)
AUGMENTATIONS.register(AmplitudeScale.name, AmplitudeScale)
AUGMENTATIONS.register(BaselineWander.name, BaselineWander)
AUGMENTATIONS.register(LeadDropout.name, LeadDropout)

#: Preset pipelines as plain data. ``physio`` is Physio-AUG (ACL-ECG; parameters reconstructed, see the docs) with
#: its rhythm-preserving crop (the window keeps its rate); ``physio_v1`` is Physio-AUG as this package made it before
#: 2026-12-05, whose crop resampled the window like the baselines' (what configuration files written before then
#: mean by ACL-ECG's default, see :mod:`aclecg.training.config`); ``standard`` is the LCD/ELIC authors' random
#: resized crop + time-out; ``none`` leaves the signal unchanged.
PRESETS: dict[str, list[dict[str, Any]]] = {
    "physio": [
        {"name": "random_scale_crop", "scale": [0.5, 1.0], "resample": False},
        {"name": "cardiac_cycle_mask", "n_cycles": [1, 2], "window": "rr", "scope": "all", "fill": "zero"},
        {"name": "temporal_shift", "max_shift": "rr", "mode": "circular"},
    ],
    "physio_v1": [
        {"name": "random_scale_crop", "scale": [0.5, 1.0]},
        {"name": "cardiac_cycle_mask", "n_cycles": [1, 2], "window": "rr", "scope": "all", "fill": "zero"},
        {"name": "temporal_shift", "max_shift": "rr", "mode": "circular"},
    ],
    "standard": [
        {"name": "random_resized_crop", "scale": [0.5, 1.0]},
        {"name": "time_out", "fraction": [0.0, 0.5]},
    ],
    "none": [],
}


def _build_step(i: int, entry: Any, fs: float, leads: Sequence[str], region_map: RegionMap | None) -> Augmentation:
    if not isinstance(entry, Mapping) or "name" not in entry:
        raise ConfigError(f"augmentation step {i}: expected a mapping with a 'name' key, got {entry!r}")
    params = dict(entry)
    name = params.pop("name")
    if not isinstance(name, str) or name not in AUGMENTATIONS:
        raise ConfigError(
            f"augmentation step {i}: unknown name {name!r}; expected one of "
            f"{', '.join(AUGMENTATIONS)} or the alias random_resized_crop"
        )
    cls = AUGMENTATIONS.get(name)
    for key in params:
        if key not in cls.PARAMS:
            raise ConfigError(
                f"augmentation step {i} ({name!r}): unknown parameter {key!r}; accepted: {', '.join(cls.PARAMS)}"
            )
    if cls is CardiacCycleMask:
        params.update(leads=leads, region_map=region_map)
    step = cls(fs=fs, **params)
    step.name = name.strip().lower()  # keep the spelling of the spec (random_resized_crop vs random_scale_crop)
    return step


def build_augmentation(
    spec: str | Sequence[Mapping[str, Any]] | None,
    *,
    fs: float = 100.0,
    leads: Sequence[str] = LEADS,
    region_map: RegionMap | None = None,
) -> Compose:
    """Build a pipeline from plain data: a preset name (see :data:`PRESETS`) or a list of ``{"name": ..., **params}``.

    ``fs`` is the sampling rate of the signals (seconds-valued parameters are converted with it), ``leads`` their
    lead order (for region masking) and ``region_map`` the anatomical regions (default
    :func:`aclecg.leads.default_region_map`). Step names are looked up in :data:`AUGMENTATIONS`. Raises
    :class:`ConfigError` naming the step, key and accepted range.
    """
    if spec is None:
        spec = "none"
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ConfigError(
                f"unknown augmentation preset {spec!r}; expected one of {', '.join(PRESETS)} "
                "or a list of {'name': ..., ...} steps"
            )
        spec = PRESETS[spec]
    if isinstance(spec, Mapping) or not isinstance(spec, Sequence):
        raise ConfigError(f"augmentation spec must be a preset name or a list of steps, got {type(spec).__name__}")
    fs = check_step("pipeline", {"fs": STEP_CONSTRAINTS["fs"]}, {"fs": fs})["fs"]
    steps = [_build_step(i, copy.deepcopy(entry), fs, leads, region_map) for i, entry in enumerate(spec)]
    return Compose(steps, fs=fs)
