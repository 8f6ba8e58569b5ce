"""Running a study's tasks: the local executor (a process pool), the Ray executor, and the loop that feeds them.

:func:`run_study` asks the plan for the tasks whose dependencies are finished, hands them to an executor, and asks
again as they finish (pretraining before the cells that use its encoder, a first seed before the seeds that reuse
its learning rate, a rotation's probes before its fine-tuning of the best baseline). Finished tasks are skipped;
a failed task is reported and the tasks that need it are left for the next run.

* :class:`LocalExecutor` - ``workers`` processes (spawn) on this machine; each task sets
  ``torch.set_num_threads(threads)`` with ``threads = max(1, cores // workers)``, so tasks never oversubscribe the
  cores, and with CUDA each worker sees one GPU (``CUDA_VISIBLE_DEVICES``). ``workers=1`` runs in this process.
* :class:`RayExecutor` - every task a Ray remote function with ``num_cpus``/``num_gpus``, retried when its node is
  lost (``max_retries``); the study's folders must be on a filesystem every node shares (``docs/cluster.md``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from aclecg.errors import ConfigError
from aclecg.studyplan.tasks import DEFAULT_SECONDS, StudyPlan, Task
from aclecg.studyplan.work import CellJob, Envelope, run_task

__all__ = [
    "LocalExecutor",
    "RayExecutor",
    "RunSummary",
    "in_shard",
    "parse_shard",
    "remaining_seconds",
    "run_study",
    "selector",
]


class Executor(Protocol):
    """Runs envelopes; :meth:`wait` returns the finished ones as ``(task id, result or error message)``."""

    workers: int

    def submit(self, envelope: Envelope, gpu: bool) -> None: ...

    def wait(self) -> list[tuple[str, dict[str, Any] | None, str | None]]: ...

    def close(self) -> None: ...


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _init_worker(gpus: Any) -> None:
    """A pool worker's start: take one GPU from the queue (when there are GPUs) before CUDA is initialised."""
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus.get())


class LocalExecutor:
    """A process pool sized to this machine (see the module docstring)."""

    def __init__(self, workers: int | None = None, threads: int | None = None):
        from aclecg.data.prepare import usable_cpus  # the one count of usable cores (affinity, cgroup pinning)

        cores = usable_cpus()
        gpus = _gpu_count()
        self.workers = max(1, workers or gpus or max(1, cores // 2))
        self.threads = threads or max(1, cores // self.workers)
        self._pending: dict[str, Any] = {}
        self._pool: ProcessPoolExecutor | None = None
        if self.workers > 1:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            queue = None
            if gpus:
                queue = ctx.Queue()
                for i in range(self.workers):
                    queue.put(i % gpus)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(queue,))

    def submit(self, envelope: Envelope, gpu: bool) -> None:
        envelope = Envelope(envelope.task_id, envelope.job, self.threads)
        if self._pool is None:
            self._pending[envelope.task_id] = envelope  # run by wait(), in this process
        else:
            self._pending[envelope.task_id] = self._pool.submit(run_task, envelope)

    def wait(self) -> list[tuple[str, dict[str, Any] | None, str | None]]:
        if self._pool is None:
            tid, envelope = next(iter(self._pending.items()))
            del self._pending[tid]
            try:
                return [(tid, run_task(envelope), None)]
            except Exception as exc:  # reported with the task; the study continues with the others
                return [(tid, None, _message(exc))]
        futures: dict[Future, str] = {f: tid for tid, f in self._pending.items()}
        finished, _ = wait(futures, return_when=FIRST_COMPLETED)
        out: list[tuple[str, dict[str, Any] | None, str | None]] = []
        for fut in finished:
            tid = futures[fut]
            del self._pending[tid]
            error = fut.exception()
            out.append((tid, None, _message(error)) if error else (tid, fut.result(), None))
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Tasks as Ray remote functions on a running cluster (``address``; ``None`` starts a local one)."""

    def __init__(self, address: str | None = None, threads: int = 1, max_retries: int = 3):
        try:
            import ray
        except ImportError:
            raise ConfigError('the ray executor needs Ray: pip install "aclecg[cluster]"') from None
        self._ray = ray
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.threads = max(1, threads)
        self.workers = max(1, int(resources.get("CPU", 1)) // self.threads)
        self._remote = ray.remote(max_retries=max_retries, retry_exceptions=False)(run_task)
        self._pending: dict[Any, str] = {}

    def submit(self, envelope: Envelope, gpu: bool) -> None:
        envelope = Envelope(envelope.task_id, envelope.job, self.threads)
        options = {"num_cpus": self.threads, "num_gpus": 1 if gpu and self.gpus else 0}
        self._pending[self._remote.options(**options).remote(envelope)] = envelope.task_id

    def wait(self) -> list[tuple[str, dict[str, Any] | None, str | None]]:
        ready, _ = self._ray.wait(list(self._pending), num_returns=1)
        out: list[tuple[str, dict[str, Any] | None, str | None]] = []
        for ref in ready:
            tid = self._pending.pop(ref)
            try:
                out.append((tid, self._ray.get(ref), None))
            except Exception as exc:  # a task error (after Ray's retries for lost nodes)
                out.append((tid, None, _message(exc)))
        return out

    def close(self) -> None:
        self._ray.shutdown()


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` (1 <= i <= n) as ``(i, n)``; ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must be i/n (e.g. 2/8), got {text!r}") from None
    if not 1 <= i <= n:
        raise ConfigError(f"--shard must be i/n with 1 <= i <= n, got {text!r}")
    return i, n


def selector(shard: tuple[int, int] | None, kinds: Sequence[str] | None = None) -> Callable[[Task], bool]:
    """Keep the tasks of one shard and of the given kinds (``None``: all)."""
    return lambda t: in_shard(t, shard) and (not kinds or t.kind in kinds)


def in_shard(task: Task, shard: tuple[int, int] | None) -> bool:
    """Whether a task is this shard's (a stable hash of its shard key, so every run agrees)."""
    if shard is None:
        return True
    value = int(hashlib.sha256(task.shard_key.encode()).hexdigest()[:8], 16)
    return value % shard[1] == shard[0] - 1


def remaining_seconds(plan: StudyPlan, tasks: Sequence[Task]) -> tuple[float, dict[str, float]]:
    """Task-seconds left (one worker) and the seconds per task used for each kind (measured, else the default)."""
    measured = plan.measured_seconds(tasks)
    per = {k: (sum(v) / len(v) if v else DEFAULT_SECONDS[k]) for k, v in measured.items()}
    return sum(per[t.cost] for t in tasks if not t.done), per


@dataclass
class RunSummary:
    """What a run did: tasks computed, already finished before, failed (with the error) and left waiting."""

    computed: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    waiting: int = 0
    seconds: float = 0.0


def run_study(
    plan: StudyPlan,
    executor: Executor,
    select: Callable[[Task], bool] | None = None,
    on_done: Callable[[Task, dict[str, Any] | None, str | None, int, int], None] | None = None,
) -> RunSummary:
    """Run every unfinished task (of those ``select`` keeps: a shard, some kinds) whose dependencies are
    finished, until none is left."""
    started = time.perf_counter()
    summary = RunSummary()
    keep = select or (lambda t: True)
    every = plan.tasks()
    tasks = [t for t in every if keep(t)]
    summary.skipped = sum(t.done for t in tasks)
    total = len(tasks) - summary.skipped
    running: dict[str, Task] = {}
    described: set[str] = set()
    finished = 0
    try:
        while True:
            for task in _ready(every, tasks, running, summary.failed):
                assert task.job is not None
                if isinstance(task.job, CellJob) and task.job.folder.name not in described:
                    plan.write_sweep_meta(task.job.folder.name)  # sweep.json first: the study's readers need it
                    described.add(task.job.folder.name)
                executor.submit(Envelope(task.id, task.job), gpu=plan.device.startswith("cuda"))
                running[task.id] = task
            if not running:
                break
            for tid, result, error in executor.wait():
                task = running.pop(tid)
                finished += 1
                if error is None:
                    plan.mark_done(tid)
                    summary.computed += 1
                else:
                    summary.failed[tid] = error
                if on_done:
                    on_done(task, result, error, finished, total)
            every = plan.tasks()
            tasks = [t for t in every if keep(t)]
    finally:
        executor.close()
    summary.waiting = sum(1 for t in tasks if not t.done and t.id not in summary.failed)
    collect_outputs(plan)
    summary.seconds = round(time.perf_counter() - started, 1)
    return summary


def _ready(
    every: Iterable[Task], tasks: Iterable[Task], running: dict[str, Task], failed: dict[str, str]
) -> list[Task]:
    """The selected ``tasks`` that can start now: unfinished, resolved, not running or failed, and every dependency
    finished. A dependency counts wherever it is (``every`` task of the study): one of a kind or shard this run
    leaves out but that an earlier run finished (``--only trained`` after the probes) is finished."""
    done = {t.id for t in every if t.done}
    return [
        t
        for t in tasks
        if not t.done and t.resolved and t.id not in running and t.id not in failed and all(d in done for d in t.deps)
    ]


def _finished_records(plan: StudyPlan, sweep: Any, mine: Sequence[Task]) -> list[dict[str, Any]]:
    """The records of a sweep's finished cell tasks, in plan order; a committed cell is restored into the sweep
    folder on the way."""
    from aclecg.evaluation.cells import CellStore

    store = CellStore(plan.study.sweeps_dir / sweep.name, plan.committed_cells(sweep))
    records = [store.read(t.id.split("/", 1)[1]) for t in mine if t.done]
    return [r for r in records if r is not None]


def restore_finished(plan: StudyPlan) -> int:
    """Restore every finished cell the plan names into its sweep folder, so a report of a study still running
    counts the committed cells this machine has not read yet; returns the cells found."""
    tasks = plan.tasks()
    return sum(
        len(_finished_records(plan, sweep, [t for t in tasks if t.id.startswith(f"cell:{sweep.name}/")]))
        for sweep in plan.sweeps()
        if sweep.name in plan.sweep_plans
    )


def collect_outputs(plan: StudyPlan) -> list[str]:
    """Write the tables of every sweep whose cells are all finished (as ``aclecg sweep --collect-only`` does);
    returns the sweeps written."""
    from aclecg.evaluation.cells import sweep_arms
    from aclecg.evaluation.outputs import write_outputs

    written = []
    tasks = plan.tasks()
    for sweep in plan.sweeps():
        mine = [t for t in tasks if t.id.startswith(f"cell:{sweep.name}/")]
        if not mine or not all(t.done for t in mine) or sweep.name not in plan.sweep_plans:
            continue
        plan.write_sweep_meta(sweep.name)
        sweep_plan = plan.sweep_plans[sweep.name]
        folder = plan.study.sweeps_dir / sweep.name
        records = _finished_records(plan, sweep, mine)  # in plan order, as run_sweep writes them
        meta = json.loads((folder / "sweep.json").read_text())
        arms = [a.name for a in sweep_arms(sweep_plan)]
        write_outputs(folder, records, arms, list(sweep_plan.classes), meta, 0, len(records))
        written.append(sweep.name)
    return written
