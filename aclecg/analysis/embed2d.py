"""2-D maps of embeddings: a fast vectorised UMAP-style layout in torch (no numba), or umap-learn's UMAP.

The algorithm follows UMAP (McInnes, Healy & Melville, "UMAP: Uniform Manifold Approximation and Projection
for Dimension Reduction", arXiv:1802.03426, 2018) step by step, but every step is a batched tensor operation
so that nothing needs a just-in-time compiler:

See :mod:`aclecg.analysis.umap_steps` for the numerical steps.

1. optional PCA to ``pca_dims`` dimensions (features are centred; cosine metric L2-normalises first);
2. k-nearest neighbours: exact (one matrix product per block of rows and ``topk``) up to
   :data:`EXACT_KNN_MAX` points; above, an approximate inverted-file search (:func:`.umap_steps.approx_knn`:
   k-means cells, each point compared with the points of its nearest cells; seeded, so deterministic), whose
   recall of the exact neighbours is measured on a sample and kept with the map (``Map2D.knn_recall``);
3. fuzzy simplicial set: per point ``rho`` (distance to the nearest neighbour) and ``sigma`` found by a
   vectorised bisection so that ``sum_j exp(-(d_ij - rho_i) / sigma_i) = log2(k)``; memberships are
   symmetrised with the probabilistic t-conorm ``w + w^T - w * w^T``;
4. initialisation from the leading eigenvectors of the normalised graph Laplacian (spectral, as UMAP),
   falling back to PCA when the eigen-solver does not converge;
5. a few hundred epochs of stochastic gradient descent on the UMAP cross-entropy with the curve
   ``1 / (1 + a d^(2b))`` (``a``, ``b`` fitted to ``min_dist`` and ``spread``): each epoch samples every edge
   with probability proportional to its weight, applies all attractive updates at once, and draws
   ``negative_sample_rate`` random repulsive partners per sampled edge. Updates are clipped to [-4, 4] as in
   UMAP and the learning rate decays linearly to zero.

The result is deterministic for a given ``seed``. :func:`place_points` puts new points (e.g. an uploaded
record) on an existing map as the membership-weighted mean of their neighbours' positions, which is how UMAP
initialises ``transform``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from aclecg.analysis.umap_steps import (
    ProgressFn,
    approx_knn,
    find_ab_params,
    fuzzy_graph,
    knn,
    knn_recall,
    optimize_layout,
    randomized_pca,
    scale_init,
    smooth_knn,
    spectral_init,
    torch_threads,
)
from aclecg.constraints import UMAP_METHODS, UMAP_METRICS
from aclecg.errors import ConfigError, DataError

if TYPE_CHECKING:
    pass

#: The two map methods: this module's fast layout and umap-learn's UMAP.
METHODS: tuple[str, ...] = UMAP_METHODS
#: Neighbourhood size of the trustworthiness every map reports (sklearn.manifold.trustworthiness).
TRUST_K = 10
#: Largest number of points whose fast map uses exact k-nearest neighbours (``knn="auto"``); above it the search
#: is approximate. Exact search costs n^2, the approximate one about n^1.5 (docs/app.md, "Fast 2-D maps").
EXACT_KNN_MAX = 5_000
#: The neighbour searches of a fast map: "auto" (exact up to EXACT_KNN_MAX points), "exact", "approximate".
KNN_MODES: tuple[str, ...] = ("auto", "exact", "approximate")


@dataclass(frozen=True)
class UMAPConfig:
    """Parameters of :func:`fast_umap` (names and defaults follow umap-learn where they exist)."""

    n_neighbors: int = 15
    min_dist: float = 0.1
    spread: float = 1.0
    n_epochs: int | None = None  # None: default_epochs(n), see there
    negative_sample_rate: int = 5
    pca_dims: int | None = 50
    metric: Literal["euclidean", "cosine"] = "euclidean"
    init: Literal["spectral", "pca"] = "spectral"
    learning_rate: float = 1.0
    seed: int = 0
    #: "fast": this module's torch layout (exploration); "umap-learn": umap-learn's UMAP on the same features
    #: (figures for publication; see :mod:`aclecg.analysis.umap_learn`)
    method: Literal["fast", "umap-learn"] = "fast"

    def validate(self, n_points: int) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.n_neighbors < 2:
            raise ConfigError(f"n_neighbors must be at least 2, got {self.n_neighbors}")
        if n_points < 4:
            raise DataError(f"a 2-D map needs at least 4 points, got {n_points}")
        if not 0.0 <= self.min_dist <= self.spread:
            raise ConfigError(f"min_dist must lie in [0, spread={self.spread}], got {self.min_dist}")
        if self.metric not in UMAP_METRICS:
            raise ConfigError(f"metric must be 'euclidean' or 'cosine', got {self.metric!r}")
        if self.init not in ("spectral", "pca"):
            raise ConfigError(f"init must be 'spectral' or 'pca', got {self.init!r}")
        if self.n_epochs is not None and self.n_epochs < 1:
            raise ConfigError(f"n_epochs must be positive, got {self.n_epochs}")


def knn_search(config: UMAPConfig, n_points: int, knn: str = "auto") -> str:
    """The neighbour search a map of ``n_points`` uses: "exact", "approximate" or "umap-learn" (its own).

    ``knn`` is one of :data:`KNN_MODES`; it is an argument of :func:`fit_map` and :func:`cached_map` rather than
    a :class:`UMAPConfig` field, so the configurations (and cache keys) of exact maps stay what they were.
    """
    if knn not in KNN_MODES:
        raise ConfigError(f"knn must be one of {', '.join(KNN_MODES)}, got {knn!r}")
    if config.method == "umap-learn":
        return "umap-learn"
    if knn == "auto":
        return "exact" if n_points <= EXACT_KNN_MAX else "approximate"
    return knn


@dataclass
class Map2D:
    """A fitted 2-D map: coordinates plus what is needed to place new points on it."""

    coords: np.ndarray  # (n, 2) float32
    reference: np.ndarray  # (n, p) float32 features after preprocessing (PCA space)
    mean: np.ndarray  # (d,) centring vector
    components: np.ndarray | None  # (d, p) PCA projection, None without PCA
    config: UMAPConfig
    trustworthiness: float | None = None  # at k = TRUST_K, on at most 2,000 points (see trustworthiness_of)
    key: str = ""  # cache key of the input and configuration
    knn: str = "exact"  # the neighbour search used (see knn_search)
    knn_recall: float | None = None  # approximate search: fraction of the exact neighbours found (on a sample)

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        return _project(np.asarray(x, dtype=np.float32), self.mean, self.components, self.config.metric)


# --------------------------------------------------------------------------------------------- helpers


def _prepare_features(x: np.ndarray, cfg: UMAPConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Centre (and L2-normalise for cosine), then PCA-reduce; returns (features, mean, components)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"embeddings must be a 2-D array (points, features), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("embeddings contain NaN or infinite values")
    if cfg.metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    mean = x.mean(axis=0)
    components = None
    if cfg.pca_dims is not None and x.shape[1] > cfg.pca_dims:
        components = randomized_pca(x - mean, cfg.pca_dims, seed=cfg.seed)
    return _project(x, mean, components, "euclidean"), mean, components


def _project(x: np.ndarray, mean: np.ndarray, components: np.ndarray | None, metric: str) -> np.ndarray:
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = x - mean
    return (x @ components if components is not None else x).astype(np.float32)


# --------------------------------------------------------------------------------------------- public API


def fit_map(
    x: np.ndarray, config: UMAPConfig | None = None, progress: ProgressFn | None = None, knn: str = "auto"
) -> Map2D:
    """Compute a 2-D UMAP-style map of ``x`` (n, d); see the module docstring for the algorithm.

    ``knn`` chooses the fast method's neighbour search (:data:`KNN_MODES`): "auto" is exact up to
    :data:`EXACT_KNN_MAX` points and approximate above.
    """
    cfg = config or UMAPConfig()
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"embeddings must be a 2-D array (points, features), got shape {x.shape}")
    n = x.shape[0]
    cfg.validate(n)
    search = knn_search(cfg, n, knn)
    k = min(cfg.n_neighbors, n - 1)
    # Everything but the kNN matrix products runs on one torch thread: these are many small or memory-bound
    # operations, for which OpenMP hand-offs cost more than they save, and which slow down by 10-100x when
    # other processes keep the cores busy (measured on the 2-core machine of docs/app.md).
    with torch_threads(1):
        feats, mean, components = _prepare_features(x, cfg)
    key = cache_key(x, cfg, knn)
    if cfg.method == "umap-learn":
        from aclecg.analysis import umap_learn

        if progress:
            progress(0.05, "umap-learn" + ("" if umap_learn.is_warm() else " (compiling its kernels first)"))
        coords = umap_learn.fit(
            feats,
            k,
            cfg.min_dist,
            cfg.spread,
            cfg.metric,
            cfg.n_epochs,
            cfg.negative_sample_rate,
            cfg.learning_rate,
            cfg.seed,
            key=key,
        )
        return Map2D(coords, feats, mean, components, cfg, trustworthiness_of(feats, coords), key, "umap-learn")
    coords, recall = _fast_layout(feats, components, cfg, k, search, progress)
    return Map2D(
        coords=coords,
        reference=feats,
        mean=mean,
        components=components,
        config=cfg,
        trustworthiness=trustworthiness_of(feats, coords),
        key=key,
        knn=search,
        knn_recall=recall,
    )


def _fast_layout(
    feats: np.ndarray,
    components: np.ndarray | None,
    cfg: UMAPConfig,
    k: int,
    search: str,
    progress: ProgressFn | None,
) -> tuple[np.ndarray, float | None]:
    """Coordinates of the fast method and, for an approximate neighbour search, its recall on a sample."""
    n = feats.shape[0]
    if progress:
        progress(0.05, "nearest neighbours")
    ft = torch.from_numpy(feats)
    recall = None
    if search == "approximate":
        with torch_threads(1):  # many small products: threads only add hand-off cost
            idx, dist = approx_knn(ft, k, cfg.seed)
            recall = knn_recall(ft, idx, cfg.seed)
    else:
        idx, dist = knn(ft, ft, k, exclude_self=True)
    with torch_threads(1):
        graph = fuzzy_graph(idx, dist, n)
        if progress:
            progress(0.2, "initialisation")
        init = spectral_init(graph, cfg.seed) if cfg.init == "spectral" else None
        if init is None:
            init = feats[:, :2].copy() if components is not None else _pca2(feats)
        y = torch.from_numpy(scale_init(init, cfg.seed))
        coo = graph.tocoo()
        n_epochs = cfg.n_epochs if cfg.n_epochs is not None else default_epochs(n)
        weight = torch.from_numpy(coo.data.astype(np.float32))
        # umap-learn drops edges too weak to be sampled even once during the run
        strong = weight >= weight.max() / n_epochs
        head = torch.from_numpy(coo.row.astype(np.int64))[strong]
        tail = torch.from_numpy(coo.col.astype(np.int64))[strong]
        a, b = find_ab_params(cfg.spread, cfg.min_dist)
        gen = torch.Generator().manual_seed(cfg.seed)
        y = optimize_layout(
            y, head, tail, weight[strong], a, b, n_epochs, cfg.negative_sample_rate, cfg.learning_rate, gen, progress
        )
    return y.numpy().astype(np.float32), recall


def trustworthiness_of(feats: np.ndarray, coords: np.ndarray, max_points: int = 2000) -> float:
    """``sklearn.manifold.trustworthiness`` at ``k = TRUST_K`` (a fixed random subset above ``max_points``)."""
    from sklearn.manifold import trustworthiness

    n = min(len(feats), max_points)
    if n <= 2 * TRUST_K:  # sklearn needs n_neighbors < n_samples / 2
        return float("nan")
    n = len(feats)
    idx = np.sort(np.random.default_rng(0).choice(n, max_points, replace=False)) if n > max_points else slice(None)
    return float(trustworthiness(feats[idx], coords[idx], n_neighbors=TRUST_K))


def default_epochs(n: int) -> int:
    """SGD epochs when none are given: 200 below 10,000 points, 100 from 10,000.

    umap-learn uses 500 below 10,000 and 200 above. Each epoch here touches every edge once on average, and a
    graph with more points gives every point more updates per epoch, so fewer epochs suffice as ``n`` grows;
    on the benchmark set (docs/app.md) these counts change trustworthiness by less than 0.001 against 500/200
    epochs while cutting the layout time by 2-2.5x.
    """
    return 200 if n < 10_000 else 100


def _pca2(feats: np.ndarray) -> np.ndarray:
    centred = feats - feats.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def fast_umap(x: np.ndarray, progress: ProgressFn | None = None, **params: Any) -> np.ndarray:
    """``(n, 2)`` float32 coordinates of ``x``; keyword arguments are :class:`UMAPConfig` fields."""
    try:
        cfg = UMAPConfig(**params)
    except TypeError as exc:
        raise ConfigError(f"unknown UMAP parameter: {exc}") from None
    return fit_map(x, cfg, progress).coords


def place_points(fitted: Map2D, new: np.ndarray) -> np.ndarray:
    """Positions of ``new`` points (m, d) on an existing map.

    For a ``fast`` map: the fuzzy-membership-weighted mean of the coordinates of their ``n_neighbors`` nearest
    reference points (UMAP's ``transform`` initialisation). For a ``umap-learn`` map: umap-learn's own
    ``transform``; when the map came from the disk cache, its model is refitted first (same features and seed,
    so the same map).
    """
    if fitted.config.method == "umap-learn":
        from aclecg.analysis import umap_learn

        feats = fitted.preprocess(np.atleast_2d(new))
        placed = umap_learn.transform(fitted.key, feats)
        if placed is None:
            c = fitted.config
            umap_learn.fit(
                fitted.reference,
                min(c.n_neighbors, len(fitted.reference) - 1),
                c.min_dist,
                c.spread,
                c.metric,
                c.n_epochs,
                c.negative_sample_rate,
                c.learning_rate,
                c.seed,
                key=fitted.key,
            )
            placed = umap_learn.transform(fitted.key, feats)
        assert placed is not None
        return placed
    q = torch.from_numpy(fitted.preprocess(np.atleast_2d(new)))
    ref = torch.from_numpy(fitted.reference)
    k = min(fitted.config.n_neighbors, ref.shape[0])
    idx, dist = knn(q, ref, k, exclude_self=False)
    rho, sigma = smooth_knn(dist)
    w = torch.exp(-(dist - rho[:, None]).clamp(min=0.0) / sigma[:, None])
    w = w / w.sum(1, keepdim=True)
    coords = torch.from_numpy(fitted.coords)[idx]  # (m, k, 2)
    return (w[..., None] * coords).sum(1).numpy().astype(np.float32)


def cache_key(x: np.ndarray, config: UMAPConfig, knn: str = "auto") -> str:
    """Content hash of the embeddings, parameters and neighbour search (names the on-disk cache entry)."""
    h = hashlib.sha256()
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    h.update(str(arr.shape).encode())
    h.update(arr.tobytes())
    params = asdict(config)
    if params["method"] == "fast":
        del params["method"]  # keys of fast maps stay as they were before umap-learn was selectable
        if knn_search(config, arr.shape[0], knn) == "approximate":
            params["knn"] = "approximate"  # exact maps keep the keys they had before the search was selectable
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()[:24]


def cache_file(cache_dir: Path | str, key: str) -> Path:
    """The on-disk entry of the map keyed ``key`` (:func:`cache_key`) in ``cache_dir``."""
    return Path(cache_dir) / f"umap_{key}.npz"


def cached_map(
    x: np.ndarray,
    cache_dir: Path | str,
    config: UMAPConfig | None = None,
    progress: ProgressFn | None = None,
    knn: str = "auto",
) -> Map2D:
    """:func:`fit_map` with an on-disk cache keyed by :func:`cache_key` (an ``.npz`` per entry)."""
    cfg = config or UMAPConfig()
    cache_dir = Path(cache_dir)
    key = cache_key(x, cfg, knn)
    path = cache_file(cache_dir, key)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                comps = z["components"] if z["has_components"] else None
                trust = float(z["trustworthiness"]) if "trustworthiness" in z.files else None
                if trust is None:  # an entry from before maps reported it: compute it once, keep it
                    trust = trustworthiness_of(z["reference"], z["coords"])
                recall = float(z["knn_recall"]) if "knn_recall" in z.files else float("nan")
                return Map2D(
                    coords=z["coords"],
                    reference=z["reference"],
                    mean=z["mean"],
                    components=comps,
                    config=cfg,
                    trustworthiness=trust,
                    key=key,
                    knn=knn_search(cfg, len(z["coords"]), knn),
                    knn_recall=None if np.isnan(recall) else recall,
                )
        except (OSError, KeyError, ValueError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed
    fitted = fit_map(x, cfg, progress, knn)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        coords=fitted.coords,
        reference=fitted.reference,
        mean=fitted.mean,
        components=fitted.components if fitted.components is not None else np.zeros((0, 0), np.float32),
        has_components=np.array(fitted.components is not None),
        trustworthiness=np.array(np.nan if fitted.trustworthiness is None else fitted.trustworthiness),
        knn_recall=np.array(np.nan if fitted.knn_recall is None else fitted.knn_recall),
    )
    tmp.replace(path)
    return fitted
