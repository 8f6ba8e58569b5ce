"""``aclecg regions`` writes the Lead regions page's heatmap: the same sample, features and similarity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aclecg.cli import main

TINY = {"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8}


def _page_similarity(checkpoint: Path, data: Path, n: int, centre: bool):
    """What pages/3_Lead_regions.py computes (its sample of rows, encode_windows, region_similarity)."""
    from aclecg.analysis.similarity import region_similarity
    from aclecg.evaluation import encode_windows, load_source, open_dataset
    from aclecg.leads import default_region_map

    src, ds = load_source(checkpoint), open_dataset(data)
    rows = np.sort(np.random.default_rng(0).choice(len(ds), size=min(n, len(ds)), replace=False))
    feats = encode_windows(src, ds.signals[rows], ds.fs, ds.leads, output="lead_features", name="tiny")
    return region_similarity(feats, list(src.leads), default_region_map(), centre=centre)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_regions_writes_the_pages_heatmap(tiny_checkpoint, bundled_prepared, tmp_path, capsys, monkeypatch):
    from aclecg import viz

    drawn = []
    real = viz.similarity_heatmap
    monkeypatch.setattr(viz, "similarity_heatmap", lambda *a: drawn.append(a) or real(*a))
    out = tmp_path / "regions.html"
    args = ["regions", "--checkpoint", str(tiny_checkpoint), "--data", str(bundled_prepared), "--records", "16"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    sim, names, summary = _page_similarity(tiny_checkpoint, bundled_prepared, 16, centre=True)
    (drawn_sim, drawn_names, title) = drawn[0]
    assert np.array_equal(drawn_sim, sim) and drawn_names == names == ["septal", "anterior", "lateral", "inferior"]
    html = out.read_text()
    assert title.startswith("mean cosine similarity of region embeddings (tiny, ") and title in html
    assert "plotly" in html.lower() and '"type":"heatmap"' in html
    assert f"within-region lead similarity {summary['within']:.3f}, across-region {summary['across']:.3f}" in printed
    assert "(16 records)" in printed and "septal" in printed


def test_regions_refuses_a_map_with_one_region(tiny_checkpoint, bundled_prepared, tmp_path, capsys):
    rmap = tmp_path / "map.json"
    rmap.write_text(json.dumps({"all": ["I", "II"]}))
    out = tmp_path / "r.html"
    args = ["regions", "--checkpoint", str(tiny_checkpoint), "--data", str(bundled_prepared), "--out", str(out)]
    assert main([*args, "--region-map", str(rmap)]) == 2
    assert "at least two regions" in capsys.readouterr().err and not out.exists()
    rmap.write_text(json.dumps({"lateral": ["I", "I"], "x": ["Q"]}))
    assert main([*args, "--region-map", str(rmap)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --region-map {rmap}: ")
