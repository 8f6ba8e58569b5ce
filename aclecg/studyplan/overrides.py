"""``--set KEY=VALUE``: dotted keys of a study file overridden on the command line, before validation.

``KEY`` is a dotted path into the study file's tables (``evaluation.max_steps``, ``pretrain.overrides.max_steps``,
``pretrain.seeds.8``); a number selects an element of the ``[[sweep]]`` array (``sweep.0.fractions``), and
``sweep`` alone replaces the whole array (``sweep=[{group="probe", ...}]``, TOML inline tables), which is how
stages are dropped. Missing tables on the way are created. ``VALUE`` is a TOML value (``1``, ``0.5``, ``true``,
``[0.001]``, ``"text"``, ``{10 = 0, 8 = 2}``); a value that is not TOML and does not start like a list, table or
quoted string is taken as a plain string (``data.downstream=/data/ptbxl``). The overridden file is then validated
as the file is, and an error caused by an override names it (``FILE --set KEY: ...``).

A study whose overrides change anything outside ``[study]`` gets its own runs folder, ``<study.runs>/set-<hash of
the effective study>``, unless ``--set study.runs=...`` names one: its tasks and sweep folders never mix with the
file's own (``docs/cluster.md``, "Overrides").
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aclecg.errors import ConfigError
from aclecg.evaluation.config import digest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

__all__ = ["Override", "apply_overrides", "blame", "parse_override", "runs_suffix"]

_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


@dataclass(frozen=True)
class Override:
    """One ``--set KEY=VALUE``: the key as given, its parts, and the parsed value."""

    key: str
    parts: tuple[str, ...]
    value: Any


def parse_override(text: str) -> Override:
    """``KEY=VALUE`` parsed (see the module docstring); a malformed one is a one-line :class:`ConfigError`."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. evaluation.max_steps=10), got {text!r}")
    if not _KEY.match(key):
        raise ConfigError(f"--set {key}: KEY must be dotted names or indices (e.g. sweep.0.fractions)")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError as exc:
        if not raw or raw[0] in "[{\"'":
            raise ConfigError(f"--set {key}: {raw!r} is not a TOML value ({exc})") from None
        value = raw  # a bare word or path: a string
    return Override(key, tuple(key.split(".")), value)


def apply_overrides(doc: Mapping[str, Any], overrides: Sequence[Override]) -> dict[str, Any]:
    """A copy of the parsed study file with the overrides applied in order (the file itself is not changed)."""
    out = copy.deepcopy(dict(doc))
    for o in overrides:
        node: Any = out
        for depth, part in enumerate(o.parts):
            last = depth == len(o.parts) - 1
            where = ".".join(o.parts[:depth]) or "the file"
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f"--set {o.key}: {where} has {len(node)} element(s); select one by its index 0-"
                        f"{len(node) - 1}, or replace the whole array with --set {where}=[...]"
                    )
                index: Any = int(part)
            elif isinstance(node, dict):
                index = part
                if not last and not isinstance(node.get(part), (dict, list)):
                    if part in node:
                        raise ConfigError(
                            f"--set {o.key}: {'.'.join(o.parts[: depth + 1])} is {node[part]!r}, not a table"
                        )
                    node[part] = {}  # a table the file does not have yet
            else:
                raise ConfigError(f"--set {o.key}: {where} is {node!r}, not a table")
            if last:
                node[index] = copy.deepcopy(o.value)
            else:
                node = node[index]
    return out


def _normal(key: str) -> str:
    """An error's key as dotted parts: ``sweep[1].arms`` -> ``sweep.1.arms``, ``[data]`` -> ``data``."""
    if key.startswith("["):  # a table: [data], [[sweep]]
        key = key.strip("[]")
    return re.sub(r"\[(\d+)\]", r".\1", key)


def blame(message: str, path: str, overrides: Sequence[Override]) -> str:
    """A validation error of the overridden file, naming the override that caused it.

    ``FILE: KEY what`` becomes ``FILE --set OVERRIDE: KEY what`` when an override set ``KEY``, a table holding it or
    a key inside it (the last such override); an error no override explains names them all (``FILE (with --set A,
    --set B): ...``): the file alone may be valid."""
    head = f"{path}: "
    if not overrides or not message.startswith(head):
        return message
    rest = message[len(head) :]
    key = _normal(rest.split(" ", 1)[0])
    for o in reversed(overrides):
        if key == o.key or key.startswith(o.key + ".") or o.key.startswith(key + "."):
            return f"{path} --set {o.key}: {rest}"
    names = ", ".join(f"--set {o.key}" for o in overrides)
    return f"{path} (with {names}): {rest}"


def runs_suffix(doc: Mapping[str, Any], effective: Mapping[str, Any], overrides: Sequence[Override]) -> str | None:
    """The runs sub-folder of an overridden study (``set-<hash>``), or ``None``: no override changes anything
    outside ``[study]``, or ``study.runs`` is itself overridden."""
    if any(o.parts[:2] == ("study", "runs") or o.parts == ("study",) for o in overrides):
        return None
    mine = {k: v for k, v in effective.items() if k != "study"}
    if mine == {k: v for k, v in doc.items() if k != "study"}:
        return None
    return f"set-{digest(mine)[:12]}"
