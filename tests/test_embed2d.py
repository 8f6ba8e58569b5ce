"""aclecg.analysis.embed2d: the vectorised UMAP-style layout, against brute-force references and umap-learn (slow)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.manifold import trustworthiness
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from aclecg.analysis import embed2d, umap_steps
from aclecg.errors import ConfigError, DataError


def clustered(n: int, d: int = 64, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k clusters on a 4-d latent space (so neighbourhoods carry structure), linearly lifted to d-d + noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=8.0, size=(k, 4))
    labels = rng.integers(0, k, n)
    latent = centres[labels] + rng.normal(size=(n, 4))
    lift = rng.normal(size=(4, d)) / 2.0
    return (latent @ lift + 0.1 * rng.normal(size=(n, d))).astype(np.float32), labels


def test_knn_matches_sklearn_brute_force():
    x, _ = clustered(300, d=20)
    idx, dist = umap_steps.knn(torch.from_numpy(x), torch.from_numpy(x), 10, exclude_self=True, block=64)
    ref_d, ref_i = NearestNeighbors(n_neighbors=11).fit(x).kneighbors(x)
    np.testing.assert_allclose(dist.numpy(), ref_d[:, 1:], rtol=1e-4, atol=1e-3)
    assert (idx.numpy() == ref_i[:, 1:]).mean() > 0.99  # ties may swap order
    assert not (idx.numpy() == np.arange(300)[:, None]).any()


def test_smooth_knn_solves_the_membership_equation():
    rng = np.random.default_rng(0)
    dist = torch.from_numpy(np.sort(rng.uniform(0.5, 3.0, size=(50, 15)), axis=1).astype(np.float32))
    rho, sigma = umap_steps.smooth_knn(dist)
    np.testing.assert_allclose(rho.numpy(), dist[:, 0].numpy())
    total = torch.exp(-(dist - rho[:, None]).clamp(min=0) / sigma[:, None]).sum(1)
    np.testing.assert_allclose(total.numpy(), math.log2(15), rtol=1e-3)


def test_fuzzy_graph_is_symmetric_probabilistic_union():
    x, _ = clustered(200, d=10)
    idx, dist = umap_steps.knn(torch.from_numpy(x), torch.from_numpy(x), 8, exclude_self=True)
    g = umap_steps.fuzzy_graph(idx, dist, 200)
    dense = g.toarray()
    np.testing.assert_allclose(dense, dense.T, atol=1e-12)
    assert dense.max() <= 1.0 + 1e-9 and dense.min() >= 0.0
    # reference: directed memberships, then w + w^T - w * w^T
    rho, sigma = umap_steps.smooth_knn(dist)
    w = np.zeros((200, 200))
    memb = torch.exp(-(dist - rho[:, None]).clamp(min=0) / sigma[:, None]).numpy()
    for i in range(200):
        w[i, idx[i].numpy()] = memb[i]
    np.testing.assert_allclose(dense, w + w.T - w * w.T, atol=1e-6)


def test_ab_params_match_umap_reference_values():
    a, b = umap_steps.find_ab_params(1.0, 0.1)
    assert a == pytest.approx(1.577, abs=0.01) and b == pytest.approx(0.895, abs=0.01)  # umap-learn's defaults


def test_layout_preserves_neighbourhoods_and_clusters():
    x, labels = clustered(400, d=64, k=5)
    y = embed2d.fast_umap(x, seed=0, n_epochs=200)
    assert y.shape == (400, 2) and np.isfinite(y).all()
    centred = x - x.mean(0)
    pca2 = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    tw = trustworthiness(x, y, n_neighbors=5)
    assert tw > 0.95 and tw > trustworthiness(x, pca2, n_neighbors=5) + 0.01
    knn_acc = KNeighborsClassifier(5).fit(y[::2], labels[::2]).score(y[1::2], labels[1::2])
    assert knn_acc > 0.97


def test_same_seed_same_map_and_seed_matters():
    x, _ = clustered(150, d=16)
    a = embed2d.fast_umap(x, seed=3, n_epochs=50)
    b = embed2d.fast_umap(x, seed=3, n_epochs=50)
    c = embed2d.fast_umap(x, seed=4, n_epochs=50)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_cosine_metric_and_pca_init_run():
    x, labels = clustered(200, d=30)
    y = embed2d.fast_umap(x, metric="cosine", init="pca", n_epochs=100)
    assert KNeighborsClassifier(5).fit(y[::2], labels[::2]).score(y[1::2], labels[1::2]) > 0.9


def test_place_points_lands_new_point_in_its_cluster():
    x, labels = clustered(300, d=32, k=4)
    fitted = embed2d.fit_map(x, embed2d.UMAPConfig(n_epochs=150))
    rng = np.random.default_rng(5)
    new = x[:20] + 0.05 * rng.normal(size=(20, 32)).astype(np.float32)
    placed = embed2d.place_points(fitted, new)
    clf = KNeighborsClassifier(5).fit(fitted.coords, labels)
    assert (clf.predict(placed) == labels[:20]).all()


def test_cached_map_reuses_disk_entry(tmp_path, monkeypatch):
    x, _ = clustered(80, d=12)
    cfg = embed2d.UMAPConfig(n_epochs=20)
    first = embed2d.cached_map(x, tmp_path, cfg)
    assert len(list(tmp_path.glob("umap_*.npz"))) == 1
    monkeypatch.setattr(embed2d, "fit_map", lambda *a, **k: pytest.fail("recomputed despite the cache"))
    second = embed2d.cached_map(x, tmp_path, cfg)
    np.testing.assert_array_equal(first.coords, second.coords)
    np.testing.assert_allclose(embed2d.place_points(first, x[:3]), embed2d.place_points(second, x[:3]))
    assert embed2d.cache_key(x, cfg) != embed2d.cache_key(x, embed2d.UMAPConfig(n_epochs=21))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(DataError, match="at least 4 points"):
        embed2d.fast_umap(np.zeros((3, 5)))
    with pytest.raises(DataError, match="NaN"):
        embed2d.fast_umap(np.full((10, 5), np.nan))
    with pytest.raises(DataError, match="2-D"):
        embed2d.fast_umap(np.zeros(10))
    with pytest.raises(ConfigError, match="metric"):
        embed2d.fast_umap(np.random.rand(10, 3), metric="manhattan")
    with pytest.raises(ConfigError, match="unknown UMAP parameter"):
        embed2d.fast_umap(np.random.rand(10, 3), bogus=1)


@pytest.mark.slow
def test_quality_matches_umap_learn_defaults():
    """Trustworthiness within 0.01 of umap-learn with default parameters (numba compile: ~20 s)."""
    umap = pytest.importorskip("umap")
    x, _ = clustered(1500, d=128, k=8, seed=2)
    ref = umap.UMAP(random_state=0).fit_transform(x)
    ours = embed2d.fast_umap(x)
    assert trustworthiness(x, ours, n_neighbors=5) >= trustworthiness(x, ref, n_neighbors=5) - 0.01


def test_cli_umap_writes_csv_and_html(tmp_path):
    from aclecg.cli import main

    x, _ = clustered(60, d=12)
    np.save(tmp_path / "emb.npy", x)
    rc = main(
        [
            "umap",
            "--embeddings",
            str(tmp_path / "emb.npy"),
            "--out",
            str(tmp_path / "map.csv"),
            "--html",
            str(tmp_path / "map.html"),
            "--epochs",
            "30",
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert rc == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "map.csv")
    expected = embed2d.fit_map(x, embed2d.UMAPConfig(n_epochs=30)).coords
    np.testing.assert_allclose(table[["x", "y"]].to_numpy(), expected, rtol=1e-5, atol=1e-5)
    assert (tmp_path / "map.html").stat().st_size > 1000
    assert main(["umap", "--embeddings", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "m.csv")]) == 2


def test_randomized_pca_matches_exact_svd():
    rng = np.random.default_rng(0)
    # a spectrum with a clear gap after 6 directions
    u = np.linalg.qr(rng.normal(size=(500, 6)))[0]
    v = np.linalg.qr(rng.normal(size=(80, 6)))[0]
    x = (u * np.array([50, 40, 30, 20, 15, 10])) @ v.T + 0.01 * rng.normal(size=(500, 80))
    x = x - x.mean(0)
    comps = umap_steps.randomized_pca(x, 6)
    exact = np.linalg.svd(x, full_matrices=False)[2][:6].T
    np.testing.assert_allclose(np.abs(np.sum(comps * exact, axis=0)), 1.0, atol=1e-4)  # same directions (sign free)
    np.testing.assert_allclose(comps.T @ comps, np.eye(6), atol=1e-4)


# ------------------------------------------------------------------------------------ method choice (issue 16)
def test_cache_key_names_the_method_and_fast_keys_stay_as_they_were():
    import hashlib
    import json
    from dataclasses import asdict

    x, _ = clustered(40, d=8)
    fast, learn = embed2d.UMAPConfig(), embed2d.UMAPConfig(method="umap-learn")
    # the key a fast map had before the method existed: the same hash without the field
    h = hashlib.sha256()
    arr = np.ascontiguousarray(x, dtype=np.float32)
    h.update(str(arr.shape).encode())
    h.update(arr.tobytes())
    h.update(json.dumps({k: v for k, v in asdict(fast).items() if k != "method"}, sort_keys=True).encode())
    assert embed2d.cache_key(x, fast) == h.hexdigest()[:24]
    assert embed2d.cache_key(x, learn) != embed2d.cache_key(x, fast)
    with pytest.raises(ConfigError, match="method"):
        embed2d.fit_map(x, embed2d.UMAPConfig(method="tsne"))


def test_every_map_reports_its_trustworthiness(tmp_path):
    x, _ = clustered(120, d=16)
    fitted = embed2d.cached_map(x, tmp_path, embed2d.UMAPConfig(n_epochs=30))
    expected = trustworthiness(fitted.reference, fitted.coords, n_neighbors=embed2d.TRUST_K)
    assert fitted.trustworthiness == pytest.approx(expected)
    again = embed2d.cached_map(x, tmp_path, embed2d.UMAPConfig(n_epochs=30))  # read back from disk
    assert again.trustworthiness == pytest.approx(expected) and again.key == fitted.key


@pytest.mark.slow
def test_umap_learn_method_same_seed_same_map_transform_and_cli(tmp_path, capsys):
    """umap-learn's UMAP: reproducible for a seed, placed by its own transform (also after a disk-cache read)."""
    pytest.importorskip("umap")
    from aclecg.analysis import umap_learn
    from aclecg.cli import main

    x, labels = clustered(300, d=32, k=4)
    cfg = embed2d.UMAPConfig(method="umap-learn", n_epochs=100)
    a, b = embed2d.fit_map(x, cfg), embed2d.fit_map(x, cfg)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert not np.array_equal(
        a.coords, embed2d.fit_map(x, embed2d.UMAPConfig(method="umap-learn", n_epochs=100, seed=1)).coords
    )
    assert umap_learn.is_warm() and 0.5 < a.trustworthiness <= 1.0
    new = x[:10] + 0.05 * np.random.default_rng(5).normal(size=(10, 32)).astype(np.float32)
    placed = embed2d.place_points(a, new)
    clf = KNeighborsClassifier(5).fit(a.coords, labels)
    assert (clf.predict(placed) == labels[:10]).all()
    cached = embed2d.cached_map(x, tmp_path, cfg)
    umap_learn._MODELS.clear()  # as after a restart: the model is refitted for transform
    reread = embed2d.cached_map(x, tmp_path, cfg)
    np.testing.assert_array_equal(reread.coords, cached.coords)
    np.testing.assert_allclose(embed2d.place_points(reread, new), placed, atol=1e-4)
    np.save(tmp_path / "emb.npy", x)
    assert (
        main(
            [
                "umap",
                "--embeddings",
                str(tmp_path / "emb.npy"),
                "--out",
                str(tmp_path / "m.csv"),
                "--method",
                "umap-learn",
                "--epochs",
                "100",
                "--cache-dir",
                str(tmp_path / "c2"),
            ]
        )
        == 0
    )
    assert "umap-learn map of 300 points" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- maps at scale
def _map_as_before(x: np.ndarray, cfg: embed2d.UMAPConfig) -> np.ndarray:
    """The fast map exactly as fit_map computed it before the neighbour search was selectable (exact kNN)."""
    from aclecg.analysis.umap_steps import torch_threads

    n = x.shape[0]
    with torch_threads(1):
        feats, _, components = embed2d._prepare_features(x, cfg)
    ft = torch.from_numpy(feats)
    idx, dist = umap_steps.knn(ft, ft, min(cfg.n_neighbors, n - 1), exclude_self=True)
    with torch_threads(1):
        graph = umap_steps.fuzzy_graph(idx, dist, n)
        init = umap_steps.spectral_init(graph, cfg.seed) if cfg.init == "spectral" else None
        if init is None:
            init = feats[:, :2].copy() if components is not None else embed2d._pca2(feats)
        y = torch.from_numpy(umap_steps.scale_init(init, cfg.seed))
        coo = graph.tocoo()
        n_epochs = cfg.n_epochs if cfg.n_epochs is not None else embed2d.default_epochs(n)
        weight = torch.from_numpy(coo.data.astype(np.float32))
        strong = weight >= weight.max() / n_epochs
        head = torch.from_numpy(coo.row.astype(np.int64))[strong]
        tail = torch.from_numpy(coo.col.astype(np.int64))[strong]
        a, b = umap_steps.find_ab_params(cfg.spread, cfg.min_dist)
        gen = torch.Generator().manual_seed(cfg.seed)
        y = umap_steps.optimize_layout(
            y, head, tail, weight[strong], a, b, n_epochs, cfg.negative_sample_rate, cfg.learning_rate, gen
        )
    return y.numpy().astype(np.float32)


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
@pytest.mark.parametrize("n", [300, 400])  # below and at the size limit of exact search (patched to 400)
def test_small_maps_are_byte_identical_to_the_exact_maps_of_before(monkeypatch, n):
    monkeypatch.setattr(embed2d, "EXACT_KNN_MAX", 400)
    monkeypatch.setattr(embed2d, "approx_knn", lambda *a, **k: pytest.fail("approximate search below the limit"))
    x, _ = clustered(n, d=64, seed=n)
    for cfg in (embed2d.UMAPConfig(n_epochs=60), embed2d.UMAPConfig(n_epochs=40, metric="cosine", init="pca")):
        fitted = embed2d.fit_map(x, cfg)
        assert fitted.coords.tobytes() == _map_as_before(x, cfg).tobytes()
        assert fitted.knn == "exact" and fitted.knn_recall is None
        assert embed2d.cache_key(x, cfg) == embed2d.cache_key(x, cfg, knn="exact")


def test_approx_knn_finds_the_exact_neighbours_deterministically():
    x, _ = clustered(2000, d=20, seed=7)
    xt = torch.from_numpy(x)
    exact_idx, _ = umap_steps.knn(xt, xt, 15, exclude_self=True)
    with umap_steps.torch_threads(1):  # as fit_map runs it
        idx, dist = umap_steps.approx_knn(xt, 15, seed=0)
        again, _ = umap_steps.approx_knn(xt, 15, seed=0)
    assert torch.equal(idx, again)  # seeded: the same neighbours on every run
    assert idx.shape == dist.shape == (2000, 15) and not (idx == torch.arange(2000)[:, None]).any()
    recall = (idx[:, :, None] == exact_idx[:, None, :]).any(2).float().mean().item()
    assert recall > 0.98
    assert umap_steps.knn_recall(xt, idx, seed=0) == pytest.approx(recall, abs=0.02)
    np.testing.assert_allclose(dist.numpy(), np.linalg.norm(x[:, None, :] - x[idx.numpy()], axis=2), atol=1e-3)
    assert (dist[:, 1:] >= dist[:, :-1] - 1e-6).all()  # nearest first
    tiny, tiny_d = umap_steps.approx_knn(xt[:7], 5, seed=0)  # fewer points than cells need: still k others each
    assert not (tiny == torch.arange(7)[:, None]).any() and torch.isfinite(tiny_d).all()


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
def test_large_maps_use_approximate_neighbours_and_report_their_cost(tmp_path, monkeypatch):
    monkeypatch.setattr(embed2d, "EXACT_KNN_MAX", 300)
    x, labels = clustered(800, d=32, seed=3)
    cfg = embed2d.UMAPConfig(n_epochs=40)
    approx = embed2d.fit_map(x, cfg)
    assert approx.knn == "approximate" and 0.95 <= approx.knn_recall <= 1.0
    exact = embed2d.fit_map(x, cfg, knn="exact")
    assert exact.knn == "exact" and exact.knn_recall is None
    assert approx.trustworthiness == pytest.approx(exact.trustworthiness, abs=0.01)
    assert KNeighborsClassifier(5).fit(approx.coords[::2], labels[::2]).score(approx.coords[1::2], labels[1::2]) > 0.95
    assert embed2d.cache_key(x, cfg) != embed2d.cache_key(x, cfg, knn="exact")
    stored = embed2d.cached_map(x, tmp_path, cfg)  # computed again: the same map (seeded)
    np.testing.assert_array_equal(stored.coords, approx.coords)
    reread = embed2d.cached_map(x, tmp_path, cfg)
    assert reread.knn == "approximate" and reread.knn_recall == pytest.approx(stored.knn_recall)
    with pytest.raises(ConfigError, match="knn must be one of"):
        embed2d.fit_map(x[:50], cfg, knn="annoy")


def test_sample_rows_is_stratified_deterministic_and_keeps_every_dataset():
    from aclecg.analysis.record_map import sample_rows

    strata = np.repeat(["ptbxl", "challenge", "cpsc"], [21_800, 21, 3])
    rows = sample_rows(strata, cap=2_000)
    assert len(rows) == 2_000 and len(np.unique(rows)) == 2_000 and (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(rows, sample_rows(strata, cap=2_000))  # the same sample on every call
    kept = {name: int((strata[rows] == name).sum()) for name in ("ptbxl", "challenge", "cpsc")}
    assert kept == {"ptbxl": 1_997, "challenge": 2, "cpsc": 1}  # shares by largest remainder, none left out
    assert not np.array_equal(rows, sample_rows(strata, cap=2_000, seed=1))
    np.testing.assert_array_equal(sample_rows(strata[:50], cap=2_000), np.arange(50))  # under the cap: all
    with pytest.raises(ConfigError, match="positive integer"):
        sample_rows(strata, cap=0)


def test_records_left_out_of_a_sampled_map_are_found_and_placed():
    import pandas as pd

    from aclecg.analysis import record_map

    x, labels = clustered(500, d=16, k=4, seed=2)
    small = x[:20] + 0.01  # a second "dataset" of 20 records
    inp = record_map.map_input([x, small], cap=260)
    assert inp.sampled and len(inp.rows) == 260 and inp.n_total == 520
    assert int((inp.rows >= 500).sum()) == 10  # 20 of 520 records -> 10 of 260 points
    np.testing.assert_array_equal(inp.embeddings[:5], x[inp.rows[:5]])
    assert "Showing 260 of 520 records" in inp.caption()
    table = pd.DataFrame({"record_id": [f"r{i}" for i in range(500)] + [f"JS{i:05d}" for i in range(20)]})
    missing = next(r for r in range(500) if inp.position(r) is None)
    assert record_map.find_record(table, f" r{missing} ") == missing
    assert record_map.find_record(table, "js00003") == 503  # ignoring case
    assert record_map.find_record(table, "r9999") is None and record_map.find_record(table, "") is None
    fitted = embed2d.fit_map(inp.embeddings, embed2d.UMAPConfig(n_epochs=60))
    mapped = int(inp.rows[7])
    np.testing.assert_array_equal(record_map.record_position(fitted, inp, mapped), fitted.coords[7:8])
    placed = record_map.record_position(fitted, inp, missing, x[missing])
    drawn_labels = np.concatenate([labels, labels[:20]])[inp.rows]
    assert KNeighborsClassifier(5).fit(fitted.coords, drawn_labels).predict(placed)[0] == labels[missing]
    with pytest.raises(DataError, match="not on the map"):
        record_map.record_position(fitted, inp, missing)


def test_cli_umap_max_points_and_neighbour_search(tmp_path, capsys, monkeypatch):
    import pandas as pd

    from aclecg.cli import main

    monkeypatch.setattr(embed2d, "EXACT_KNN_MAX", 100)
    x, _ = clustered(400, d=12)
    np.save(tmp_path / "emb.npy", x)
    args = ["umap", "--embeddings", str(tmp_path / "emb.npy"), "--epochs", "30", "--cache-dir", str(tmp_path / "c")]
    assert main([*args, "--out", str(tmp_path / "a.csv"), "--max-points", "150"]) == 0
    out = capsys.readouterr().out
    assert "fast map of 150 points" in out and "approximate neighbours" in out
    table = pd.read_csv(tmp_path / "a.csv")
    assert list(table.columns) == ["x", "y", "row"] and len(table) == 150 and table["row"].is_monotonic_increasing
    assert main([*args, "--out", str(tmp_path / "b.csv"), "--knn", "exact"]) == 0
    assert "approximate" not in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "c.csv"), "--max-points", "0"]) == 2
