"""The numerical steps of the fast UMAP-style layout (:mod:`aclecg.analysis.embed2d`), each a batched tensor operation.

Curve fitting of ``a`` and ``b``, randomised PCA, blocked exact k-nearest neighbours and an approximate
(inverted-file) search for large inputs, the fuzzy simplicial set
(``rho``/``sigma`` by vectorised bisection, symmetrised memberships), spectral initialisation and the SGD layout;
see :mod:`.embed2d` for the algorithm as a whole and McInnes, Healy & Melville (arXiv:1802.03426) for UMAP.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

ProgressFn = Callable[[float, str], None]

#: Cells each row of :func:`approx_knn` probes (its own and the nearest others).
APPROX_PROBES = 8
#: Rows on which :func:`knn_recall` compares approximate neighbours with the exact ones.
RECALL_SAMPLE = 1000


def find_ab_params(spread: float = 1.0, min_dist: float = 0.1) -> tuple[float, float]:
    """Fit ``a``, ``b`` of ``1/(1 + a x^(2b))`` to UMAP's target curve (1 below min_dist, exp decay above)."""
    from scipy.optimize import curve_fit

    xs = np.linspace(0, spread * 3, 300)
    target = np.where(xs < min_dist, 1.0, np.exp(-(xs - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), xs, target, p0=(1.0, 1.0), maxfev=5000)
    return float(a), float(b)


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


def _nearest_centroids(x: torch.Tensor, centroids: torch.Tensor, p: int, block: int = 4096) -> torch.Tensor:
    """Indices ``(n, p)`` of each row's ``p`` nearest centroids, nearest first."""
    c_sq = (centroids * centroids).sum(1)
    out = []
    for start in range(0, x.shape[0], block):
        q = x[start : start + block]
        d2 = torch.addmm((q * q).sum(1, keepdim=True) + c_sq[None, :], q, centroids.T, alpha=-2.0)
        out.append(torch.topk(d2, p, dim=1, largest=False).indices)
    return torch.cat(out)


def kmeans_cells(x: torch.Tensor, n_cells: int, seed: int, n_iter: int = 8) -> torch.Tensor:
    """Centroids ``(n_cells, p)`` of Lloyd's k-means started from a seeded random choice of rows."""
    gen = torch.Generator().manual_seed(seed)
    centroids = x[torch.randperm(x.shape[0], generator=gen)[:n_cells]].clone()
    for _ in range(n_iter):
        assign = _nearest_centroids(x, centroids, 1)[:, 0]
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=n_cells)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None].to(x.dtype)  # an empty cell keeps its centroid
    return centroids


def approx_knn(
    x: torch.Tensor, k: int, seed: int, n_probe: int = APPROX_PROBES, block: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate k nearest neighbours of every row of ``x`` among the others (Euclidean), without the n x n
    distance matrix: an inverted-file search.

    The rows are partitioned into about ``sqrt(n)`` cells by k-means (seeded, so the result is deterministic);
    each row is compared exactly with the rows of its ``n_probe`` nearest cells, one cell at a time, keeping a
    running top ``k``. The cost grows as ``n^1.5`` instead of ``n^2``; neighbours in cells a row does not probe
    are missed (:func:`knn_recall` measures how many). Returns what :func:`knn` returns with ``exclude_self``.
    """
    n = x.shape[0]
    n_cells = max(1, int(math.sqrt(n)))
    centroids = kmeans_cells(x, n_cells, seed)
    probes = _nearest_centroids(x, centroids, min(n_probe, n_cells))
    members_order = torch.argsort(probes[:, 0], stable=True)
    member_bounds = _bounds(probes[:, 0], n_cells)
    flat = probes.reshape(-1)
    probe_order = torch.argsort(flat, stable=True)  # (query, cell) pairs grouped by cell, queries ascending
    probe_rows = probe_order // probes.shape[1]
    probe_bounds = _bounds(flat, n_cells)
    x_sq = (x * x).sum(1)
    best_d = torch.full((n, k), float("inf"))
    best_i = torch.full((n, k), -1, dtype=torch.int64)
    for cell in range(n_cells):
        members = members_order[member_bounds[cell] : member_bounds[cell + 1]]
        askers = probe_rows[probe_bounds[cell] : probe_bounds[cell + 1]]
        if members.numel() == 0 or askers.numel() == 0:
            continue
        for start in range(0, askers.numel(), block):
            rows = askers[start : start + block]
            d2 = torch.addmm(x_sq[rows][:, None] + x_sq[members][None, :], x[rows], x[members].T, alpha=-2.0)
            d2.clamp_(min=0.0)
            d2[members[None, :] == rows[:, None]] = float("inf")
            cand_d = torch.cat([best_d[rows], d2], dim=1)
            cand_i = torch.cat([best_i[rows], members[None, :].expand(len(rows), -1)], dim=1)
            top_d, top_j = torch.topk(cand_d, k, dim=1, largest=False)
            best_d[rows], best_i[rows] = top_d, torch.gather(cand_i, 1, top_j)
    short = torch.nonzero(~torch.isfinite(best_d).all(1)).squeeze(1)  # rows whose probed cells held < k others
    if short.numel():
        d2 = torch.addmm(x_sq[short][:, None] + x_sq[None, :], x[short], x.T, alpha=-2.0).clamp_(min=0.0)
        d2[torch.arange(short.numel()), short] = float("inf")
        best_d[short], best_i[short] = torch.topk(d2, k, dim=1, largest=False)
    return best_i, best_d.sqrt()


def _bounds(labels: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Start offsets (n_groups + 1) of each group in ``labels`` sorted by group."""
    counts = torch.bincount(labels, minlength=n_groups)
    return torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])


def knn_recall(x: torch.Tensor, idx: torch.Tensor, seed: int, sample: int = RECALL_SAMPLE) -> float:
    """Mean fraction of the exact k nearest neighbours that ``idx`` (n, k) holds, on a seeded sample of rows."""
    n, k = idx.shape
    rows = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(n, min(sample, n), replace=False)))
    q = x[rows]
    d2 = torch.addmm((q * q).sum(1, keepdim=True) + (x * x).sum(1)[None, :], q, x.T, alpha=-2.0)
    d2[torch.arange(len(rows)), rows] = float("inf")
    exact = torch.topk(d2, k, dim=1, largest=False).indices
    return float((idx[rows][:, :, None] == exact[:, None, :]).any(2).float().mean())


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


def spectral_init(graph: csr_matrix, seed: int) -> np.ndarray | None:
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


def scale_init(init: np.ndarray, seed: int) -> np.ndarray:
    """Scale to [0, 10] per axis and add a little noise, as umap-learn does."""
    rng = np.random.default_rng(seed)
    span = init.max(0) - init.min(0)
    init = 10.0 * (init - init.min(0)) / np.where(span > 0, span, 1.0)
    return (init + rng.normal(scale=1e-4, size=init.shape)).astype(np.float32)


# long: the graph (edges, weights), the curve (a, b) and the SGD schedule of UMAP
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
