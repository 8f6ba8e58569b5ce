"""The trained arms' cells: ``fine_tune``, ``supervised`` and ``reference_cnn``, built on :mod:`aclecg.classifier`.

* ``fine_tune``: a copy of the checkpoint's encoder with a fresh seeded linear head, trained end to end.
* ``supervised``: the reference encoder architecture from a seeded random initialisation, trained end to end.
* ``reference_cnn``: a plain CNN trained from scratch (:mod:`aclecg.reference_cnn`).

Each cell tries the learning rates it is given on the validation records (:func:`aclecg.lrsearch.fit_with_lr_grid`)
and scores the test records once with the model that validated best. Global RNG state is left untouched.

Memory stays flat in the dataset's size: training batches, validation and test predictions are read from the
prepared dataset's cache file batch by batch (:class:`aclecg.classifier.RecordRows`). When the validation fold has
more than ``EvalConfig.val_cap`` records, training validates on a fixed class-stratified subsample of that size
(:func:`validation_subsample`, the same for every arm, seed and learning rate), and each learning rate's restored
best weights are scored on the whole fold once: that full-fold score chooses the rate and is the cell's ``val``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from aclecg.classifier import RecordRows, predict_classifier, read_signals
from aclecg.evaluation.arms import arm_kind
from aclecg.evaluation.sources import EncoderSource, check_compatible, data_contract, made_for
from aclecg.evaluation.task import CellTask
from aclecg.lrsearch import LRSearch, fit_with_lr_grid
from aclecg.reference_cnn import ReferenceCNNConfig, build_reference_cnn

__all__ = ["train_arm", "validation_subsample"]

#: Seed of the validation subsample: fixed, so every arm, seed and learning rate early-stops on the same records.
SUBSAMPLE_SEED = 0


def validation_subsample(y: np.ndarray, cap: int, seed: int = SUBSAMPLE_SEED) -> np.ndarray:
    """Sorted positions of at most ``cap`` rows of the targets ``y`` ``(n, C)``, drawn class-stratified.

    Every row belongs to the stratum of its rarest positive class (rows without one form a stratum of their own).
    Each stratum first gets ``min(size, cap // (2 * strata))`` rows, so that rare classes stay evaluable, then the
    rest of ``cap`` is shared in proportion to the rows left (largest remainders); rows are drawn at random within
    a stratum. ``cap <= 0`` or ``n <= cap``: every row.

    >>> y = np.eye(3, dtype=np.float32)[[0] * 90 + [1] * 8 + [2] * 2]
    >>> pos = validation_subsample(y, 20)
    >>> len(pos), y[pos].sum(0).tolist()
    (20, [14.0, 4.0, 2.0])
    """
    y = np.asarray(y)
    n = len(y)
    if cap <= 0 or n <= cap:
        return np.arange(n)
    positive = y > 0
    rank = np.where(positive, positive.sum(0)[None, :], np.iinfo(np.int64).max)
    stratum = np.where(positive.any(1), rank.argmin(1), y.shape[1])
    sizes = np.bincount(stratum, minlength=y.shape[1] + 1)
    floor = np.minimum(sizes, cap // (2 * int((sizes > 0).sum())))
    share = (sizes - floor) * (cap - floor.sum()) / (sizes - floor).sum()
    quota = floor + np.floor(share).astype(np.int64)
    extra = cap - int(quota.sum())
    quota[np.argsort(-(share - np.floor(share)), kind="stable")[:extra]] += 1
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(stratum == s))[: quota[s]] for s in range(len(sizes)) if quota[s]]
    return np.sort(np.concatenate(picks))


def _builder(
    kind: str, source: EncoderSource | None, ref_cfg: Any, n_leads: int, n_classes: int, seed: int
) -> Callable[[], nn.Module]:
    """A function returning the arm's freshly initialised classifier (the same weights on every call)."""
    from aclecg.models import build_classifier, build_encoder

    if arm_kind(kind).per_checkpoint:  # fine_tune: the checkpoint's encoder
        assert source is not None
        encoder = source.encoder

        def build() -> nn.Module:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                return build_classifier(copy.deepcopy(encoder), n_classes)
    elif kind == "reference_cnn":

        def build() -> nn.Module:
            return build_reference_cnn(n_leads, n_classes, ReferenceCNNConfig(), seed=int(seed))
    else:

        def build() -> nn.Module:
            encoder = build_encoder(ref_cfg, seed=seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                return build_classifier(encoder, n_classes)

    return build


def train_arm(
    kind: str, source: EncoderSource | None, task: CellTask, desc: str, show_progress: bool
) -> dict[str, Any]:
    """Train one trained-arm cell on ``task.train_pos``; return its test scores and details.

    Details: the chosen ``lr`` and the grid searched, the best step, the steps run, whether the run converged, and
    the validation criterion at the best step (on the whole validation fold); with a validation subsample also its
    size (``val_subsample``) and the best criterion on it (``val_on_subsample``).
    """
    dataset, keep_idx, y_all, ref_cfg, seed = task.dataset, task.keep_idx, task.y_all, task.ref_cfg, task.seed
    train_pos, val_pos, test_pos, cfg, device = task.train_pos, task.val_pos, task.test_pos, task.cfg, task.device
    if arm_kind(kind).per_checkpoint:
        assert source is not None
        lead_idx = check_compatible(source.meta, dataset)
    else:
        made = made_for(data_contract(dataset), ref_cfg.leads)
        meta = {"leads": ref_cfg.leads, "fs": dataset.fs, "n_samples": dataset.n_samples, "contract": made}
        lead_idx = check_compatible(meta, dataset)
    build = _builder(kind, source, ref_cfg, len(lead_idx), y_all.shape[1], seed)
    rows = RecordRows(dataset, np.asarray(keep_idx[train_pos], dtype=np.int64), tuple(lead_idx))
    y_val, val_idx = y_all[val_pos], np.asarray(keep_idx[val_pos], dtype=np.int64)
    sub = validation_subsample(y_val, cfg.val_cap)
    full_val = (RecordRows(dataset, val_idx, tuple(lead_idx)), y_val) if len(sub) < len(val_pos) else None
    x_va = torch.from_numpy(read_signals(dataset, val_idx[sub], lead_idx))  # at most val_cap records in memory
    prior = task.prior
    search = LRSearch(tuple(task.lr_grid), task.lr_extend, tuple(prior["details"]["lr_grid"]) if prior else ())
    fit = fit_with_lr_grid(
        build,
        rows,
        y_all[train_pos],
        x_va,
        y_val[sub],
        task.protocol,
        search,
        seed=seed,
        desc=desc,
        max_steps=cfg.max_steps,
        eval_every=cfg.eval_every,
        dense=(cfg.dense_every, cfg.dense_until),
        patience=cfg.patience,
        batch_size=cfg.batch_size,
        device=device,
        show_progress=show_progress,
        full_val=full_val,
    )
    continued = {"continued_from": prior["cell"]} if prior else {}
    if fit.model is None or fit.log is None:  # a rate of the continued search still validates best: its cell stands
        assert prior is not None
        details = {**prior["details"], "lr_grid": fit.grid, **continued}
        return {"scores": np.asarray(prior["y_score"]), "details": details}
    scores = predict_classifier(fit.model, dataset, keep_idx[test_pos], lead_idx, task.protocol, device=device)
    log = fit.log
    subsample = {"val_subsample": log.subsample_size, "val_on_subsample": log.subsample_criterion} if full_val else {}
    return {
        "scores": scores,
        "details": {
            "best_step": log.best_step,
            "steps_run": log.steps_run,
            "converged": log.converged,
            "first_validation": log.first_validation,
            "best_at_first_look": log.best_at_first_look,
            "criterion": log.criterion,
            "val": log.best_criterion,
            "lr": fit.lr,
            "lr_grid": fit.grid,
            **subsample,  # only when the cap was in effect, so cells validated on their whole fold stay as they were
            **continued,
        },
    }
