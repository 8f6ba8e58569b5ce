"""What defines a pretraining run: :class:`PretrainConfig` (plain data, round-trips through JSON) and the run presets.

The presets are named starting points the CLI (``pretrain --preset``) and the app offer; each is a plain dict whose
values override the :class:`PretrainConfig` defaults. They live in one :class:`~aclecg.registry.Registry`,
:data:`RUN_PRESETS`; :data:`PRESETS` is the same entries as a plain dict, for code that reads them as one.

>>> RUN_PRESETS.get("cpu-quick")["epochs"]
2
>>> PretrainConfig(method="simclr", epochs=3).to_dict()["epochs"]
3

This module imports no torch: the builders of the encoder and the method import theirs when called.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aclecg.constraints import PRETRAIN_PARAMS, validate
from aclecg.errors import ConfigError
from aclecg.leads import LEADS, canonical_lead, default_region_map
from aclecg.registry import Registry

if TYPE_CHECKING:
    from aclecg.methods.base import SSLMethod
    from aclecg.models import EncoderConfig

__all__ = ["PRESETS", "RUN_PRESETS", "PretrainConfig", "build_encoder_config", "build_method"]


@dataclass
class PretrainConfig:
    """Everything that defines a pretraining run. Plain data: it round-trips through JSON."""

    method: str = "acl_ecg"
    data: list[str] = field(default_factory=list)
    encoder: str | dict[str, Any] = "small"
    method_hparams: dict[str, Any] = field(default_factory=dict)
    augmentation: str | list[dict[str, Any]] | None = None  # None: the method's default
    leads: list[str] = field(default_factory=lambda: list(LEADS))
    avr_policy: str = "exclude"
    exclude_splits: list[str] = field(default_factory=lambda: ["test"])
    exclude_folds: list[int] = field(default_factory=list)  # e.g. [9] when fold 9 will be a rotated test fold
    epochs: int = 30
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-5
    warmup_steps: int = 20
    grad_clip: float | None = 3.0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto (bf16/fp16 on CUDA, off on CPU), off, bf16, fp16
    compile: bool = False
    deterministic: bool = False  # CUDA only: deterministic cuDNN/cuBLAS kernels, no TF32 (CPU is always exact)
    checkpoint_every: int = 50
    keep_last: int = 3
    log_every: int = 1
    max_peaks: int = 32
    input_draws: str = "per_sample"  # see aclecg.constraints.INPUT_DRAWS

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every parameter against :data:`aclecg.constraints.PRETRAIN_PARAMS`, then the leads."""
        validate("pretraining config", PRETRAIN_PARAMS, asdict(self))  # values are kept as given (digests)
        try:
            self.leads = [canonical_lead(lead) for lead in self.leads]
        except ValueError as exc:
            raise ConfigError(f"leads: {exc}") from exc
        if len(set(self.leads)) != len(self.leads) or not self.leads:
            raise ConfigError(f"leads must be a non-empty list without repeats, got {self.leads}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> PretrainConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"configuration file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object")
        if "run" in data and "config" in data:  # a run's own config.json written by the engine
            data = dict(data["config"])
        data = fill_legacy(data)
        base_dir = path.parent
        data["data"] = [str(_resolve_relative(d, base_dir)) for d in data.get("data", [])]
        return cls.from_dict(data)


def _default_is_physio(method: Any) -> bool:
    from aclecg.methods import method_info  # torch: only for files that leave the augmentation to the method

    try:
        return method_info(str(method)).default_augmentation == "physio"
    except Exception:  # an unknown method is reported by the run that builds it
        return False


def fill_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """What a configuration file written before 2026-12-05 (it has no ``input_draws``) meant when it was written.

    Two defaults changed that day: augmentation draws became per-sample (``input_draws``), and Physio-AUG's crop
    stopped resampling (preset ``physio``; the old one is ``physio_v1``). Such a file means ``global_batch`` draws
    and, where it leaves the augmentation to a method whose default is Physio-AUG, ``physio_v1``; so a run resumes,
    and a shipped configuration reproduces, with what it was made with. :func:`legacy_form` is the inverse."""
    if "input_draws" in data:
        return data
    data = {**data, "input_draws": "global_batch"}
    if data.get("augmentation") is None and _default_is_physio(data.get("method", "acl_ecg")):
        data["augmentation"] = "physio_v1"
    return data


def legacy_form(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as a file written before 2026-12-05 states it, where it means what such a file means (the inverse
    of :func:`fill_legacy`; digests recorded from such files stay valid)."""
    cfg = dict(config)
    if cfg.get("input_draws") != "global_batch":
        return cfg
    del cfg["input_draws"]
    if cfg.get("augmentation") == "physio_v1" and _default_is_physio(cfg.get("method", "acl_ecg")):
        cfg["augmentation"] = None
    return cfg


def _resolve_relative(path: str, base: Path) -> Path:
    """Paths in a config file are relative to the repository (cwd) if they exist there, else to the file."""
    candidate = Path(path)
    if path.startswith("bundled:") or candidate.is_absolute() or candidate.exists():
        return candidate
    alt = base / candidate
    return alt if alt.exists() else candidate


# ------------------------------------------------------------------------------------------------------- presets
#: Named run presets: starting points the CLI and the app offer. Values override PretrainConfig defaults.
RUN_PRESETS: Registry[dict[str, Any]] = Registry("run preset")
RUN_PRESETS.register(
    "cpu-small", {"encoder": "small", "epochs": 20, "batch_size": 64, "lr": 1e-3, "checkpoint_every": 50}
)
RUN_PRESETS.register(
    "cpu-quick", {"encoder": "small", "epochs": 2, "batch_size": 64, "lr": 1e-3, "checkpoint_every": 10}
)
RUN_PRESETS.register(
    "gpu-base",
    {"encoder": "base", "epochs": 100, "batch_size": 256, "lr": 1e-3, "checkpoint_every": 200, "device": "cuda"},
)

#: The run presets as one plain dict (name -> overrides), the same entries as :data:`RUN_PRESETS`.
PRESETS: dict[str, dict[str, Any]] = dict(RUN_PRESETS.items())


# ------------------------------------------------------------------------------------------------------ builders
def build_encoder_config(spec: str | dict[str, Any], leads: Sequence[str]) -> EncoderConfig:
    """The :class:`~aclecg.models.EncoderConfig` of a config's ``encoder`` (a preset name or a dict) for ``leads``."""
    from aclecg.models import ENCODER_PRESET_REGISTRY, EncoderConfig

    data = ENCODER_PRESET_REGISTRY.get(spec).to_dict() if isinstance(spec, str) else dict(spec)
    data["leads"] = list(leads)
    return EncoderConfig.from_dict(data)


def build_method(config: PretrainConfig) -> SSLMethod:
    """The self-supervised method of ``config``, with a freshly initialised encoder (draws from torch's RNG)."""
    from aclecg.methods import create_method

    encoder_config = build_encoder_config(config.encoder, config.leads)
    return create_method(
        config.method,
        encoder_config,
        leads=tuple(config.leads),
        region_map=default_region_map(config.avr_policy),
        **config.method_hparams,
    )
