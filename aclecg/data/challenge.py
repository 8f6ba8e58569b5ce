"""PhysioNet/CinC Challenge 2020/2021 reader (WFDB ``.hea`` + MATLAB v4 ``.mat``, labels in ``#Dx:`` comments).

Covers the Challenge copies of CPSC 2018, CPSC-Extra, PTB-XL (500 Hz), PTB (1000 Hz), Georgia,
Chapman-Shaoxing and Ningbo (Perez Alday et al., Physiol Meas 41, 2020; Reyna et al., CinC 2021). Headers are
found recursively, so the official ``g1/``, ``g2/`` sub-folders and a flat layout both work. Comments may be
written ``#Dx:`` or ``# Dx:``. The Challenge data carry no patient ids: each record is its own patient.

Label sets: ``snomed`` (every code present, named by its Challenge abbreviation), ``scored`` (the Challenge
2021 scored classes, equivalent codes merged), ``cpsc2018`` (the 9 CPSC classes) and ``chapman_rhythm`` (the
merged Chapman-Shaoxing rhythm groups SB, AFIB, GSVT, SR).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aclecg.data.base import Reader, RecordItem, age_value, register_reader, sex_code
from aclecg.data.records import Skipped
from aclecg.data.snomed import abbreviation, code_mappings, fixed_class_order
from aclecg.data.wfdbio import read_header_comments, read_wfdb
from aclecg.errors import DataError

LABEL_SETS: tuple[str, ...] = ("snomed", "scored", "cpsc2018", "chapman_rhythm")


def parse_comments(comments: list[str], source: str) -> dict[str, str]:
    """Header comments ``Key: value`` -> ``{key.lower(): value}`` (accepts ``#Dx:`` and ``# Dx:``)."""
    out: dict[str, str] = {}
    for line in comments:
        key, sep, value = str(line).strip().lstrip("#").strip().partition(":")
        if sep:
            out.setdefault(key.strip().lower(), value.strip())
    return out


def parse_dx(fields: dict[str, str], source: str) -> list[str]:
    """SNOMED codes of the ``Dx`` comment; raises :class:`DataError` when absent or not numeric."""
    if "dx" not in fields:
        raise DataError(f"{source}: no '#Dx:' label line in the header")
    codes = [c.strip() for c in fields["dx"].split(",") if c.strip()]
    if not codes or not all(c.isdigit() for c in codes):
        raise DataError(f"{source}: unreadable '#Dx:' labels {fields['dx']!r} (expected SNOMED-CT codes)")
    return list(dict.fromkeys(codes))


def labels_from_codes(codes: list[str]) -> dict[str, list[str]]:
    """Labels per label set for one record's SNOMED codes."""
    out = {"snomed": sorted({abbreviation(c) for c in codes})}
    for name, table in code_mappings().items():
        out[name] = sorted({table[c] for c in codes if c in table})
    return out


@register_reader
class ChallengeReader(Reader):
    """Reads every ``*.hea`` under ``root`` (recursively) as a Challenge record."""

    format = "challenge"
    stratify_by = "snomed"

    def label_sets(self) -> dict[str, list[str]]:
        items, _ = self.locate()
        present = sorted({lab for item in items for lab in item.labels.get("snomed", [])})
        return {"snomed": present, **fixed_class_order()}

    def _locate(self) -> tuple[list[RecordItem], list[Skipped]]:
        items: list[RecordItem] = []
        skipped: list[Skipped] = []
        headers = sorted(self.root.rglob("*.hea"))
        stems = {h.with_suffix("") for h in headers}
        for mat in sorted(self.root.rglob("*.mat")):
            if mat.with_suffix("") not in stems:
                skipped.append(Skipped(self.relative(mat), "signal file without a .hea header"))
        first: dict[str, str] = {}
        for hea in headers:
            source = self.relative(hea.with_suffix(""))
            if hea.stem in first:  # record and patient ids must be unique: the first in sorted order is kept
                skipped.append(Skipped(source, f"duplicate record name {hea.stem} (first: {first[hea.stem]}); skipped"))
                continue
            first[hea.stem] = source
            try:
                fields = parse_comments(read_header_comments(hea, source, self.root), source)
                codes = parse_dx(fields, source)
            except DataError as exc:
                skipped.append(Skipped(source, str(exc).split(": ", 1)[-1]))
                continue
            items.append(
                RecordItem(
                    path=str(hea.with_suffix("")),
                    source=source,
                    record_id=hea.stem,
                    patient_id=hea.stem,
                    labels=labels_from_codes(codes),
                    age=age_value(fields.get("age", "nan")),
                    sex=sex_code(fields.get("sex", "")),
                )
            )
        if not headers and not skipped:
            raise DataError(f"{self.root}: no Challenge records (*.hea) found")
        return items, skipped

    def _read_signals(self, item: RecordItem) -> tuple[np.ndarray, list[str], float]:
        raw = read_wfdb(Path(item.path), item.source, root=self.root)
        return raw.signals, raw.lead_names, raw.fs
