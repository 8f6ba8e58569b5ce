"""What the pages used to compute themselves now comes from the library, the same for the app and the CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def test_the_app_and_the_command_line_share_the_embedding_and_map_caches(tmp_path: Path, monkeypatch):
    from aclecg import paths
    from aclecg.evaluation import embedding_cache_dir

    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "caches"))
    monkeypatch.delenv("ACLECG_UMAP_CACHE", raising=False)
    assert paths.umap_cache_dir() == tmp_path / "caches" / "umap"
    assert embedding_cache_dir() == paths.embeddings_cache_dir() == tmp_path / "caches" / "embeddings"
    monkeypatch.setenv("ACLECG_UMAP_CACHE", str(tmp_path / "elsewhere" / "umap"))
    assert paths.umap_cache_dir() == tmp_path / "elsewhere" / "umap"
    assert embedding_cache_dir() == tmp_path / "elsewhere" / "embeddings"  # the sweeps' too, not only the app's


def test_a_sweep_jobs_cell_count_uses_the_sweep_defaults():
    from aclecg.evaluation.config import DEFAULT_ARMS, DEFAULT_FRACTIONS, DEFAULT_SEEDS
    from aclecg.evaluation.form import job_cell_count

    per = len(DEFAULT_ARMS)  # one checkpoint: each default arm once
    assert job_cell_count(["--checkpoint", "a.pt"]) == per * len(DEFAULT_FRACTIONS) * DEFAULT_SEEDS
    args = ["--arms", "linear_probe,fine_tune,supervised", "--fractions", "0.1,1", "--seeds", "2"]
    assert job_cell_count([*args, "--checkpoint", "a.pt", "--checkpoint", "b.pt"]) == 5 * 2 * 2
    assert job_cell_count(["--seeds", "many"]) is None and job_cell_count(["--arms", "nope"]) is None


def test_the_label_cells_are_parsed_in_one_place():
    from aclecg.analysis.attribution import territory_of
    from aclecg.data.labels import join_labels, label_colours, split_labels

    assert split_labels(join_labels(["NORM", "MI"])) == ["NORM", "MI"] and split_labels(None) == []
    assert label_colours(pd.Series(["MI", "MI;STTC", ""])).tolist() == ["MI", "multiple", "(none)"]
    assert territory_of("IMI;NORM") == "inferior" and territory_of("") is None
