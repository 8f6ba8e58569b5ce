"""Choosing a trained arm's learning rate on the validation fold: one grid, grown at an edge that wins.

:func:`fit_with_lr_grid` trains a fresh model per rate of the grid (:func:`aclecg.classifier.train_classifier`)
and keeps the one whose validation criterion is best; ties go to the earlier rate. A grid is only a fair search
when its best rate is inside it: when the top or the bottom rate wins, a better one may lie beyond. With
``LRSearch(grid, extend=k)`` the search then tries the next half-decade rate past that edge
(:func:`next_rate`: 3e-3 -> 1e-2, 1e-4 -> 3e-5), and again while an edge keeps winning, at most ``k`` more rates.
The rule reads the validation fold only and is the same for every arm, so no arm is held back by a grid that
suits another.

A search can continue an earlier one (``LRSearch.tried``: the earlier grid's entries, whose models are not at
hand): only the new rates are trained. Every rate trains from the same seeded initialisation and batch order,
independently of the others, so a continued search gives the result a full search would. When an earlier rate
still validates best, :attr:`LRFit.model` is ``None`` and the caller keeps that earlier model's predictions.

>>> [next_rate(3e-3, up=True), next_rate(1e-2, up=True), next_rate(1e-4, up=False), next_rate(3e-5, up=False)]
[0.01, 0.03, 3e-05, 1e-05]
>>> import torch
>>> from aclecg.reference_cnn import build_reference_cnn
>>> x = torch.randn(40, 12, 200); y = (x[:, 0].mean(1, keepdim=True) > 0).float().numpy()
>>> fit = fit_with_lr_grid(lambda: build_reference_cnn(12, 1, seed=0), x[:30], y[:30], x[30:], y[30:],
...                        "multilabel", lr_grid=(1e-3,), max_steps=20, eval_every=5, patience=10,
...                        device="cpu", show_progress=False)
>>> fit.log.steps_run <= 20 and fit.lr == 1e-3
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from aclecg.classifier import TrainLog, _as_signals, train_classifier
from aclecg.errors import ConfigError

__all__ = ["LRFit", "LRSearch", "fit_with_lr_grid", "next_rate"]


@dataclass(frozen=True)
class LRSearch:
    """The rates to try (``grid``), how many rates the search may add past an edge that validates best
    (``extend``), and the entries of rates already tried by an earlier search of the same cell (``tried``)."""

    grid: tuple[float, ...]
    extend: int = 0
    tried: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        rates = [*self.grid, *(e.get("lr") for e in self.tried)]
        if not self.grid or any(not (isinstance(v, (int, float)) and v > 0) for v in rates):
            raise ConfigError(f"lr_grid must be positive numbers, got {self.grid!r}")
        if not (isinstance(self.extend, int) and self.extend >= 0):
            raise ConfigError(f"lr_extend must be an integer >= 0, got {self.extend!r}")
        if any(not isinstance(e.get("val"), (int, float)) for e in self.tried):
            raise ConfigError("an earlier search's entries need their validation criterion ('val')")


@dataclass
class LRFit:
    """The rate that validated best, its model and log, and every rate's entry (``grid``, in the order tried).

    ``model`` and ``log`` are ``None`` when the best rate is one of :attr:`LRSearch.tried` (trained earlier)."""

    model: nn.Module | None
    lr: float
    log: TrainLog | None
    grid: list[dict[str, Any]]


def next_rate(lr: float, up: bool) -> float:
    """The half-decade rate past ``lr`` (above when ``up``), rounded to one significant figure."""
    exponent = round((math.log10(lr) + (0.5 if up else -0.5)) * 2) / 2
    return float(f"{10**exponent:.0e}")


def _edge(grid: Sequence[Mapping[str, Any]]) -> float | None:
    """The next rate to try: past the top or the bottom rate when it validates best, else ``None``."""
    rates = sorted({float(e["lr"]) for e in grid})
    if len(rates) < 2:
        return None
    best = _best(grid)["lr"]
    if best == rates[-1]:
        return next_rate(best, up=True)
    if best == rates[0]:
        return next_rate(best, up=False)
    return None


def _best(grid: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The entry with the best criterion; ties go to the earlier entry."""
    best = grid[0]
    for e in grid[1:]:
        if e["val"] > best["val"] + 1e-9:
            best = e
    return best


# long: the data of train_classifier plus the search; the budget passes through as keywords
def fit_with_lr_grid(
    build: Callable[[], nn.Module],
    x_train: Any,
    y_train: np.ndarray,
    x_val: Any,
    y_val: np.ndarray,
    protocol: str,
    lr_grid: Sequence[float] | LRSearch = (3e-4, 1e-3, 3e-3),
    seed: int = 0,
    desc: str = "train",
    **budget: Any,
) -> LRFit:
    """Train a fresh ``build()`` model per learning rate; keep the one with the best validation criterion.

    ``lr_grid`` is a sequence of rates or an :class:`LRSearch` (growing at a winning edge, continuing an earlier
    search). ``budget`` passes ``max_steps``, ``eval_every``, ``patience``, ``batch_size``, ``dense``,
    ``full_val``, ``device`` and ``show_progress`` to :func:`~aclecg.classifier.train_classifier`; with
    ``full_val`` the rates are compared on the whole validation fold.
    """
    search = lr_grid if isinstance(lr_grid, LRSearch) else LRSearch(tuple(lr_grid))
    xt, xv = _as_signals(x_train), _as_signals(x_val)
    grid: list[dict[str, Any]] = [dict(e) for e in search.tried]
    kept: tuple[nn.Module, TrainLog] | None = None  # the model of the best rate trained here, while it leads

    def train(lr: float, extended: bool) -> None:
        nonlocal kept
        model = build()
        log = train_classifier(
            model, xt, y_train, xv, y_val, protocol, float(lr), seed=seed, desc=f"{desc} lr={lr:g}", **budget
        )
        entry = {
            "lr": float(lr),
            "val": log.best_criterion,
            "best_step": log.best_step,
            "steps_run": log.steps_run,
            "converged": log.converged,
            "first_look": log.best_at_first_look,
        }
        if log.subsample_size:  # only then, so cells validated on their whole fold keep their details
            entry["val_subsample"] = log.subsample_criterion
        if extended:  # only then, so searches that stayed inside their grid keep their details
            entry["extended"] = True
        grid.append(entry)
        if _best(grid) is entry:  # a rate that stops leading never leads again: the others are not kept
            kept = (model, log)

    done = {float(e["lr"]) for e in grid}
    for lr in search.grid:
        if float(lr) not in done:
            train(float(lr), extended=False)
            done.add(float(lr))
    for _ in range(search.extend):
        nxt = _edge(grid)
        if nxt is None or nxt in done:
            break
        train(nxt, extended=True)
        done.add(nxt)
    best = _best(grid)
    trained_here = any(best is e for e in grid[len(search.tried) :])  # else an earlier search's rate leads
    model, log = kept if trained_here and kept is not None else (None, None)
    return LRFit(model, float(best["lr"]), log, grid)
