"""2-D maps of embeddings: a fast vectorised UMAP-style layout in torch (no numba), or umap-learn's UMAP.

The algorithm follows UMAP (McInnes, Healy & Melville, "UMAP: Uniform Manifold Approximation and Projection
for Dimension Reduction", arXiv:1802.03426, 2018) step by step, but every step is a batched tensor operation
so that nothing needs a just-in-time compiler:

1. optional PCA to ``pca_dims`` dimensions (features are centred; cosine metric L2-normalises first);
2. exact k-nearest neighbours with :func:`torch.cdist` computed in row blocks and ``topk``;
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

import contextlib
import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from aclecg.constraints import UMAP_METHODS, UMAP_METRICS
from aclecg.errors import ConfigError, DataError

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

ProgressFn = Callable[[float, str], None]
#: The two map methods: this module's fast layout and umap-learn's UMAP.
METHODS: tuple[str, ...] = UMAP_METHODS
#: Neighbourhood size of the trustworthiness every map reports (sklearn.manifold.trustworthiness).
TRUST_K = 10


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
    #: (figures for publication; see :mod:`aclecg.umap_learn`)
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

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        return _project(np.asarray(x, dtype=np.float32), self.mean, self.components, self.config.metric)


# --------------------------------------------------------------------------------------------- helpers


def find_ab_params(spread: float = 1.0, min_dist: float = 0.1) -> tuple[float, float]:
    """Fit ``a``, ``b`` of ``1/(1 + a x^(2b))`` to UMAP's target curve (1 below min_dist, exp decay above)."""
    from scipy.optimize import curve_fit

    xs = np.linspace(0, spread * 3, 300)
    target = np.where(xs < min_dist, 1.0, np.exp(-(xs - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), xs, target, p0=(1.0, 1.0), maxfev=5000)
    return float(a), float(b)


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


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch threads (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _orthonormalise(y: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis of the columns of a tall ``y`` (n, q) via the eigen-decomposition of its small Gram
    matrix (float64), which avoids a LAPACK QR of the tall matrix (slow on few, busy cores)."""
    gram = (y.T @ y).double()
    with torch_threads(1):  # a q x q problem: threads only add hand-off cost (100x on busy cores)
        vals, vecs = torch.linalg.eigh(gram)
    keep = vals > vals.max() * 1e-10
    return (y.double() @ (vecs[:, keep] / vals[keep].sqrt())).float()


def randomized_pca(x: np.ndarray, k: int, seed: int = 0, oversample: int = 10, n_iter: int = 2) -> np.ndarray:
    """Leading ``k`` principal directions ``(d, k)`` of centred ``x`` (n, d) by a randomized range finder with
    power iterations (Halko, Martinsson & Tropp, SIAM Review 53(2), 2011). All large products are float32
    matrix multiplications; only ``q x q`` problems (q = k + oversample) are decomposed."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    q = min(k + oversample, min(xt.shape))
    gen = torch.Generator().manual_seed(seed)
    basis = _orthonormalise(xt @ torch.randn(xt.shape[1], q, generator=gen))
    for _ in range(n_iter):
        basis = _orthonormalise(xt @ _orthonormalise(xt.T @ basis))
    small = (basis.T @ xt).double()  # (q', d)
    with torch_threads(1):
        vals, vecs = torch.linalg.eigh(small @ small.T)  # B B^T = U S^2 U^T, ascending
    order = torch.argsort(vals, descending=True)[:k]
    directions = small.T @ vecs[:, order] / vals[order].clamp(min=1e-30).sqrt()  # V = B^T U / S
    return directions.float().numpy()


def _project(x: np.ndarray, mean: np.ndarray, components: np.ndarray | None, metric: str) -> np.ndarray:
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = x - mean
    return (x @ components if components is not None else x).astype(np.float32)


def knn(
    query: torch.Tensor, ref: torch.Tensor, k: int, exclude_self: bool, block: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours of each ``query`` row among ``ref`` rows (Euclidean), in row blocks.

    With ``exclude_self`` the query set is the reference set and each point's own index is skipped.
    Returns ``(indices (n, k) int64, distances (n, k) float32)`` sorted by distance.
    """
    idx_out, dist_out = [], []
    ref_sq = (ref * ref).sum(1)
    for start in range(0, query.shape[0], block):
        q = query[start : start + block]
        # Squared distances via the expansion |q|^2 - 2 q.r + |r|^2 (one fused matmul, clamped for round-off).
        d2 = torch.addmm((q * q).sum(1, keepdim=True) + ref_sq[None, :], q, ref.T, alpha=-2.0)
        d2.clamp_(min=0.0)
        if exclude_self:
            rows = torch.arange(q.shape[0])
            d2[rows, rows + start] = float("inf")
        dist, idx = torch.topk(d2, k, dim=1, largest=False)
        idx_out.append(idx)
        dist_out.append(dist.sqrt())
    return torch.cat(idx_out), torch.cat(dist_out)


def smooth_knn(dist: torch.Tensor, n_iter: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point ``rho`` and ``sigma`` of UMAP's fuzzy set, by a bisection run on all points at once."""
    k = dist.shape[1]
    target = math.log2(k)
    positive = torch.where(dist > 0, dist, torch.full_like(dist, float("inf")))
    rho = positive.min(dim=1).values
    rho = torch.where(torch.isfinite(rho), rho, torch.zeros_like(rho))
    gap = (dist - rho[:, None]).clamp(min=0.0)
    lo = torch.zeros_like(rho)
    hi = torch.full_like(rho, float("inf"))
    mid = torch.ones_like(rho)
    for _ in range(n_iter):
        total = torch.exp(-gap / mid[:, None]).sum(1)
        too_big = total > target
        hi = torch.where(too_big, mid, hi)
        lo = torch.where(too_big, lo, mid)
        mid = torch.where(torch.isfinite(hi), (lo + hi) / 2, mid * 2)
    # umap-learn's lower bound on sigma keeps isolated points from collapsing.
    mean_d = dist.mean()
    floor = 1e-3 * torch.where(rho > 0, dist.mean(1), mean_d)
    return rho, torch.maximum(mid, floor)


def fuzzy_graph(idx: torch.Tensor, dist: torch.Tensor, n: int) -> csr_matrix:
    """Symmetrised fuzzy simplicial set as a ``scipy.sparse.csr_matrix`` (n, n)."""
    import scipy.sparse as sp

    rho, sigma = smooth_knn(dist)
    w = torch.exp(-(dist - rho[:, None]).clamp(min=0.0) / sigma[:, None])
    rows = torch.arange(n).repeat_interleave(idx.shape[1])
    a = sp.csr_matrix((w.reshape(-1).numpy().astype(np.float64), (rows.numpy(), idx.reshape(-1).numpy())), shape=(n, n))
    at = a.T.tocsr()
    graph = a + at - a.multiply(at)
    graph.eliminate_zeros()
    return graph.tocsr()


def _spectral_init(graph: csr_matrix, seed: int) -> np.ndarray | None:
    """Two leading non-trivial eigenvectors of the symmetric normalised Laplacian; None if that fails."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import eigsh

    n = graph.shape[0]
    n_comp, _ = connected_components(graph, directed=False)
    if n_comp > 1 or n < 10:
        return None  # disconnected graphs need UMAP's meta-embedding; PCA init is the simple, robust choice
    deg = np.asarray(graph.sum(axis=1)).ravel()
    d_inv = sp.diags(1.0 / np.sqrt(np.maximum(deg, 1e-12)))
    # The smallest eigenvectors of L = I - D^-1/2 W D^-1/2 are the largest of D^-1/2 W D^-1/2 ("LA"),
    # which Lanczos finds much faster than "SM" on L.
    adjacency = (d_inv @ graph @ d_inv).tocsr()
    rng = np.random.default_rng(seed)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        threadpool_limits = None
    try:
        with threadpool_limits(1) if threadpool_limits else contextlib.nullcontext():
            vals, vecs = eigsh(
                adjacency,
                k=3,
                which="LA",
                tol=1e-4,
                v0=rng.uniform(size=n),
                ncv=max(2 * 3 + 1, int(np.sqrt(n))),
                maxiter=n * 5,
            )
    except Exception:  # ArpackNoConvergence and friends: fall back to PCA
        return None
    vals = 1.0 - vals  # eigenvalues of the Laplacian
    order = np.argsort(vals)[1:3]
    return vecs[:, order].astype(np.float32)


def _scale_init(init: np.ndarray, seed: int) -> np.ndarray:
    """Scale to [0, 10] per axis and add a little noise, as umap-learn does."""
    rng = np.random.default_rng(seed)
    span = init.max(0) - init.min(0)
    init = 10.0 * (init - init.min(0)) / np.where(span > 0, span, 1.0)
    return (init + rng.normal(scale=1e-4, size=init.shape)).astype(np.float32)


def optimize_layout(
    y: torch.Tensor,
    head: torch.Tensor,
    tail: torch.Tensor,
    weight: torch.Tensor,
    a: float,
    b: float,
    n_epochs: int,
    negative_sample_rate: int,
    learning_rate: float,
    generator: torch.Generator,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """Vectorised UMAP SGD: per epoch, all sampled edges pull together and random pairs push apart."""
    n = y.shape[0]
    prob = weight / weight.max()
    n_edges = head.shape[0]
    y = y.clone()
    for epoch in range(n_epochs):
        alpha = learning_rate * (1.0 - epoch / n_epochs)
        keep = torch.rand(n_edges, generator=generator) < prob
        h, t = head[keep], tail[keep]
        # attraction: gradient of -log(phi(d)) with phi = 1/(1 + a d^2b); zero-length edges give zero gradient
        diff = y[h] - y[t]
        d2 = (diff * diff).sum(1, keepdim=True).clamp_(min=1e-12)
        d2b = torch.exp(torch.log(d2) * b)  # d2 ** b, cheaper than pow on CPU
        coef = (-2.0 * a * b) * d2b / d2 / (1.0 + a * d2b)
        grad = (coef * diff).clamp_(-4.0, 4.0).mul_(alpha)
        delta = torch.zeros_like(y)
        delta.index_add_(0, h, grad)
        delta.index_add_(0, t, grad, alpha=-1.0)
        # repulsion: negative_sample_rate random partners for each sampled edge's head (self pairs: diff = 0)
        hn = h.repeat(negative_sample_rate)
        tn = torch.randint(0, n, (hn.shape[0],), generator=generator)
        diff = y[hn] - y[tn]
        d2 = (diff * diff).sum(1, keepdim=True)
        coef = (2.0 * b) / ((0.001 + d2) * (1.0 + a * torch.exp(torch.log(d2.clamp(min=1e-12)) * b)))
        grad = (coef * diff).clamp_(-4.0, 4.0).mul_(alpha)
        delta.index_add_(0, hn, grad)
        y += delta
        if progress is not None and (epoch % 20 == 0 or epoch == n_epochs - 1):
            progress(0.3 + 0.7 * (epoch + 1) / n_epochs, f"layout epoch {epoch + 1}/{n_epochs}")
    return y


# --------------------------------------------------------------------------------------------- public API


def fit_map(x: np.ndarray, config: UMAPConfig | None = None, progress: ProgressFn | None = None) -> Map2D:
    """Compute a 2-D UMAP-style map of ``x`` (n, d); see the module docstring for the algorithm."""
    cfg = config or UMAPConfig()
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"embeddings must be a 2-D array (points, features), got shape {x.shape}")
    n = x.shape[0]
    cfg.validate(n)
    k = min(cfg.n_neighbors, n - 1)
    # Everything but the kNN matrix products runs on one torch thread: these are many small or memory-bound
    # operations, for which OpenMP hand-offs cost more than they save, and which slow down by 10-100x when
    # other processes keep the cores busy (measured on the 2-core machine of docs/app.md).
    with torch_threads(1):
        feats, mean, components = _prepare_features(x, cfg)
    key = cache_key(x, cfg)
    if cfg.method == "umap-learn":
        from aclecg import umap_learn

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
        return Map2D(coords, feats, mean, components, cfg, trustworthiness_of(feats, coords), key)
    if progress:
        progress(0.05, "nearest neighbours")
    ft = torch.from_numpy(feats)
    idx, dist = knn(ft, ft, k, exclude_self=True)
    with torch_threads(1):
        graph = fuzzy_graph(idx, dist, n)
        if progress:
            progress(0.2, "initialisation")
        init = _spectral_init(graph, cfg.seed) if cfg.init == "spectral" else None
        if init is None:
            init = feats[:, :2].copy() if components is not None else _pca2(feats)
        y = torch.from_numpy(_scale_init(init, cfg.seed))
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
    coords = y.numpy().astype(np.float32)
    return Map2D(
        coords=coords,
        reference=feats,
        mean=mean,
        components=components,
        config=cfg,
        trustworthiness=trustworthiness_of(feats, coords),
        key=key,
    )


def trustworthiness_of(feats: np.ndarray, coords: np.ndarray, max_points: int = 2000) -> float:
    """``sklearn.manifold.trustworthiness`` at ``k = TRUST_K`` (a fixed random subset above ``max_points``)."""
    from sklearn.manifold import trustworthiness

    n = len(feats)
    if n <= TRUST_K + 1:
        return float("nan")
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
        from aclecg import umap_learn

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


def cache_key(x: np.ndarray, config: UMAPConfig) -> str:
    """Content hash of the embeddings and parameters (used to name the on-disk cache entry)."""
    h = hashlib.sha256()
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    h.update(str(arr.shape).encode())
    h.update(arr.tobytes())
    params = asdict(config)
    if params["method"] == "fast":
        del params["method"]  # keys of fast maps stay as they were before umap-learn was selectable
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()[:24]


def cached_map(
    x: np.ndarray, cache_dir: Path | str, config: UMAPConfig | None = None, progress: ProgressFn | None = None
) -> Map2D:
    """:func:`fit_map` with an on-disk cache keyed by :func:`cache_key` (an ``.npz`` per entry)."""
    cfg = config or UMAPConfig()
    cache_dir = Path(cache_dir)
    key = cache_key(x, cfg)
    path = cache_dir / f"umap_{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                comps = z["components"] if z["has_components"] else None
                trust = float(z["trustworthiness"]) if "trustworthiness" in z.files else None
                if trust is None:  # an entry from before maps reported it: compute it once, keep it
                    trust = trustworthiness_of(z["reference"], z["coords"])
                return Map2D(
                    coords=z["coords"],
                    reference=z["reference"],
                    mean=z["mean"],
                    components=comps,
                    config=cfg,
                    trustworthiness=trust,
                    key=key,
                )
        except (OSError, KeyError, ValueError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed
    fitted = fit_map(x, cfg, progress)
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
    )
    tmp.replace(path)
    return fitted
