"""The label-fraction sweep: every (arm, fraction, seed) cell, resumable, with tidy outputs.

:func:`run_sweep` checks every checkpoint against the data first, then runs the cells in a fixed order (within a
fraction, seeds in order, so a trained arm's first seed can choose the learning rate for the others). A cell's
key holds everything that changes its result; a finished cell (``cells/<cell>.json`` + ``.npz``) is read back
instead of recomputed. Probe cells are fitted here (:mod:`aclecg.evaluation.probe`), trained cells in
:mod:`aclecg.evaluation.finetune`; the tables are written by :mod:`aclecg.evaluation.outputs`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from aclecg import atomicio, stats
from aclecg.classifier import check_protocol
from aclecg.errors import ConfigError, DataError
from aclecg.evaluation.config import ARMS, DEFAULT_ARMS, DEFAULT_FRACTIONS, TRAINED_ARMS, EvalConfig, digest
from aclecg.evaluation.embeddings import cached_embeddings, precision_key
from aclecg.evaluation.finetune import train_arm
from aclecg.evaluation.form import parse_sweep_form
from aclecg.evaluation.fractions import default_val_fold, rotate_folds, sample_label_fraction
from aclecg.evaluation.outputs import SweepResult, cell_readable, learning_rates_of, metric_rows, write_outputs
from aclecg.evaluation.probe import linear_probe
from aclecg.evaluation.sources import EncoderSource, check_compatible, load_source, random_init_source
from aclecg.evaluation.task import CellTask
from aclecg.runtime import resolve_device

__all__ = ["SweepProgress", "open_dataset", "run_sweep"]


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
class _Arm:
    name: str  # unique arm id shown in results, e.g. "acl_ecg:linear_probe"
    kind: str  # linear_probe | fine_tune | supervised | reference_cnn | random_init
    source: EncoderSource | None
    pretrained: bool


def open_dataset(data: Any) -> Any:
    """``data`` itself, or the :class:`~aclecg.data.PreparedDataset` in the folder ``data`` names."""
    if isinstance(data, (str, Path)):
        from aclecg.data import PreparedDataset

        return PreparedDataset(data)
    return data


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


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _unique_labels(sources: list[EncoderSource]) -> None:
    seen: dict[str, int] = {}
    for s in sources:
        seen[s.label] = seen.get(s.label, 0) + 1
    for s in sources:
        if seen[s.label] > 1 or s.label in ARMS:
            s.label = f"{s.label}-{s.key[:8]}"


def run_sweep(
    checkpoints: Sequence[str | Path | EncoderSource],
    data: Any,
    label_set: str,
    protocol: str = "multilabel",
    fractions: Sequence[float] | str = DEFAULT_FRACTIONS,
    seeds: int | Sequence[int] = 3,
    arms: Sequence[str] | str = DEFAULT_ARMS,
    out_dir: str | Path = "runs/sweep",
    progress: Callable[[SweepProgress], None] | None = None,
    config: EvalConfig | None = None,
    encoder_config: Mapping[str, Any] | str | None = None,
    cache_dir: str | Path | None = None,
    show_progress: bool = True,
    test_fold: int | None = None,
    lr_from: str | Path | None = None,
    collect_only: bool = False,
    val_fold: int | None = None,
) -> SweepResult:
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
    check_protocol(protocol)
    dataset = open_dataset(data)
    device = resolve_device(cfg.device)
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
    sweep_meta = {
        "label_set": label_set,
        "protocol": protocol,
        "fractions": fracs,
        "seeds": seed_list,
        "test_fold": test_fold,
        "val_folds": val_folds,
        "lr_from": _lr_source(lr_from),
        "arms": [a.name for a in arm_list],
        "classes": classes,
        "data_fingerprint": fingerprint,
        "checkpoints": {s.label: {"path": s.path, "sha256": s.key, "method": s.meta.get("method")} for s in sources},
        "reference_encoder_config": ref_cfg.to_dict(),
        "config": asdict(cfg),
        "device": str(device),
        "n_val": int(len(val_pos)),
        "n_test": int(len(test_pos)),
    }
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
            if (arm.name, fraction) not in chosen_lr:  # first seed not finished: only possible when collecting
                n_missing += 1
                bar.update(1)
                continue
            lr_grid = (chosen_lr[(arm.name, fraction)],)
            settings = {**settings, "lr": lr_grid[0], "lr_chosen_on_seed": seed_list[0]}
        key = {
            "arm": arm.name,
            "kind": arm.kind,
            "weights": weights_key,
            "fraction": fraction,
            "seed": seed,
            "label_set": label_set,
            "protocol": protocol,
            "data": fingerprint,
            "classes": classes,
            "settings": settings,
            "version": 2 if arm.kind in TRAINED_ARMS else 1,
        }
        if test_fold is not None:  # only then, so the keys of official-split cells stay as they were
            key["test_fold"] = int(test_fold)
            if val_fold is not None and val_fold != default_val_fold(int(test_fold)):
                key["val_fold"] = int(val_fold)  # likewise: only a non-default validation fold enters the key
        if precision_key(device):  # GPU results never mix with CPU float32 cells (whose keys stay as they were)
            key["precision"] = precision_key(device)
        cell_id = f"{_safe(arm.name)}__f{fraction:g}__s{seed}__{digest(key)[:12]}"
        meta_path, pred_path = out / "cells" / f"{cell_id}.json", out / "cells" / f"{cell_id}.npz"
        event: dict[str, Any] = dict(total=total, cell=cell_id, arm=arm.name, fraction=fraction, seed=seed)
        if meta_path.is_file() and pred_path.is_file() and cell_readable(meta_path, pred_path):
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
        task = CellTask(
            dataset, keep_idx, y_all, train_pos, val_pos, test_pos, protocol, seed, cfg, lr_grid, device, ref_cfg
        )
        result = _run_cell(arm, task, embeddings_of, show_progress)
        y_test = y_all[test_pos]
        report = stats.evaluate_scores(y_test, result["scores"], classes)
        boot = stats.bootstrap_metrics(y_test, result["scores"], n_resamples=cfg.n_bootstrap, seed=1000 + seed)
        patients = records["patient_id"].astype(str).to_numpy()[keep_idx[train_pos]]
        record = {
            "cell": cell_id,
            "key": key,
            "arm": arm.name,
            "arm_kind": arm.kind,
            "method": arm.source.meta.get("method") if arm.source else arm.kind,
            "checkpoint": arm.source.path if arm.source else None,
            "fraction": fraction,
            "seed": seed,
            "n_train": int(len(train_pos)),
            "n_train_patients": int(len(np.unique(patients))),
            "n_val": int(len(val_pos)),
            "n_test": int(len(test_pos)),
            "excluded": report.excluded,
            "n_bootstrap_valid": boot.n_valid,
            "details": result["details"],
            "seconds": round(time.perf_counter() - started, 2),
            "metrics": metric_rows(report, boot, classes),
        }
        atomicio.write_npz(
            pred_path,
            y_true=y_test,
            y_score=result["scores"].astype(np.float64),
            test_index=keep_idx[test_pos],
            train_index=keep_idx[train_pos],
            classes=np.array(classes),
        )
        atomicio.write_json(meta_path, record)  # written last: its presence marks the cell as finished
        cell_records.append(record)
        if arm.kind in TRAINED_ARMS:
            chosen_lr.setdefault((arm.name, fraction), float(result["details"]["lr"]))
        n_computed += 1
        bar.update(1)
        if progress:
            progress(SweepProgress(done=done + 1, status="computed", **event))
    bar.close()
    outcome = write_outputs(out, cell_records, [a.name for a in arm_list], classes, sweep_meta, n_computed, n_cached)
    outcome.n_missing = n_missing
    return outcome


def _lr_source(lr_from: str | Path | None) -> dict[str, Any] | None:
    """Where borrowed learning rates were chosen: the other sweep's folder name and validation folds."""
    if lr_from is None:
        return None
    try:
        meta = json.loads((Path(lr_from) / "sweep.json").read_text())
    except (OSError, ValueError):
        meta = {}
    folds = meta.get("val_folds")
    if folds is None:  # a sweep written before validation folds were recorded: its default
        folds = [default_val_fold(int(meta.get("test_fold") or 10))]
    return {"sweep": Path(lr_from).name, "val_folds": [int(f) for f in folds]}


def _run_cell(
    arm: _Arm,
    task: CellTask,
    embeddings_of: Callable[[EncoderSource], np.ndarray],
    show_progress: bool,
) -> dict[str, Any]:
    """Fit one arm on one training subset; return test scores and details (chosen L2; or lr, best step, steps run)."""
    if arm.kind in ("linear_probe", "random_init"):
        dataset, ref_cfg, cfg = task.dataset, task.ref_cfg, task.cfg
        y_tr, y_va = task.y_all[task.train_pos], task.y_all[task.val_pos]
        src = (
            arm.source
            if arm.kind == "linear_probe"
            else random_init_source(ref_cfg.to_dict(), task.seed, ref_cfg.leads, dataset.fs, dataset.n_samples)
        )
        assert src is not None  # every linear_probe arm has its checkpoint's source
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
    return train_arm(arm.kind, arm.source, task, f"{arm.name} s{task.seed}", show_progress)
