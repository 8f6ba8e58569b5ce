"""The common base of all self-supervised methods and their hyper-parameter validation.

A method owns the online :class:`~aclecg.models.ECGEncoder` (``.encoder``, the one evaluation uses) plus its
heads, and maps two augmented views ``(B, L, T)`` to a dict of loss terms with key ``"loss"``. Everything needed
to resume (EMA targets as submodules, queues as buffers) lives in ``state_dict()``. The heads are built with
:mod:`aclecg.methods.heads`, the objectives live in :mod:`aclecg.methods.losses`, and the methods with an EMA
target derive from :class:`aclecg.methods.momentum.MomentumMethod`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

from aclecg.constraints import AUGMENTATION_PRESETS, Constraint
from aclecg.errors import ConfigError
from aclecg.leads import RegionMap, default_region_map
from aclecg.models import ECGEncoder, EncoderConfig, count_parameters, resolve_encoder_config

__all__ = ["AUGMENTATION_PRESETS", "SSLMethod"]


def _type_ok(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(default, str):
        return isinstance(value, str)
    return True


class SSLMethod(nn.Module):
    """Base class: ``encoder`` (online), ``name``, ``hparams``, ``default_augmentation``, ``forward(v1, v2)``.

    Subclasses set the class attributes below, build their heads in ``__init__`` after calling
    ``super().__init__``, declare each hyper-parameter's accepted values in :attr:`PARAMS` (checks across
    hyper-parameters go in :meth:`_check_hparams`), and implement :meth:`forward`.
    """

    NAME: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    PAPER: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    RECONSTRUCTION: ClassVar[bool] = False
    #: The scalar terms :meth:`forward` returns (``"loss"`` first), the curves a training chart plots.
    LOSS_TERMS: ClassVar[tuple[str, ...]] = ("loss",)
    #: Default hyper-parameters as plain data (every method has ``augmentation``).
    DEFAULTS: ClassVar[dict[str, Any]] = {"augmentation": "standard"}
    #: Every hyper-parameter's accepted values (:mod:`aclecg.constraints`), one entry per key of :attr:`DEFAULTS`
    #: but ``augmentation`` (a preset name or a list of steps, checked against the augmentation registry).
    PARAMS: ClassVar[dict[str, Constraint]] = {}

    def __init__(
        self,
        encoder_config: EncoderConfig | Mapping[str, Any] | str | None = None,
        region_map: RegionMap | Mapping[str, Any] | None = None,
        **hparams: Any,
    ) -> None:
        super().__init__()
        config = resolve_encoder_config(encoder_config)
        self.name: str = self.NAME
        self.hparams: dict[str, Any] = self._resolve_hparams(hparams)
        self.region_map: RegionMap = _resolve_region_map(region_map)
        self.encoder = ECGEncoder(config)
        self._check_hparams()

    # ----------------------------------------------------------------- configuration
    def _resolve_hparams(self, given: Mapping[str, Any]) -> dict[str, Any]:
        defaults = self.DEFAULTS
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ConfigError(
                f"method {self.NAME!r}: unknown hyper-parameter(s) {unknown}; accepted: {sorted(defaults)}"
            )
        out = {**defaults, **given}
        self._check_augmentation(out["augmentation"])
        for key, constraint in self.PARAMS.items():
            try:
                out[key] = constraint.check(out[key])
            except ValueError as exc:
                what = str(exc)
                if not _type_ok(out[key], defaults[key]):  # the wrong kind of value, not one out of range
                    what = f"must be of type {type(defaults[key]).__name__}, got {out[key]!r}"
                raise ConfigError(f"method {self.NAME!r}: hyper-parameter {key!r} {what}") from None
        return out

    def _check_augmentation(self, value: Any) -> None:
        """A preset name or a list of steps (the steps are checked when the pipeline is built)."""
        if not isinstance(value, (str, list)):
            raise ConfigError(
                f"method {self.NAME!r}: 'augmentation' must be a preset name "
                f"({', '.join(AUGMENTATION_PRESETS)}) or a list of steps, got {value!r}"
            )
        if isinstance(value, str) and value not in AUGMENTATION_PRESETS:
            raise ConfigError(
                f"method {self.NAME!r}: unknown augmentation preset {value!r}; accepted: {list(AUGMENTATION_PRESETS)}"
            )

    def _check_hparams(self) -> None:
        """Checks across hyper-parameters (override; each one's own range is in :attr:`PARAMS`); raise
        ``ConfigError`` via :meth:`_require`."""

    def _require(self, condition: bool, key: str, what: str) -> None:
        if not condition:
            raise ConfigError(
                f"method {self.NAME!r}: hyper-parameter {key!r} must be {what}, got {self.hparams.get(key)!r}"
            )

    # ----------------------------------------------------------------- public API
    @property
    def leads(self) -> tuple[str, ...]:
        return self.encoder.leads

    @property
    def default_augmentation(self) -> Any:
        """Augmentation spec for ``aclecg.augment.build_augmentation`` ("physio" for ACL-ECG, else "standard")."""
        return self.hparams["augmentation"]

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def momentum_update(self, progress: float, total_steps: int | None = None) -> None:
        """Called after each optimiser step with training progress in [0, 1] and the run's step count; no-op
        unless the method has EMA."""

    def extra_state_description(self) -> dict[str, Any]:
        """Plain description of non-parameter state (EMA target, queue); empty when there is none."""
        return {}

    def parameter_count(self) -> dict[str, int]:
        """Parameter elements: the online encoder, everything trainable, and everything (EMA targets included)."""
        return {
            "encoder": count_parameters(self.encoder),
            "trainable": count_parameters(self, trainable_only=True),
            "total": count_parameters(self),
        }


def _resolve_region_map(region_map: RegionMap | Mapping[str, Any] | None) -> RegionMap:
    if region_map is None:
        return default_region_map()
    if isinstance(region_map, RegionMap):
        return region_map
    try:
        return RegionMap.from_dict(region_map)
    except ValueError as exc:
        raise ConfigError(f"region_map: {exc}") from None
