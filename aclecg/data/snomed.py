"""SNOMED-CT codes used by the PhysioNet/CinC Challenge 2020/2021 and the label sets built from them.

The table ``snomed_ct.csv`` (code, abbreviation, name, scored_2021) follows the Challenge's public dx mapping
(Perez Alday et al., Physiol Meas 41, 2020; Reyna et al., CinC 2021). Unknown codes are kept under their
numeric code.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

TABLE_PATH = Path(__file__).with_name("snomed_ct.csv")

#: Challenge 2021 equivalence classes scored as one (first code names the class).
EQUIVALENT: tuple[tuple[str, ...], ...] = (
    ("713427006", "59118001"),  # CRBBB | RBBB
    ("284470004", "63593006"),  # PAC | SVPB
    ("427172004", "17338001"),  # PVC | VPB
    ("733534002", "164909002"),  # CLBBB | LBBB
)

#: CPSC 2018 classes in Challenge SNOMED codes (the same recordings are A0001-A6877 in the Challenge data).
CPSC2018_CODES: dict[str, tuple[str, ...]] = {
    "Normal": ("426783006",),
    "AF": ("164889003",),
    "I-AVB": ("270492004",),
    "LBBB": ("164909002", "733534002"),
    "RBBB": ("59118001", "713427006"),
    "PAC": ("284470004", "63593006"),
    "PVC": ("164884008", "427172004", "17338001"),
    "STD": ("429622005",),
    "STE": ("164931005",),
}

#: Chapman-Shaoxing merged rhythm groups (Zheng et al., Sci Data 7:48, 2020): SB; AFIB = AF + AFL;
#: GSVT = SVT + AT + SAAWR (wandering atrial pacemaker) + ST + AVNRT + AVRT; SR = SR + SA.
CHAPMAN_RHYTHM_CODES: dict[str, tuple[str, ...]] = {
    "SB": ("426177001",),
    "AFIB": ("164889003", "164890007"),
    "GSVT": ("426761007", "713422000", "195101003", "427084000", "233896004", "233897008"),
    "SR": ("426783006", "427393009"),
}


@lru_cache(maxsize=1)
def snomed_table() -> dict[str, dict[str, str]]:
    """Code -> ``{"abbreviation", "name", "scored_2021"}``."""
    with open(TABLE_PATH, newline="", encoding="utf-8") as handle:
        return {row["code"]: row for row in csv.DictReader(handle)}


def abbreviation(code: str) -> str:
    """Challenge abbreviation of a SNOMED code (the code itself when unknown)."""
    row = snomed_table().get(str(code))
    return row["abbreviation"] if row else str(code)


def scored_classes() -> dict[str, str]:
    """Scored code -> class name for the Challenge 2021 scored set (equivalent codes share a class)."""
    table = snomed_table()
    out: dict[str, str] = {}
    for group in EQUIVALENT:
        name = "|".join(table[c]["abbreviation"] for c in group)
        out.update({c: name for c in group})
    for code, row in table.items():
        if row["scored_2021"] == "1" and code not in out:
            out[code] = row["abbreviation"]
    return out


def _invert(groups: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {code: name for name, codes in groups.items() for code in codes}


def code_mappings() -> dict[str, dict[str, str]]:
    """Label set -> (SNOMED code -> class name), except ``snomed`` which maps every code to its abbreviation."""
    return {
        "scored": scored_classes(),
        "cpsc2018": _invert(CPSC2018_CODES),
        "chapman_rhythm": _invert(CHAPMAN_RHYTHM_CODES),
    }


def fixed_class_order() -> dict[str, list[str]]:
    """Ordered class lists of the fixed label sets (``snomed`` depends on the data)."""
    scored = scored_classes()
    return {
        "scored": sorted(set(scored.values())),
        "cpsc2018": list(CPSC2018_CODES),
        "chapman_rhythm": list(CHAPMAN_RHYTHM_CODES),
    }
