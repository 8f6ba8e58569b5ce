"""aclecg.embed2d: the vectorised UMAP-style layout, against brute-force references and umap-learn (slow)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.manifold import trustworthiness
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from aclecg import embed2d, umap_steps
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
    from aclecg import umap_learn
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
