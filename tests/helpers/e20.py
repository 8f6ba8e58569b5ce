"""Where the archived 20-epoch study's committed files are (``checkpoints/e20/``, ``studies/bundled-e20.toml``) and
the shipped 120-epoch study's (``checkpoints/``), issue 28. Tests that pin the keys and configurations of the
20-epoch files (written before checkpoints recorded their contract, seed and provenance) read them through here."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = REPO / "checkpoints" / "e20"
STUDY = REPO / "studies" / "bundled-e20.toml"
#: The 120-epoch study's encoders and trained cells.
E120 = REPO / "checkpoints"
