"""Label-agreement precision@k of nearest-neighbour search on a prepared dataset's official split.

:func:`evaluate_retrieval` queries every labelled ``test`` record (PTB-XL fold 10) against the labelled
``train`` records (folds 1-8; ``val`` is never used) and scores each method by :func:`aclecg.analysis.neighbours.
precision_at_k`: the fraction of the ``k`` neighbours that share at least one label with the query, with a
bootstrap 95 % CI over queries. A source of ``None`` is the raw-signal baseline: the prepared window
flattened (leads x samples) is the "embedding". A ``chance`` row gives the expected precision of neighbours
drawn at random from the index (the same for every ``k``).

Memory grows linearly with the number of records: the raw-signal rows are read from the memory-mapped signals a
block at a time (see :class:`aclecg.analysis.neighbours.NeighbourIndex`), queries are searched in blocks of
:data:`aclecg.analysis.neighbours.QUERY_BLOCK` rows, and the chance row is computed a block of queries at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aclecg.analysis.neighbours import QUERY_BLOCK, precision_at_k
from aclecg.errors import ConfigError, DataError

__all__ = ["CHANCE", "COLUMNS", "RAW_SIGNAL", "evaluate_retrieval", "split_rows"]

#: Columns of the table :func:`evaluate_retrieval` returns (one row per method and ``k``).
COLUMNS = ["name", "k", "precision", "ci_low", "ci_high", "n_queries", "n_index", "label_set"]
#: Name of the raw-signal baseline row and of the random-neighbour reference row.
RAW_SIGNAL, CHANCE = "raw signal", "chance"


def split_rows(dataset: Any, label_set: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(index_rows, index_y, query_rows, query_y)``: labelled ``train`` rows and labelled ``test`` rows."""
    keep, y, _ = dataset.labels(label_set, "multilabel")
    keep = np.asarray(keep, dtype=np.int64)
    split = dataset.records["split"].astype(str).to_numpy()[keep]
    train, test = split == "train", split == "test"
    if not train.any() or not test.any():
        raise DataError(
            f"label set {label_set!r} needs labelled train and test records; got {int(train.sum())} train "
            f"and {int(test.sum())} test"
        )
    return keep[train], y[train], keep[test], y[test]


class _SignalRows:
    """Prepared windows of some rows, flattened (leads x samples), read from the dataset's signals (a memory map)
    a block of rows at a time: a :class:`aclecg.analysis.neighbours.RowSource`, so the raw-signal index never holds a
    second copy of the signals. ``numpy.asarray`` of it reads every row."""

    def __init__(self, signals: Any, rows: np.ndarray):
        self.signals, self.rows = signals, np.asarray(rows, dtype=np.int64)
        self.shape = (len(self.rows), int(np.prod(signals.shape[1:])))

    def row_block(self, start: int, stop: int) -> np.ndarray:
        take = self.rows[start:stop]
        order = np.argsort(take, kind="stable")  # read in file order, give back in the requested order
        out = np.empty((len(take), self.shape[1]), dtype=np.float32)
        out[order] = np.asarray(self.signals[take[order]], dtype=np.float32).reshape(len(take), -1)
        return out

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self.row_block(0, self.shape[0])
        return whole if dtype is None else whole.astype(dtype)


def _raw_signals(dataset: Any, rows: np.ndarray) -> _SignalRows:
    return _SignalRows(dataset.signals, rows)


def _embeddings(source: Any, dataset: Any, cache_dir: str | Path | None) -> np.ndarray:
    from aclecg.evaluation import cached_embeddings

    return np.asarray(cached_embeddings(source, dataset, cache_dir=cache_dir)[0])


def _chance(index_y: np.ndarray, query_y: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    index_t = index_y.astype(np.float32).T
    per_query = np.empty(len(query_y))
    for start in range(0, len(query_y), QUERY_BLOCK):  # (block x index) at a time, never (queries x index)
        block = query_y[start : start + QUERY_BLOCK].astype(np.float32)
        per_query[start : start + len(block)] = ((block @ index_t) > 0).mean(axis=1)
    rng = np.random.default_rng(seed)
    boots = per_query[rng.integers(0, len(per_query), size=(n_boot, len(per_query)))].mean(axis=1)
    low, high = np.percentile(boots, [2.5, 97.5])
    return float(per_query.mean()), float(low), float(high)


def evaluate_retrieval(
    sources: Sequence[tuple[str, Any]],
    dataset: Any,
    label_set: str = "superdiagnostic",
    k: Iterable[int] = (1, 5, 10),
    n_boot: int = 1000,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    chance: bool = True,
) -> pd.DataFrame:
    """Precision@k per ``(name, source)`` (``source`` an ``EncoderSource``, or ``None`` for the raw signal).

    Returns a frame with :data:`COLUMNS`, one row per method and ``k`` (plus ``chance`` rows when asked).
    """
    ks = [int(x) for x in k]
    if not ks or any(x < 1 for x in ks):
        raise ConfigError(f"k must be positive integers; got {ks}")
    names = [str(name) for name, _ in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"method names must be unique; got {names}")
    index_rows, index_y, query_rows, query_y = split_rows(dataset, label_set)
    if max(ks) > len(index_rows):
        raise ConfigError(f"k={max(ks)} is more than the {len(index_rows)} indexed train records")
    out = []
    for name, source in sources:
        if source is None:
            index_emb, query_emb = _raw_signals(dataset, index_rows), _raw_signals(dataset, query_rows)
        else:
            emb = _embeddings(source, dataset, cache_dir)
            index_emb, query_emb = emb[index_rows], emb[query_rows]
        # one search for the largest k serves every k (the top-k list of a smaller k is its prefix)
        for kk, res in zip(ks, precision_at_k(index_emb, index_y, query_emb, query_y, k=ks, n_boot=n_boot, seed=seed)):
            out.append([str(name), kk, res.value, res.ci_low, res.ci_high, res.n_queries, len(index_rows), label_set])
    if chance:
        value, low, high = _chance(index_y, query_y, n_boot, seed)
        out += [[CHANCE, kk, value, low, high, len(query_rows), len(index_rows), label_set] for kk in ks]
    return pd.DataFrame(out, columns=COLUMNS)
