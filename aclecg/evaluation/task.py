"""One sweep cell's inputs as one value: which labelled records train, validate and test, and how to fit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aclecg.evaluation.config import EvalConfig

__all__ = ["CellTask"]


@dataclass(frozen=True)
class CellTask:
    """Positions (``train_pos``, ``val_pos``, ``test_pos``) index ``keep_idx`` (the labelled rows of ``dataset``)
    and ``y_all`` (their labels). ``ref_cfg`` is the encoder config of the ``supervised`` arm and gives the leads
    of both reference arms; ``lr_grid`` is the grid a trained arm searches (one rate when it reuses a choice),
    ``lr_extend`` how far the search may grow past a winning edge, and ``prior`` the finished cell whose search
    this one continues (see :meth:`aclecg.evaluation.cells.CellStore.prior`)."""

    dataset: Any
    keep_idx: np.ndarray
    y_all: np.ndarray
    train_pos: np.ndarray
    val_pos: np.ndarray
    test_pos: np.ndarray
    protocol: str
    seed: int
    cfg: EvalConfig
    lr_grid: Sequence[float]
    device: torch.device
    ref_cfg: Any
    lr_extend: int = 0
    prior: Mapping[str, Any] | None = None
