"""Lead knowledge in one place: canonical names, name aliases, limb-lead derivation and anatomical regions.

Every other module asks this one which leads exist, in which order, and which region a lead belongs to.

>>> from aclecg.leads import LEADS, canonical_lead, default_region_map
>>> canonical_lead("AVR")
'aVR'
>>> default_region_map().regions["inferior"]
('II', 'III', 'aVF')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: Canonical 12-lead order used everywhere in the package (arrays are ``(..., 12, T)`` in this order).
LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

#: The eight independent leads (two limb leads and the six precordial leads); the other four follow from them.
INDEPENDENT_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")

#: The lead set of the LCD/ELIC authors' pipeline (II, III, V1-V6).
AUTHORS_LEADS: tuple[str, ...] = ("II", "III", "V1", "V2", "V3", "V4", "V5", "V6")

_ALIASES: dict[str, str] = {name.lower(): name for name in LEADS}
_ALIASES.update(
    {"lead i": "I", "lead ii": "II", "lead iii": "III", "d1": "I", "d2": "II", "d3": "III", "-avr": "aVR"}
)  # "-aVR" is never silently flipped: it is rejected below.
_ALIASES.pop("-avr")


def canonical_lead(name: str) -> str:
    """Return the canonical spelling of a lead name (``'AVR'``, ``'avr'``, ``'aVR'`` all give ``'aVR'``).

    Raises ``ValueError`` naming the lead when it is not one of the 12 standard leads.
    """
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown lead name {name!r}; expected one of {', '.join(LEADS)}")
    return _ALIASES[key]


def lead_indices(leads: Sequence[str]) -> list[int]:
    """Positions of ``leads`` in the canonical order (names are canonicalised first)."""
    return [LEADS.index(canonical_lead(lead)) for lead in leads]


def derive_limb_leads(signals: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Complete the six limb leads from any two of I, II and III (Einthoven and Goldberger).

    ``signals`` maps canonical lead names to 1-D arrays of equal length. Leads already present are kept as
    they are; missing ones among I, II, III, aVR, aVL, aVF are derived:

    * Einthoven: II = I + III
    * Goldberger: aVR = -(I + II) / 2, aVL = I - II / 2, aVF = II - I / 2

    Raises ``ValueError`` when fewer than two of I, II, III are present.
    """
    out = {canonical_lead(k): np.asarray(v) for k, v in signals.items()}
    have = [lead for lead in ("I", "II", "III") if lead in out]
    if len(have) < 2:
        raise ValueError(f"cannot derive limb leads: need two of I, II, III, got {have or 'none'}")
    if "I" not in out:
        out["I"] = out["II"] - out["III"]
    if "II" not in out:
        out["II"] = out["I"] + out["III"]
    if "III" not in out:
        out["III"] = out["II"] - out["I"]
    lead_i, lead_ii = out["I"], out["II"]
    out.setdefault("aVR", -(lead_i + lead_ii) / 2)
    out.setdefault("aVL", lead_i - lead_ii / 2)
    out.setdefault("aVF", lead_ii - lead_i / 2)
    return out


REGIONS: tuple[str, ...] = ("septal", "anterior", "lateral", "inferior")

_DEFAULT_REGIONS: dict[str, tuple[str, ...]] = {
    "septal": ("V1", "V2"),
    "anterior": ("V3", "V4"),
    "lateral": ("I", "aVL", "V5", "V6"),
    "inferior": ("II", "III", "aVF"),
}

#: Colours used by every figure so a region looks the same across pages.
REGION_COLOURS: dict[str, str] = {
    "septal": "#1f77b4",
    "anterior": "#2ca02c",
    "lateral": "#d62728",
    "inferior": "#9467bd",
    "aVR": "#7f7f7f",
}


@dataclass(frozen=True)
class RegionMap:
    """An assignment of leads to anatomical regions; each lead belongs to at most one region.

    ``regions`` maps a region name to its leads (canonical names). Leads in no region (aVR by default)
    take part in no region-level objective. Construction validates the map and raises ``ValueError``
    with the offending lead or region.
    """

    regions: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(_DEFAULT_REGIONS))

    def __post_init__(self) -> None:
        if not self.regions:
            raise ValueError("a region map needs at least one region")
        seen: dict[str, str] = {}
        clean: dict[str, tuple[str, ...]] = {}
        for region, leads in self.regions.items():
            if not str(region).strip():
                raise ValueError("region names must be non-empty")
            if isinstance(leads, str) or not leads:
                raise ValueError(f"region {region!r} must list at least one lead")
            names = tuple(canonical_lead(lead) for lead in leads)
            for lead in names:
                if lead in seen:
                    raise ValueError(f"lead {lead} is in two regions: {seen[lead]!r} and {region!r}")
                seen[lead] = region
            clean[str(region)] = names
        object.__setattr__(self, "regions", clean)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.regions)

    def region_of(self, lead: str) -> str | None:
        lead = canonical_lead(lead)
        for region, leads in self.regions.items():
            if lead in leads:
                return region
        return None

    def indices(self, leads: Sequence[str] = LEADS) -> dict[str, list[int]]:
        """For each region, the positions of its leads within ``leads`` (regions with no such lead dropped)."""
        present = [canonical_lead(lead) for lead in leads]
        out = {}
        for region, members in self.regions.items():
            idx = [present.index(lead) for lead in members if lead in present]
            if idx:
                out[region] = idx
        return out

    def assignment_matrix(self, leads: Sequence[str] = LEADS) -> np.ndarray:
        """``(n_regions, n_leads)`` float matrix whose rows average a region's leads (zero elsewhere)."""
        idx = self.indices(leads)
        mat = np.zeros((len(idx), len(leads)), dtype=np.float32)
        for row, members in enumerate(idx.values()):
            mat[row, members] = 1.0 / len(members)
        return mat

    def to_dict(self) -> dict[str, list[str]]:
        return {region: list(leads) for region, leads in self.regions.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[str]]) -> RegionMap:
        if not isinstance(data, Mapping):
            raise ValueError("a region map must be a mapping of region name to a list of leads")
        return cls({str(k): tuple(v) for k, v in data.items()})


def default_region_map(avr_policy: str = "exclude") -> RegionMap:
    """The standard four-region map; ``avr_policy='own'`` gives aVR a region of its own (else ``'exclude'``).

    Takes any string, as configs carry it: anything but the two policies raises ``ValueError``.
    """
    if avr_policy not in ("exclude", "own"):
        raise ValueError(f"avr_policy must be 'exclude' or 'own', got {avr_policy!r}")
    regions = dict(_DEFAULT_REGIONS)
    if avr_policy == "own":
        regions["aVR"] = ("aVR",)
    return RegionMap(regions)
