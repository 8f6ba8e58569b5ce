"""Downstream evaluation: embeddings, linear probing, fine-tuning, label-fraction sweeps with statistics.

The protocol follows the self-supervised ECG literature (linear evaluation and fine-tuning, e.g. Mehari &
Strodthoff, Comput. Biol. Med. 2022; the ACL-ECG paper, Sensors 2026) and always reports the two reference
arms that keep such comparisons honest: a network trained from scratch on the same labels (``supervised``) and
a linear probe on a seeded, randomly initialised encoder (``random_init``; see arXiv 2602.17531 for why).

Only the training folds (``split == "train"``) are ever subsampled or fitted; the validation folds choose the
probe's regularisation and the fine-tuning epoch; the test folds are scored once per cell. See
``docs/evaluation.md`` for the definitions and the output files.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import re
import threading
import time
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from aclecg import stats
from aclecg import atomicio
from aclecg.classifier import (PROTOCOLS, TrainLog, autocast as _autocast, check_protocol as _check_protocol,
                               fit_with_lr_grid, inference_dtype as _inference_dtype, loss_of as _loss,
                               predict_classifier, read_signals as _read_signals,
                               scores_from_logits as _scores_from_logits, train_classifier,
                               val_criterion as _val_criterion)
from aclecg.reference_cnn import ReferenceCNNConfig, build_reference_cnn
from aclecg.runtime import cache_root, precision_tag, resolve_device
from aclecg.errors import CheckpointError, ConfigError, DataError

__all__ = [
    "ARMS", "DEFAULT_ARMS", "DEFAULT_FRACTIONS", "PROTOCOLS", "EvalConfig", "EncoderSource", "SweepProgress",
    "SweepResult", "TRAINED_ARMS", "TrainLog", "cache_root", "embedding_cache_dir", "resolve_device", "load_source",
    "random_init_source",
    "check_compatible", "extract_embeddings", "cached_embeddings", "linear_probe", "ProbeResult",
    "train_classifier", "predict_classifier", "sample_label_fraction", "run_sweep", "parse_sweep_form",
    "count_not_converged",
]

#: Evaluation arms: per checkpoint (``linear_probe``, ``fine_tune``) and the two reference arms.
ARMS: tuple[str, ...] = ("linear_probe", "fine_tune", "supervised", "reference_cnn", "random_init")
#: Arms trained end to end (step budget, learning-rate grid); the others fit a linear probe on frozen features.
TRAINED_ARMS: tuple[str, ...] = ("fine_tune", "supervised", "reference_cnn")
DEFAULT_ARMS: tuple[str, ...] = ("linear_probe", "random_init", "supervised")
DEFAULT_FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


# ------------------------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class EvalConfig:
    """Hyper-parameters of the probe and of the trained arms (plain data; part of every cell's key).

    ``probe_grid`` holds L2 strengths (on the mean loss, standardised features) tried for the linear probe.
    The trained arms (``fine_tune``, ``supervised``, ``reference_cnn``) run at most ``max_steps`` optimiser
    steps, measure the validation macro AUROC every ``eval_every`` steps and stop after ``patience`` steps
    without improvement; each learning rate of ``lr_grid`` is tried and the one that validates best is kept
    (see :mod:`aclecg.classifier`). With ``lr_selection="first_seed"`` only the first seed of each arm and
    fraction searches the grid and the other seeds reuse its choice (a third of the cost); ``"every_cell"``
    searches in every cell.
    """

    probe_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
    probe_max_iter: int = 100
    max_steps: int = 2000
    eval_every: int = 20
    patience: int = 200
    batch_size: int = 64
    lr_grid: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    lr_selection: str = "first_seed"
    n_bootstrap: int = 1000
    embed_batch_size: int = 256
    device: str = "auto"

    def __post_init__(self) -> None:
        for key in ("probe_grid", "lr_grid"):
            value = getattr(self, key)
            if not value or any(not (isinstance(c, (int, float)) and not isinstance(c, bool) and c >= 0)
                                for c in value):
                raise ConfigError(f"{key} must be non-negative numbers, got {value!r}")
            object.__setattr__(self, key, tuple(float(c) for c in value))
        if self.lr_selection not in ("first_seed", "every_cell"):
            raise ConfigError(f"lr_selection must be 'first_seed' or 'every_cell', got {self.lr_selection!r}")
        if any(c <= 0 for c in self.lr_grid):
            raise ConfigError(f"lr_grid must be positive, got {self.lr_grid!r}")
        for key in ("probe_max_iter", "max_steps", "eval_every", "patience", "batch_size", "n_bootstrap",
                    "embed_batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, got {value!r}")

    def key_for(self, arm_kind: str) -> dict[str, Any]:
        """The settings that change the result of a cell of this arm kind."""
        if arm_kind in ("linear_probe", "random_init"):
            keys: tuple[str, ...] = ("probe_grid", "probe_max_iter", "n_bootstrap")
        else:
            keys = ("max_steps", "eval_every", "patience", "batch_size", "lr_grid", "lr_selection", "n_bootstrap")
        out = {k: getattr(self, k) for k in keys}
        if arm_kind == "reference_cnn":
            out["network"] = ReferenceCNNConfig().to_dict()
        return out


def embedding_cache_dir() -> Path:
    return cache_root() / "embeddings"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


# ------------------------------------------------------------------------------------------ encoder sources
@dataclass
class EncoderSource:
    """An encoder to evaluate: from a checkpoint or a seeded random initialisation.

    ``key`` identifies its weights (the checkpoint's sha256, or a digest of config + seed) for caches.
    """

    label: str
    encoder: nn.Module
    meta: dict[str, Any]
    key: str
    path: str | None = None

    @property
    def leads(self) -> tuple[str, ...]:
        return tuple(self.meta["leads"])


def _checkpoint_label(path: Path) -> str:
    """A readable arm label: the run folder for ``encoder.pt``/``best.pt``/``last.pt``, else the file stem."""
    if path.stem in ("encoder", "best", "last", "final") and path.parent.name:
        parent = path.parent.parent.name if path.parent.name == "checkpoints" else path.parent.name
        return parent or path.stem
    return path.stem


def load_source(path: str | Path, device: str | torch.device = "cpu") -> EncoderSource:
    """Load a checkpoint's encoder with :func:`aclecg.checkpoint.load_encoder` (checksum verified)."""
    from aclecg.checkpoint import load_encoder

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    encoder, meta = load_encoder(path, device=device)
    missing = [k for k in ("encoder_config", "leads", "fs", "n_samples") if meta.get(k) is None]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}: cannot check it against the data")
    sha = meta.get("checkpoint_sha256") or ""
    return EncoderSource(_checkpoint_label(path), encoder, dict(meta), str(sha), str(path))


def random_init_source(encoder_config: Mapping[str, Any] | str, seed: int, leads: Sequence[str], fs: float,
                       n_samples: int) -> EncoderSource:
    """A seeded randomly initialised encoder (``random_init`` arm); global RNG state is left untouched."""
    from aclecg.models import build_encoder, resolve_encoder_config

    cfg = resolve_encoder_config(encoder_config, leads=list(leads))
    encoder = build_encoder(cfg, seed=int(seed)).eval()
    meta = {"method": "random_init", "encoder_config": cfg.to_dict(), "leads": list(cfg.leads), "fs": fs,
            "n_samples": n_samples, "data_fingerprint": None, "checkpoint_sha256": None, "seed": int(seed)}
    key = "random_init-" + _digest({"config": cfg.to_dict(), "seed": int(seed)})[:40]
    return EncoderSource("random_init", encoder, meta, key, None)


def check_compatible(meta: Mapping[str, Any], dataset: Any, name: str = "checkpoint") -> list[int]:
    """Check a checkpoint against a prepared dataset; return the data's channel index of each encoder lead.

    The encoder's leads must all be in the dataset (it may use a subset, e.g. the 8 independent leads); the
    sampling rate and window length must be equal. Otherwise a ``CheckpointError`` gives both values.
    """
    data_leads = [str(x) for x in dataset.leads]
    ck_leads = [str(x) for x in meta["leads"]]
    missing = [lead for lead in ck_leads if lead not in data_leads]
    if missing:
        raise CheckpointError(f"{name} expects leads {ck_leads} but the prepared data has {data_leads} "
                              f"(missing {missing})")
    if not math.isclose(float(meta["fs"]), float(dataset.fs)):
        raise CheckpointError(f"{name} was trained at fs={meta['fs']} Hz but the prepared data is at "
                              f"fs={dataset.fs} Hz; prepare the data at {meta['fs']} Hz")
    if int(meta["n_samples"]) != int(dataset.n_samples):
        raise CheckpointError(f"{name} expects windows of n_samples={meta['n_samples']} but the prepared data has "
                              f"n_samples={dataset.n_samples}")
    return [data_leads.index(lead) for lead in ck_leads]


# --------------------------------------------------------------------------------------------- embeddings
def precision_key(dev: torch.device) -> str:
    """What cache keys add for results computed on ``dev`` (empty for CPU float32, so older CPU caches stay valid)."""
    return precision_tag(dev, _inference_dtype(dev))


def _load_cached_array(path: Path) -> np.ndarray | None:
    """A cached ``.npy``, or ``None`` (with a warning) when the file is cut short or damaged: it is recomputed."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"cached embeddings {path} are unreadable ({type(exc).__name__}: {exc}); recomputing",
                      stacklevel=3)
        return None


def _cell_readable(meta_path: Path, pred_path: Path) -> bool:
    """Whether a finished sweep cell's two files can be read back; a damaged cell is recomputed, with a warning."""
    try:
        json.loads(meta_path.read_text())
        with np.load(pred_path, allow_pickle=False) as z:
            z["y_true"], z["y_score"]
        return True
    except (OSError, ValueError, EOFError, KeyError, UnicodeDecodeError, zipfile.BadZipFile, zlib.error) as exc:
        warnings.warn(f"sweep cell {pred_path.stem} is unreadable ({type(exc).__name__}: {exc}); recomputing it",
                      stacklevel=3)
        return False


@torch.no_grad()
def extract_embeddings(encoder: nn.Module, dataset: Any, lead_idx: Sequence[int], indices: np.ndarray | None = None,
                       batch_size: int = 256, device: str | torch.device = "auto",
                       show_progress: bool = False) -> np.ndarray:
    """Record embeddings ``(n, E)`` float32 of a frozen encoder (eval mode, no grad, batched)."""
    dev = resolve_device(device)
    indices = np.arange(len(dataset)) if indices is None else np.asarray(indices, dtype=np.int64)
    was_training = encoder.training
    encoder.eval().to(dev)
    chunks = []
    starts = range(0, len(indices), batch_size)
    for start in tqdm(starts, desc="embedding", disable=not show_progress, leave=False):
        x = torch.from_numpy(_read_signals(dataset, indices[start:start + batch_size], lead_idx)).to(dev)
        with _autocast(dev, _inference_dtype(dev)):
            emb = encoder(x).embedding
        chunks.append(emb.float().cpu().numpy())
    encoder.train(was_training)
    if not chunks:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(chunks).astype(np.float32)


def cached_embeddings(source: EncoderSource, dataset: Any, cache_dir: str | Path | None = None,
                      batch_size: int = 256, device: str | torch.device = "auto", refresh: bool = False,
                      show_progress: bool = False) -> tuple[np.ndarray, Path]:
    """Embeddings of every record of ``dataset``, cached as ``.npy`` keyed by weights key + data fingerprint.

    The compatibility check runs first, so a mismatching checkpoint fails before any computation.
    Returns ``(embeddings (N, E), cache file)``.
    """
    lead_idx = check_compatible(source.meta, dataset, source.path or source.label)
    folder = Path(cache_dir) if cache_dir is not None else embedding_cache_dir()
    fingerprint = str(getattr(dataset, "fingerprint", "") or "")
    if not fingerprint:
        raise DataError("prepared dataset has no fingerprint: cannot cache embeddings safely")
    tag = precision_key(resolve_device(device))
    name = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', source.key)[:64]}__{fingerprint[:24]}{'__' + tag if tag else ''}.npy"
    path = folder / name
    if path.is_file() and not refresh:
        emb = _load_cached_array(path)
        if emb is not None and emb.ndim == 2 and emb.shape[0] == len(dataset):
            return emb, path
    emb = extract_embeddings(source.encoder, dataset, lead_idx, batch_size=batch_size, device=device,
                             show_progress=show_progress)
    buffer = io.BytesIO()
    np.save(buffer, emb)
    atomicio.write_bytes(path, buffer.getvalue())
    return emb, path


# --------------------------------------------------------------------------------------------- linear probe
@dataclass
class ProbeResult:
    """Test scores of the selected probe, the chosen L2 strength and every grid point's validation score."""

    test_scores: np.ndarray
    best_l2: float
    val_scores: dict[float, float]
    val_criterion: str


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 x_test: np.ndarray, protocol: str = "multilabel",
                 grid: Sequence[float] = EvalConfig.probe_grid, max_iter: int = 100) -> ProbeResult:
    """Linear probe on frozen embeddings, fitted full-batch with L-BFGS in float64.

    Features are standardised with the training mean/std. For each L2 strength (strongest first, warm-started)
    one linear layer is fitted on the training records only (one-vs-rest sigmoid for multilabel, softmax for
    singlelabel); the strength with the best validation macro AUROC is kept (ties: the stronger one), and its
    model - fitted on train only, never on val or test - scores the test records.
    """
    _check_protocol(protocol)
    if len(x_train) == 0:
        raise DataError("linear probe: no training records")
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)

    def prep(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((np.asarray(x, np.float64) - mean) / std)

    with _few_threads(x_train.size * max(1, len(y_train[0])) < 20_000_000):
        return _fit_probe(prep(x_train), y_train, prep(x_val), y_val, prep(x_test), protocol, grid, max_iter)


_THREADS_LOCK = threading.Lock()


@contextmanager
def _few_threads(enabled: bool) -> Iterator[None]:
    """Run small problems single-threaded: thread start-up dominates tiny matmuls on busy machines."""
    if not enabled:
        yield
        return
    with _THREADS_LOCK:  # torch's thread count is process-wide: serialise concurrent callers (e.g. app threads)
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def _fit_probe(xt: torch.Tensor, y_train: np.ndarray, xv: torch.Tensor, y_val: np.ndarray, xs: torch.Tensor,
               protocol: str, grid: Sequence[float], max_iter: int) -> ProbeResult:
    """The grid search of :func:`linear_probe` on standardised float64 tensors."""
    yt, yv = torch.from_numpy(np.asarray(y_train, np.float64)), torch.from_numpy(np.asarray(y_val, np.float64))
    n_classes = yt.shape[1]
    weight = torch.zeros(xt.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    best: tuple[float, float, torch.Tensor, torch.Tensor] | None = None
    val_scores: dict[float, float] = {}
    criterion_name = "val_macro_auroc"
    for l2 in sorted(grid, reverse=True):
        opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-7,
                                tolerance_change=1e-10, history_size=20, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = _loss(xt @ weight + bias, yt, protocol) + 0.5 * l2 * (weight ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            logits_v = xv @ weight + bias
            val_loss = float(_loss(logits_v, yv, protocol)) if len(yv) else float("nan")
            crit, criterion_name = _val_criterion(y_val, _scores_from_logits(logits_v, protocol).numpy(), val_loss)
        val_scores[l2] = crit
        if best is None or crit > best[0] + 1e-12:
            best = (crit, l2, weight.detach().clone(), bias.detach().clone())
    assert best is not None
    with torch.no_grad():
        test_scores = _scores_from_logits(xs @ best[2] + best[3], protocol).numpy()
    return ProbeResult(test_scores, best[1], val_scores, criterion_name)


# ---------------------------------------------------------------------------------------- label fractions
def rotate_folds(records: pd.DataFrame, test_fold: int) -> pd.DataFrame:
    """A copy of ``records`` whose ``split`` makes fold ``test_fold`` the test fold and the fold before it
    (cyclically, 1 -> 10) the validation fold; every other fold is training. ``test_fold=10`` reproduces the
    official PTB-XL split (1-8 / 9 / 10)."""
    if "fold" not in records.columns:
        raise DataError("records.csv has no 'fold' column: the test fold cannot be rotated")
    folds = pd.to_numeric(records["fold"], errors="coerce")
    present = sorted(int(f) for f in folds.dropna().unique())
    if not isinstance(test_fold, int) or test_fold not in present:
        raise ConfigError(f"test_fold must be one of the data's folds {present}, got {test_fold!r}")
    val_fold = present[present.index(test_fold) - 1]
    out = records.copy()
    out["split"] = np.where(folds == test_fold, "test", np.where(folds == val_fold, "val", "train"))
    return out


def _train_pool(records: pd.DataFrame, keep_idx: np.ndarray) -> np.ndarray:
    """Positions (into ``keep_idx``) of the labelled records in the training folds."""
    split = records["split"].to_numpy()[keep_idx]
    return np.flatnonzero(split == "train")


def sample_label_fraction(records: pd.DataFrame, keep_idx: np.ndarray, y: np.ndarray, fraction: float,
                          seed: int) -> np.ndarray:
    """Draw a patient-wise, stratified subset of the training folds; returns positions into ``keep_idx``.

    * Only records with ``split == "train"`` are candidates; validation and test records are never read.
    * Patients are kept whole (all their windows/records or none).
    * Each patient gets a stratum: its rarest class in the training pool (or "no label"); within every stratum
      patients are drawn in a seeded random order until the stratum's share ``fraction * records`` is reached
      (at least one patient per non-empty stratum), so class proportions follow the full training set.
    * Then every class that has positives in the training pool but none in the sample gets one random patient
      with that class, so each class keeps at least one positive where the data allow.
    * ``fraction == 1`` returns every training record. The draw depends only on ``(seed, fraction)``.
    """
    if not (isinstance(fraction, (int, float)) and 0.0 < float(fraction) <= 1.0):
        raise ConfigError(f"label fraction must be in (0, 1], got {fraction!r}")
    if "patient_id" not in records.columns or "split" not in records.columns:
        raise DataError("records.csv needs 'patient_id' and 'split' columns for label-fraction sampling")
    keep_idx = np.asarray(keep_idx, dtype=np.int64)
    y = np.asarray(y)
    pool = _train_pool(records, keep_idx)
    if len(pool) == 0:
        raise DataError("no labelled records in the training folds (split == 'train')")
    if float(fraction) >= 1.0:
        return pool
    rng = np.random.default_rng([int(seed), int(round(float(fraction) * 1e6)), 20260131])
    patients = records["patient_id"].astype(str).to_numpy()[keep_idx[pool]]
    uniq, inverse = np.unique(patients, return_inverse=True)
    y_pool = y[pool] > 0
    # per patient: which classes they carry, how many records they have
    carries = np.zeros((len(uniq), y.shape[1]), dtype=bool)
    np.logical_or.at(carries, inverse, y_pool)
    n_rec = np.bincount(inverse, minlength=len(uniq))
    freq = y_pool.sum(axis=0).astype(float)
    rarity = np.where(carries, freq[None, :], np.inf)
    stratum = np.where(np.isfinite(rarity.min(axis=1)), rarity.argmin(axis=1), -1)
    chosen = np.zeros(len(uniq), dtype=bool)
    for s in np.unique(stratum):
        members = np.flatnonzero(stratum == s)
        members = members[rng.permutation(len(members))]
        target = float(fraction) * n_rec[members].sum()
        cum = np.cumsum(n_rec[members])
        take = max(1, int(np.searchsorted(cum, target - 1e-9) + 1))  # smallest prefix reaching the target
        chosen[members[:take]] = True
    covered = (carries & chosen[:, None]).any(axis=0)
    for c in np.flatnonzero(~covered & carries.any(axis=0)):
        if not (carries[chosen, c]).any():
            candidates = np.flatnonzero(carries[:, c])
            chosen[rng.choice(candidates)] = True
    return pool[chosen[inverse]]


# ---------------------------------------------------------------------------------------------- the sweep
@dataclass
class SweepProgress:
    """One progress event: ``status`` is ``"running"``, ``"computed"`` or ``"cached"`` (resumed)."""

    done: int
    total: int
    cell: str
    arm: str
    fraction: float
    seed: int
    status: str
    message: str = ""


@dataclass
class SweepResult:
    results: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    out_dir: Path
    n_computed: int
    n_cached: int
    n_missing: int = 0


@dataclass
class _Arm:
    name: str                   # unique arm id shown in results, e.g. "acl_ecg:linear_probe"
    kind: str                   # linear_probe | fine_tune | supervised | random_init
    source: EncoderSource | None
    pretrained: bool


def _parse_arms(arms: Sequence[str] | str) -> list[str]:
    if isinstance(arms, str):
        arms = [a.strip() for a in arms.split(",") if a.strip()]
    arms = list(dict.fromkeys(arms))
    if not arms:
        raise ConfigError(f"choose at least one arm from {', '.join(ARMS)}")
    bad = [a for a in arms if a not in ARMS]
    if bad:
        raise ConfigError(f"unknown arm(s) {bad}; choose from {', '.join(ARMS)}")
    return arms


def _parse_fractions(fractions: Sequence[float] | str) -> list[float]:
    if isinstance(fractions, str):
        try:
            fractions = [float(f) for f in fractions.split(",") if f.strip()]
        except ValueError:
            raise ConfigError(f"fractions must be comma-separated numbers in (0, 1], got {fractions!r}") from None
    out = sorted(dict.fromkeys(float(f) for f in fractions))
    if not out or any(not 0.0 < f <= 1.0 for f in out):
        raise ConfigError(f"fractions must be numbers in (0, 1], got {list(fractions)}")
    return out


def parse_sweep_form(fractions: Sequence[float] | str, arms: Sequence[str] | str, n_checkpoints: int,
                     seeds: int | Sequence[int] = 1) -> tuple[list[float], list[str], list[int]]:
    """Validate a sweep's fractions, arms and seeds as ``run_sweep`` would, before anything is launched.

    Raises :class:`ConfigError` with the CLI's messages, so the app and ``python -m aclecg sweep`` say the same.
    """
    fracs, arm_list, seed_list = _parse_fractions(fractions), _parse_arms(arms), _parse_seeds(seeds)
    needs = [a for a in arm_list if a in ("linear_probe", "fine_tune")]
    if needs and n_checkpoints < 1:
        raise ConfigError(f"arms {needs} need at least one --checkpoint")
    return fracs, arm_list, seed_list


def _parse_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {seeds}")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out:
        raise ConfigError("seeds must name at least one seed")
    return list(dict.fromkeys(out))


def _open_dataset(data: Any) -> Any:
    if isinstance(data, (str, Path)):
        from aclecg.data import PreparedDataset
        return PreparedDataset(data)
    return data


def _labels(dataset: Any, label_set: str, protocol: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    _check_protocol(protocol)
    available = list(getattr(dataset, "label_sets", {}) or {})
    if label_set not in available:
        raise ConfigError(f"label set {label_set!r} is not in the prepared data; available: "
                          f"{', '.join(available) or 'none'}")
    keep_idx, y, classes = dataset.labels(label_set, protocol)
    keep_idx = np.asarray(keep_idx, dtype=np.int64)
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 2 or len(keep_idx) != len(y) or y.shape[1] != len(classes):
        raise DataError(f"labels({label_set!r}, {protocol!r}) returned inconsistent shapes")
    return keep_idx, y, list(classes)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _unique_labels(sources: list[EncoderSource]) -> None:
    seen: dict[str, int] = {}
    for s in sources:
        seen[s.label] = seen.get(s.label, 0) + 1
    for s in sources:
        if seen[s.label] > 1 or s.label in ARMS:
            s.label = f"{s.label}-{s.key[:8]}"


def _metric_rows(report: stats.MetricReport, boot: stats.BootstrapResult, classes: list[str]) -> list[dict]:
    rows = [{"metric": "macro_auroc", "value": report.macro_auroc, "ci_low": boot.macro["macro_auroc"][0],
             "ci_high": boot.macro["macro_auroc"][1]},
            {"metric": "macro_auprc", "value": report.macro_auprc, "ci_low": boot.macro["macro_auprc"][0],
             "ci_high": boot.macro["macro_auprc"][1]}]
    for key in ("auroc", "auprc"):
        for i, name in enumerate(classes):
            cm = report.per_class[name]
            value = cm.auroc if key == "auroc" else cm.auprc
            rows.append({"metric": f"{key}:{name}", "value": value, "ci_low": float(boot.per_class[key][i, 0]),
                         "ci_high": float(boot.per_class[key][i, 1])})
    return rows


def run_sweep(checkpoints: Sequence[str | Path | EncoderSource], data: Any, label_set: str,
              protocol: str = "multilabel", fractions: Sequence[float] | str = DEFAULT_FRACTIONS,
              seeds: int | Sequence[int] = 3, arms: Sequence[str] | str = DEFAULT_ARMS,
              out_dir: str | Path = "runs/sweep", progress: Callable[[SweepProgress], None] | None = None,
              config: EvalConfig | None = None, encoder_config: Mapping[str, Any] | str | None = None,
              cache_dir: str | Path | None = None, show_progress: bool = True,
              test_fold: int | None = None, lr_from: str | Path | None = None,
              collect_only: bool = False) -> SweepResult:
    """Run every (arm, fraction, seed) cell and write tidy results to ``out_dir``.

    Arms: each checkpoint x {``linear_probe``, ``fine_tune``} (those requested), plus ``supervised`` (the same
    encoder from a seeded random initialisation, trained end to end), ``reference_cnn`` (a plain 12-lead CNN
    trained from scratch, :mod:`aclecg.reference_cnn`) and ``random_init`` (linear probe on a seeded random
    encoder). Trained arms follow ``config``'s step budget and learning-rate grid. Reference arms use the
    encoder config of the first checkpoint, or ``encoder_config`` (preset name or dict; default ``"small"``)
    when no checkpoint is given. Cell seeds drive the label-fraction draw, the
    random initialisations, the shuffling and the bootstrap, so arms at the same fraction and seed see the
    same training records and are compared on the same test records and resamples.

    Every finished cell leaves ``cells/<cell>.json`` (its key, metrics, CIs) and ``cells/<cell>.npz`` (test
    predictions); a later call with the same settings reuses them. Outputs: ``results.csv``/``results.json``
    (one row per arm x fraction x seed x metric, with bootstrap CIs and DeLong p-values against the
    ``supervised`` and ``random_init`` arms), ``comparisons.csv`` (every DeLong comparison), ``summary.csv``
    (mean/std/CI over seeds).
    """
    cfg = config or EvalConfig()
    fracs, arm_kinds, seed_list = parse_sweep_form(fractions, arms, len(checkpoints), seeds)
    _check_protocol(protocol)
    dataset = _open_dataset(data)
    device = resolve_device(cfg.device)
    keep_idx, y_all, classes = _labels(dataset, label_set, protocol)
    records = dataset.records if test_fold is None else rotate_folds(dataset.records, test_fold)
    split = records["split"].to_numpy()[keep_idx]
    val_pos, test_pos = np.flatnonzero(split == "val"), np.flatnonzero(split == "test")
    for name, pos in (("test", test_pos), ("val", val_pos)):
        if len(pos) == 0:
            raise DataError(f"the prepared data has no labelled {name} records (split == '{name}') for label set "
                            f"{label_set!r}; the sweep needs val records to choose the probe's regularisation and "
                            "the fine-tuning epoch, and test records to score")

    # Load every checkpoint and check it against the data before computing anything.
    sources: list[EncoderSource] = []
    for ck in checkpoints:
        src = ck if isinstance(ck, EncoderSource) else load_source(ck, device="cpu")
        check_compatible(src.meta, dataset, src.path or src.label)
        sources.append(src)
    _unique_labels(sources)
    from aclecg.models import resolve_encoder_config

    if sources:  # reference arms copy the first checkpoint's architecture and leads
        ref_cfg = resolve_encoder_config(dict(sources[0].meta["encoder_config"]), leads=list(sources[0].leads))
    else:
        ref_cfg = resolve_encoder_config(encoder_config or "small", leads=[str(x) for x in dataset.leads])

    arm_list: list[_Arm] = []
    for src in sources:
        for kind in ("linear_probe", "fine_tune"):
            if kind in arm_kinds:
                arm_list.append(_Arm(f"{src.label}:{kind}", kind, src, True))
    for kind in ("supervised", "reference_cnn", "random_init"):
        if kind in arm_kinds:
            arm_list.append(_Arm(kind, kind, None, False))

    out = Path(out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    fingerprint = str(getattr(dataset, "fingerprint", ""))
    sweep_meta = {"label_set": label_set, "protocol": protocol, "fractions": fracs, "seeds": seed_list,
                  "test_fold": test_fold,
                  "arms": [a.name for a in arm_list], "classes": classes, "data_fingerprint": fingerprint,
                  "checkpoints": {s.label: {"path": s.path, "sha256": s.key, "method": s.meta.get("method")}
                                  for s in sources},
                  "reference_encoder_config": ref_cfg.to_dict(), "config": asdict(cfg), "device": str(device),
                  "n_val": int(len(val_pos)), "n_test": int(len(test_pos))}
    atomicio.write_json(out / "sweep.json", sweep_meta)

    emb_cache: dict[str, np.ndarray] = {}

    def embeddings_of(src: EncoderSource) -> np.ndarray:
        if src.key not in emb_cache:
            emb_cache[src.key] = cached_embeddings(src, dataset, cache_dir, cfg.embed_batch_size, device)[0]
        return emb_cache[src.key]

    # seeds in order within each fraction: a trained arm's first seed chooses the learning rate for the others
    cells = [(arm, f, s) for f in fracs for s in seed_list for arm in arm_list]
    chosen_lr: dict[tuple[str, float], float] = {}
    borrowed = learning_rates_of(lr_from) if lr_from is not None else {}
    total = len(cells)
    n_computed = n_cached = n_missing = 0
    cell_records: list[dict] = []
    bar = tqdm(total=total, desc="sweep", disable=not show_progress)
    for done, (arm, fraction, seed) in enumerate(cells):
        weights_key = arm.source.key if arm.source else f"{arm.kind}:{ref_cfg.to_dict()}:{seed}"
        settings = cfg.key_for(arm.kind)
        lr_grid = cfg.lr_grid
        if arm.kind in TRAINED_ARMS and (arm.name, fraction) in borrowed:
            lr_grid = (borrowed[(arm.name, fraction)],)
            settings = {**settings, "lr": lr_grid[0], "lr_chosen_in": "another sweep's validation"}
        elif arm.kind in TRAINED_ARMS and cfg.lr_selection == "first_seed" and seed != seed_list[0]:
            # the learning rate validated best for the first seed of this arm and fraction is reused
            if (arm.name, fraction) not in chosen_lr:   # first seed not finished: only possible when collecting
                n_missing += 1
                bar.update(1)
                continue
            lr_grid = (chosen_lr[(arm.name, fraction)],)
            settings = {**settings, "lr": lr_grid[0], "lr_chosen_on_seed": seed_list[0]}
        key = {"arm": arm.name, "kind": arm.kind, "weights": weights_key, "fraction": fraction, "seed": seed,
               "label_set": label_set, "protocol": protocol, "data": fingerprint, "classes": classes,
               "settings": settings, "version": 2 if arm.kind in TRAINED_ARMS else 1}
        if test_fold is not None:  # only then, so the keys of official-split cells stay as they were
            key["test_fold"] = int(test_fold)
        if precision_key(device):  # GPU results never mix with CPU float32 cells (whose keys stay as they were)
            key["precision"] = precision_key(device)
        cell_id = f"{_safe(arm.name)}__f{fraction:g}__s{seed}__{_digest(key)[:12]}"
        meta_path, pred_path = out / "cells" / f"{cell_id}.json", out / "cells" / f"{cell_id}.npz"
        event = dict(total=total, cell=cell_id, arm=arm.name, fraction=fraction, seed=seed)
        if meta_path.is_file() and pred_path.is_file() and _cell_readable(meta_path, pred_path):
            cell_records.append(json.loads(meta_path.read_text()))
            if arm.kind in TRAINED_ARMS:
                chosen_lr.setdefault((arm.name, fraction), float(cell_records[-1]["details"]["lr"]))
            n_cached += 1
            bar.update(1)
            if progress:
                progress(SweepProgress(done=done + 1, status="cached", **event))
            continue
        if collect_only:
            n_missing += 1
            bar.update(1)
            continue
        if progress:
            progress(SweepProgress(done=done, status="running", **event))
        bar.set_postfix_str(f"{arm.name} f={fraction:g} s={seed}")
        train_pos = sample_label_fraction(records, keep_idx, y_all, fraction, seed)
        started = time.perf_counter()
        result = _run_cell(arm, dataset, keep_idx, y_all, train_pos, val_pos, test_pos, protocol, seed, cfg, lr_grid,
                           device, ref_cfg, embeddings_of, cache_dir, show_progress)
        y_test = y_all[test_pos]
        report = stats.evaluate_scores(y_test, result["scores"], classes)
        boot = stats.bootstrap_metrics(y_test, result["scores"], n_resamples=cfg.n_bootstrap, seed=1000 + seed)
        patients = records["patient_id"].astype(str).to_numpy()[keep_idx[train_pos]]
        record = {"cell": cell_id, "key": key, "arm": arm.name, "arm_kind": arm.kind,
                  "method": arm.source.meta.get("method") if arm.source else arm.kind,
                  "checkpoint": arm.source.path if arm.source else None, "fraction": fraction, "seed": seed,
                  "n_train": int(len(train_pos)), "n_train_patients": int(len(np.unique(patients))),
                  "n_val": int(len(val_pos)), "n_test": int(len(test_pos)), "excluded": report.excluded,
                  "n_bootstrap_valid": boot.n_valid, "details": result["details"],
                  "seconds": round(time.perf_counter() - started, 2),
                  "metrics": _metric_rows(report, boot, classes)}
        atomicio.write_npz(pred_path, y_true=y_test, y_score=result["scores"].astype(np.float64),
                    test_index=keep_idx[test_pos], train_index=keep_idx[train_pos], classes=np.array(classes))
        atomicio.write_json(meta_path, record)   # written last: its presence marks the cell as finished
        cell_records.append(record)
        if arm.kind in TRAINED_ARMS:
            chosen_lr.setdefault((arm.name, fraction), float(result["details"]["lr"]))
        n_computed += 1
        bar.update(1)
        if progress:
            progress(SweepProgress(done=done + 1, status="computed", **event))
    bar.close()
    result = _write_outputs(out, cell_records, arm_list, classes, sweep_meta, n_computed, n_cached)
    result.n_missing = n_missing
    return result


def learning_rates_of(sweep_dir: str | Path) -> dict[tuple[str, float], float]:
    """``{(arm, fraction): lr}`` chosen on validation by a finished sweep's trained cells (its first seed's grid)."""
    folder = Path(sweep_dir) / "cells"
    if not folder.is_dir():
        raise ConfigError(f"{sweep_dir} has no cells/ folder: not a sweep output")
    out: dict[tuple[str, float], float] = {}
    for path in sorted(folder.glob("*.json")):
        rec = json.loads(path.read_text())
        details = rec.get("details") or {}
        if rec.get("arm_kind") in TRAINED_ARMS and len(details.get("lr_grid") or []) > 1:
            out[(rec["arm"], float(rec["fraction"]))] = float(details["lr"])
    return out


def _run_cell(arm: _Arm, dataset: Any, keep_idx: np.ndarray, y_all: np.ndarray, train_pos: np.ndarray,
              val_pos: np.ndarray, test_pos: np.ndarray, protocol: str, seed: int, cfg: EvalConfig,
              lr_grid: Sequence[float], device: torch.device, ref_cfg: Any,
              embeddings_of: Callable[[EncoderSource], np.ndarray], cache_dir: Any,
              show_progress: bool) -> dict[str, Any]:
    """Fit one arm on one training subset; return test scores and details (chosen L2; or lr, best step, steps run)."""
    y_tr, y_va = y_all[train_pos], y_all[val_pos]
    if arm.kind in ("linear_probe", "random_init"):
        src = arm.source if arm.kind == "linear_probe" else random_init_source(
            ref_cfg.to_dict(), seed, ref_cfg.leads, dataset.fs, dataset.n_samples)
        emb = embeddings_of(src)[keep_idx]
        probe = linear_probe(emb[train_pos], y_tr, emb[val_pos], y_va, emb[test_pos], protocol, cfg.probe_grid,
                             cfg.probe_max_iter)
        return {"scores": probe.test_scores, "details": {"l2": probe.best_l2, "criterion": probe.val_criterion,
                                                         "val": {str(k): v for k, v in probe.val_scores.items()}}}
    from aclecg.models import build_classifier, build_encoder

    n_classes = y_all.shape[1]
    if arm.kind == "fine_tune":
        assert arm.source is not None
        source = arm.source
        lead_idx = check_compatible(source.meta, dataset)

        def build() -> nn.Module:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                return build_classifier(copy.deepcopy(source.encoder), n_classes)
    else:
        lead_idx = check_compatible({"leads": ref_cfg.leads, "fs": dataset.fs, "n_samples": dataset.n_samples},
                                    dataset)
        if arm.kind == "reference_cnn":
            def build() -> nn.Module:
                return build_reference_cnn(len(lead_idx), n_classes, ReferenceCNNConfig(), seed=int(seed))
        else:
            def build() -> nn.Module:
                encoder = build_encoder(ref_cfg, seed=seed)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(seed))
                    return build_classifier(encoder, n_classes)
    x_tr = torch.from_numpy(_read_signals(dataset, keep_idx[train_pos], lead_idx))
    x_va = torch.from_numpy(_read_signals(dataset, keep_idx[val_pos], lead_idx))
    fit = fit_with_lr_grid(build, x_tr, y_tr, x_va, y_va, protocol, lr_grid, seed=seed,
                           desc=f"{arm.name} s{seed}", max_steps=cfg.max_steps, eval_every=cfg.eval_every,
                           patience=cfg.patience, batch_size=cfg.batch_size, device=device,
                           show_progress=show_progress)
    scores = predict_classifier(fit.model, dataset, keep_idx[test_pos], lead_idx, protocol, device=device)
    log = fit.log
    return {"scores": scores, "details": {"best_step": log.best_step, "steps_run": log.steps_run,
                                          "converged": log.converged, "criterion": log.criterion,
                                          "val": log.best_criterion, "lr": fit.lr, "lr_grid": fit.grid}}


def _comparisons(out: Path, cell_records: list[dict], arm_list: list[_Arm], classes: list[str]) -> pd.DataFrame:
    """DeLong tests between every pair of arms at the same fraction and seed (macro and per class)."""
    by_cell = {(r["arm"], r["fraction"], r["seed"]): r for r in cell_records}
    preds: dict[str, Any] = {}

    def load(rec: dict) -> tuple[np.ndarray, np.ndarray]:
        if rec["cell"] not in preds:
            with np.load(out / "cells" / f"{rec['cell']}.npz") as z:
                preds[rec["cell"]] = (z["y_true"], z["y_score"])
        return preds[rec["cell"]]

    rows = []
    names = [a.name for a in arm_list]
    for fraction, seed in sorted({(r["fraction"], r["seed"]) for r in cell_records}):
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                ra, rb = by_cell.get((a, fraction, seed)), by_cell.get((b, fraction, seed))
                if ra is None or rb is None:
                    continue
                (ya, sa), (_, sb) = load(ra), load(rb)
                base = {"arm_a": a, "arm_b": b, "fraction": fraction, "seed": seed}
                try:
                    mac = stats.delong_macro(ya, sa, sb)
                    rows.append({**base, "metric": "macro_auroc", "auc_a": mac.auc_a, "auc_b": mac.auc_b,
                                 "diff": mac.diff, "z": mac.z, "p_value": mac.p_value})
                except DataError:
                    pass
                for c, res in zip(classes, stats.delong_per_class(ya, sa, sb)):
                    if res is not None:
                        rows.append({**base, "metric": f"auroc:{c}", "auc_a": res.auc_a, "auc_b": res.auc_b,
                                     "diff": res.diff, "z": res.z, "p_value": res.p_value})
    cols = ["arm_a", "arm_b", "fraction", "seed", "metric", "auc_a", "auc_b", "diff", "z", "p_value"]
    return pd.DataFrame(rows, columns=cols)


def count_not_converged(converged: pd.Series) -> int:
    """Trained cells whose budget ended the run (``converged`` False); probes (NaN) and converged ones don't count."""
    return int((converged == False).sum())  # noqa: E712 - elementwise, NaN-safe


def _summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and a t-based 95 % CI of each metric over seeds (plus the mean bootstrap interval)."""
    from scipy.stats import t as student_t

    keys = ["arm", "arm_kind", "method", "fraction", "metric"]
    g = results.groupby(keys, sort=False, dropna=False)
    summ = g.agg(mean=("value", "mean"), std=("value", "std"), n_seeds=("value", "count"),
                 boot_ci_low_mean=("ci_low", "mean"), boot_ci_high_mean=("ci_high", "mean"),
                 n_train_mean=("n_train", "mean"), best_step_mean=("best_step", "mean"),
                 steps_run_mean=("steps_run", "mean"),
                 n_not_converged=("converged", count_not_converged)).reset_index()
    half = student_t.ppf(0.975, np.maximum(summ["n_seeds"] - 1, 1)) * summ["std"] / np.sqrt(summ["n_seeds"])
    summ["ci_low"] = np.where(summ["n_seeds"] > 1, summ["mean"] - half, np.nan)
    summ["ci_high"] = np.where(summ["n_seeds"] > 1, summ["mean"] + half, np.nan)
    return summ


def _write_outputs(out: Path, cell_records: list[dict], arm_list: list[_Arm], classes: list[str],
                   sweep_meta: dict, n_computed: int, n_cached: int) -> SweepResult:
    rows = []
    for rec in cell_records:
        base = {k: rec[k] for k in ("arm", "arm_kind", "method", "checkpoint", "fraction", "seed", "n_train",
                                    "n_train_patients", "n_test")}
        base["excluded"] = ";".join(rec["excluded"])
        details = rec.get("details") or {}
        for k in ("lr", "best_step", "steps_run"):
            base[k] = details.get(k, np.nan)
        base["converged"] = details.get("converged", np.nan)  # NaN for the probes: nothing to converge
        for m in rec["metrics"]:
            rows.append({**base, **m})
    results = pd.DataFrame(rows)
    comparisons = _comparisons(out, cell_records, arm_list, classes)
    for ref in ("supervised", "random_init"):
        col = f"p_vs_{ref}"
        results[col] = np.nan
        if comparisons.empty:
            continue
        sel = comparisons[(comparisons["arm_b"] == ref) | (comparisons["arm_a"] == ref)]
        lookup = {((r.arm_a if r.arm_b == ref else r.arm_b), r.fraction, r.seed, r.metric): r.p_value
                  for r in sel.itertuples()}
        results[col] = [lookup.get((r.arm, r.fraction, r.seed, r.metric), np.nan) for r in results.itertuples()]
    summary = _summary(results) if not results.empty else pd.DataFrame()
    results.to_csv(out / "results.csv", index=False)
    comparisons.to_csv(out / "comparisons.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    atomicio.write_json(out / "results.json", {"sweep": sweep_meta,
                                        "rows": json.loads(results.to_json(orient="records")),
                                        "comparisons": json.loads(comparisons.to_json(orient="records"))})
    return SweepResult(results, summary, comparisons, out, n_computed, n_cached)
