"""Maps of a dataset's records as the app draws them: at most :data:`MAX_MAP_POINTS` points, keyed by what
changes them, and any record reachable by its id.

Above :data:`MAX_MAP_POINTS` records a map is computed and drawn on a deterministic sample stratified by dataset
(:func:`sample_rows`): every dataset keeps its share of the points, the sample depends only on the datasets'
sizes and the seed (never on the colouring or any other widget), and each mapped point keeps its row in the joint
record table, so its record id and metadata stay with it. A record left out of the sample is still found by its
id (:func:`find_record`) and placed on the map like an upload (:func:`record_position`).

>>> sample_rows(["a"] * 6 + ["b"] * 2, cap=4).tolist()
[3, 4, 5, 6]
>>> sample_rows(["a"] * 3, cap=5).tolist()
[0, 1, 2]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aclecg.analysis import embed2d
from aclecg.errors import ConfigError, DataError

__all__ = [
    "MAX_MAP_POINTS",
    "MapInput",
    "checkpoint_digest",
    "find_record",
    "map_input",
    "record_position",
    "sample_rows",
]

#: Most points a map in the app is computed and drawn on; above it, a stratified sample (see :func:`sample_rows`).
MAX_MAP_POINTS = 20_000


def sample_rows(strata: Sequence[Any] | np.ndarray, cap: int = MAX_MAP_POINTS, seed: int = 0) -> np.ndarray:
    """Sorted positions of at most ``cap`` rows, each stratum (e.g. dataset) keeping its share.

    Every row when there are at most ``cap``. Otherwise each stratum gets ``cap`` times its fraction of the rows,
    rounded by largest remainder (ties: the earlier stratum) and at least one row while ``cap`` allows; its rows
    are drawn without replacement by a generator seeded with ``seed``, so the sample is the same on every call.
    """
    labels = np.asarray(strata)
    n = len(labels)
    if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap < 1:
        raise ConfigError(f"the map's point cap must be a positive integer; got {cap!r}")
    if n <= cap:
        return np.arange(n)
    names, codes = np.unique(labels, return_inverse=True)
    counts = np.bincount(codes, minlength=len(names))
    share = counts * cap / n
    take = np.floor(share).astype(np.int64)
    for j in np.argsort(-(share - take), kind="stable")[: cap - int(take.sum())]:
        take[j] += 1
    if cap >= len(names):  # a small dataset is never left out entirely
        for j in np.flatnonzero(take == 0):
            largest = int(np.argmax(take))
            take[largest] -= 1
            take[j] = 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(codes == j), size=int(take[j]), replace=False) for j in range(len(names))]
    return np.sort(np.concatenate(picked))


@dataclass
class MapInput:
    """The embeddings a map is computed on: the mapped rows of the joint record table and their embeddings."""

    embeddings: np.ndarray  # (m, d) float32, row i is record table row rows[i]
    rows: np.ndarray  # (m,) sorted positions in the joint record table
    n_total: int  # records in the joint table
    _keys: dict[Any, str] = field(default_factory=dict, repr=False)

    @property
    def sampled(self) -> bool:
        return len(self.rows) < self.n_total

    def key(self, config: embed2d.UMAPConfig) -> str:
        """:func:`aclecg.analysis.embed2d.cache_key` of this input (hashed once per configuration)."""
        if config not in self._keys:
            self._keys[config] = embed2d.cache_key(self.embeddings, config)
        return self._keys[config]

    def position(self, row: int) -> int | None:
        """Index of record table row ``row`` among the mapped points, or None when it is not mapped."""
        at = int(np.searchsorted(self.rows, row))
        return at if at < len(self.rows) and int(self.rows[at]) == int(row) else None

    def caption(self) -> str:
        if not self.sampled:
            return f"All {self.n_total:,} records are shown."
        return (
            f"Showing {len(self.rows):,} of {self.n_total:,} records: maps are computed on at most "
            f"{MAX_MAP_POINTS:,} points, a fixed sample stratified by dataset. Find any other record by its id."
        )


def map_input(embeddings: Sequence[np.ndarray], cap: int = MAX_MAP_POINTS, seed: int = 0) -> MapInput:
    """The :class:`MapInput` of the datasets whose embeddings are given, stacked in order (one joint table)."""
    sizes = [int(np.asarray(e).shape[0]) for e in embeddings]
    if not sizes:
        raise DataError("a map needs the embeddings of at least one dataset")
    dims = {int(np.asarray(e).shape[1]) for e in embeddings}
    if len(dims) != 1:
        raise DataError(f"the datasets' embeddings have different widths {sorted(dims)}: one checkpoint maps them")
    rows = sample_rows(np.repeat(np.arange(len(sizes)), sizes), cap, seed)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    parts = []
    for j, emb in enumerate(embeddings):
        local = rows[(rows >= offsets[j]) & (rows < offsets[j + 1])] - offsets[j]
        parts.append(np.asarray(emb[local], dtype=np.float32))
    return MapInput(np.concatenate(parts), rows, int(offsets[-1]))


def record_position(fitted: embed2d.Map2D, inp: MapInput, row: int, embedding: Any = None) -> np.ndarray:
    """``(1, 2)`` position of record table row ``row`` on the map: its own point when it is mapped, otherwise
    placed like an upload (:func:`aclecg.analysis.embed2d.place_points`) from its ``embedding``."""
    at = inp.position(row)
    if at is not None:
        return np.asarray(fitted.coords[at : at + 1], dtype=np.float32)
    if embedding is None:
        raise DataError(f"row {row} is not on the map and no embedding was given to place it")
    return embed2d.place_points(fitted, np.asarray(embedding, dtype=np.float32).reshape(1, -1))


def find_record(table: Any, query: str) -> int | None:
    """Row of the joint record table whose ``record_id`` is ``query`` (exact, else ignoring case; the first
    window of the first dataset holding it), or None."""
    text = str(query).strip()
    if not text:
        return None
    ids = table["record_id"].astype(str).to_numpy()
    for match in (ids == text, np.char.lower(ids.astype(str)) == text.lower()):
        hits = np.flatnonzero(match)
        if hits.size:
            return int(hits[0])
    return None


def checkpoint_digest(path: str | Path) -> str:
    """What identifies a checkpoint file's contents cheaply: its ``.sha256`` sidecar, else size and mtime."""
    path = Path(path)
    sidecar = path.with_name(path.name + ".sha256")
    try:
        if sidecar.is_file():
            return sidecar.read_text().split()[0]
        stat = path.stat()
    except (OSError, IndexError):
        return "missing"
    return hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:24]
