"""The preprocessing contract: what an encoder's input windows are, recorded with the data and with the weights.

A :class:`Contract` names everything ``prepare`` does to a signal that an encoder learns to expect: the sampling
rate, the window (samples and seconds), the band-pass actually applied (the high edge capped at 0.45 fs), the filter,
the normalisation, the units the readers deliver before it, the lead order, and :data:`PREPROCESSING_VERSION` (the
version of ``prepare``'s signal processing). Prepared datasets record it in ``manifest.json`` (``contract``),
checkpoints in their payload (``contract``), exported encoders in their metadata.

Older files without one read as the contract they imply (:func:`implied`: the current pipeline's, with their own
rate, window and leads), said once per file by a :class:`ContractWarning`. :func:`mismatch` compares an encoder's
contract with the data's and names every difference in one line.

This module imports nothing above :mod:`aclecg.leads`, so the data layer and the checkpoint code can both use it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from aclecg.errors import CheckpointError, ConfigError
from aclecg.leads import LEADS, canonical_lead

__all__ = [
    "PREPROCESSING_VERSION",
    "Contract",
    "ContractWarning",
    "check",
    "implied",
    "mismatch",
    "of_record",
    "say_implied_once",
]

#: The version of ``prepare``'s signal processing (resampling, filter, windows, normalisation). Bump it whenever that
#: processing changes what a window holds; encoders trained on another version are then flagged.
PREPROCESSING_VERSION = 1

#: What the current pipeline does (``aclecg.data.preprocess``): the defaults an older file implies.
DEFAULT_BAND_HZ = (0.5, 40.0)
DEFAULT_FILTER_ORDER = 2
FILTER = "butterworth-zero-phase"
NORMALISATION = "zscore-per-window-lead"
UNITS = "mV"
RESAMPLE = "resample_poly"


class ContractWarning(UserWarning):
    """A file without a recorded contract was read with the contract it implies."""


def effective_band(band_hz: tuple[float, float], fs: float) -> tuple[float, float]:
    """The band ``prepare`` really applies at ``fs``: the high edge is capped at 0.45 fs."""
    return (float(band_hz[0]), float(min(float(band_hz[1]), 0.45 * float(fs))))


@dataclass(frozen=True)
class Contract:
    """What an encoder's input windows are (see the module docstring). ``band_hz`` is the band as applied."""

    fs: float
    n_samples: int
    seconds: float
    band_hz: tuple[float, float]
    filter: str = FILTER
    filter_order: int = DEFAULT_FILTER_ORDER
    resample: str = RESAMPLE
    normalisation: str = NORMALISATION
    units: str = UNITS
    leads: tuple[str, ...] = LEADS
    version: int = PREPROCESSING_VERSION

    def __post_init__(self) -> None:
        if not (isinstance(self.fs, (int, float)) and not isinstance(self.fs, bool) and self.fs > 0):
            raise ConfigError(f"contract field 'fs' must be a positive number, got {self.fs!r}")
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, int) or self.n_samples < 1:
            raise ConfigError(f"contract field 'n_samples' must be a positive integer, got {self.n_samples!r}")
        if isinstance(self.leads, str) or not self.leads:
            raise ConfigError("contract field 'leads' must list at least one lead")
        try:
            object.__setattr__(self, "leads", tuple(canonical_lead(str(x)) for x in self.leads))
        except ValueError as exc:
            raise ConfigError(f"contract field 'leads': {exc}") from None
        band = tuple(self.band_hz)
        if len(band) != 2 or not all(isinstance(v, (int, float)) for v in band) or not 0 <= band[0] < band[1]:
            raise ConfigError(
                f"contract field 'band_hz' must be [low, high] with 0 <= low < high, got {self.band_hz!r}"
            )
        object.__setattr__(self, "band_hz", (float(band[0]), float(band[1])))
        object.__setattr__(self, "fs", float(self.fs))
        object.__setattr__(self, "seconds", float(self.seconds))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (lists for tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Any, where: str = "contract") -> Contract:
        """A contract from plain data; ``seconds`` may be left out (``n_samples / fs``). Unknown keys, missing or bad
        values raise one ``ConfigError`` naming ``where`` and the field."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: a contract must be a mapping of fields, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown contract field(s) {unknown}; accepted: {sorted(known)}")
        missing = [k for k in ("fs", "n_samples", "band_hz") if k not in data]
        if missing:
            raise ConfigError(f"{where}: the contract lacks {', '.join(missing)}")
        values = dict(data)
        if isinstance(values.get("fs"), (int, float)) and isinstance(values.get("n_samples"), int):
            values.setdefault("seconds", values["n_samples"] / values["fs"])
        for key in ("leads", "band_hz"):
            if key in values and (isinstance(values[key], (str, bytes)) or not isinstance(values[key], (list, tuple))):
                raise ConfigError(f"{where}: contract field {key!r} must be a list, got {values[key]!r}")
            if key in values:
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: bad contract ({exc})") from None

    # --- words ------------------------------------------------------------------------------------------
    def band_words(self) -> str:
        return f"{self.band_hz[0]:g}-{self.band_hz[1]:g} Hz"

    def describe(self) -> str:
        """One line: ``100 Hz, 1000-sample (10 s) windows of 12 leads (I, ..., V6), 0.5-40 Hz band-passed ...``."""
        return (
            f"{self.fs:g} Hz, {self.n_samples}-sample ({self.seconds:g} s) windows of {len(self.leads)} leads "
            f"({', '.join(self.leads)}), {self.band_words()} band-passed ({self.filter} order {self.filter_order}, "
            f"{self.resample}), {self.normalisation.replace('-', ' ')}, from {self.units}, "
            f"preprocessing v{self.version}"
        )

    def short(self) -> str:
        """``100 Hz, 1000 samples, 0.5-40 Hz, zscore-per-window-lead, v1``."""
        return f"{self.fs:g} Hz, {self.n_samples} samples, {self.band_words()}, {self.normalisation}, v{self.version}"

    def summary(self) -> str:
        """Short words for a mismatch line: ``0.5-40 Hz band-passed, z-scored windows``."""
        norm = "z-scored" if self.normalisation == NORMALISATION else self.normalisation
        return f"{self.band_words()} band-passed, {norm} windows"


def implied(
    fs: float,
    n_samples: int,
    leads: Any = LEADS,
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    filter_order: int = DEFAULT_FILTER_ORDER,
) -> Contract:
    """The contract of the current pipeline at this rate, window and leads (what a file without one implies)."""
    return Contract(
        fs=float(fs),
        n_samples=int(n_samples),
        seconds=int(n_samples) / float(fs),
        band_hz=effective_band(band_hz, fs),
        filter_order=int(filter_order),
        leads=tuple(str(x) for x in leads),
    )


def differences(trained: Contract, data: Contract) -> list[tuple[str, str]]:
    """Every way ``data`` differs from what an encoder ``trained`` on expects: ``(field, words)`` pairs (the
    encoder's leads may be a subset of the data's)."""
    out: list[tuple[str, str]] = []
    if not math.isclose(trained.fs, data.fs):
        out.append(
            ("fs", f"trained at fs={trained.fs} Hz; this data is at fs={data.fs} Hz (prepare it at {trained.fs:g} Hz)")
        )
    if trained.n_samples != data.n_samples:
        out.append(
            (
                "n_samples",
                f"trained on windows of n_samples={trained.n_samples}; this data has n_samples={data.n_samples}",
            )
        )
    missing = [lead for lead in trained.leads if lead not in data.leads]
    if missing:
        out.append(("leads", f"trained on leads {list(trained.leads)}; this data lacks {missing}"))
    if not all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(trained.band_hz, data.band_hz)):
        out.append(("band_hz", f"trained on {trained.summary()}; this data is {data.band_words()}"))
    for key, what in (
        ("filter", "filter"),
        ("filter_order", "filter order"),
        ("resample", "resampling"),
        ("normalisation", "normalisation"),
        ("units", "units"),
        ("version", "preprocessing version"),
    ):
        a, b = getattr(trained, key), getattr(data, key)
        if a != b:
            out.append((key, f"{what} {a} when trained; this data {b}"))
    return out


def mismatch(trained: Contract, data: Contract, name: str = "encoder") -> str | None:
    """One line naming every difference between an encoder's contract and the data's, or ``None`` when they agree."""
    found = differences(trained, data)
    return f"{name} does not fit this data: " + "; ".join(words for _, words in found) if found else None


def check(trained: Contract, data: Contract, name: str = "encoder") -> None:
    """Raise one :class:`CheckpointError` line naming every difference; a difference of the preprocessing version
    alone (the same rate, window, leads, filter and normalisation) is a :class:`ContractWarning`."""
    line = mismatch(trained, data, name)
    if line is None:
        return
    if all(key == "version" for key, _ in differences(trained, data)):
        warnings.warn(line, ContractWarning, stacklevel=3)
        return
    raise CheckpointError(line)


def of_record(recorded: Any, fallback: Contract, what: str, key: str) -> Contract:
    """The contract a file records (``recorded``, plain data), else ``fallback`` (what it implies), said once."""
    if recorded is None:
        say_implied_once(what, key, fallback)
        return fallback
    return Contract.from_dict(recorded, what)


#: Files already said to have no contract (said once per process).
_SAID: set[str] = set()


def say_implied_once(what: str, key: str, contract: Contract) -> None:
    """Warn once per ``key`` that ``what`` records no contract and is read with the one it implies."""
    if key in _SAID:
        return
    _SAID.add(key)
    warnings.warn(
        f"{what} records no preprocessing contract; read as the current pipeline's ({contract.short()})",
        ContractWarning,
        stacklevel=3,
    )
