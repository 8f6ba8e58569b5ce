"""The trained arms' cells: ``fine_tune``, ``supervised`` and ``reference_cnn``, built on :mod:`aclecg.classifier`.

* ``fine_tune``: a copy of the checkpoint's encoder with a fresh seeded linear head, trained end to end.
* ``supervised``: the reference encoder architecture from a seeded random initialisation, trained end to end.
* ``reference_cnn``: a plain CNN trained from scratch (:mod:`aclecg.reference_cnn`).

Each cell tries the learning rates it is given on the validation records (:func:`aclecg.classifier.fit_with_lr_grid`)
and scores the test records once with the model that validated best. Global RNG state is left untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from aclecg.classifier import fit_with_lr_grid, predict_classifier, read_signals
from aclecg.evaluation.sources import EncoderSource, check_compatible
from aclecg.evaluation.task import CellTask
from aclecg.reference_cnn import ReferenceCNNConfig, build_reference_cnn

__all__ = ["train_arm"]


def _builder(
    kind: str, source: EncoderSource | None, ref_cfg: Any, n_leads: int, n_classes: int, seed: int
) -> Callable[[], nn.Module]:
    """A function returning the arm's freshly initialised classifier (the same weights on every call)."""
    from aclecg.models import build_classifier, build_encoder

    if kind == "fine_tune":
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
    the validation criterion at the best step.
    """
    dataset, keep_idx, y_all, ref_cfg, seed = task.dataset, task.keep_idx, task.y_all, task.ref_cfg, task.seed
    train_pos, val_pos, test_pos, cfg, device = task.train_pos, task.val_pos, task.test_pos, task.cfg, task.device
    if kind == "fine_tune":
        assert source is not None
        lead_idx = check_compatible(source.meta, dataset)
    else:
        lead_idx = check_compatible({"leads": ref_cfg.leads, "fs": dataset.fs, "n_samples": dataset.n_samples}, dataset)
    build = _builder(kind, source, ref_cfg, len(lead_idx), y_all.shape[1], seed)
    x_tr = torch.from_numpy(read_signals(dataset, keep_idx[train_pos], lead_idx))
    x_va = torch.from_numpy(read_signals(dataset, keep_idx[val_pos], lead_idx))
    fit = fit_with_lr_grid(
        build,
        x_tr,
        y_all[train_pos],
        x_va,
        y_all[val_pos],
        task.protocol,
        task.lr_grid,
        seed=seed,
        desc=desc,
        max_steps=cfg.max_steps,
        eval_every=cfg.eval_every,
        dense=(cfg.dense_every, cfg.dense_until),
        patience=cfg.patience,
        batch_size=cfg.batch_size,
        device=device,
        show_progress=show_progress,
    )
    scores = predict_classifier(fit.model, dataset, keep_idx[test_pos], lead_idx, task.protocol, device=device)
    log = fit.log
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
        },
    }
