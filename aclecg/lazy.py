"""Lazily loaded package attributes (PEP 562), shared by :mod:`aclecg.training` and :mod:`aclecg.evaluation`.

A package lists ``{public name: module that defines it}`` and hands its ``__getattr__`` to :func:`load`, so that
importing one light submodule (e.g. a config) does not import the package's heavy parts (torch, the engine).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from typing import Any


def load(package: str, exports: Mapping[str, str], namespace: MutableMapping[str, Any], name: str) -> Any:
    """``name`` from its module in ``exports`` (absolute, or relative to ``package``), kept in ``namespace``."""
    module = exports.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    target = module if "." in module else f"{package}.{module}"
    value = getattr(importlib.import_module(target), name)
    namespace[name] = value  # once loaded, a plain module attribute
    return value
