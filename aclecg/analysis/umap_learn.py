"""umap-learn's UMAP as the second method of :mod:`aclecg.analysis.embed2d` (``UMAPConfig(method="umap-learn")``).

A researcher who writes "UMAP" in a paper means umap-learn's algorithm (McInnes, Healy & Melville, 2018); the
fast torch layout of :mod:`.embed2d` is for exploration. Both see the same preprocessed features (centred,
PCA to ``pca_dims``) and the same ``n_neighbors``, ``min_dist``, ``spread``, metric, epochs and seed.
umap-learn is deterministic for a fixed ``random_state`` (it then runs single-threaded).

umap-learn compiles its kernels with numba on the first fit of a process (about 15-18 s on a 2-core machine).
:func:`warm_up` pays that in a background thread when the app starts, and :func:`is_warm` tells the page
whether a fit would still wait for it.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any

import numpy as np

from aclecg.errors import ConfigError

__all__ = ["fit", "is_warm", "transform", "warm_up"]

_WARM = threading.Event()
_STARTED = False
_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}  # cache key -> fitted umap.UMAP, for transform (bounded, see _remember)
_MAX_MODELS = 8


def _umap():
    try:
        import umap
    except ImportError:
        raise ConfigError("method 'umap-learn' needs the umap-learn package (pip install umap-learn)") from None
    return umap


# long: umap-learn's own parameters, passed on one by one
def fit(
    feats: np.ndarray,
    n_neighbors: int,
    min_dist: float,
    spread: float,
    metric: str,
    n_epochs: int | None,
    negative_sample_rate: int,
    learning_rate: float,
    seed: int,
    key: str | None = None,
) -> np.ndarray:
    """``(n, 2)`` float32 coordinates from umap-learn; the fitted model is kept (by ``key``) for transform."""
    umap = _umap()
    model = umap.UMAP(
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        spread=spread,
        metric=metric,
        n_epochs=n_epochs,
        negative_sample_rate=negative_sample_rate,
        learning_rate=learning_rate,
        random_state=int(seed),
        n_components=2,
        init="spectral",
        transform_seed=int(seed),
        n_jobs=1,
    )
    with _LOCK, warnings.catch_warnings():  # numba's first compile is not safe to run twice at once
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)  # seeded: one thread
        coords = model.fit_transform(np.ascontiguousarray(feats, dtype=np.float32))
        _WARM.set()
    if key is not None:
        _remember(key, model)
    return np.asarray(coords, dtype=np.float32)


def _remember(key: str, model: Any) -> None:
    _MODELS[key] = model
    while len(_MODELS) > _MAX_MODELS:
        _MODELS.pop(next(iter(_MODELS)))


def transform(key: str, new_feats: np.ndarray) -> np.ndarray | None:
    """umap-learn's own ``transform`` of new points, or None when no fitted model is held for ``key``."""
    model = _MODELS.get(key)
    if model is None:
        return None
    with _LOCK:
        return np.asarray(model.transform(np.ascontiguousarray(new_feats, dtype=np.float32)), dtype=np.float32)


def warm_up(background: bool = True) -> threading.Thread | None:
    """Compile umap-learn's kernels with a tiny fit, once per process, in a daemon thread unless ``background``
    is False. ``ACLECG_UMAP_WARMUP=0`` turns it off (the test suite does, to keep the cores free)."""
    global _STARTED
    if _WARM.is_set() or _STARTED or os.environ.get("ACLECG_UMAP_WARMUP", "1") == "0":
        return None
    _STARTED = True

    def run() -> None:
        try:
            rng = np.random.default_rng(0)
            fit(rng.normal(size=(64, 8)).astype(np.float32), 5, 0.1, 1.0, "euclidean", 20, 5, 1.0, 0)
        except Exception:
            pass

    if not background:
        run()
        return None
    thread = threading.Thread(target=run, name="umap-learn-warm-up", daemon=True)
    thread.start()
    return thread


def is_warm() -> bool:
    return _WARM.is_set()
