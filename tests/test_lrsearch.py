"""The learning-rate search: a grid grown at an edge that validates best, and a search continued from its grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aclecg import lrsearch
from aclecg.classifier import TrainLog
from aclecg.errors import ConfigError

GRID = (1e-4, 3e-4, 1e-3, 3e-3)


def _fake(monkeypatch, peak: float) -> list[float]:
    """Training whose validation criterion peaks at ``peak`` (log-distance); returns the rates it was asked for."""
    calls: list[float] = []

    def train(model, xt, yt, xv, yv, protocol, lr, **kw):
        calls.append(lr)
        return TrainLog(best_criterion=0.9 - 0.01 * abs(math.log10(lr) - math.log10(peak)), best_step=10, steps_run=50)

    monkeypatch.setattr(lrsearch, "train_classifier", train)
    return calls


def _fit(search, **kw):
    x, y = torch.zeros(4, 1, 8), np.zeros((4, 1), np.float32)
    return lrsearch.fit_with_lr_grid(lambda: torch.nn.Linear(1, 1), x, y, x, y, "multilabel", search, **kw)


@pytest.mark.parametrize(
    ("peak", "extend", "tried", "chosen"),
    [
        (1e-3, 2, [], 1e-3),  # inside the grid: nothing added
        (1e-2, 2, [1e-2, 3e-2], 1e-2),  # the top wins, 1e-2 wins, 3e-2 loses: stop
        (1e-1, 2, [1e-2, 3e-2], 3e-2),  # the top keeps winning: the cap stops it
        (1e-1, 0, [], 3e-3),  # no extension asked: the grid as before
        (1e-5, 1, [3e-5], 3e-5),  # the bottom edge grows downwards
    ],
)
def test_a_search_grows_past_a_winning_edge_until_an_inner_rate_wins(monkeypatch, peak, extend, tried, chosen):
    calls = _fake(monkeypatch, peak)
    fit = _fit(lrsearch.LRSearch(GRID, extend))
    assert calls == [*GRID, *tried]
    assert fit.lr == pytest.approx(chosen) and fit.model is not None
    assert [g["lr"] for g in fit.grid] == calls
    assert [bool(g.get("extended")) for g in fit.grid] == [False] * 4 + [True] * len(tried)


def test_a_continued_search_trains_only_the_new_rates_and_agrees_with_a_full_one(monkeypatch):
    calls = _fake(monkeypatch, 1e-2)
    full = _fit(lrsearch.LRSearch(GRID, 2))
    earlier = _fit(lrsearch.LRSearch(GRID, 0))
    calls.clear()
    continued = _fit(lrsearch.LRSearch(GRID, 2, tuple(earlier.grid)))
    assert calls == [1e-2, 3e-2]  # the grid's four rates are not trained again
    assert continued.lr == full.lr and continued.grid == full.grid and continued.model is not None


def test_a_continued_search_whose_earlier_rate_still_wins_has_no_model(monkeypatch):
    _fake(monkeypatch, 3e-3)
    earlier = [{"lr": lr, "val": v} for lr, v in zip(GRID, (0.80, 0.81, 0.82, 0.95))]
    fit = _fit(lrsearch.LRSearch(GRID, 2, tuple(earlier)))
    assert fit.lr == 3e-3 and fit.model is None and fit.log is None  # 1e-2 validates at 0.895: 3e-3 is inside now
    assert [g["lr"] for g in fit.grid] == [*GRID, 1e-2]


def test_ties_go_to_the_earlier_rate_and_bad_searches_are_clear_errors(monkeypatch):
    calls: list[float] = []

    def flat(model, xt, yt, xv, yv, protocol, lr, **kw):
        calls.append(lr)
        return TrainLog(best_criterion=0.7)

    monkeypatch.setattr(lrsearch, "train_classifier", flat)
    fit = _fit(lrsearch.LRSearch(GRID, 2))
    assert fit.lr == 1e-4 and calls == [*GRID, 3e-5]  # the bottom "wins" the tie, 3e-5 ties too: no further
    for bad, match in [((), "lr_grid"), ((1e-3, 0.0), "lr_grid")]:
        with pytest.raises(ConfigError, match=match):
            lrsearch.LRSearch(bad)
    with pytest.raises(ConfigError, match="lr_extend"):
        lrsearch.LRSearch(GRID, -1)
    with pytest.raises(ConfigError, match="val"):
        lrsearch.LRSearch(GRID, 1, ({"lr": 1e-3},))


def test_next_rate_steps_half_a_decade_on_the_one_three_series():
    up = [1e-5]
    for _ in range(6):
        up.append(lrsearch.next_rate(up[-1], up=True))
    assert up == [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    assert all(lrsearch.next_rate(x, up=False) < x < lrsearch.next_rate(x, up=True) for x in (2e-3, 9e-3, 5e-4))
