"""A study's tasks: pretraining, embedding and every sweep cell, with their keys, dependencies and state.

:class:`StudyPlan` expands a :class:`~aclecg.studyplan.spec.Study` into :class:`Task` s: one pretraining per method x
test fold, one embedding per encoder (optional), and one task per cell of every sweep
(``runs/sweeps/<protocol>-test<K>-<group>``, the layout ``aclecg study report`` reads), planned by
:func:`aclecg.evaluation.cells.plan_cells`. Every task's key holds what changes its result, the data fingerprint
included. Some inputs exist only once other tasks have finished - an encoder's weights, the learning rate a first
seed chose, the baseline a rotation's probes validated best - so :meth:`StudyPlan.tasks` is called again as tasks
finish: a task whose inputs are not there yet is listed unresolved (``job is None``, a provisional id) with the
tasks it waits for in ``deps``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aclecg import atomicio
from aclecg.errors import DataError
from aclecg.evaluation.cells import CellSpec, CellStore, EncoderInfo, SweepPlan, plan_cells, safe_name, unique_labels
from aclecg.studyplan.encoders import (
    EmbedJob,
    PretrainJob,
    committed_store,
    embed_done,
    embed_job,
    pretrain_done,
    pretrain_job,
)
from aclecg.studyplan.spec import BEST_BASELINE, Study, SweepStage
from aclecg.studyplan.work import CellJob, open_data

__all__ = ["DEFAULT_SECONDS", "StudyPlan", "SweepRef", "Task"]

#: Seconds per task when no finished task of the kind was measured yet: the bundled data on 2 CPU cores
#: (docs/results.md's cost table). ``trained-grid``: a trained cell that searches the learning-rate grid;
#: ``reuse``: a pretraining task whose committed encoder stands for the run.
DEFAULT_SECONDS: dict[str, float] = {
    "pretrain": 150.0,
    "reuse": 1.0,  # a pretraining task whose committed encoder is copied
    "embed": 20.0,
    "probe": 2.0,
    "trained-grid": 90.0,
    "trained": 30.0,
}


@dataclass(frozen=True)
class Task:
    """One unit of work. ``job`` is ``None`` while an input is unknown (then ``id`` is provisional)."""

    id: str
    kind: str  # pretrain | embed | probe | trained
    summary: str
    key: Mapping[str, Any] | None
    deps: tuple[str, ...]
    job: PretrainJob | EmbedJob | CellJob | None
    done: bool
    shard_key: str
    cost: str  # the time-estimate category (a key of DEFAULT_SECONDS)

    @property
    def resolved(self) -> bool:
        return self.job is not None


@dataclass(frozen=True)
class SweepRef:
    """One sweep folder of the study."""

    name: str
    stage: SweepStage
    fold: int
    protocol: str


class StudyPlan:
    """The tasks of a study and what is known of them (see the module docstring). ``datasets`` maps data names of
    the study file to in-memory datasets (tests); other names are prepared folders or ``bundled:NAME``."""

    def __init__(self, study: Study, datasets: Mapping[str, Any] | None = None):
        from aclecg.evaluation.embeddings import precision_key
        from aclecg.runtime import resolve_device

        self.study = study
        self.datasets = dict(datasets or {})
        device = resolve_device(study.evaluation.device)
        self.device, self.precision = str(device), precision_key(device)
        self._fingerprints: dict[str, str] = {}
        self._done: set[str] = set()
        self._encoders: dict[tuple[str, str], EncoderInfo] = {}
        self._sweep_data: dict[tuple[str, int], Any] = {}
        self._best: dict[int, str] = {}
        self._records: dict[tuple[str, str], dict[str, Any]] = {}
        self.sweep_plans: dict[str, SweepPlan] = {}
        self._pre_now: dict[tuple[int, str], Task] = {}
        self._embed_now: dict[tuple[int, str], Task] = {}
        self.pretrain = {
            (fold, m.name): pretrain_job(study, m, fold, self.fingerprint)
            for fold in study.test_folds
            for m in study.methods_for(fold)
        }

    # ------------------------------------------------------------------------------------------------ inputs
    def data_ref(self, ref: str) -> Any:
        return self.datasets.get(ref, ref)

    def overlap_lines(self) -> list[str]:
        """Leakage across datasets: for every pretraining dataset other than the downstream one, the records that
        duplicate a record of a test fold (:func:`aclecg.overlap.overlap_with_folds`), handled by the study's
        ``data.overlap`` policy (``refuse`` raises :class:`DataError`). The downstream dataset's own test fold is
        already left out of its rotation's pretraining."""
        if self.study.overlap == "ignore":
            return []
        from aclecg.overlap import enforce, overlap_with_folds

        refs = sorted({str(d) for job in self.pretrain.values() for d in job.config["data"]})
        evaluation = open_data(self.data_ref(self.study.downstream))
        lines = []
        for ref in refs:
            if ref == self.study.downstream:
                continue
            report = overlap_with_folds(open_data(self.data_ref(ref)), evaluation, list(self.study.test_folds))
            line = enforce(report, self.study.overlap)
            lines.append(
                f"{ref} vs {self.study.downstream}: " + (line or "no pretraining record duplicates a test fold")
            )
        return lines

    def fingerprint(self, ref: str) -> str:
        if ref not in self._fingerprints:
            try:
                self._fingerprints[ref] = str(open_data(self.data_ref(ref)).fingerprint)
            except (OSError, DataError) as exc:
                raise DataError(f"{self.study.path}: data {ref!r}: {exc}") from None
        return self._fingerprints[ref]

    def sweep_data(self, protocol: str, fold: int) -> Any:
        """The downstream labels and split of one protocol and test fold (loaded once)."""
        from aclecg.evaluation.cellrun import load_sweep_data

        if (protocol, fold) not in self._sweep_data:
            data = open_data(self.data_ref(self.study.downstream))
            s = self.study
            self._sweep_data[(protocol, fold)] = load_sweep_data(data, s.label_set, protocol, fold, s.val_fold)
        return self._sweep_data[(protocol, fold)]

    def sweeps(self) -> list[SweepRef]:
        return [
            SweepRef(f"{protocol}-test{fold}-{stage.group}", stage, fold, protocol)
            for stage in self.study.sweeps
            for fold in stage.folds
            for protocol in stage.protocols
        ]

    def mark_done(self, task_id: str) -> None:
        """Record a task finished in this session (its outputs are on disk)."""
        self._done.add(task_id)

    # ------------------------------------------------------------------------------------------------ tasks
    def tasks(self) -> list[Task]:
        """Every task of the study, in dependency order, with what is known now."""
        self._pre_now = {k: self._pretrain_task(job) for k, job in self.pretrain.items()}
        self._embed_now = {k: self._embed_task(job) for k, job in self.pretrain.items()} if self.study.embed else {}
        out = list(self._pre_now.values()) + list(self._embed_now.values())
        by_id = {t.id: t for t in out}
        plain = [s for s in self.sweeps() if BEST_BASELINE not in (s.stage.encoders or ())]
        cells: list[Task] = []
        for sweep in plain:
            cells += self._cell_tasks(sweep, by_id, ())
        for sweep in self.sweeps():
            if sweep not in plain:
                cells += self._cell_tasks(sweep, by_id, self._best_deps(sweep.fold, cells))
        return out + cells

    def _pretrain_task(self, job: PretrainJob) -> Task:
        tid = f"pretrain:test{job.fold}/{job.name}:{job.digest[:12]}"
        done = tid in self._done or pretrain_done(job)
        seed = job.config["seed"]
        summary = f"pretrain {job.name}, test fold {job.fold} (seed {seed}, {job.config['epochs']} epochs)"
        cost = "reuse" if not done and committed_store(job) is not None else "pretrain"
        if cost == "reuse":
            summary += ", committed encoder reused"
        return Task(tid, "pretrain", summary, job.key, (), job, done, f"encoder/{job.fold}/{job.name}", cost)

    def _embed_task(self, pre: PretrainJob) -> Task:
        pre_id = self._pre_now[(pre.fold, pre.name)].id
        fp = self.fingerprint(self.study.downstream)
        job = embed_job(pre, self.data_ref(self.study.downstream), fp, self.study, self.device, self.precision)
        tid = f"embed:test{pre.fold}/{pre.name}:{job.marker.stem.split('-')[-1]}"
        info = self.encoder(pre.fold, pre.name)
        done = tid in self._done or embed_done(job, info.key if info else None)
        summary = f"embed {pre.name}, test fold {pre.fold}"
        resolved = job if info is not None else None
        return Task(
            tid, "embed", summary, job.key, (pre_id,), resolved, done, f"encoder/{pre.fold}/{pre.name}", "embed"
        )

    def encoder(self, fold: int, name: str) -> EncoderInfo | None:
        """The plan's view of an encoder once its pretraining task has finished (else ``None``)."""
        from aclecg.evaluation.cellrun import encoder_info
        from aclecg.evaluation.sources import load_source

        job = self.pretrain.get((fold, name))
        if job is None:
            raise DataError(f"{self.study.path}: no encoder {name!r} is pretrained for test fold {fold}")
        if not (self._pre_now[(fold, name)].done and job.encoder.is_file()):
            return None
        try:
            sha = (job.encoder.parent / "encoder.pt.sha256").read_text().split()[0]
        except (OSError, IndexError):
            sha = ""
        if (str(job.encoder), sha) not in self._encoders:
            self._encoders[(str(job.encoder), sha)] = encoder_info(load_source(job.encoder, device="cpu"))
        return self._encoders[(str(job.encoder), sha)]

    def _best_deps(self, fold: int, cells: Sequence[Task]) -> tuple[str, ...]:
        """The probe cells a rotation's best-baseline choice reads (linear probes, primary fraction and protocol)."""
        p = self.study.primary
        prefix = f"cell:{p['protocol']}-test{fold}-"
        return tuple(
            t.id
            for t in cells
            if t.id.startswith(prefix) and t.kind == "probe" and t.key is not None
            and t.key["kind"] == "linear_probe" and t.key["fraction"] == p["fraction"]
        )  # fmt: skip

    def best_baseline(self, fold: int, deps: Sequence[str], done: set[str]) -> str | None:
        """The rotation's best baseline once the probe cells it reads are finished (chosen on validation)."""
        from aclecg.results import study as study_stats

        if fold not in self._best and deps and all(d in done for d in deps):
            p = self.study.primary
            cells = study_stats.load_cells(self.study.sweeps_dir)
            self._best[fold] = study_stats.best_baseline(cells, p["fraction"], p["protocol"], fold)
        return self._best.get(fold)

    def _encoder_names(self, sweep: SweepRef, best: str | None) -> list[str | None]:
        names = sweep.stage.encoders
        if names is None:
            return [m.name for m in self.study.methods_for(sweep.fold)]
        return [best if n == BEST_BASELINE else n for n in names]

    def _cell_tasks(self, sweep: SweepRef, upstream: Mapping[str, Task], best_deps: tuple[str, ...]) -> list[Task]:
        done_ids = {tid for tid, t in upstream.items() if t.done} | self._done
        best = self.best_baseline(sweep.fold, best_deps, done_ids | self._cells_done(best_deps)) if best_deps else None
        names = self._encoder_names(sweep, best)
        pre = {n: self._pre_now[(sweep.fold, n)] for n in names if n is not None}
        infos = [self.encoder(sweep.fold, n) if n is not None else None for n in names]
        resolved = all(i is not None for i in infos)
        plan = self._sweep_plan(sweep, [i for i in infos if i is not None] if resolved else None, names)
        folder = self.study.sweeps_dir / sweep.name
        store = CellStore(folder, self.committed_cells(sweep))
        listing = store.listing()
        chosen = self._chosen(sweep.name, plan, listing) if resolved else {}
        deps_common = tuple(t.id for t in pre.values()) + best_deps
        out: list[Task] = []
        ids: dict[tuple[str, float, int], str] = {}
        for spec in plan_cells(plan, chosen):
            spec_ok = resolved and spec.cell_id is not None
            tid = f"cell:{sweep.name}/{spec.cell_id if spec_ok else self._pending(spec)}"
            ids[(spec.arm.name, spec.fraction, spec.seed)] = tid
            deps = deps_common + self._own_deps(spec, sweep.fold, ids)
            job = self._cell_job(sweep, folder, plan, spec, chosen) if spec_ok else None
            done = spec_ok and (tid in self._done or spec.cell_id in listing)
            continued = spec.continues is not None and spec.continues in listing  # only the extension trains
            out.append(self._cell_task(sweep, spec, tid, deps, job, done, continued))
        if resolved:
            self.sweep_plans[sweep.name] = plan
        return out

    def _cells_done(self, ids: Sequence[str]) -> set[str]:
        """Which of these cell tasks are finished on disk (their files are in their sweep folder)."""
        out = set()
        for tid in ids:
            folder, _, cell = tid.removeprefix("cell:").partition("/")
            if CellStore(self.study.sweeps_dir / folder).has(cell):
                out.add(tid)
        return out

    @staticmethod
    def _pending(spec: CellSpec) -> str:
        return f"{safe_name(spec.arm.name)}__f{spec.fraction:g}__s{spec.seed}__pending"

    def _own_deps(self, spec: CellSpec, fold: int, ids: Mapping[tuple[str, float, int], str]) -> tuple[str, ...]:
        deps: list[str] = []
        if spec.after is not None and spec.after in ids:
            deps.append(ids[spec.after])
        if self.study.embed and spec.arm.kind == "linear_probe" and spec.arm.encoder is not None:
            name = spec.arm.encoder.path and Path(spec.arm.encoder.path).parent.name
            embed = self._embed_now.get((fold, name or ""))
            if embed is not None:
                deps.append(embed.id)
        return tuple(deps)

    def _cell_task(
        self,
        sweep: SweepRef,
        spec: CellSpec,
        tid: str,
        deps: tuple[str, ...],
        job: CellJob | None,
        done: bool,
        continued: bool = False,
    ) -> Task:
        kind = "trained" if spec.trained else "probe"
        cost = "trained-grid" if spec.chooses_lr and not continued else kind
        summary = f"{sweep.name} {spec.arm.name} f={spec.fraction:g} s={spec.seed}"
        shard = f"{sweep.name}/{spec.arm.name}/{spec.fraction:g}"  # a first seed and the seeds reusing its lr
        return Task(tid, kind, summary, spec.key, deps, job, done, shard, cost)

    def committed_cells(self, sweep: SweepRef) -> Path | None:
        return self.study.cells / sweep.name if self.study.cells is not None else None

    def _sweep_plan(self, sweep: SweepRef, infos: list[EncoderInfo] | None, names: list[str | None]) -> SweepPlan:
        from aclecg.evaluation.cellrun import reference_config

        data = self.sweep_data(sweep.protocol, sweep.fold)
        if infos is None:  # not every encoder exists yet: placeholders, so the cells can be counted and listed
            encoders = tuple(EncoderInfo(n or BEST_BASELINE, f"pending:{n}") for n in names)
            ref: dict[str, Any] = {"pending": True}
        else:
            encoders = tuple(unique_labels(infos))
            ref = reference_config(encoders, data.dataset)
        s = self.study
        return SweepPlan(
            label_set=s.label_set,
            protocol=sweep.protocol,
            classes=tuple(data.classes),
            fingerprint=self.fingerprint(s.downstream),
            fractions=sweep.stage.fractions,
            seeds=tuple(range(s.label_seeds)),
            arm_kinds=sweep.stage.arms,
            encoders=encoders,
            ref_config=ref,
            config=s.evaluation,
            test_fold=sweep.fold,
            val_fold=s.val_fold,
            precision=self.precision,
            n_val=int(len(data.val_pos)),
        )

    def _chosen(self, name: str, plan: SweepPlan, listing: set[str]) -> dict[tuple[str, float], float]:
        """The learning rates the finished first seeds chose."""
        out = {}
        for spec in plan_cells(plan):
            if spec.chooses_lr and spec.cell_id is not None and spec.cell_id in listing:
                record = self.record(name, spec.cell_id)
                if record is not None:
                    out[(spec.arm.name, spec.fraction)] = float(record["details"]["lr"])
        return out

    def record(self, sweep: str, cell: str) -> dict[str, Any] | None:
        """A finished cell's record (from the sweep folder or the committed cells), read once."""
        if (sweep, cell) not in self._records:
            roots = [self.study.sweeps_dir / sweep / "cells"]
            if self.study.cells is not None:
                roots.append(self.study.cells / sweep)
            for root in roots:
                try:
                    self._records[(sweep, cell)] = json.loads((root / f"{cell}.json").read_text())
                    break
                except (OSError, ValueError):
                    continue
        return self._records.get((sweep, cell))

    def _cell_job(
        self, sweep: SweepRef, folder: Path, plan: SweepPlan, spec: CellSpec, chosen: Mapping[tuple[str, float], float]
    ) -> CellJob:
        assert spec.cell_id is not None
        lr = chosen.get((spec.arm.name, spec.fraction)) if spec.after is not None else None
        return CellJob(
            folder=folder,
            plan=plan,
            data=self.data_ref(self.study.downstream),
            arm=spec.arm.name,
            fraction=spec.fraction,
            seed=spec.seed,
            cell_id=spec.cell_id,
            lr=lr,
            committed=self.committed_cells(sweep),
            save_trained=self.study.save_cells,
        )

    # ------------------------------------------------------------------------------------------------ outputs
    def write_sweep_meta(self, name: str) -> None:
        """``sweep.json`` of a resolved sweep (before its cells run: the study's readers need it)."""
        from aclecg.evaluation.cellrun import sweep_meta

        plan = self.sweep_plans[name]
        sweep = next(s for s in self.sweeps() if s.name == name)
        meta = sweep_meta(plan, self.sweep_data(sweep.protocol, sweep.fold), _device(self.device))
        path = self.study.sweeps_dir / name / "sweep.json"
        try:
            same = json.loads(path.read_text()) == json.loads(json.dumps(meta, default=atomicio.json_default))
        except (OSError, ValueError):
            same = False
        if not same:
            atomicio.write_json(path, meta)

    def measured_seconds(self, tasks: Sequence[Task]) -> dict[str, list[float]]:
        """Seconds of the finished tasks by cost category (from their records and markers)."""
        out: dict[str, list[float]] = {k: [] for k in DEFAULT_SECONDS}
        for t in tasks:
            if not (t.done and t.resolved):
                continue
            seconds, cost = None, t.cost
            if isinstance(t.job, CellJob):
                rec = self.record(t.job.folder.name, t.job.cell_id)
                seconds = rec.get("seconds") if rec else None
            elif isinstance(t.job, PretrainJob):
                marker = _read(t.job.eval_dir / "task.json")
                seconds = marker.get("seconds")
                cost = "pretrain" if marker.get("origin") == "run" else "reuse"
            elif isinstance(t.job, EmbedJob):
                seconds = _read(t.job.marker).get("seconds")
            if isinstance(seconds, (int, float)):
                out[cost].append(float(seconds))
        return out


def _read(path: Path) -> dict[str, Any]:
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def _device(name: str) -> Any:
    import torch

    return torch.device(name)
