"""The Representations page's maps, cached by what changes them and by nothing else.

A map depends on the checkpoint's contents (its sha256 sidecar,
:func:`aclecg.analysis.record_map.checkpoint_digest`), the
datasets (paths and fingerprints), the point cap, the method and its parameters: those, and only those, are the
arguments of the cached functions below. Colouring, comparing, picking, searching a record or showing an upload
reruns the page but finds every map, and the upload's position, in the caches.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from aclecg.analysis import embed2d, record_map
from pages._common import embed_windows, embeddings_cache, open_dataset, umap_cache


def identity(checkpoint: str, paths: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """``(checkpoint digest, dataset fingerprints)``: cheap to read on every run, part of every key below."""
    return record_map.checkpoint_digest(checkpoint), tuple(str(open_dataset(p).fingerprint) for p in paths)


def config(n_neighbors: int, min_dist: float, method: str) -> embed2d.UMAPConfig:
    return embed2d.UMAPConfig(n_neighbors=int(n_neighbors), min_dist=float(min_dist), method=method)


def _embeddings(checkpoint: str, paths: tuple[str, ...]) -> list[np.ndarray]:
    from aclecg.evaluation import cached_embeddings, load_source

    source = load_source(checkpoint, device="cpu")
    folder = embeddings_cache()
    return [cached_embeddings(source, open_dataset(p), device="cpu", cache_dir=folder)[0] for p in paths]


@st.cache_resource(show_spinner="Embedding the records (once per checkpoint and dataset, then read from disk)…")
def map_input(
    checkpoint: str, digest: str, paths: tuple[str, ...], fingerprints: tuple[str, ...], cap: int
) -> record_map.MapInput:
    """The embeddings of the mapped records (at most ``cap``, a stratified sample above)."""
    return record_map.map_input(_embeddings(checkpoint, paths), cap)


@st.cache_resource(show_spinner=False, max_entries=16)
def fitted_map(
    checkpoint: str,
    digest: str,
    paths: tuple[str, ...],
    fingerprints: tuple[str, ...],
    cap: int,
    n_neighbors: int,
    min_dist: float,
    method: str,
) -> embed2d.Map2D:
    """The map of :func:`map_input` (computed once, then read from the disk cache)."""
    inp = map_input(checkpoint, digest, paths, fingerprints, cap)
    return embed2d.cached_map(inp.embeddings, umap_cache(), config(n_neighbors, min_dist, method))


def on_disk(inp: record_map.MapInput, n_neighbors: int, min_dist: float, method: str) -> bool:
    """Whether that map is already in the disk cache (so drawing it waits for nothing)."""
    return embed2d.cache_file(umap_cache(), inp.key(config(n_neighbors, min_dist, method))).is_file()


@st.cache_resource(show_spinner=False, max_entries=64)
def found_position(
    checkpoint: str,
    digest: str,
    paths: tuple[str, ...],
    fingerprints: tuple[str, ...],
    cap: int,
    params: tuple[int, float, str],
    row: int,
    local: tuple[int, int],
) -> np.ndarray:
    """``(1, 2)`` position of joint-table row ``row`` (dataset ``local[0]``, its row ``local[1]``) on that map."""
    inp = map_input(checkpoint, digest, paths, fingerprints, cap)
    fitted = fitted_map(checkpoint, digest, paths, fingerprints, cap, *params)
    embedding = None
    if inp.position(row) is None:  # not in the sample: placed like an upload
        embedding = _embeddings(checkpoint, (paths[local[0]],))[0][local[1]]
    return record_map.record_position(fitted, inp, row, embedding)


def upload_position(checkpoint: str, fitted: embed2d.Map2D, uploaded) -> np.ndarray:
    """Position of the uploaded record on ``fitted``, embedded and placed once per map and upload."""
    memo = st.session_state.setdefault("rep_upload_positions", {})
    key = (fitted.key, checkpoint, st.session_state.get("upload_folder"), uploaded.record_id)
    if key not in memo:
        if len(memo) >= 8:
            memo.clear()
        memo[key] = embed2d.place_points(fitted, embed_windows(checkpoint, uploaded.windows, uploaded.fs))
    return memo[key]
