"""``aclecg regions`` writes the Lead regions page's heatmap: the same sample, features and similarity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aclecg.cli import main

TINY = {"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test's embeddings (and lead-feature) cache is its own folder, never the checkout's."""
    monkeypatch.setenv("ACLECG_UMAP_CACHE", str(tmp_path / "cache" / "umap"))
    return tmp_path / "cache" / "embeddings"


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
    assert "<svg" in html and "plotly" not in html.lower() and html.count("<rect x=") == 16  # 4 x 4 cells, offline
    out_svg = tmp_path / "regions.svg"
    assert main([*args, "--out", str(out_svg)]) == 0
    assert out_svg.read_text().startswith("<svg")
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


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_regions_caches_the_sample_so_the_page_encodes_nothing(
    tiny_checkpoint, bundled_prepared, _own_cache, capsys, monkeypatch
):
    """``aclecg regions`` without ``--out`` only prints, and leaves the sample's lead features in the cache that the
    Lead regions page reads (``make app`` runs it for the default checkpoint); a damaged file is recomputed."""
    from aclecg import evaluation
    from aclecg.analysis.similarity import sample_lead_features

    args = ["regions", "--checkpoint", str(tiny_checkpoint), "--data", str(bundled_prepared), "--records", "16"]
    assert main(args) == 0
    assert "(16 records)" in capsys.readouterr().out and not list(Path.cwd().glob("*.html"))
    (cached,) = _own_cache.glob("*__lead-features-n16-seed0.npy")
    src, ds = evaluation.load_source(tiny_checkpoint), evaluation.open_dataset(bundled_prepared)
    expected = np.load(cached)
    assert expected.shape == (16, 12, 8)

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoded although the sample's features are cached")

    with monkeypatch.context() as m:
        m.setattr(evaluation, "encode_windows", no_encoding)
        assert np.array_equal(sample_lead_features(src, ds, 16), expected)
        with pytest.raises(AssertionError, match="encoded although"):  # another sample is another file
            sample_lead_features(src, ds, 16, seed=1)
    cached.write_bytes(cached.read_bytes()[:50])  # cut short: recomputed, with a warning, and rewritten
    with pytest.warns(UserWarning, match="unreadable"):
        again = sample_lead_features(src, ds, 16)
    assert np.array_equal(again, expected) and np.array_equal(np.load(cached), expected)
