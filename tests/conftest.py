"""Shared fixtures: the real data folder (skipped when absent), the bundled PTB-XL subset prepared once, and a seeded
global random state for every test."""

from __future__ import annotations

import os

os.environ.setdefault("ACLECG_UMAP_WARMUP", "0")  # no background numba compile while the suite runs

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same global random state (Python, NumPy, torch), whatever ran before it."""
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data`` (real PhysioNet subsets); tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bundled_prepared() -> Path:
    """The bundled PTB-XL subset (987 records) prepared at 100 Hz / 10 s by :func:`ensure_bundled`.

    The same cache the app reads (prepared once per checkout, reused while the raw files and the preprocessing are
    unchanged; ``test_data_cache`` checks that reuse and rebuilds its own copies where it needs a fresh one).
    Tests only read it.
    """
    from aclecg.data import ensure_bundled

    return Path(ensure_bundled(["ptbxl"], progress=False)["ptbxl"])


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sweeps of a tiny real study (two test folds, three encoders, probes and trained arms), made once."""
    from tests.helpers.study import make_study

    return make_study(tmp_path_factory.mktemp("study"))


@pytest.fixture
def challenge_upload(tmp_path: Path) -> Path:
    """A folder holding one bundled Challenge record (JS00001: 12 leads at 500 Hz), as a user would upload it."""
    from aclecg.data import BUNDLED_RAW_DIR
    from aclecg.upload import RECORD_SUFFIXES

    hea = next((BUNDLED_RAW_DIR / "challenge-2021" / "training").rglob("JS00001.hea"))
    folder = tmp_path / "upload"
    folder.mkdir()
    for path in hea.parent.glob("JS00001.*"):
        if path.suffix.lower() in RECORD_SUFFIXES:
            (folder / path.name).write_bytes(path.read_bytes())
    return folder


@pytest.fixture
def tiny_checkpoint(tmp_path, bundled_prepared) -> Path:
    """A tiny verified encoder for the bundled data (fast to embed)."""
    from aclecg import checkpoint as ckpt
    from aclecg.data import PreparedDataset
    from aclecg.models import build_encoder

    data = PreparedDataset(bundled_prepared)
    enc = build_encoder(
        {"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8, "leads": list(data.leads)}, seed=0
    )
    path = tmp_path / "tiny" / "encoder.pt"
    ckpt.save_checkpoint(
        path,
        {
            "format_version": 1,
            "method": "simclr",
            "hparams": {},
            "encoder_config": enc.config.to_dict(),
            "leads": list(data.leads),
            "fs": data.fs,
            "n_samples": data.n_samples,
            "data_fingerprint": data.fingerprint,
            "encoder": enc.state_dict(),
        },
    )
    return path
