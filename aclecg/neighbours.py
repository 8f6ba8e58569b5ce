"""Similar-ECG search: exact cosine nearest neighbours over record embeddings.

:class:`NeighbourIndex` standardises each feature with the index's own mean and std (std floored at
``1e-6``), L2-normalises the rows and answers queries by one matrix product in torch (blocked over index
rows when the product would be large), keeping the top ``k`` highest first. :func:`cached_index` builds the
index of a checkpoint on a prepared dataset once per process (an LRU cache keyed by weights key and data
fingerprint). :func:`precision_at_k` scores an embedding by how often the neighbours share a label.

>>> import numpy as np
>>> emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
>>> index = NeighbourIndex(emb)
>>> idx, sim = index.query(emb[:1], k=2, exclude=[0])
>>> idx.tolist()
[[1, 3]]
>>> bool(sim[0, 0] > sim[0, 1])
True
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aclecg.errors import ConfigError, DataError

__all__ = [
    "NeighbourIndex",
    "PrecisionAtK",
    "cached_index",
    "clear_cache",
    "precision_at_k",
    "similar_records",
]

#: Largest number of similarity entries (queries x index rows) computed in one block.
BLOCK_ENTRIES = 1 << 24
#: How many built indexes :func:`cached_index` keeps in memory.
CACHE_SIZE = 4
_CACHE: OrderedDict[tuple[str, str], NeighbourIndex] = OrderedDict()


def _as_matrix(values: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be a numeric array ({exc})") from None
    if arr.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (rows, features); got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise DataError(f"{name} has non-finite values (NaN or inf) in {bad} row(s)")
    return arr


class NeighbourIndex:
    """Exact cosine nearest neighbours over ``embeddings (N, D)`` (after per-feature standardisation)."""

    def __init__(self, embeddings: Any):
        emb = _as_matrix(embeddings, "embeddings")
        if emb.shape[0] < 1 or emb.shape[1] < 1:
            raise DataError(f"embeddings must have at least one row and one feature; got shape {emb.shape}")
        self.mean = emb.mean(axis=0, dtype=np.float64).astype(np.float32)
        self.std = np.maximum(emb.std(axis=0, dtype=np.float64), 1e-6).astype(np.float32)
        self._rows = torch.from_numpy(self._normalise(emb))

    def __len__(self) -> int:
        return int(self._rows.shape[0])

    @property
    def dim(self) -> int:
        return int(self._rows.shape[1])

    def _normalise(self, arr: np.ndarray) -> np.ndarray:
        z = (arr - self.mean) / self.std
        norm = np.linalg.norm(z, axis=1, keepdims=True)
        return np.ascontiguousarray(z / np.maximum(norm, 1e-12), dtype=np.float32)

    def query(self, vectors: Any, k: int = 5, exclude: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``(indices (M, k) int64, similarities (M, k) float32)`` of the ``k`` most similar index rows.

        ``exclude`` gives, per query, one index row to leave out (e.g. the query's own row), or -1 for none.
        """
        q = _as_matrix(vectors, "query vectors")
        if q.shape[1] != self.dim:
            raise DataError(f"query vectors have {q.shape[1]} features but the index has {self.dim}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ConfigError(f"k must be an integer; got {k!r}")
        n = len(self)
        excl = self._exclusions(exclude, q.shape[0])
        limit = n - int((excl >= 0).any())
        if not 1 <= int(k) <= limit:
            raise ConfigError(
                f"k must be between 1 and {limit} (index rows{' minus the excluded one' if limit < n else ''}); got {k}"
            )
        k = int(k)
        qt = torch.from_numpy(self._normalise(q))
        block = max(1, BLOCK_ENTRIES // max(q.shape[0], 1))
        best_sim = torch.full((q.shape[0], 0), -np.inf)
        best_idx = torch.zeros((q.shape[0], 0), dtype=torch.int64)
        rows = torch.arange(q.shape[0])
        excl_t = torch.from_numpy(excl)
        for start in range(0, n, block):
            sims = qt @ self._rows[start : start + block].T
            local = excl_t - start
            hit = (local >= 0) & (local < sims.shape[1])
            if bool(hit.any()):
                sims[rows[hit], local[hit]] = -np.inf
            take = min(k, sims.shape[1])
            top_sim, top_idx = torch.topk(sims, take, dim=1)
            best_sim = torch.cat([best_sim, top_sim], dim=1)
            best_idx = torch.cat([best_idx, top_idx + start], dim=1)
            if best_sim.shape[1] > k:
                best_sim, order = torch.topk(best_sim, k, dim=1)
                best_idx = torch.gather(best_idx, 1, order)
        return best_idx.numpy().astype(np.int64), best_sim.numpy().astype(np.float32)

    def _exclusions(self, exclude: Any, m: int) -> np.ndarray:
        if exclude is None:
            return np.full(m, -1, dtype=np.int64)
        arr = np.asarray(exclude)
        if arr.ndim == 0:
            arr = np.full(m, arr)
        if arr.shape != (m,) or not np.issubdtype(arr.dtype, np.integer):
            raise ConfigError(f"exclude must be one integer row index (or -1) per query ({m}); got {arr.shape}")
        if ((arr < -1) | (arr >= len(self))).any():
            raise ConfigError(f"exclude holds row indices outside -1..{len(self) - 1}")
        return arr.astype(np.int64)


def cached_index(source: Any, dataset: Any, cache_dir: str | Path | None = None) -> NeighbourIndex:
    """The index of ``source``'s embeddings of ``dataset`` (embeddings from the disk cache, index kept in memory)."""
    from aclecg.evaluation import cached_embeddings

    key = (str(source.key), str(getattr(dataset, "fingerprint", "") or ""))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    emb, _ = cached_embeddings(source, dataset, cache_dir=cache_dir)
    index = NeighbourIndex(emb)
    _CACHE[key] = index
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return index


def similar_records(
    index: NeighbourIndex,
    records: Any,
    vector: Any,
    k: int = 5,
    exclude_row: int | None = None,
    label_set: str | None = None,
) -> Any:
    """The ``k`` records most similar to one query ``vector (D,)`` as a table, most similar first.

    ``records`` is the dataset's record table (row ``i`` of the index is row ``i`` of it); ``exclude_row`` leaves
    the query's own row out. Columns: ``rank``, ``row``, ``record_id``, ``similarity`` and, when ``label_set`` is
    given, ``labels`` (``;``-separated codes, ``""`` for none).
    """
    import pandas as pd

    table = records.reset_index(drop=True)
    if len(table) != len(index):
        raise DataError(f"the record table has {len(table)} rows but the index has {len(index)}")
    q = _as_matrix(np.asarray(vector, dtype=np.float32).reshape(1, -1), "query vector")
    idx, sim = index.query(q, k=k, exclude=None if exclude_row is None else [int(exclude_row)])
    rows = idx[0]
    out = pd.DataFrame(
        {
            "rank": np.arange(1, len(rows) + 1),
            "row": rows,
            "record_id": table["record_id"].astype(str).to_numpy()[rows],
            "similarity": sim[0].astype(float),
        }
    )
    if label_set is not None:
        column = f"labels_{label_set}"
        if column not in table.columns:
            raise DataError(f"the record table has no label set {label_set!r}")
        labels = table[column].fillna("").astype(str).to_numpy()[rows]
        out["labels"] = [("" if v == "nan" else v) for v in labels]
    return out


def clear_cache() -> None:
    """Forget the indexes :func:`cached_index` holds."""
    _CACHE.clear()


@dataclass(frozen=True)
class PrecisionAtK:
    """Mean fraction of the ``k`` neighbours sharing a label with the query, with a bootstrap 95 % CI."""

    k: int
    value: float
    ci_low: float
    ci_high: float
    n_queries: int


def precision_at_k(
    train_emb: Any,
    train_labels: Any,
    query_emb: Any,
    query_labels: Any,
    k: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
) -> PrecisionAtK:
    """Precision at ``k`` of neighbours from the train set: a neighbour is right when it shares any label."""
    ytr = np.asarray(train_labels)
    yq = np.asarray(query_labels)
    if ytr.ndim != 2 or yq.ndim != 2 or ytr.shape[1] != yq.shape[1]:
        raise DataError(f"labels must be (rows, classes) with the same classes; got {ytr.shape} and {yq.shape}")
    index = NeighbourIndex(train_emb)
    if ytr.shape[0] != len(index):
        raise DataError(f"train labels have {ytr.shape[0]} rows but train embeddings have {len(index)}")
    q = _as_matrix(query_emb, "query embeddings")
    if yq.shape[0] != q.shape[0] or q.shape[0] == 0:
        raise DataError(f"query labels have {yq.shape[0]} rows but query embeddings have {q.shape[0]} (need >= 1)")
    idx, _ = index.query(q, k=k)
    shared = (ytr[idx].astype(bool) & yq[:, None, :].astype(bool)).any(axis=2)
    per_query = shared.mean(axis=1)
    rng = np.random.default_rng(seed)
    boots = per_query[rng.integers(0, len(per_query), size=(n_boot, len(per_query)))].mean(axis=1)
    low, high = np.percentile(boots, [2.5, 97.5])
    return PrecisionAtK(int(k), float(per_query.mean()), float(low), float(high), int(len(per_query)))
