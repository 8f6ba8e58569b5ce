"""One registry of self-supervised methods (in the style of timm's model registry) on :class:`aclecg.registry.Registry`.

>>> from aclecg.methods import create_method, list_methods
>>> [m.name for m in list_methods()][:3]
['acl_ecg', 'barlow', 'byol']
>>> method = create_method("simclr", "small", temperature=0.2)
>>> method.hparams["temperature"]
0.2
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from aclecg.leads import LEADS, RegionMap
from aclecg.models import EncoderConfig, resolve_encoder_config
from aclecg.registry import Registry

if TYPE_CHECKING:
    from aclecg.methods.base import SSLMethod

__all__ = [
    "ALIASES",
    "METHODS",
    "MethodInfo",
    "create_method",
    "get_method_class",
    "list_methods",
    "method_info",
    "register_method",
]

#: Every registered method class, by name (``Registry.get`` is case-insensitive and resolves the aliases).
METHODS: Registry[type[SSLMethod]] = Registry("method")
#: Alternative spellings accepted wherever a method name is (alias -> registered name).
ALIASES: dict[str, str] = {
    "acl-ecg": "acl_ecg",
    "aclecg": "acl_ecg",
    "barlow_twins": "barlow",
    "barlowtwins": "barlow",
    "moco_v2": "moco",
    "mocov2": "moco",
}

T = TypeVar("T", bound="type[SSLMethod]")


@dataclass(frozen=True)
class MethodInfo:
    """What the registry knows about a method, as plain data."""

    name: str
    title: str
    description: str
    paper: str
    reconstruction: bool
    default_augmentation: Any
    defaults: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "paper": self.paper,
            "reconstruction": self.reconstruction,
            "default_augmentation": self.default_augmentation,
            "defaults": copy.deepcopy(self.defaults),
        }


def register_method(cls: T) -> T:
    """Class decorator adding an :class:`~aclecg.methods.base.SSLMethod` subclass under ``cls.NAME``."""
    for attr in ("NAME", "TITLE", "PAPER", "DESCRIPTION", "DEFAULTS"):
        if not getattr(cls, attr, None):
            raise TypeError(f"{cls.__name__} needs a non-empty class attribute {attr} to be registered")
    if "augmentation" not in cls.DEFAULTS:
        raise TypeError(f"{cls.__name__}.DEFAULTS needs an 'augmentation' entry")
    unchecked = sorted(set(cls.DEFAULTS) - {"augmentation"} - set(cls.PARAMS))
    if unchecked:
        raise TypeError(f"{cls.__name__}.PARAMS needs a constraint for each hyper-parameter; missing {unchecked}")
    if cls.NAME in METHODS and METHODS.get(cls.NAME) is not cls:
        raise TypeError(f"a method named {cls.NAME!r} is already registered ({METHODS.get(cls.NAME).__name__})")
    METHODS.register(cls.NAME, cls, aliases=[alias for alias, name in ALIASES.items() if name == cls.NAME])
    return cls


def get_method_class(name: str) -> type[SSLMethod]:
    """The registered class for ``name`` (case-insensitive; ``acl-ecg`` and a few aliases accepted)."""
    return METHODS.get(name)


def loss_terms(name: str | None) -> tuple[str, ...]:
    """The loss terms method ``name`` logs (its ``LOSS_TERMS``); just ``("loss",)`` for an unknown or no name."""
    if not name or str(name) not in METHODS:
        return ("loss",)
    return tuple(get_method_class(str(name)).LOSS_TERMS)


def method_info(name: str) -> MethodInfo:
    cls = get_method_class(name)
    return MethodInfo(
        name=cls.NAME,
        title=cls.TITLE,
        description=cls.DESCRIPTION,
        paper=cls.PAPER,
        reconstruction=bool(cls.RECONSTRUCTION),
        default_augmentation=cls.DEFAULTS["augmentation"],
        defaults=copy.deepcopy(dict(cls.DEFAULTS)),
    )


def list_methods() -> list[MethodInfo]:
    """All registered methods, in registration order."""
    return [method_info(name) for name in METHODS]


def create_method(
    name: str,
    encoder_config: EncoderConfig | Mapping[str, Any] | str | None = None,
    leads: Sequence[str] = LEADS,
    region_map: RegionMap | Mapping[str, Any] | None = None,
    **hparams: Any,
) -> Any:
    """Build method ``name`` with an encoder for ``leads`` (which replace the config's leads).

    ``encoder_config`` is an :class:`EncoderConfig`, a plain dict or a preset name ("small", "base").
    ``region_map`` defaults to :func:`aclecg.leads.default_region_map` (used by region-aware methods).
    Unknown hyper-parameters or bad values raise :class:`~aclecg.errors.ConfigError`.
    """
    cls = get_method_class(name)
    config = resolve_encoder_config(encoder_config, leads)
    return cls(config, region_map=region_map, **hparams)
