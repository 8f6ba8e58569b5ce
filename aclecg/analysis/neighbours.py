"""Similar-ECG search: exact cosine nearest neighbours over record embeddings.

:class:`NeighbourIndex` standardises each feature with the index's own mean and std (std floored at
``1e-6``), L2-normalises the rows and answers queries by matrix products in torch, keeping the top ``k`` highest
first. Memory stays bounded whatever the size: the index is built a chunk of rows at a time (statistics in
float64 accumulators, never a float64 copy of the matrix; the input may be a :class:`RowSource` that reads its
rows lazily, e.g. from a memory map), and queries run in blocks of at most :data:`QUERY_BLOCK` rows against
blocks of index rows, at most :data:`BLOCK_ENTRIES` similarities at once; only the running top ``k`` per query
is kept, never the queries x index matrix. :func:`cached_index` builds the
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, overload, runtime_checkable

import numpy as np
import torch

from aclecg.errors import ConfigError, DataError

__all__ = [
    "NeighbourIndex",
    "PrecisionAtK",
    "RowSource",
    "cached_index",
    "clear_cache",
    "precision_at_k",
    "similar_records",
]

#: Largest number of similarity entries (queries x index rows) computed in one block.
BLOCK_ENTRIES = 1 << 24
#: Most query rows searched at once (each block keeps only its running top ``k``).
QUERY_BLOCK = 2048
#: Entries (rows x features) of the index read and standardised at once while it is built.
CHUNK_ENTRIES = 1 << 18
#: How many built indexes :func:`cached_index` keeps in memory.
CACHE_SIZE = 4
_CACHE: OrderedDict[tuple[str, str], NeighbourIndex] = OrderedDict()


@runtime_checkable
class RowSource(Protocol):
    """A 2-D matrix read a block of rows at a time (e.g. signals gathered from a memory map)."""

    shape: tuple[int, int]

    def row_block(self, start: int, stop: int) -> np.ndarray: ...


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


class _ArrayRows:
    """A numeric array as a :class:`RowSource` (no copy: each block is converted to float32 on its own)."""

    def __init__(self, arr: np.ndarray, name: str):
        if arr.ndim != 2:
            raise DataError(f"{name} must be a 2-D array (rows, features); got shape {arr.shape}")
        self.arr, self.shape = arr, (int(arr.shape[0]), int(arr.shape[1]))

    def row_block(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.arr[start:stop], dtype=np.float32)


def _row_source(values: Any, name: str) -> RowSource:
    if isinstance(values, RowSource):
        return values
    if isinstance(values, np.ndarray) and (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        return _ArrayRows(values, name)
    return _ArrayRows(_as_matrix(values, name), name)


def _blocks(source: RowSource) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, float32 rows)`` of ``source`` in chunks of about :data:`CHUNK_ENTRIES` entries."""
    n, d = source.shape
    step = max(1, CHUNK_ENTRIES // max(d, 1))
    for start in range(0, n, step):
        yield start, np.asarray(source.row_block(start, min(n, start + step)), dtype=np.float32)


def _materialise(values: Any, name: str) -> np.ndarray:
    """A whole matrix as float32 (a :class:`RowSource` is read in one go), checked like :func:`_as_matrix`."""
    if isinstance(values, RowSource):
        return _as_matrix(values.row_block(0, values.shape[0]), name)
    return _as_matrix(values, name)


class NeighbourIndex:
    """Exact cosine nearest neighbours over ``embeddings (N, D)`` (after per-feature standardisation).

    ``embeddings`` is an array (or anything :func:`numpy.asarray` reads) or a :class:`RowSource`; it is read a
    chunk at a time, so building the index holds the standardised float32 rows plus one chunk.
    """

    def __init__(self, embeddings: Any):
        source = _row_source(embeddings, "embeddings")
        n, d = source.shape
        if n < 1 or d < 1:
            raise DataError(f"embeddings must have at least one row and one feature; got shape {(n, d)}")
        total, bad = np.zeros(d, dtype=np.float64), 0
        for _, block in _blocks(source):
            finite = np.isfinite(block).all(axis=1)
            bad += int((~finite).sum())
            total += block.sum(axis=0, dtype=np.float64)
        if bad:
            raise DataError(f"embeddings has non-finite values (NaN or inf) in {bad} row(s)")
        mean = total / n
        squares = np.zeros(d, dtype=np.float64)
        for _, block in _blocks(source):
            dev = block - mean  # float64, one chunk
            squares += np.einsum("ij,ij->j", dev, dev)
        self.mean = mean.astype(np.float32)
        self.std = np.maximum(np.sqrt(squares / n), 1e-6).astype(np.float32)
        rows = np.empty((n, d), dtype=np.float32)
        for start, block in _blocks(source):
            rows[start : start + len(block)] = self._normalise(block)
        self._rows = torch.from_numpy(rows)

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
        Queries run :data:`QUERY_BLOCK` rows at a time; memory is bounded by :data:`BLOCK_ENTRIES` similarities.
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
        m = q.shape[0]
        q_block = max(1, min(QUERY_BLOCK, m, BLOCK_ENTRIES))
        idx_out = np.empty((m, k), dtype=np.int64)
        sim_out = np.empty((m, k), dtype=np.float32)
        for start in range(0, m, q_block):
            stop = min(m, start + q_block)
            qt = torch.from_numpy(self._normalise(q[start:stop]))
            top_idx, top_sim = self._top_k(qt, torch.from_numpy(excl[start:stop]), k, max(1, BLOCK_ENTRIES // q_block))
            idx_out[start:stop], sim_out[start:stop] = top_idx.numpy(), top_sim.numpy()
        return idx_out, sim_out

    def _top_k(self, qt: torch.Tensor, excl: torch.Tensor, k: int, block: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Running top ``k`` of one block of queries over the index, ``block`` index rows at a time."""
        best_sim = torch.full((qt.shape[0], 0), -np.inf)
        best_idx = torch.zeros((qt.shape[0], 0), dtype=torch.int64)
        rows = torch.arange(qt.shape[0])
        for start in range(0, len(self), block):
            sims = qt @ self._rows[start : start + block].T
            local = excl - start
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
        return best_idx, best_sim

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


@overload
def precision_at_k(
    train_emb: Any, train_labels: Any, query_emb: Any, query_labels: Any, k: int = 5, n_boot: int = 1000, seed: int = 0
) -> PrecisionAtK: ...


@overload
def precision_at_k(
    train_emb: Any,
    train_labels: Any,
    query_emb: Any,
    query_labels: Any,
    k: Sequence[int],
    n_boot: int = 1000,
    seed: int = 0,
) -> list[PrecisionAtK]: ...


def precision_at_k(
    train_emb: Any,
    train_labels: Any,
    query_emb: Any,
    query_labels: Any,
    k: int | Sequence[int] = 5,
    n_boot: int = 1000,
    seed: int = 0,
) -> PrecisionAtK | list[PrecisionAtK]:
    """Precision at ``k`` of neighbours from the train set: a neighbour is right when it shares any label.

    ``k`` may be a sequence of values: one search for the largest serves them all (a list is returned).
    ``train_emb`` and ``query_emb`` may be :class:`RowSource` objects (read a block at a time).
    """
    ks = [k] if isinstance(k, (int, np.integer)) and not isinstance(k, bool) else list(k)  # type: ignore[arg-type]
    if not ks or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in ks):
        raise ConfigError(f"k must be positive integers; got {k!r}")
    ytr = np.asarray(train_labels)
    yq = np.asarray(query_labels)
    if ytr.ndim != 2 or yq.ndim != 2 or ytr.shape[1] != yq.shape[1]:
        raise DataError(f"labels must be (rows, classes) with the same classes; got {ytr.shape} and {yq.shape}")
    index = NeighbourIndex(train_emb)
    if ytr.shape[0] != len(index):
        raise DataError(f"train labels have {ytr.shape[0]} rows but train embeddings have {len(index)}")
    q = _materialise(query_emb, "query embeddings")
    if yq.shape[0] != q.shape[0] or q.shape[0] == 0:
        raise DataError(f"query labels have {yq.shape[0]} rows but query embeddings have {q.shape[0]} (need >= 1)")
    idx, _ = index.query(q, k=int(max(ks)))
    out = []
    for kk in ks:
        shared = (ytr[idx[:, : int(kk)]].astype(bool) & yq[:, None, :].astype(bool)).any(axis=2)
        per_query = shared.mean(axis=1)
        rng = np.random.default_rng(seed)
        boots = per_query[rng.integers(0, len(per_query), size=(n_boot, len(per_query)))].mean(axis=1)
        low, high = np.percentile(boots, [2.5, 97.5])
        out.append(PrecisionAtK(int(kk), float(per_query.mean()), float(low), float(high), int(len(per_query))))
    return out[0] if isinstance(k, (int, np.integer)) and not isinstance(k, bool) else out
