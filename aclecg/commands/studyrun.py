"""``aclecg study plan FILE`` and ``aclecg study run FILE``: the study file's tasks listed, estimated and run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aclecg.errors import ConfigError

#: Task kinds ``--only`` selects.
KINDS = ("pretrain", "embed", "probe", "trained")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _workers(args: argparse.Namespace) -> int:
    if args.workers is not None:
        return int(args.workers)
    from aclecg.data.prepare import usable_cpus
    from aclecg.studyplan.executors import _gpu_count

    return _gpu_count() or max(1, usable_cpus() // 2)


def plan_lines(plan: Any, tasks: list, workers: int, quiet: bool = False) -> list[str]:
    """The task listing (unless ``quiet``) and the table of kinds: tasks, done, left, seconds per task, time left."""
    from aclecg.studyplan.tasks import DEFAULT_SECONDS

    lines = []
    done_ids = {t.id for t in tasks if t.done}
    if not quiet:
        for t in tasks:
            state = "done" if t.done else ("ready" if t.resolved and all(d in done_ids for d in t.deps) else "waiting")
            lines.append(f"{state:8} {t.kind:9} {t.summary}")
        lines.append("")
    from aclecg.studyplan.executors import remaining_seconds

    left, per = remaining_seconds(plan, tasks)
    measured = plan.measured_seconds(tasks)
    lines.append(f"{'cost':13} {'tasks':>6} {'done':>6} {'left':>6}  seconds per task")
    for cost in DEFAULT_SECONDS:
        mine = [t for t in tasks if t.cost == cost]
        if not mine:
            continue
        n_done = sum(t.done for t in mine)
        source = f"measured over {len(measured[cost])}" if measured[cost] else "default"
        lines.append(f"{cost:13} {len(mine):6d} {n_done:6d} {len(mine) - n_done:6d}  {per[cost]:.1f} ({source})")
    lines.append(
        f"time left on this device: about {_duration(left / max(1, workers))} with {workers} worker(s) "
        f"({_duration(left)} of task time)"
    )
    return lines


def run_plan_or_run(args: argparse.Namespace) -> int:
    from aclecg.studyplan import load_study
    from aclecg.studyplan.executors import parse_shard, selector
    from aclecg.studyplan.tasks import StudyPlan

    if args.file is None:
        raise ConfigError(
            f"study {args.action} needs the study file, e.g. aclecg study {args.action} studies/bundled.toml"
        )
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    shard = parse_shard(args.shard)
    kinds = [k.strip() for k in (args.only or "").split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ConfigError(f"--only takes task kinds from {', '.join(KINDS)}, got {', '.join(bad)}")
    select = selector(shard, kinds)
    study = load_study(args.file, getattr(args, "overrides", ()))
    plan = StudyPlan(study)
    for line in plan.overlap_lines():  # data.overlap = "refuse" stops here with one line
        print(f"overlap: {line}", file=sys.stderr)
    if args.action == "plan":
        tasks = [t for t in plan.tasks() if select(t)]
        where = f", shard {args.shard}" if shard else ""
        sets = "".join(f" --set {o}" for o in study.overrides)
        print(f"study {study.name} ({study.path}{sets}{where}): {len(tasks)} tasks; sweeps in {study.sweeps_dir}")
        print("\n".join(plan_lines(plan, tasks, _workers(args), args.quiet)))
        return 0
    return _run(args, plan, select)


def _run(args: argparse.Namespace, plan: Any, select: Any) -> int:
    from tqdm.auto import tqdm

    from aclecg.studyplan.executors import LocalExecutor, RayExecutor, run_study

    executor: Any
    if args.executor == "ray":
        executor = RayExecutor(args.address, threads=args.threads or 1)
    else:
        if args.address:
            raise ConfigError("--address is for --executor ray")
        executor = LocalExecutor(args.workers, args.threads)
    bar = tqdm(total=0, desc=f"study {plan.study.name}", unit="task", disable=args.no_progress)

    def on_done(task: Any, result: Any, error: str | None, finished: int, total: int) -> None:
        bar.total = total
        bar.update(1)
        bar.set_postfix_str(task.summary[-60:])
        if error:
            tqdm.write(f"failed: {task.summary}: {error}", file=sys.stderr)

    summary = run_study(plan, executor, select, on_done)
    bar.close()
    print(
        f"{summary.computed} tasks run, {summary.skipped} already finished, {len(summary.failed)} failed, "
        f"{summary.waiting} waiting (on failed tasks or other shards) in {summary.seconds:.0f} s; "
        f"sweeps in {plan.study.sweeps_dir}"
    )
    return 1 if summary.failed else 0
