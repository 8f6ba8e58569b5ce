"""One small registry helper (in the style of timm's): named entries, aliases, and errors that list the choices.

Methods, augmentation steps, encoder presets and run presets each keep one :class:`Registry`, so looking a name
up, listing the choices for the CLI and the app, and the error for a typo behave the same everywhere.

>>> colours = Registry("colour")
>>> _ = colours.register("red", "#ff0000", aliases=("rouge",))
>>> colours.get("Rouge"), colours.names()
('#ff0000', ['red'])
>>> colours.get("blue")
Traceback (most recent call last):
...
aclecg.errors.ConfigError: unknown colour 'blue'; available: red
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from aclecg.errors import ConfigError

__all__ = ["LazyNames", "Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by canonical (lower-case) name, plus aliases; :meth:`get` raises :class:`ConfigError` on a miss."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, entry: T, aliases: Iterable[str] = ()) -> T:
        key = self._key(name)
        if key in self._entries and self._entries[key] is not entry:
            raise TypeError(f"a {self.kind} named {name!r} is already registered")
        self._entries[key] = entry
        for alias in aliases:
            self._aliases[self._key(alias)] = key
        return entry

    def unregister(self, name: str) -> T:
        """Remove entry ``name`` and its aliases (a test's temporary entry); returns the entry."""
        key = self.canonical(name)
        self._aliases = {alias: target for alias, target in self._aliases.items() if target != key}
        return self._entries.pop(key)

    def decorator(self, name_of: Callable[[T], str]) -> Callable[[T], T]:
        """A class decorator registering ``cls`` under ``name_of(cls)``."""

        def register(entry: T) -> T:
            return self.register(name_of(entry), entry)

        return register

    def canonical(self, name: str) -> str:
        key = self._key(name)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; available: {', '.join(self._entries)}")
        return key

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self._key(name)
        return self._aliases.get(key, key) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _key(name: str) -> str:
        return str(name).strip().lower()


class LazyNames:
    """The names of a registry that is loaded on first use: ``argparse`` choices that list every entry
    without importing the registry's modules while the parser is built (give the argument a ``metavar``,
    which argparse then shows instead of iterating the choices)."""

    def __init__(self, load: Callable[[], Registry]) -> None:
        self._load = load

    def __iter__(self) -> Iterator[str]:
        return iter(self._load().names())

    def __contains__(self, name: object) -> bool:
        return name in self._load().names()

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        return f"LazyNames({self._load().kind})"
