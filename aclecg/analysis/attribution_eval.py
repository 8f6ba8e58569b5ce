"""Region attribution on a prepared dataset: the probe it explains, one record's table, the territory check.

* :func:`train_probe` fits the linear probe of :func:`aclecg.evaluation.linear_probe` on a checkpoint's
  embeddings of the ``train`` records (``val`` chooses the L2 strength, ``test`` is never used) and
  :func:`cached_probe` keeps it on disk beside the embeddings, keyed by weights, data, label set and protocol.
* :func:`explain` attributes one dataset row or an uploaded window with that probe.
* :func:`territory_study` runs the anatomy check of :func:`aclecg.analysis.attribution.territory_match` on the PTB-XL
  MI records with one territory. Each record is explained by an *out-of-fold* probe: the ten folds form five
  pairs, and the probe explaining a pair is fitted on three other pairs with the remaining pair for validation,
  so no record is explained by a probe that saw its label.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aclecg import atomicio
from aclecg.analysis.attribution import (
    TERRITORIES,
    Attribution,
    LinearProbe,
    attribute,
    territory_match,
    territory_of,
)
from aclecg.errors import DataError
from aclecg.leads import RegionMap, default_region_map

__all__ = [
    "COLUMNS",
    "FOLD_PAIRS",
    "cached_probe",
    "explain",
    "mi_territory_rows",
    "territory_study",
    "train_probe",
]

#: Columns of the territory table (one row per model and fill).
COLUMNS = [
    "name",
    "fill",
    "match",
    "ci_low",
    "ci_high",
    "chance_uniform",
    "chance_permuted",
    "p_permutation",
    "n_records",
    "n_inferior",
    "n_anterior",
    "top_regions",
]
#: The out-of-fold scheme of :func:`territory_study`: records of a pair are explained by a probe that never saw it.
FOLD_PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10))


def _fit(
    emb: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, classes: Sequence[str], protocol: str
) -> LinearProbe:
    from aclecg.evaluation import linear_probe

    if train.size == 0 or val.size == 0:
        raise DataError(f"the probe needs training and validation records; got {train.size} and {val.size}")
    result = linear_probe(emb[train], y[train], emb[val], y[val], emb[val[:1]], protocol=protocol)
    return LinearProbe.from_result(result, classes, protocol)


def train_probe(
    source: Any, dataset: Any, label_set: str = "superdiagnostic", protocol: str = "multilabel", cache_dir: Any = None
) -> LinearProbe:
    """The linear probe on ``source``'s embeddings: fitted on ``train`` records, L2 chosen on ``val``."""
    from aclecg.evaluation import cached_embeddings

    keep, y, classes = dataset.labels(label_set, protocol)
    emb = np.asarray(cached_embeddings(source, dataset, cache_dir=cache_dir)[0])
    split = dataset.records["split"].astype(str).to_numpy()[keep]
    return _fit(emb[keep], y, np.flatnonzero(split == "train"), np.flatnonzero(split == "val"), classes, protocol)


#: Below this many training records the probe behind "explain by region" is too weak to trust: the app warns.
FEW_PROBE_RECORDS = 50


def probe_training_records(dataset: Any, label_set: str = "superdiagnostic", protocol: str = "multilabel") -> int:
    """How many records :func:`train_probe` fits its probe on (the ``train`` split's labelled records)."""
    keep, _, _ = dataset.labels(label_set, protocol)
    return int((dataset.records["split"].astype(str).to_numpy()[keep] == "train").sum())


def cached_probe(
    source: Any, dataset: Any, label_set: str = "superdiagnostic", protocol: str = "multilabel", cache_dir: Any = None
) -> LinearProbe:
    """:func:`train_probe`, stored as ``probe__<weights>__<data>__<label set>__<protocol>.npz`` in the cache."""
    from aclecg.evaluation import embedding_cache_dir

    folder = Path(cache_dir) if cache_dir is not None else embedding_cache_dir()
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{str(source.key)[:64]}__{str(dataset.fingerprint)[:24]}")
    path = folder / f"probe__{safe}__{re.sub(r'[^A-Za-z0-9_]', '_', label_set)}__{protocol}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as arrays:
                return LinearProbe.from_arrays(arrays)
        except (OSError, ValueError, KeyError, DataError):
            pass  # a damaged cache file is rebuilt below
    probe = train_probe(source, dataset, label_set, protocol, cache_dir=cache_dir)
    buffer = io.BytesIO()
    payload: dict[str, Any] = probe.to_arrays()
    np.savez(buffer, **payload)
    atomicio.write_bytes(path, buffer.getvalue())
    return probe


def explain(
    source: Any,
    probe: LinearProbe,
    windows: Any,
    data_leads: Sequence[str],
    fs: float,
    fill: str = "zero",
    region_map: RegionMap | None = None,
) -> Attribution:
    """Attribution of windows ``(N, len(data_leads), T)`` (dataset rows or an upload) by ``source`` + ``probe``.

    The windows are checked against the checkpoint (leads, rate, length) and put in its lead order first.
    """
    from types import SimpleNamespace

    from aclecg.evaluation import check_compatible

    x = np.asarray(windows, dtype=np.float32)
    if x.ndim != 3:
        raise DataError(f"windows must be (windows, leads, samples); got shape {x.shape}")
    shape = SimpleNamespace(leads=list(data_leads), fs=fs, n_samples=x.shape[-1])
    idx = check_compatible(source.meta, shape, source.path or source.label)
    return attribute(source.encoder, probe, np.ascontiguousarray(x[:, idx]), source.leads, region_map, fill)


def mi_territory_rows(dataset: Any) -> tuple[np.ndarray, list[str]]:
    """Rows (ascending) of PTB-XL MI records with exactly one territory (statements in ``labels_diagnostic``)."""
    if "labels_diagnostic" not in dataset.records.columns:
        raise DataError(f"{getattr(dataset, 'path', 'the dataset')} has no PTB-XL diagnostic statements")
    codes = dataset.records["labels_diagnostic"].fillna("").astype(str).to_numpy()
    found = [(i, territory_of(c)) for i, c in enumerate(codes)]
    rows = np.array([i for i, t in found if t is not None], dtype=np.int64)
    return rows, [t for _, t in found if t is not None]


def _out_of_fold_probes(emb: np.ndarray, dataset: Any, label_set: str) -> dict[int, LinearProbe]:
    """For each fold, the probe fitted without that fold's pair (see :data:`FOLD_PAIRS`)."""
    keep, y, classes = dataset.labels(label_set, "multilabel")
    folds = dataset.records["fold"].to_numpy()[keep]
    probes: dict[int, LinearProbe] = {}
    for p, pair in enumerate(FOLD_PAIRS):
        val_pair = FOLD_PAIRS[(p + 1) % len(FOLD_PAIRS)]
        train = np.flatnonzero(~np.isin(folds, pair + val_pair))
        val = np.flatnonzero(np.isin(folds, val_pair))
        probe = _fit(emb[keep], y, train, val, classes, "multilabel")
        for fold in pair:
            probes[fold] = probe
    return probes


# long: the study's options, each a command-line flag of `attribute --territory`
def territory_study(
    sources: Sequence[tuple[str, Any]],
    dataset: Any,
    label_set: str = "superdiagnostic",
    fills: Sequence[str] = ("zero",),
    class_name: str = "MI",
    n_boot: int = 2000,
    seed: int = 0,
    cache_dir: Any = None,
    show_progress: bool = False,
) -> pd.DataFrame:
    """Territory match of every ``(name, source)`` and fill on the dataset's single-territory MI records."""
    from tqdm.auto import tqdm

    from aclecg.evaluation import cached_embeddings

    rows, territories = mi_territory_rows(dataset)
    if rows.size == 0:
        raise DataError("no MI record with a single territory (IMI/ILMI/IPMI/IPLMI or AMI/ASMI/ALMI) in the data")
    folds = dataset.records["fold"].to_numpy()[rows]
    windows = np.asarray(dataset.signals[rows], dtype=np.float32)  # rows come sorted
    out = []
    for name, source in tqdm(sources, desc="territory check", disable=not show_progress):
        emb = np.asarray(cached_embeddings(source, dataset, cache_dir=cache_dir)[0])
        probes = _out_of_fold_probes(emb, dataset, label_set)
        regions = tuple(default_region_map().indices(source.leads))
        for fill in fills:
            drops = np.zeros((len(rows), len(regions)))
            for fold in np.unique(folds):
                at = np.flatnonzero(folds == fold)
                attr = explain(source, probes[int(fold)], windows[at], dataset.leads, dataset.fs, fill=fill)
                drops[at] = attr.region_drops(class_name)[1]
            res = territory_match(drops, regions, territories, TERRITORIES, n_boot=n_boot, n_perm=n_boot, seed=seed)
            out.append(
                {
                    "name": name,
                    "fill": fill,
                    "match": res.match,
                    "ci_low": res.ci_low,
                    "ci_high": res.ci_high,
                    "chance_uniform": res.chance_uniform,
                    "chance_permuted": res.chance_permuted,
                    "p_permutation": res.p_permutation,
                    "n_records": res.n_records,
                    "n_inferior": res.n_inferior,
                    "n_anterior": res.n_anterior,
                    "top_regions": ";".join(f"{k}={v}" for k, v in res.top_regions.items()),
                }
            )
    return pd.DataFrame(out, columns=COLUMNS)
