"""How similar learned features are across leads and anatomical regions (the Lead regions page's analysis).

>>> import numpy as np
>>> from aclecg.leads import LEADS, default_region_map
>>> feats = np.random.default_rng(0).normal(size=(8, 12, 4))
>>> sim, names, summary = region_similarity(feats, LEADS, default_region_map())
>>> sim.shape, names[:2], sorted(summary)
((4, 4), ['septal', 'anterior'], ['across', 'within'])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aclecg.errors import ConfigError, DataError
from aclecg.leads import RegionMap

__all__ = ["cosine_similarity_matrix", "region_similarity", "sample_lead_features", "sample_region_similarity"]


def cosine_similarity_matrix(features: np.ndarray) -> np.ndarray:
    """Mean over records of the cosine similarity between every pair of units: ``(N, U, D) -> (U, U)``."""
    f = np.asarray(features, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-12)
    return np.einsum("nud,nvd->uv", f, f) / f.shape[0]


def region_similarity(
    lead_features: np.ndarray, leads: Sequence[str], region_map: RegionMap, centre: bool = False
) -> tuple[np.ndarray, list[str], dict[str, float]]:
    """Region embeddings (mean of their leads' features) and their mean cosine similarity.

    With ``centre`` each lead's features first have their mean over records removed (post-ReLU features are
    all positive, which pushes raw cosines towards 1 and hides the structure).

    Returns ``(sim (R, R), region names, summary)`` where ``summary`` has ``within`` (mean cosine of lead
    pairs inside the same region) and ``across`` (lead pairs in different regions).
    """
    idx = region_map.indices(leads)
    names = list(idx)
    lead_features = np.asarray(lead_features, dtype=np.float64)
    if lead_features.ndim != 3 or lead_features.shape[1] != len(leads):
        raise DataError(
            f"the encoder gives {lead_features.shape[1] if lead_features.ndim == 3 else 'no'} feature vector(s) per "
            f"window, not one per lead ({len(leads)}): region similarity needs per-lead features, which an encoder "
            "of your own (one embedding per window) does not have"
        )
    if centre:
        lead_features = lead_features - lead_features.mean(axis=0, keepdims=True)
    region_feats = np.stack([np.asarray(lead_features)[:, members].mean(1) for members in idx.values()], axis=1)
    sim = cosine_similarity_matrix(region_feats)
    lead_sim = cosine_similarity_matrix(lead_features)
    owner = np.full(len(leads), -1)
    for r, members in enumerate(idx.values()):
        owner[members] = r
    same = (owner[:, None] == owner[None, :]) & (owner[:, None] >= 0) & ~np.eye(len(leads), dtype=bool)
    diff = (owner[:, None] != owner[None, :]) & (owner[:, None] >= 0) & (owner[None, :] >= 0)
    summary = {
        "within": float(lead_sim[same].mean()) if same.any() else float("nan"),
        "across": float(lead_sim[diff].mean()) if diff.any() else float("nan"),
    }
    return sim, names, summary


def sample_lead_features(
    source: Any, dataset: Any, n_records: int = 128, seed: int = 0, cache_dir: str | Path | None = None
) -> np.ndarray:
    """Per-lead features ``(n, L, D)`` of ``n_records`` records of a prepared dataset drawn with ``seed`` (rows
    sorted; all records when it holds fewer): the sample :func:`sample_region_similarity` compares.

    They are cached on disk beside the embeddings (keyed by the weights, the data's fingerprint, the sample size
    and the seed), so the Lead regions page's first visit reads them instead of encoding (``aclecg regions`` fills
    the cache; ``make app`` runs it for the default checkpoint). A damaged cache file is recomputed."""
    from aclecg.evaluation import encode_windows
    from aclecg.evaluation.embeddings import cache_file, load_cached_array, save_cached_array

    n = min(int(n_records), len(dataset))
    keyed = bool(getattr(source, "key", "")) and bool(getattr(dataset, "fingerprint", ""))
    path = cache_file(source, dataset, f"lead-features-n{n}-seed{int(seed)}", cache_dir) if keyed else None
    if path is not None and path.is_file():
        cached = load_cached_array(path)
        if cached is not None and cached.ndim == 3 and cached.shape[:2] == (n, len(source.leads)):
            return cached
    rows = np.sort(np.random.default_rng(seed).choice(len(dataset), size=n, replace=False))
    feats = encode_windows(
        source, dataset.signals[rows], dataset.fs, dataset.leads, output="lead_features", name=source.label
    )
    if path is not None:
        save_cached_array(path, feats)
    return feats


def sample_region_similarity(
    source: Any,
    dataset: Any,
    region_map: RegionMap,
    n_records: int = 128,
    centre: bool = True,
    seed: int = 0,
) -> tuple[np.ndarray, list[str], dict[str, float]]:
    """:func:`region_similarity` of an encoder's lead features on ``n_records`` records of a prepared dataset drawn
    with ``seed`` (rows sorted; all records when it holds fewer): what the Lead regions page and ``aclecg regions``
    show. ``summary`` also gives ``records``, how many were encoded."""
    if len(region_map.indices(source.leads)) < 2:
        raise ConfigError("the region map needs at least two regions with leads the encoder uses")
    feats = sample_lead_features(source, dataset, n_records, seed)
    sim, names, summary = region_similarity(feats, list(source.leads), region_map, centre=centre)
    return sim, names, {**summary, "records": float(len(feats))}
