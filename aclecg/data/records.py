"""The record type every reader yields, and the checks that turn raw signals into canonical 12-lead arrays.

A reader's job ends at :class:`Record`: float64 signals ``(12, n)`` in mV, in the canonical lead order
:data:`aclecg.leads.LEADS`, at the record's own sampling rate, with labels per label set. Everything that can go
wrong with a record is reported as :class:`aclecg.errors.DataError` whose message names the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aclecg.errors import DataError
from aclecg.leads import INDEPENDENT_LEADS, LEADS, canonical_lead, derive_limb_leads

#: Amplitude below which a lead counts as flat (peak-to-peak, mV).
FLAT_TOLERANCE_MV = 1e-6

_UNIT_SCALE = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}


@dataclass
class Record:
    """One ECG recording in canonical form (before resampling, filtering or windowing)."""

    record_id: str
    patient_id: str
    signals: np.ndarray  # float64 (12, n), mV, canonical lead order
    fs: float
    source: str
    labels: dict[str, list[str]] = field(default_factory=dict)
    fold: int | None = None
    age: float = float("nan")
    sex: str = ""
    original_leads: tuple[str, ...] = LEADS
    warnings: list[str] = field(default_factory=list)

    @property
    def leads(self) -> tuple[str, ...]:
        return LEADS

    @property
    def n_samples(self) -> int:
        return int(self.signals.shape[1])

    @property
    def seconds(self) -> float:
        return self.n_samples / self.fs


@dataclass(frozen=True)
class Skipped:
    """A record that could not be used: the file and a one-line reason."""

    file: str
    reason: str

    def message(self) -> str:
        return f"{self.file}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason}


def unit_scale(unit: str, source: str, lead: str) -> float:
    """Factor that converts a physical unit string to mV (``mV``, ``uV``, ``V``; case-insensitive)."""
    key = str(unit).strip().lower()
    if key not in _UNIT_SCALE:
        raise DataError(f"{source}: lead {lead} has unknown unit {unit!r} (expected mV, uV or V)")
    return _UNIT_SCALE[key]


def canonicalise(signals: np.ndarray, lead_names: Sequence[str], source: str) -> tuple[np.ndarray, list[str]]:
    """Reorder ``signals`` ``(n_leads, n)`` to the canonical 12 leads, deriving missing limb leads.

    Accepts the full 12 leads in any order and spelling, or the 8 independent leads (two of I/II/III plus
    V1-V6), from which the other limb leads follow (Einthoven/Goldberger). Returns the ``(12, n)`` array and
    a list of warnings. Raises :class:`DataError` naming ``source`` for unknown, duplicate or missing leads.
    """
    signals = np.asarray(signals, dtype=np.float64)
    if signals.ndim != 2 or signals.shape[0] != len(lead_names):
        raise DataError(
            f"{source}: signal array has shape {signals.shape} but the header names {len(lead_names)} leads"
        )
    by_name: dict[str, np.ndarray] = {}
    for name, row in zip(lead_names, signals):
        try:
            lead = canonical_lead(name)
        except ValueError:
            raise DataError(f"{source}: unknown lead name {name!r} (expected the 12 standard leads)") from None
        if lead in by_name:
            raise DataError(f"{source}: lead {lead} appears twice")
        by_name[lead] = row
    warnings: list[str] = []
    missing = [lead for lead in LEADS if lead not in by_name]
    if missing:
        precordial_missing = [lead for lead in missing if lead in INDEPENDENT_LEADS[2:]]
        limb_have = [lead for lead in ("I", "II", "III") if lead in by_name]
        if precordial_missing or len(limb_have) < 2:
            raise DataError(
                f"{source}: missing leads {', '.join(missing)} (need all 12, or two of I/II/III "
                f"plus V1-V6 to derive the rest)"
            )
        by_name = derive_limb_leads(by_name)
        warnings.append(f"{source}: derived {', '.join(missing)} from {', '.join(limb_have)}")
    return np.stack([by_name[lead] for lead in LEADS]), warnings


def check_values(signals: np.ndarray, source: str, max_flat: int = 1) -> list[str]:
    """Reject non-finite values and more than ``max_flat`` flat (constant) leads; return warnings.

    Policy (documented in docs/data.md): a record whose leads are *all* finite but where two or more leads are
    constant (e.g. Ningbo JS45542 with V1-V6 all zero) is skipped; a single flat lead is kept with a warning
    (after z-scoring that lead is all zeros).
    """
    finite = np.isfinite(signals)
    if not finite.all():
        bad = [LEADS[i] for i in np.flatnonzero(~finite.all(axis=1))]
        raise DataError(f"{source}: non-finite values (NaN/inf) in leads {', '.join(bad)}")
    if signals.shape[1] == 0:
        raise DataError(f"{source}: record has no samples")
    ptp = signals.max(axis=1) - signals.min(axis=1)
    flat = [LEADS[i] for i in np.flatnonzero(ptp <= FLAT_TOLERANCE_MV)]
    if len(flat) > max_flat:
        raise DataError(f"{source}: {len(flat)} flat (constant) leads: {', '.join(flat)}")
    return [f"{source}: flat lead {flat[0]} kept (all zeros after z-scoring)"] if flat else []
