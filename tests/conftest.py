"""Shared fixtures: the real data folder (skipped when absent) and the bundled PTB-XL subset, prepared once."""

from __future__ import annotations

import os

os.environ.setdefault("ACLECG_UMAP_WARMUP", "0")  # no background numba compile while the suite runs

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data`` (real PhysioNet subsets); tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bundled_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled PTB-XL subset (987 records) prepared at 100 Hz / 10 s into a session temp folder."""
    from aclecg.data import BUNDLED_RAW_DIR, prepare_dataset

    out = tmp_path_factory.mktemp("bundled") / "ptbxl"
    prepare_dataset(BUNDLED_RAW_DIR / "ptb-xl", out, "ptbxl", name="ptbxl", progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sweeps of a tiny real study (two test folds, three encoders, probes and trained arms), made once."""
    from tests.helpers.study import make_study

    return make_study(tmp_path_factory.mktemp("study"))
