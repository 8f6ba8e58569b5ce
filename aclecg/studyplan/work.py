"""What a worker runs: one task of a study (a pretraining, an embedding, or one sweep cell), in any process.

A task travels as an :class:`Envelope` (picklable: the task's job and the torch threads it may use) and
:func:`run_task` runs it in whatever process the executor chose (this one, a pool worker, a Ray worker). Its
outputs are written atomically where the study's plan expects them, so a task killed midway leaves nothing that
looks finished and is simply run again. A worker keeps the datasets, sweep data and encoders it opened, so the
next cell of the same sweep starts at once.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aclecg.errors import ConfigError
from aclecg.evaluation.cells import CellStore, SweepPlan, cell_spec, sweep_arms
from aclecg.studyplan.encoders import EmbedJob, PretrainJob, run_embed, run_pretrain

__all__ = ["CellJob", "Envelope", "open_data", "run_task"]


@dataclass(frozen=True)
class CellJob:
    """One sweep cell: its sweep (folder and plan), the data, which cell, and the first seed's learning rate
    when it reuses one (``lr``)."""

    folder: Path
    plan: SweepPlan
    data: Any
    arm: str
    fraction: float
    seed: int
    cell_id: str
    lr: float | None = None
    committed: Path | None = None
    save_trained: bool = False
    cache_dir: Path | None = None


@dataclass(frozen=True)
class Envelope:
    """A task as it travels to a worker: its id, its job, the torch threads it may use (0: leave as is)."""

    task_id: str
    job: PretrainJob | EmbedJob | CellJob
    threads: int = 0


_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_CACHE_SIZE = 16  # datasets, sweep data and encoders a worker keeps between tasks


def _memo(key: tuple, make: Any) -> Any:
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = make()
    _CACHE[key] = value
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


def open_data(ref: Any) -> Any:
    """A dataset: a prepared folder, ``bundled:NAME`` (prepared on first use), or the object itself."""
    if not isinstance(ref, (str, Path)):
        return ref

    def make() -> Any:
        from aclecg.data import PreparedDataset
        from aclecg.training.data import resolve_data_path

        return PreparedDataset(resolve_data_path(ref))

    return _memo(("data", str(ref)), make)


def _data_key(ref: Any) -> str:
    return str(ref) if isinstance(ref, (str, Path)) else f"object:{getattr(ref, 'fingerprint', id(ref))}"


def run_cell(job: CellJob, show_progress: bool = False) -> dict[str, Any]:
    """Read the cell back if it is finished, else compute and write it; returns its status and seconds."""
    from aclecg.evaluation.cellrun import CellEnv, execute_cell, load_sweep_data
    from aclecg.runtime import resolve_device

    plan = job.plan
    store = CellStore(job.folder, job.committed, job.save_trained)
    arm = next((a for a in sweep_arms(plan) if a.name == job.arm), None)
    if arm is None:
        raise ConfigError(f"{job.folder}: the sweep has no arm {job.arm!r}")
    chosen = {(job.arm, job.fraction): job.lr} if job.lr is not None else {}
    spec = cell_spec(plan, arm, job.fraction, job.seed, chosen)
    if spec.cell_id != job.cell_id:
        raise ConfigError(f"{job.folder}: cell {job.cell_id} was planned with other inputs (now {spec.cell_id})")
    record = store.read(job.cell_id)
    if record is not None:
        return {"status": "cached", "seconds": record.get("seconds")}
    data = open_data(job.data)
    sweep_data = _memo(
        ("sweep", _data_key(job.data), plan.label_set, plan.protocol, plan.test_fold, plan.val_fold),
        lambda: load_sweep_data(data, plan.label_set, plan.protocol, plan.test_fold, plan.val_fold),
    )
    sources = {e.label: _source(e.path, e.key, e.label) for e in plan.encoders if e.path}
    # the encoders' paths too: a cell records the checkpoint it read, and two studies in one worker may hold the
    # same weights (same sha256) in different folders
    env_key = ("env", _data_key(job.data), tuple(sorted((k, s.key, str(s.path)) for k, s in sources.items())))
    env = _memo(env_key, lambda: CellEnv(sources, resolve_device(plan.config.device), job.cache_dir, show_progress))
    record, arrays = execute_cell(spec, plan, sweep_data, env, prior=store.prior(spec))
    store.write(job.cell_id, record, arrays)
    return {"status": "computed", "seconds": record["seconds"]}


def _source(path: str, key: str, label: str) -> Any:
    from aclecg.evaluation.sources import load_source

    def make() -> Any:
        src = load_source(path, device="cpu")
        if src.key != key:
            raise ConfigError(f"{path} changed since the study planned it (sha256 {src.key[:12]} != {key[:12]})")
        src.label = label
        return src

    return _memo(("source", path, key, label), make)


def run_task(envelope: Envelope) -> dict[str, Any]:
    """Run one task (see the module docstring); returns what the task reports (status, seconds). The torch thread
    count is the task's while it runs and restored after it, so an in-process run leaves its caller as it was."""
    import torch

    before = torch.get_num_threads()
    if envelope.threads:
        torch.set_num_threads(max(1, int(envelope.threads)))
    try:
        job = envelope.job
        if isinstance(job, PretrainJob):
            out = run_pretrain(job)
        elif isinstance(job, EmbedJob):
            out = run_embed(job, open_data)
        else:
            out = run_cell(job)
    finally:
        torch.set_num_threads(before)
    return {**out, "task": envelope.task_id, "pid": os.getpid()}
