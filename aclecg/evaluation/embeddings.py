"""Embeddings of a frozen encoder, and their on-disk cache.

:func:`extract_embeddings` runs the encoder in eval mode without gradients, batch by batch (autocast on GPUs,
float32 on the CPU). :func:`cached_embeddings` keeps one ``.npy`` per (weights key, data fingerprint, precision)
under :func:`~aclecg.evaluation.config.embedding_cache_dir`; a damaged cache file is recomputed with a warning.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from aclecg import atomicio
from aclecg.classifier import read_signals
from aclecg.errors import DataError
from aclecg.evaluation.config import embedding_cache_dir
from aclecg.evaluation.sources import EncoderSource, check_compatible
from aclecg.runtime import autocast, inference_dtype, precision_tag, resolve_device

__all__ = [
    "cache_file",
    "cached_embeddings",
    "encode_windows",
    "extract_embeddings",
    "load_cached_array",
    "precision_key",
    "save_cached_array",
]


def precision_key(dev: torch.device) -> str:
    """What cache keys add for results computed on ``dev`` (empty for CPU float32, so older CPU caches stay valid)."""
    return precision_tag(dev, inference_dtype(dev))


def load_cached_array(path: Path) -> np.ndarray | None:
    """A cached ``.npy``, or ``None`` (with a warning) when the file is cut short or damaged: it is recomputed."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(
            f"cached embeddings {path} are unreadable ({type(exc).__name__}: {exc}); recomputing", stacklevel=3
        )
        return None


def save_cached_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` at ``path`` atomically (a reader never sees half a file)."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomicio.write_bytes(path, buffer.getvalue())


@torch.no_grad()
def extract_embeddings(
    encoder: nn.Module,
    dataset: Any,
    lead_idx: Sequence[int],
    indices: np.ndarray | None = None,
    batch_size: int = 256,
    device: str | torch.device = "auto",
    show_progress: bool = False,
) -> np.ndarray:
    """Record embeddings ``(n, E)`` float32 of a frozen encoder (eval mode, no grad, batched)."""
    dev = resolve_device(device)
    indices = np.arange(len(dataset)) if indices is None else np.asarray(indices, dtype=np.int64)
    was_training = encoder.training
    encoder.eval().to(dev)
    chunks = []
    starts = range(0, len(indices), batch_size)
    for start in tqdm(starts, desc="embedding", disable=not show_progress, leave=False):
        x = torch.from_numpy(read_signals(dataset, indices[start : start + batch_size], lead_idx)).to(dev)
        with autocast(dev, inference_dtype(dev)):
            emb = encoder(x).embedding
        chunks.append(emb.float().cpu().numpy())
    encoder.train(was_training)
    if not chunks:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(chunks).astype(np.float32)


def cache_file(source: EncoderSource, dataset: Any, suffix: str = "", cache_dir: str | Path | None = None) -> Path:
    """The cache file of what ``source`` computed on ``dataset``: named by its weights key and the data's fingerprint
    (plus ``suffix``, e.g. a precision tag or a sample), under ``cache_dir`` (default
    :func:`~aclecg.evaluation.config.embedding_cache_dir`)."""
    folder = Path(cache_dir) if cache_dir is not None else embedding_cache_dir()
    fingerprint = str(getattr(dataset, "fingerprint", "") or "")
    tail = "__" + re.sub(r"[^A-Za-z0-9_.-]", "_", suffix) if suffix else ""
    return folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', source.key)[:64]}__{fingerprint[:24]}{tail}.npy"


def cached_embeddings(
    source: EncoderSource,
    dataset: Any,
    cache_dir: str | Path | None = None,
    batch_size: int = 256,
    device: str | torch.device = "auto",
    refresh: bool = False,
    show_progress: bool = False,
) -> tuple[np.ndarray, Path]:
    """Embeddings of every record of ``dataset``, cached as ``.npy`` keyed by weights key + data fingerprint.

    The compatibility check runs first, so a mismatching checkpoint fails before any computation.
    Returns ``(embeddings (N, E), cache file)``.
    """
    lead_idx = check_compatible(source.meta, dataset, source.path or source.label)
    if not str(getattr(dataset, "fingerprint", "") or ""):
        raise DataError("prepared dataset has no fingerprint: cannot cache embeddings safely")
    path = cache_file(source, dataset, precision_key(resolve_device(device)), cache_dir)
    if path.is_file() and not refresh:
        emb = load_cached_array(path)
        if emb is not None and emb.ndim == 2 and emb.shape[0] == len(dataset):
            return emb, path
    emb = extract_embeddings(
        source.encoder, dataset, lead_idx, batch_size=batch_size, device=device, show_progress=show_progress
    )
    save_cached_array(path, emb)
    return emb, path


@torch.no_grad()
def encode_windows(
    source: EncoderSource,
    windows: np.ndarray,
    fs: float,
    leads: Sequence[str],
    output: str = "embedding",
    batch_size: int = 64,
    name: str = "checkpoint",
) -> np.ndarray:
    """Features of preprocessed windows ``(W, len(leads), T)`` (an upload, a sample of records) on the CPU.

    The windows are checked against the checkpoint first (:func:`check_compatible`: its leads present, the same
    rate and length) and put in the encoder's lead order. ``output`` is ``"embedding"`` (record embeddings
    ``(W, E)``) or ``"lead_features"`` (per-lead features ``(W, L, D)``).
    """
    if output not in ("embedding", "lead_features"):
        raise ValueError(f"output must be 'embedding' or 'lead_features', got {output!r}")
    x = np.asarray(windows, dtype=np.float32)
    if x.ndim != 3:
        raise DataError(f"windows must be (windows, leads, samples), got shape {x.shape}")
    shape = SimpleNamespace(leads=list(leads), fs=fs, n_samples=x.shape[-1])
    idx = check_compatible(source.meta, shape, name)
    encoder = source.encoder.eval()
    chunks = [
        getattr(encoder(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size][:, idx]))), output).numpy()
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
