"""Executing one sweep cell: the sweep's data loaded once, the encoders, and the fit and scoring of a cell.

:func:`load_sweep_data` reads the labels and the (rotated) split once per sweep; :func:`execute_cell` fits one
:class:`~aclecg.evaluation.cells.CellSpec` (a linear probe here, a trained arm in :mod:`aclecg.evaluation.finetune`),
scores its test records with bootstrap intervals and returns the record and predictions that
:class:`~aclecg.evaluation.cells.CellStore` writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from aclecg import stats
from aclecg.classifier import check_protocol
from aclecg.errors import ConfigError, DataError
from aclecg.evaluation.arms import arm_kind
from aclecg.evaluation.cells import CellSpec, EncoderInfo, SweepPlan, sweep_arms, unique_labels
from aclecg.evaluation.embeddings import cached_embeddings
from aclecg.evaluation.finetune import train_arm
from aclecg.evaluation.fractions import rotate_folds, sample_label_fraction
from aclecg.evaluation.outputs import metric_rows, missing_metrics
from aclecg.evaluation.probe import linear_probe
from aclecg.evaluation.sources import (
    EncoderSource,
    check_compatible,
    data_contract,
    load_source,
    random_init_source,
)
from aclecg.evaluation.task import CellTask
from aclecg.metrics import metric_rows as registered_metric_rows

__all__ = [
    "CellEnv",
    "RunArm",
    "SweepData",
    "encoder_info",
    "execute_cell",
    "fit_cell",
    "load_sources",
    "load_sweep_data",
    "reference_config",
    "sweep_meta",
]


@dataclass(frozen=True)
class SweepData:
    """A sweep's labelled records: ``keep_idx`` (rows of the dataset), their labels, and the positions (into
    ``keep_idx``) of the validation and test records under the sweep's split."""

    dataset: Any
    records: pd.DataFrame
    keep_idx: np.ndarray
    y_all: np.ndarray
    classes: list[str]
    val_pos: np.ndarray
    test_pos: np.ndarray
    val_folds: list[int]


def _labels(dataset: Any, label_set: str, protocol: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    check_protocol(protocol)
    available = list(getattr(dataset, "label_sets", {}) or {})
    if label_set not in available:
        raise ConfigError(
            f"label set {label_set!r} is not in the prepared data; available: {', '.join(available) or 'none'}"
        )
    keep_idx, y, classes = dataset.labels(label_set, protocol)
    keep_idx = np.asarray(keep_idx, dtype=np.int64)
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 2 or len(keep_idx) != len(y) or y.shape[1] != len(classes):
        raise DataError(f"labels({label_set!r}, {protocol!r}) returned inconsistent shapes")
    return keep_idx, y, list(classes)


def load_sweep_data(
    dataset: Any, label_set: str, protocol: str, test_fold: int | None = None, val_fold: int | None = None
) -> SweepData:
    """The labels and the split of a sweep; refuses data without labelled validation or test records."""
    keep_idx, y_all, classes = _labels(dataset, label_set, protocol)
    if val_fold is not None and test_fold is None:
        raise ConfigError("val_fold needs test_fold (the folds are rotated only when a test fold is given)")
    records = dataset.records if test_fold is None else rotate_folds(dataset.records, test_fold, val_fold)
    # the validation fold's number, recorded so a study can prove no choice read a fold it scores
    val_folds = sorted({int(f) for f in records["fold"][records["split"] == "val"]}) if "fold" in records else []
    split = records["split"].to_numpy()[keep_idx]
    val_pos, test_pos = np.flatnonzero(split == "val"), np.flatnonzero(split == "test")
    for name, pos in (("test", test_pos), ("val", val_pos)):
        if len(pos) == 0:
            raise DataError(
                f"the prepared data has no labelled {name} records (split == '{name}') for label set "
                f"{label_set!r}; the sweep needs val records to choose the probe's regularisation and "
                "the fine-tuning epoch, and test records to score"
            )
    return SweepData(dataset, records, keep_idx, y_all, classes, val_pos, test_pos, val_folds)


def encoder_info(src: EncoderSource) -> EncoderInfo:
    """The plan's view of a loaded checkpoint."""
    meta = src.meta
    return EncoderInfo(src.label, src.key, meta.get("method"), src.path, dict(meta["encoder_config"]), src.leads)


def load_sources(checkpoints: Sequence[str | Path | EncoderSource], dataset: Any) -> list[EncoderSource]:
    """Load every checkpoint (on the CPU) and check it against the data; arm labels are made unique."""
    sources: list[EncoderSource] = []
    for ck in checkpoints:
        src = ck if isinstance(ck, EncoderSource) else load_source(ck, device="cpu")
        check_compatible(src.meta, dataset, src.path or src.label)
        sources.append(src)
    for src, info in zip(sources, unique_labels([encoder_info(s) for s in sources])):
        src.label = info.label
    return sources


def reference_config(
    encoders: Sequence[EncoderInfo], dataset: Any, encoder_config: Mapping[str, Any] | str | None = None
) -> dict[str, Any]:
    """The reference arms' encoder config: the first checkpoint's architecture and leads (``--encoder-factory``
    modules have none and are passed over), else ``encoder_config``
    (preset name or dict; default ``"small"``) on the data's leads."""
    from aclecg.models import resolve_encoder_config

    own = [e for e in encoders if e.encoder_config]  # a --encoder-factory module has no aclecg architecture
    if own:
        cfg = resolve_encoder_config(dict(own[0].encoder_config), leads=list(own[0].leads))
    else:
        cfg = resolve_encoder_config(encoder_config or "small", leads=[str(x) for x in dataset.leads])
    return cfg.to_dict()


def sweep_meta(plan: SweepPlan, data: SweepData, device: torch.device, lr_from: Any = None) -> dict[str, Any]:
    """``sweep.json``: what the sweep ran on, its arms and settings (read by the study and the app)."""
    return {
        "label_set": plan.label_set,
        "protocol": plan.protocol,
        "fractions": list(plan.fractions),
        "seeds": list(plan.seeds),
        "test_fold": plan.test_fold,
        "val_folds": data.val_folds,
        "lr_from": lr_from,
        "arms": [a.name for a in sweep_arms(plan)],
        "classes": list(plan.classes),
        "data_fingerprint": plan.fingerprint,
        "checkpoints": {e.label: {"path": e.path, "sha256": e.key, "method": e.method} for e in plan.encoders},
        "reference_encoder_config": dict(plan.ref_config),
        "config": asdict(plan.config),
        "device": str(device),
        "n_val": int(len(data.val_pos)),
        "n_test": int(len(data.test_pos)),
    }


@dataclass
class CellEnv:
    """What executing cells needs beyond the plan: the loaded encoders by arm label, the device, the embeddings
    cache folder (``None``: the default) and a per-process memo of the embeddings."""

    sources: Mapping[str, EncoderSource]
    device: torch.device
    cache_dir: str | Path | None = None
    show_progress: bool = False
    memo: dict[str, np.ndarray] = field(default_factory=dict)

    def embeddings(self, src: EncoderSource, dataset: Any, batch_size: int) -> np.ndarray:
        if src.key not in self.memo:
            self.memo[src.key] = cached_embeddings(src, dataset, self.cache_dir, batch_size, self.device)[0]
        return self.memo[src.key]


@dataclass(frozen=True)
class RunArm:
    """An arm ready to fit: its name, kind and loaded encoder (``None`` for the reference arms)."""

    name: str
    kind: str
    source: EncoderSource | None


FitCell = Callable[[RunArm, CellTask, Callable[[EncoderSource], np.ndarray], bool], dict[str, Any]]


def execute_cell(
    spec: CellSpec,
    plan: SweepPlan,
    data: SweepData,
    env: CellEnv,
    fit: FitCell | None = None,
    prior: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Fit and score one resolved cell; returns its record (``cells/<id>.json``) and predictions (``.npz``).

    ``prior`` (:meth:`~aclecg.evaluation.cells.CellStore.prior`) is the finished cell whose learning-rate search
    this cell continues; it is used only when it trained and scored the same records."""
    from aclecg.models import resolve_encoder_config

    if spec.key is None or spec.cell_id is None:
        raise ConfigError(f"cell {spec.arm.name} f={spec.fraction:g} s={spec.seed} waits for its first seed's lr")
    source = env.sources[spec.arm.encoder.label] if spec.arm.encoder else None
    arm = RunArm(spec.arm.name, spec.arm.kind, source)
    ref_cfg = resolve_encoder_config(dict(plan.ref_config), leads=list(plan.ref_config["leads"]))
    cfg, seed = plan.config, spec.seed
    train_pos = sample_label_fraction(data.records, data.keep_idx, data.y_all, spec.fraction, seed)
    same_records = prior is not None and all(
        np.array_equal(prior[name], data.keep_idx[pos])
        for name, pos in (("train_index", train_pos), ("test_index", data.test_pos))
    )
    started = time.perf_counter()
    task = CellTask(
        data.dataset,
        data.keep_idx,
        data.y_all,
        train_pos,
        data.val_pos,
        data.test_pos,
        plan.protocol,
        seed,
        cfg,
        spec.lr_grid,
        env.device,
        ref_cfg,
        cfg.lr_extend if spec.chooses_lr else 0,
        prior if same_records else None,
    )
    result = (fit or fit_cell)(
        arm, task, lambda src: env.embeddings(src, data.dataset, cfg.embed_batch_size), env.show_progress
    )
    y_test = data.y_all[data.test_pos]
    report = stats.evaluate_scores(y_test, result["scores"], data.classes)
    boot = stats.bootstrap_metrics(y_test, result["scores"], n_resamples=cfg.n_bootstrap, seed=1000 + seed)
    patients = data.records["patient_id"].astype(str).to_numpy()[data.keep_idx[train_pos]]
    record = {
        "cell": spec.cell_id,
        "key": spec.key,
        "arm": arm.name,
        "arm_kind": arm.kind,
        "method": source.meta.get("method") if source else arm.kind,
        "checkpoint": source.path if source else None,
        "fraction": spec.fraction,
        "seed": seed,
        "n_train": int(len(train_pos)),
        "n_train_patients": int(len(np.unique(patients))),
        "n_val": int(len(data.val_pos)),
        "n_test": int(len(data.test_pos)),
        "excluded": report.excluded,
        "n_bootstrap_valid": boot.n_valid,
        "details": result["details"],
        "seconds": round(time.perf_counter() - started, 2),
        "metrics": metric_rows(report, boot, data.classes),
    }
    extra = missing_metrics(record)  # registered metrics beyond the built-in two, from the same predictions
    record["metrics"] += registered_metric_rows(
        y_test, result["scores"], data.classes, extra, cfg.n_bootstrap, 1000 + seed
    )
    arrays = {
        "y_true": y_test,
        "y_score": result["scores"].astype(np.float64),
        "test_index": data.keep_idx[data.test_pos],
        "train_index": data.keep_idx[train_pos],
        "classes": np.array(data.classes),
    }
    return record, arrays


def fit_cell(
    arm: RunArm,
    task: CellTask,
    embeddings_of: Callable[[EncoderSource], np.ndarray],
    show_progress: bool,
) -> dict[str, Any]:
    """Fit one arm on one training subset; return test scores and details (chosen L2; or lr, best step, steps run)."""
    kind = arm_kind(arm.kind)
    if kind.trained:
        return train_arm(arm.kind, arm.source, task, f"this cell: {arm.name} s{task.seed}", show_progress)
    dataset, ref_cfg, cfg = task.dataset, task.ref_cfg, task.cfg
    y_tr, y_va = task.y_all[task.train_pos], task.y_all[task.val_pos]
    src = (
        arm.source
        if kind.per_checkpoint
        else random_init_source(
            ref_cfg.to_dict(), task.seed, ref_cfg.leads, dataset.fs, dataset.n_samples, data_contract(dataset)
        )
    )
    assert src is not None  # every per-checkpoint probe arm has its checkpoint's source
    emb = embeddings_of(src)[task.keep_idx]
    probe = linear_probe(
        emb[task.train_pos],
        y_tr,
        emb[task.val_pos],
        y_va,
        emb[task.test_pos],
        task.protocol,
        cfg.probe_grid,
        cfg.probe_max_iter,
    )
    return {
        "scores": probe.test_scores,
        "details": {
            "l2": probe.best_l2,
            "criterion": probe.val_criterion,
            "val": {str(k): v for k, v in probe.val_scores.items()},
        },
    }
