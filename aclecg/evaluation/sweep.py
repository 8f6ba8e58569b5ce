"""The label-fraction sweep: every (arm, fraction, seed) cell, resumable, with tidy outputs.

:func:`run_sweep` is plan + store + execute: it checks every checkpoint against the data first, plans the cells
(:func:`aclecg.evaluation.cells.plan_cells`: a pure function of the sweep's inputs, each cell with the key that
holds everything that changes its result), then runs them in plan order (within a fraction, seeds in order, so a
trained arm's first seed can choose the learning rate for the others). A finished cell
(``cells/<cell>.json`` + ``.npz``, :class:`~aclecg.evaluation.cells.CellStore`) is read back instead of recomputed;
a missing one is fitted by :func:`aclecg.evaluation.cellrun.execute_cell`. The tables are written by
:mod:`aclecg.evaluation.outputs`. A study runs the same cells one task each (:mod:`aclecg.studyplan`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from aclecg import atomicio
from aclecg.classifier import check_protocol
from aclecg.errors import ConfigError
from aclecg.evaluation.cellrun import (
    CellEnv,
    SweepData,
    encoder_info,
    execute_cell,
    fit_cell,
    load_sources,
    load_sweep_data,
    reference_config,
    sweep_meta,
)
from aclecg.evaluation.cells import CellSpec, CellStore, SweepPlan, cell_spec, chosen_lr_of, sweep_arms
from aclecg.evaluation.config import DEFAULT_ARMS, DEFAULT_FRACTIONS, DEFAULT_SEEDS, EvalConfig
from aclecg.evaluation.embeddings import precision_key
from aclecg.evaluation.form import parse_sweep_form
from aclecg.evaluation.fractions import default_val_fold
from aclecg.evaluation.outputs import SweepResult, learning_rates_of, write_outputs
from aclecg.evaluation.sources import EncoderSource
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


def open_dataset(data: Any) -> Any:
    """``data`` itself, or the :class:`~aclecg.data.PreparedDataset` in the folder ``data`` names."""
    if isinstance(data, (str, Path)):
        from aclecg.data import PreparedDataset

        return PreparedDataset(data)
    return data


# long: public API with the sweep command's options; issue 33 splits it into a cell plan, a store and their execution
def run_sweep(
    checkpoints: Sequence[str | Path | EncoderSource],
    data: Any,
    label_set: str,
    protocol: str = "multilabel",
    fractions: Sequence[float] | str = DEFAULT_FRACTIONS,
    seeds: int | Sequence[int] = DEFAULT_SEEDS,
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
    sweep_data = load_sweep_data(dataset, label_set, protocol, test_fold, val_fold)
    # Load every checkpoint and check it against the data before computing anything.
    sources = load_sources(checkpoints, dataset)
    foreign = [s.label for s in sources if not s.meta.get("encoder_config")]
    if foreign and "fine_tune" in arm_kinds:
        raise ConfigError(
            f"fine_tune needs an aclecg checkpoint; {', '.join(foreign)} (--encoder-factory) enters the "
            "linear_probe arm only: drop fine_tune from --arms"
        )
    encoders = tuple(encoder_info(s) for s in sources)
    plan = SweepPlan(
        label_set=label_set,
        protocol=protocol,
        classes=tuple(sweep_data.classes),
        fingerprint=str(getattr(dataset, "fingerprint", "")),
        fractions=tuple(fracs),
        seeds=tuple(seed_list),
        arm_kinds=tuple(arm_kinds),
        encoders=encoders,
        ref_config=reference_config(encoders, dataset, encoder_config),
        config=cfg,
        test_fold=test_fold,
        val_fold=val_fold,
        precision=precision_key(device),
        borrowed=learning_rates_of(lr_from) if lr_from is not None else {},
        n_val=int(len(sweep_data.val_pos)),
    )
    out = Path(out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    sweep_meta_ = sweep_meta(plan, sweep_data, device, _lr_source(lr_from))
    atomicio.write_json(out / "sweep.json", sweep_meta_)
    env = CellEnv({s.label: s for s in sources}, device, cache_dir, show_progress)
    run = _SweepRun(plan, sweep_data, env, CellStore(out), progress, show_progress)
    run.run_all(collect_only)
    arm_names = [a.name for a in sweep_arms(plan)]
    outcome = write_outputs(out, run.records, arm_names, sweep_data.classes, sweep_meta_, run.n_computed, run.n_cached)
    outcome.n_missing = run.n_missing
    return outcome


class _SweepRun:
    """The cells of one sweep, run in plan order in this process: read back when finished, else computed."""

    def __init__(
        self,
        plan: SweepPlan,
        data: SweepData,
        env: CellEnv,
        store: CellStore,
        progress: Callable[[SweepProgress], None] | None,
        show_progress: bool,
    ):
        self.plan, self.data, self.env, self.store, self.progress = plan, data, env, store, progress
        self.show_progress = show_progress
        self.records: list[dict] = []
        self.chosen_lr: dict[tuple[str, float], float] = {}
        self.n_computed = self.n_cached = self.n_missing = 0

    def run_all(self, collect_only: bool) -> None:
        arms = sweep_arms(self.plan)
        # seeds in order within each fraction: a trained arm's first seed chooses the learning rate for the others
        order = [(arm, f, s) for f in self.plan.fractions for s in self.plan.seeds for arm in arms]
        # two bars in the log: all cells (its ETA counts finished cells only) and the running cell's own steps
        bar = tqdm(total=len(order), desc="sweep cells (ETA from finished cells)", disable=not self.show_progress)
        for done, (arm, fraction, seed) in enumerate(order):
            spec = cell_spec(self.plan, arm, fraction, seed, self.chosen_lr)
            self._one(spec, done, len(order), collect_only, bar)
            bar.update(1)
        bar.close()

    def _one(self, spec: CellSpec, done: int, total: int, collect_only: bool, bar: Any) -> None:
        if spec.cell_id is None:  # its first seed is not finished: only possible when collecting
            self.n_missing += 1
            return
        event: dict[str, Any] = dict(
            total=total, cell=spec.cell_id, arm=spec.arm.name, fraction=spec.fraction, seed=spec.seed
        )
        record = self.store.read(spec.cell_id)
        if record is not None:
            self.n_cached += 1
            status = "cached"
        elif collect_only:
            self.n_missing += 1
            return
        else:
            if self.progress:
                self.progress(SweepProgress(done=done, status="running", **event))
            bar.set_postfix_str(f"{spec.arm.name} f={spec.fraction:g} s={spec.seed}")
            record, arrays = execute_cell(
                spec, self.plan, self.data, self.env, fit=_run_cell, prior=self.store.prior(spec)
            )
            self.store.write(spec.cell_id, record, arrays)
            self.n_computed += 1
            status = "computed"
        self.records.append(record)
        if spec.trained:
            self.chosen_lr.setdefault((spec.arm.name, spec.fraction), chosen_lr_of(record))
        if self.progress:
            self.progress(SweepProgress(done=done + 1, status=status, **event))


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


#: How a cell is fitted (looked up when a cell runs, so tests can replace it).
_run_cell = fit_cell
