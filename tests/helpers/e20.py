"""Where the 20-epoch study's committed files are: under ``checkpoints/e20/`` once studies/promote_e120.sh has made
the 120-epoch study the shipped one (issue 28), at the top of ``checkpoints/`` before. Tests that pin the keys and
configurations of those files read them through here, so they hold on both sides of the swap."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: True once the 120-epoch study is shipped and the 20-epoch one archived.
ARCHIVED = (REPO / "studies" / "bundled-e20.toml").is_file()
CHECKPOINTS = REPO / "checkpoints" / ("e20" if ARCHIVED else "")
STUDY = REPO / "studies" / ("bundled-e20.toml" if ARCHIVED else "bundled.toml")
#: The 120-epoch study's encoders and trained cells: checkpoints/e120/ until the swap, checkpoints/ after it.
E120 = REPO / "checkpoints" / ("" if ARCHIVED else "e120")
