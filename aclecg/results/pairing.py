"""Which cells a comparison reads: the first pretraining run of every method for the tables and the family of
tests, and for the primary comparison every pretraining run of ACL-ECG and of its baseline, paired by seed.

A study may pretrain some methods more than once per rotation (``[pretrain.repeats]``): the run of seed ``S`` is
the method ``NAME@seedS`` (:func:`aclecg.studyplan.repeats.repeat_name`), and :func:`aclecg.results.study.load_cells`
gives each cell the base ``name`` and the ``run`` tag (``""`` for the first run, ``seedS`` for a repeat). Tables
compare methods run for run on their first runs, so every row has the same estimand; the primary comparison uses
all the runs the two arms share, so the variance between pretraining runs is measured (:mod:`.power`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aclecg.errors import DataError

__all__ = ["Predictions", "first_runs", "paired_runs", "predictions", "run_tag"]


def run_tag(name: str) -> str:
    """``acl_ecg@seed100`` -> ``seed100``; a first run's tag is ``""``."""
    return name.partition("@")[2]


def first_runs(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells of every method's first pretraining run (and every arm that has no pretraining run)."""
    return cells[cells["run"] == ""] if "run" in cells.columns else cells


@dataclass
class Predictions:
    y: np.ndarray
    scores: list[np.ndarray]  # one (n, C) array per label seed, in seed order


def predictions(cells: pd.DataFrame) -> Predictions:
    """The test labels and the per-seed scores of one arm's cells (one pretraining run)."""
    ys, scores = None, []
    for path in cells.sort_values("seed")["npz"]:
        with np.load(path) as z:
            y, s = z["y_true"], z["y_score"]
        if ys is not None and not np.array_equal(ys, y):
            raise DataError(f"{path}: test labels differ between seeds of one arm")
        ys = y
        scores.append(s)
    if ys is None:
        raise DataError("no cells to read predictions from")
    return Predictions(ys, scores)


def paired_runs(cells: pd.DataFrame, focus: str, other: str, kind: str) -> list[tuple[str, Predictions, Predictions]]:
    """In one rotation's cells of one protocol and fraction: ``(run tag, focus, other)`` for every pretraining run
    both methods have with the same label seeds, the first run first. Empty unless the first runs pair."""
    a_all = cells[(cells["name"] == focus) & (cells["kind"] == kind)]
    b_all = cells[(cells["name"] == other) & (cells["kind"] == kind)]
    tags = set(a_all.get("run", pd.Series([""] * len(a_all)))) & set(b_all.get("run", pd.Series([""] * len(b_all))))
    out = []
    for tag in sorted(tags, key=lambda t: (t != "", t)):
        a = a_all[a_all["run"] == tag] if "run" in a_all.columns else a_all
        b = b_all[b_all["run"] == tag] if "run" in b_all.columns else b_all
        if a.empty or b.empty or set(a["seed"]) != set(b["seed"]):
            continue
        pa, pb = predictions(a), predictions(b)
        if not np.array_equal(pa.y, pb.y):
            raise DataError(f"{focus} and {other} ({tag or 'first run'}): test labels differ")
        out.append((tag, pa, pb))
    if not out or out[0][0] != "":
        return []
    if any(not np.array_equal(pa.y, out[0][1].y) for _, pa, _ in out):
        raise DataError(f"{focus} and {other}: the runs of one rotation were scored on different test records")
    return out
