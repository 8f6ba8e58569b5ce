"""Training whole classifiers to convergence: the supervised, fine-tune and reference-CNN arms of a sweep.

Budgets count optimiser steps, not epochs, so a 1 % label fraction (a handful of records, one batch an epoch)
gets as many updates as 100 %. Every ``eval_every`` steps the validation macro AUROC is measured; the best
step's weights are kept, and training stops once ``patience`` steps pass without improvement. A run that
reaches ``max_steps`` instead has its best step among its last ``patience`` steps: it is reported as *not
converged* (``TrainLog.converged``), and the sweep tables mark it.

The learning rate is chosen on the validation fold (:func:`aclecg.lrsearch.fit_with_lr_grid`), by the same rule
for every arm; the test fold is never read here.

Signals come either as arrays (in memory; tests and doctests) or as :class:`RecordRows`, rows of a prepared
dataset read from its cache file batch by batch (a background thread reads the next batch while the current one
trains), so a sweep's memory does not grow with the dataset. Both give the same batches, hence the same weights.
Training may validate on a subsample of the validation fold and score the full fold once, at the best step
(``full_val``): see :func:`aclecg.evaluation.finetune.validation_subsample`.

>>> import numpy as np, torch
>>> from aclecg.reference_cnn import build_reference_cnn
>>> x = torch.randn(40, 12, 200); y = (x[:, 0].mean(1, keepdim=True) > 0).float().numpy()
>>> log = train_classifier(build_reference_cnn(12, 1, seed=0), x[:30], y[:30], x[30:], y[30:], "multilabel", 1e-3,
...                        max_steps=20, eval_every=5, patience=10, device="cpu", show_progress=False)
>>> log.steps_run <= 20
True
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from aclecg import stats
from aclecg.constraints import PROTOCOLS, TRAIN_BUDGET_PARAMS, validate
from aclecg.errors import ConfigError, DataError
from aclecg.runtime import autocast, inference_dtype, resolve_device, training_dtype

__all__ = [
    "PROTOCOLS",
    "RecordRows",
    "TrainLog",
    "predict_classifier",
    "predict_scores",
    "read_signals",
    "train_classifier",
]


# ------------------------------------------------------------------------------------------ shared helpers
def _file_layout(signals: Any) -> tuple[str, int, int] | None:
    """``(file, offset of row 0, bytes a row)`` when ``signals`` is a whole ``.npy`` file mapped in C order with
    native float32; ``None`` otherwise (plain arrays, views, other dtypes: those are indexed in memory)."""
    filename = getattr(signals, "filename", None)
    if not isinstance(signals, np.memmap) or not filename or len(signals) == 0:
        return None
    if signals.dtype != np.dtype("=f4") or not signals.flags.c_contiguous:
        return None
    try:
        whole_file = int(signals.offset) + signals.nbytes == os.path.getsize(filename)
    except OSError:
        return None
    return (str(filename), int(signals.offset), signals.nbytes // len(signals)) if whole_file else None


def _read_sorted_rows(signals: Any, rows: np.ndarray) -> np.ndarray:
    """``signals[rows]`` as float32 for ascending ``rows``.

    From a memory-mapped cache file the rows are read with plain file reads (one per run of consecutive rows), not
    through the mapping: pages touched through a mapping stay in the process's resident set until the kernel drops
    them, so a pass over a large cache would make the process look as large as the cache.
    """
    layout = _file_layout(signals)
    if layout is None or not len(rows) or rows[0] < 0 or rows[-1] >= len(signals):
        return np.asarray(signals[rows], dtype=np.float32)
    filename, offset, row_bytes = layout
    out = np.empty((len(rows), *signals.shape[1:]), dtype=np.float32)
    buf = out.data.cast("B")
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    with open(filename, "rb", buffering=0) as f:
        for a, b in zip(np.r_[0, breaks].tolist(), np.r_[breaks, len(rows)].tolist()):
            f.seek(offset + int(rows[a]) * row_bytes)
            view, done = buf[a * row_bytes : b * row_bytes], 0
            while done < len(view):
                got = f.readinto(view[done:])
                if not got:
                    raise DataError(f"{filename}: file ends before row {int(rows[b - 1])} (cut short?)")
                done += got
    return out


def read_signals(dataset: Any, indices: np.ndarray, lead_idx: Sequence[int]) -> np.ndarray:
    """Signals ``(n, len(lead_idx), T)`` float32 of the rows ``indices`` (any order) of ``dataset.signals`` for the
    given channels; rows are read in ascending order (from the cache file when it is memory-mapped)."""
    indices = np.asarray(indices, dtype=np.int64)
    order = np.argsort(indices, kind="stable")
    block = _read_sorted_rows(dataset.signals, indices[order])[:, list(lead_idx)]
    out = np.empty_like(block)
    out[order] = block
    return out


@dataclass(frozen=True, eq=False)
class RecordRows:
    """Signals of some records of a prepared dataset, read batch by batch when needed (never all at once).

    ``indices`` are rows of ``dataset``; position ``i`` is record ``indices[i]``, restricted to the channels
    ``lead_idx``. The trainer and :func:`predict_scores` accept it wherever they accept a signal array.
    """

    dataset: Any
    indices: np.ndarray
    lead_idx: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.indices)

    def take(self, positions: np.ndarray) -> torch.Tensor:
        """The signals ``(len(positions), leads, T)`` of the records at ``positions``, in that order."""
        return torch.from_numpy(read_signals(self.dataset, self.indices[np.asarray(positions)], self.lead_idx))


def _as_tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _as_signals(x: Any) -> torch.Tensor | RecordRows:
    return x if isinstance(x, RecordRows) else _as_tensor(x)


def _prefetched(fetch: Callable[[Any], Any], items: Iterable[Any]) -> Generator[Any, None, None]:
    """``fetch(item)`` for each item in order, the next one computed on a background thread while the caller works
    on the current one (file reads release the GIL). Close the iterator when leaving early."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aclecg-read") as pool:
        pending: Future[Any] | None = None
        for item in items:
            future = pool.submit(fetch, item)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


def _chunks(x: torch.Tensor | RecordRows, batch_size: int) -> Generator[torch.Tensor, None, None]:
    """``x`` in consecutive batches (CPU tensors); a :class:`RecordRows` is read one batch ahead."""
    starts = range(0, len(x), batch_size)
    if isinstance(x, RecordRows):
        rows = x
        yield from _prefetched(lambda s: rows.take(np.arange(s, min(s + batch_size, len(rows)))), starts)
    else:
        for start in starts:
            yield x[start : start + batch_size]


def check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def scores_from_logits(logits: torch.Tensor, protocol: str) -> torch.Tensor:
    return torch.sigmoid(logits) if protocol == "multilabel" else torch.softmax(logits, dim=1)


def loss_of(logits: torch.Tensor, y: torch.Tensor, protocol: str) -> torch.Tensor:
    if protocol == "multilabel":
        return nn.functional.binary_cross_entropy_with_logits(logits, y)
    return nn.functional.cross_entropy(logits, y.argmax(dim=1))


def val_criterion(y_val: np.ndarray, scores: np.ndarray, loss: float) -> tuple[float, str]:
    """Higher is better: validation macro AUROC, or minus the loss when no class is evaluable."""
    auc = stats.macro_auroc(y_val, scores) if len(y_val) else float("nan")
    return (auc, "val_macro_auroc") if np.isfinite(auc) else (-loss, "neg_val_loss")


@torch.no_grad()
def _predict_logits(
    model: nn.Module, x: torch.Tensor | RecordRows, dev: torch.device, batch_size: int = 256
) -> torch.Tensor:
    model.eval().to(dev)
    out = []
    with closing(_chunks(x, batch_size)) as chunks:
        for chunk in chunks:
            with autocast(dev, inference_dtype(dev)):
                out.append(model(chunk.to(dev)).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def predict_scores(
    model: nn.Module, x: Any, protocol: str, batch_size: int = 256, device: str | torch.device = "auto"
) -> np.ndarray:
    """Class probabilities ``(n, C)`` of ``model`` on the signals ``x`` ``(n, leads, T)`` (an array, or
    :class:`RecordRows` read batch by batch), in eval mode."""
    logits = _predict_logits(model, _as_signals(x), resolve_device(device), batch_size)
    return scores_from_logits(logits, protocol).numpy()


def predict_classifier(
    model: nn.Module,
    dataset: Any,
    indices: np.ndarray,
    lead_idx: Sequence[int],
    protocol: str,
    batch_size: int = 256,
    device: str | torch.device = "auto",
) -> np.ndarray:
    """Class probabilities ``(n, C)`` (sigmoid or softmax) of a classifier on the given records, read from the
    dataset ``batch_size`` records at a time."""
    rows = RecordRows(dataset, np.asarray(indices, dtype=np.int64), tuple(lead_idx))
    return predict_scores(model, rows, protocol, batch_size, device)


def validate_model(
    model: nn.Module, x_val: torch.Tensor | RecordRows, y_val: np.ndarray, protocol: str, dev: torch.device
) -> tuple[float, str, float]:
    """``(criterion, its name, loss)`` of ``model`` on validation signals and targets (eval mode; see
    :func:`val_criterion`)."""
    yv = torch.from_numpy(np.asarray(y_val, np.float32))
    if len(x_val):
        logits = _predict_logits(model, x_val, dev)
        val_loss = float(loss_of(logits, yv, protocol))
        scores = scores_from_logits(logits, protocol).numpy()
    else:
        val_loss, scores = float("nan"), np.zeros((0, yv.shape[1]))
    crit, name = val_criterion(np.asarray(y_val), scores, val_loss)
    return crit, name, val_loss


# ------------------------------------------------------------------------------------------------ training
@dataclass
class TrainLog:
    """What happened: the validation curve, the step kept, the steps run and whether early stopping ended it.

    When training validated on a subsample (``full_val`` given), ``history`` and ``best_step`` are the
    subsample's, ``best_criterion`` is the full fold's at the best step, ``subsample_criterion`` the subsample's
    best and ``subsample_size`` its record count (0: training validated on the whole fold).
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_step: int = 0
    steps_run: int = 0
    best_criterion: float = -math.inf
    stopped_early: bool = False
    criterion: str = "val_macro_auroc"
    first_validation: int = -1  # the step of the first validation (0 when the untrained model is validated)
    subsample_size: int = 0
    subsample_criterion: float = math.nan

    @property
    def converged(self) -> bool:
        """True when validation stopped improving for ``patience`` steps before the step budget ran out."""
        return self.stopped_early

    @property
    def best_at_first_look(self) -> bool:
        """True when no validation after the first one improved on it: training never helped, or validation
        came too late to see where it did. Tables flag such cells as they flag unconverged ones."""
        return self.best_step == self.first_validation


def validation_due(step: int, max_steps: int, eval_every: int, dense_every: int = 0, dense_until: int = 0) -> bool:
    """Whether to validate after ``step``: every ``dense_every`` steps up to ``dense_until`` (the early steps, where a
    small training set is fitted fastest), then every ``eval_every`` steps, and at the last step.

    >>> [s for s in range(1, 61) if validation_due(s, 60, 20, 5, 30)]
    [5, 10, 15, 20, 25, 30, 40, 60]
    """
    if step == max_steps or step % eval_every == 0:
        return True
    return dense_until > 0 and step <= dense_until and step % dense_every == 0


def _train_batches(
    x: torch.Tensor | RecordRows, bs: int, gen: torch.Generator, dev: torch.device
) -> Generator[tuple[torch.Tensor, torch.Tensor], None, None]:
    """Endless ``(positions, signals)`` training batches on ``dev``: consecutive slices of a seeded permutation, a
    fresh one whenever the rest cannot fill a batch. Arrays are moved to ``dev`` whole; :class:`RecordRows` are read
    batch by batch, the next batch on a background thread. Both give the same batches."""
    n = len(x)

    def positions() -> Iterator[torch.Tensor]:
        order, cursor = torch.randperm(n, generator=gen), 0
        while True:
            if cursor + bs > n:
                order, cursor = torch.randperm(n, generator=gen), 0
            yield order[cursor : cursor + bs]
            cursor += bs

    if isinstance(x, RecordRows):
        rows = x
        with closing(_prefetched(lambda p: (p, rows.take(p.numpy())), positions())) as batches:
            for pos, xb in batches:
                yield pos.to(dev), xb.to(dev)
    else:
        x_dev = x.to(dev)
        for pos in positions():
            pos_dev = pos.to(dev)
            yield pos_dev, x_dev[pos_dev]


# long: the budget and options are keywords that aclecg.lrsearch, the sweeps, tests and benchmarks pass by name
def train_classifier(
    model: nn.Module,
    x_train: Any,
    y_train: np.ndarray,
    x_val: Any,
    y_val: np.ndarray,
    protocol: str,
    lr: float,
    max_steps: int = 3000,
    eval_every: int = 25,
    patience: int = 500,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "auto",
    desc: str = "train",
    show_progress: bool = True,
    dense: tuple[int, int] = (0, 0),
    full_val: tuple[Any, np.ndarray] | None = None,
) -> TrainLog:
    """Train ``model`` (signals in, logits out) with Adam for at most ``max_steps`` steps; early stopping.

    ``x_*`` are signal arrays ``(n, leads, T)`` or :class:`RecordRows` (read batch by batch; the same batches and
    weights as the array). The best validation step's weights are restored at the end.
    ``dense = (every, until)`` with ``until > 0`` also validates the untrained model (step 0) and every ``every``
    steps up to ``until`` (:func:`validation_due`); ``(0, 0)`` validates every ``eval_every`` steps only.
    ``full_val = (signals, targets)``: ``x_val`` is a subsample of this fold; the restored weights are scored on
    the whole fold once, and that score becomes ``best_criterion`` (see :class:`TrainLog`).
    Shuffling and dropout are seeded by ``seed`` without touching the global RNG state. On GPUs with native
    bf16 the forward pass runs under bf16 autocast (float32 elsewhere); the loss is always float32.
    """
    check_protocol(protocol)
    budget = {"max_steps": max_steps, "eval_every": eval_every, "patience": patience, "batch_size": batch_size}
    validate("training", TRAIN_BUDGET_PARAMS, budget)
    dense_every, dense_until = dense
    if dense_until < 0 or (dense_until > 0 and dense_every < 1):
        raise ConfigError(f"dense validation needs every >= 1 and until >= 0, got {dense!r}")
    if not lr > 0:
        raise ConfigError(f"lr must be > 0, got {lr!r}")
    xt, xv = _as_signals(x_train), _as_signals(x_val)
    if len(xt) == 0:
        raise DataError("training: no training records")
    dev = resolve_device(device)
    model.to(dev)
    yt = torch.from_numpy(np.asarray(y_train, np.float32)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    log = TrainLog()
    best_state = copy.deepcopy(model.state_dict())
    running = 0.0

    def evaluate(step: int) -> bool:
        nonlocal best_state
        crit, log.criterion, val_loss = validate_model(model, xv, y_val, protocol, dev)
        if log.first_validation < 0:
            log.first_validation = step
        log.history.append({"step": step, "train_loss": running, "val_loss": val_loss, "criterion": crit})
        model.train()
        if crit > log.best_criterion + 1e-6:
            log.best_criterion, log.best_step, best_state = crit, step, copy.deepcopy(model.state_dict())
        return step - log.best_step >= patience

    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    batches = _train_batches(xt, min(batch_size, len(xt)), gen, dev)
    with torch.random.fork_rng(devices=fork_devices), closing(batches):
        torch.manual_seed(int(seed))
        model.train()
        if dense_until > 0:
            evaluate(0)  # the untrained model: a run whose best step stays 0 learned nothing on validation
            model.train()
        bar = tqdm(range(1, max_steps + 1), desc=desc, disable=not show_progress, leave=False)
        for step in bar:
            batch, xb = next(batches)
            with autocast(dev, training_dtype(dev)):
                logits = model(xb)
            loss = loss_of(logits.float(), yt[batch], protocol)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = loss.item()
            running = 0.9 * running + 0.1 * value if step > 1 else value
            log.steps_run = step
            if validation_due(step, max_steps, eval_every, dense_every, dense_until):
                if evaluate(step):
                    log.stopped_early = True
                    break
                bar.set_postfix(loss=f"{running:.4f}", val=f"{log.best_criterion:.4f}", best=log.best_step)
    model.load_state_dict(best_state)
    if full_val is not None:
        log.subsample_size, log.subsample_criterion = len(xv), log.best_criterion
        log.best_criterion, log.criterion, _ = validate_model(
            model, _as_signals(full_val[0]), full_val[1], protocol, dev
        )
        model.train()
    return log
