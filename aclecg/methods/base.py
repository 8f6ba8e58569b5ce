"""The common base of all self-supervised methods, hyper-parameter validation, MLP heads and EMA helpers.

A method owns the online :class:`~aclecg.models.ECGEncoder` (``.encoder``, the one evaluation uses) plus its
heads, and maps two augmented views ``(B, L, T)`` to a dict of loss terms with key ``"loss"``. Everything needed
to resume (EMA targets as submodules, queues as buffers) lives in ``state_dict()``.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar, Mapping

import torch
from torch import Tensor, nn

from aclecg.errors import ConfigError
from aclecg.leads import RegionMap, default_region_map
from aclecg.models import ECGEncoder, EncoderConfig, count_parameters, resolve_encoder_config

__all__ = ["SSLMethod", "mlp", "make_momentum_copy", "ema_update_", "cosine_momentum", "AUGMENTATION_PRESETS"]

#: Augmentation preset names understood by ``aclecg.augment.build_augmentation``.
AUGMENTATION_PRESETS: tuple[str, ...] = ("physio", "standard", "none")


def mlp(in_dim: int, hidden_dim: int, out_dim: int, n_layers: int = 2, last_bn: bool = False,
        last_bn_affine: bool = True) -> nn.Sequential:
    """Projector/predictor: ``n_layers`` linear layers with BN + ReLU between them (SimCLR/BYOL style).

    ``last_bn`` appends a BatchNorm1d to the output (SimSiam, MoCo v3); ``last_bn_affine=False`` makes it a
    pure standardisation. Inputs may be ``(N, C)`` or ``(N, K, C)`` (the extra axis is folded into the batch).
    """
    if n_layers < 1:
        raise ConfigError(f"an MLP needs at least one layer, got {n_layers}")
    layers: list[nn.Module] = []
    dims = [in_dim] + [hidden_dim] * (n_layers - 1) + [out_dim]
    for i in range(n_layers):
        last = i == n_layers - 1
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=last and not last_bn))
        if not last:
            layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU(inplace=True)]
    if last_bn:
        layers.append(nn.BatchNorm1d(out_dim, affine=last_bn_affine))
    return _FoldMLP(*layers)


class _FoldMLP(nn.Sequential):
    """An MLP that accepts ``(N, ..., C)`` by folding the middle axes into the batch (shared across leads)."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if x.dim() == 2:
            return super().forward(x)
        lead_shape = x.shape[:-1]
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(*lead_shape, -1)


def make_momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` for an EMA/momentum target.

    Its BatchNorm layers keep no running statistics (they always normalise with the batch, as the online
    branch does in training), so the copy changes *only* through :func:`ema_update_`.
    """
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    for m in target.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``theta_target <- m * theta_target + (1 - m) * theta_online`` for every parameter."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)


def cosine_momentum(base: float, progress: float) -> float:
    """BYOL's schedule ``1 - (1 - base) * (cos(pi * progress) + 1) / 2``: ``base`` at 0, 1 at the end."""
    p = min(max(float(progress), 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * p) + 1.0) / 2.0


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
    ``super().__init__``, validate ranges in :meth:`_check_hparams`, and implement :meth:`forward`.
    """

    NAME: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    PAPER: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    RECONSTRUCTION: ClassVar[bool] = False
    #: Default hyper-parameters as plain data (every method has ``augmentation``).
    DEFAULTS: ClassVar[dict[str, Any]] = {"augmentation": "standard"}
    #: Allowed values for categorical hyper-parameters.
    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def __init__(self, encoder_config: "EncoderConfig | Mapping[str, Any] | str | None" = None,
                 region_map: "RegionMap | Mapping[str, Any] | None" = None, **hparams: Any) -> None:
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
            raise ConfigError(f"method {self.NAME!r}: unknown hyper-parameter(s) {unknown}; "
                              f"accepted: {sorted(defaults)}")
        out = dict(defaults)
        for key, value in given.items():
            if key == "augmentation":
                if not (isinstance(value, str) or isinstance(value, list)):
                    raise ConfigError(f"method {self.NAME!r}: 'augmentation' must be a preset name "
                                      f"({', '.join(AUGMENTATION_PRESETS)}) or a list of steps, got {value!r}")
                if isinstance(value, str) and value not in AUGMENTATION_PRESETS:
                    raise ConfigError(f"method {self.NAME!r}: unknown augmentation preset {value!r}; "
                                      f"accepted: {list(AUGMENTATION_PRESETS)}")
            elif not _type_ok(value, defaults[key]) and not (defaults[key] is None and value is None):
                raise ConfigError(f"method {self.NAME!r}: hyper-parameter {key!r} must be of type "
                                  f"{type(defaults[key]).__name__}, got {value!r}")
            if key in self.CHOICES and value not in self.CHOICES[key]:
                raise ConfigError(f"method {self.NAME!r}: hyper-parameter {key!r} must be one of "
                                  f"{list(self.CHOICES[key])}, got {value!r}")
            if isinstance(defaults[key], float) and value is not None:
                value = float(value)
            out[key] = value
        return out

    def _check_hparams(self) -> None:
        """Range checks (override); raise ``ConfigError`` via :meth:`_require`."""

    def _require(self, condition: bool, key: str, what: str) -> None:
        if not condition:
            raise ConfigError(f"method {self.NAME!r}: hyper-parameter {key!r} must be {what}, "
                              f"got {self.hparams.get(key)!r}")

    def _positive(self, *keys: str) -> None:
        for key in keys:
            self._require(self.hparams[key] > 0, key, "> 0")

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

    def momentum_update(self, progress: float) -> None:
        """Called after each optimiser step with training progress in [0, 1]; no-op unless the method has EMA."""

    def extra_state_description(self) -> dict[str, Any]:
        """Plain description of non-parameter state (EMA target, queue); empty when there is none."""
        return {}

    def parameter_count(self) -> dict[str, int]:
        """Parameter elements: the online encoder, everything trainable, and everything (EMA targets included)."""
        return {"encoder": count_parameters(self.encoder),
                "trainable": count_parameters(self, trainable_only=True),
                "total": count_parameters(self)}


def _resolve_region_map(region_map: "RegionMap | Mapping[str, Any] | None") -> RegionMap:
    if region_map is None:
        return default_region_map()
    if isinstance(region_map, RegionMap):
        return region_map
    try:
        return RegionMap.from_dict(region_map)
    except ValueError as exc:
        raise ConfigError(f"region_map: {exc}") from None
