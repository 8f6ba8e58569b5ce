"""Array kernels of the overlap check (:mod:`aclecg.overlap`): spectral fingerprints, exact top-k retrieval by
blocked matrix products, and the cross-correlation that confirms a candidate pair.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(3, 2, 800)).astype(np.float32)
>>> fingerprints(x, 100.0, bands=16).shape
(3, 32)
>>> top_k(np.array([[0.1, 0.9, 0.5]]), 2).tolist()
[[1, 2]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

#: Band of the spectral fingerprint (Hz); the upper edge is capped at 0.45 fs.
FINGERPRINT_BAND: tuple[float, float] = (0.5, 40.0)


# --- fingerprints -------------------------------------------------------------------------------------------
def band_matrix(n: int, fs: float, bands: int) -> np.ndarray:
    """``(n // 2 + 1, bands)`` averaging matrix from rfft bins to log-spaced bands within the fingerprint band."""
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    low, high = FINGERPRINT_BAND[0], min(FINGERPRINT_BAND[1], 0.45 * fs)
    edges = np.geomspace(low, high, bands + 1)
    which = np.searchsorted(edges, freqs, side="right") - 1
    mat = np.zeros((freqs.size, bands), dtype=np.float32)
    inside = (which >= 0) & (which < bands)
    mat[np.flatnonzero(inside), which[inside]] = 1.0
    counts = mat.sum(0)
    empty = counts == 0  # bands narrower than a bin borrow the nearest bin
    for j in np.flatnonzero(empty):
        centre = np.sqrt(edges[j] * edges[j + 1])
        mat[int(np.argmin(np.abs(freqs - centre))), j] = 1.0
    return mat / mat.sum(0, keepdims=True)


def fingerprints(segments: np.ndarray, fs: float, bands: int = 48, workers: int = 1) -> np.ndarray:
    """``(n, leads * bands)`` float32: per lead, the log band powers of the Hann-windowed segment, centred.

    Shifting a segment by a fraction of its length barely changes them; a flat lead gives a constant row.
    """
    n, leads, length = segments.shape
    x = segments - segments.mean(-1, keepdims=True)
    power = np.abs(sfft.rfft(x * np.hanning(length).astype(np.float32), axis=-1, workers=workers)) ** 2
    banded = power.astype(np.float32) @ band_matrix(length, fs, bands)
    total = banded.sum(-1, keepdims=True)
    logp = np.log(banded + 1e-6 * total + 1e-12)
    logp -= logp.mean(-1, keepdims=True)  # per-lead gain drops out
    return logp.reshape(n, leads * bands).astype(np.float32)


@dataclass(frozen=True)
class Projection:
    mean: np.ndarray
    axes: np.ndarray  # (features, dims)

    def __call__(self, f: np.ndarray) -> np.ndarray:
        z = (f - self.mean) @ self.axes
        return (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def fit_projection(f: np.ndarray, dims: int, sample: int = 8192, seed: int = 0) -> Projection:
    """Principal axes of fingerprints ``f`` (at most ``sample`` rows, drawn with ``seed``)."""
    rng = np.random.default_rng(seed)
    pick = f if len(f) <= sample else f[np.sort(rng.choice(len(f), sample, replace=False))]
    mean = pick.mean(0, dtype=np.float64)
    centred = pick - mean
    _, vectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    axes = vectors[:, ::-1][:, : min(dims, len(pick), vectors.shape[1])].astype(np.float32)
    return Projection(mean.astype(np.float32), axes)


def top_k(sims: np.ndarray, k: int, group: int = 64) -> np.ndarray:
    """``(m, k)`` column indices of the ``k`` largest values of each row of ``sims``, largest first.

    The columns are cut into groups of ``group``; the ``k`` largest values of a row lie in the ``k`` groups with the
    largest maxima (each of them lies in a group whose maximum is at least the k-th largest value, and at most
    ``k`` groups have one), so only those groups are partitioned: far fewer operations than a partition of
    every column."""
    m, n = sims.shape
    k = min(k, n)
    main = (n // group) * group
    if main // group <= k:
        cols = np.broadcast_to(np.arange(n), (m, n))
        vals = sims
    else:
        grouped = sims[:, :main].reshape(m, main // group, group)
        best_groups = np.argpartition(-grouped.max(-1), k - 1, axis=1)[:, :k]
        cols = (best_groups[:, :, None] * group + np.arange(group)).reshape(m, k * group)
        vals = np.take_along_axis(sims, cols, axis=1)
        if main < n:  # the columns after the last whole group
            cols = np.concatenate([cols, np.broadcast_to(np.arange(main, n), (m, n - main))], axis=1)
            vals = np.concatenate([vals, sims[:, main:]], axis=1)
    pick = np.argpartition(-vals, k - 1, axis=1)[:, :k] if k < vals.shape[1] else np.argsort(-vals, axis=1)
    order = np.argsort(-np.take_along_axis(vals, pick, 1), axis=1, kind="stable")
    return np.take_along_axis(np.take_along_axis(cols, pick, 1), order, 1)


def nearest(query: np.ndarray, index: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """``(len(query), k)`` indices of the rows of ``index`` with the largest dot product with each query row
    (exact: blocked matrix products and :func:`top_k`)."""
    k = min(k, len(index))
    out = np.empty((len(query), k), dtype=np.int64)
    for start in range(0, len(query), block):
        out[start : start + block] = top_k(query[start : start + block] @ index.T, k)
    return out


# --- confirmation ------------------------------------------------------------------------------------------
def pearson_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean over leads of the Pearson correlation of ``a[i, l]`` with ``b[i, l]`` (flat leads left out)."""
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    num = (a * b).sum(-1)
    ea, eb = (a * a).sum(-1), (b * b).sum(-1)
    live = (ea > 1e-8 * a.shape[-1]) & (eb > 1e-8 * b.shape[-1])
    r = np.where(live, num / np.sqrt(np.maximum(ea * eb, 1e-30)), 0.0)
    n_live = live.sum(-1)
    return np.where(n_live > 0, r.sum(-1) / np.maximum(n_live, 1), np.nan)


def unit_leads(x: np.ndarray, centre: slice) -> np.ndarray:
    """``x`` with each lead scaled to unit energy over ``centre`` of its last axis (flat leads stay zero)."""
    energy = np.einsum("ilt,ilt->il", x[..., centre], x[..., centre])
    return x * (1.0 / np.sqrt(np.where(energy > 1e-8, energy, np.inf)))[..., None].astype(x.dtype)


def confirm(
    qa: np.ndarray,
    regions: np.ndarray,
    pa: np.ndarray,
    pb: np.ndarray,
    lag: int,
    threshold: float,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Best lag and mean lead correlation of pairs ``(qa[pa[i]], regions[pb[i]])``.

    ``qa`` ``(n, leads, seg)`` are segments, ``regions`` ``(m, leads, seg + 2 lag)`` the signals around their
    candidates; the returned lag (samples, ``-lag .. lag``) says how much later the segment appears in its region
    than at the region's centre.

    The lag search sums the cross-correlations of the leads, each scaled to unit energy, so every lead weighs the
    same; pairs whose best normalised sum stays 0.2 below the threshold are not scored further (``r`` NaN)."""
    seg = qa.shape[-1]
    n = int(sfft.next_fast_len(seg + 2 * lag, real=True))
    qa_unit = unit_leads(qa, slice(None))
    rg_unit = unit_leads(regions, slice(lag, lag + seg))
    fa = sfft.rfft(qa_unit, n, axis=-1, workers=workers)
    fb = sfft.rfft(rg_unit, n, axis=-1, workers=workers)
    ea = np.einsum("ilt,ilt->i", qa_unit, qa_unit)
    power = np.einsum("ilt,ilt->it", rg_unit, rg_unit)
    cs = np.concatenate([np.zeros((len(regions), 1), power.dtype), np.cumsum(power, 1)], 1)
    eb = cs[:, seg : seg + 2 * lag + 1] - cs[:, : 2 * lag + 1]  # B's energy under the segment at each lag
    r = np.full(pa.size, np.nan)
    best = np.zeros(pa.size, dtype=np.int64)
    for start in range(0, pa.size, 1024):
        i, j = pa[start : start + 1024], pb[start : start + 1024]
        cross = np.zeros((i.size, fa.shape[-1]), dtype=np.complex64)
        for lead in range(qa.shape[1]):
            cross += np.conj(fa[i, lead]) * fb[j, lead]
        cc = sfft.irfft(cross, n, axis=-1, workers=workers)[:, : 2 * lag + 1]
        ncc = cc / np.sqrt(np.maximum(ea[i, None] * eb[j], 1e-30))
        top = np.argmax(ncc, axis=1)
        best[start : start + i.size] = top
        keep = np.flatnonzero(ncc[np.arange(i.size), top] >= threshold - 0.2)
        if keep.size:
            idx = top[keep][:, None] + np.arange(seg)[None, :]
            b = np.take_along_axis(regions[j[keep]], idx[:, None, :], axis=2)
            r[start + keep] = pearson_mean(qa[i[keep]], b)
    return r, best - lag
