"""Background runs for the app: launch, list, tail, cancel and resume jobs that outlive the browser tab.

A job is ``python -m aclecg <kind> ...`` started as a detached process group (so it survives the Streamlit script
run, a closed tab and an app restart), writing into its own run directory under a runs root:

* ``job.json``: kind, argv, the wrapper shell's pid with its process start time, host, assigned GPUs
  (written by :func:`launch`)
* ``procs/rank-N.json``: pid and process start time of each training process, written by the trainer itself;
  this is what run state and :func:`cancel` trust (a pid alone may have been recycled by an unrelated process)
* ``stdout.log``: everything the command prints
* ``exit_code``: written by the wrapper shell when the command ends
* ``status.json`` / ``metrics.jsonl``: written by the pretraining engine (see :mod:`aclecg.training.rundir`)

A job whose process is gone without an exit code or a final status (machine restart, ``kill -9``) is reported as
``interrupted`` and can be resumed: never as running.

>>> from aclecg import jobs                                            # doctest: +SKIP
>>> run = jobs.launch("pretrain", ["--method", "simclr", "--data", "prep/ptbxl"], "runs", "my-run")  # doctest: +SKIP
>>> [r.state for r in jobs.list_runs("runs")]                          # doctest: +SKIP
['running']
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aclecg import atomicio, paths
from aclecg.errors import AclEcgError, ConfigError
from aclecg.procs import live_records, own_record, read_json, record_alive

KINDS = ("pretrain", "sweep")
_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 64


def sanitize_name(name: str) -> str:
    """A run name safe to use as one directory name: letters, digits, ``.``, ``_``, ``-``; no traversal."""
    clean = _NAME_RE.sub("-", str(name).strip()).strip(".-_")[:MAX_NAME]
    if not clean:
        raise ConfigError(f"run name {name!r} has no usable characters; use letters, digits, '.', '_' or '-'")
    return clean


@dataclass
class RunInfo:
    """What the app shows of one run."""

    name: str
    path: Path
    kind: str
    state: str  # queued, running, finished, failed, cancelled, interrupted
    method: str | None = None
    step: int = 0
    epoch: int = 0
    total_steps: int | None = None
    error: str | None = None
    alive: bool = False
    started: float | None = None

    @property
    def resumable(self) -> bool:
        return self.state in ("interrupted", "cancelled", "failed")


def launch(
    kind: str,
    args: Sequence[str],
    runs_root: str | Path | None = None,
    name: str = "run",
    resume: bool = False,
    gpus: int = 1,
) -> Path:
    """Start ``python -m aclecg KIND ARGS`` detached, writing into ``runs_root/NAME``; returns the run directory.

    ``runs_root`` defaults to :func:`aclecg.paths.runs_root`; the job runs in :func:`aclecg.paths.project_root`.

    For ``pretrain`` the run directory is passed as ``--run-dir``, for ``sweep`` as ``--out``. ``gpus > 1``
    starts a pretraining run through ``torch.distributed.run`` (torchrun) with one process per GPU; cancelling
    signals the whole process group, and every process stops at the same step after a checkpoint.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown job kind {kind!r}; expected one of {KINDS}")
    if not isinstance(gpus, int) or gpus < 1 or (gpus > 1 and kind != "pretrain"):
        raise ConfigError(f"gpus must be a positive integer (and > 1 only for pretrain), got {gpus!r}")
    root = Path(runs_root) if runs_root is not None else paths.runs_root()
    run_dir = root / sanitize_name(name)
    job = read_json(run_dir / "job.json")
    if job and not resume:
        raise AclEcgError(f"a run named {run_dir.name!r} already exists; choose another name or resume it")
    if (job or (run_dir / "procs").is_dir()) and run_info(run_dir).alive:
        raise AclEcgError(f"run {run_dir.name!r} is still running")
    device = _option(args, "--device") or "auto"
    gpu_ids = _gpus_for(kind, device, gpus, root, exclude=run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    target = ["--run-dir", str(run_dir)] if kind == "pretrain" else ["--out", str(run_dir)]
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(gpus)] if gpus > 1 else []
    argv = [sys.executable, *launcher, "-m", "aclecg", kind, *map(str, args), *target]
    if resume and kind == "pretrain" and "--resume" not in argv:
        argv.append("--resume")
    (run_dir / "exit_code").unlink(missing_ok=True)
    (run_dir / "cancel_requested").unlink(missing_ok=True)
    # The shell records the exit code once the command ends, whatever the outcome.
    script = f"{shlex.join(argv)}; echo $? > {shlex.quote(str(run_dir / 'exit_code'))}"
    project = paths.project_root()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ACLECG_HOME": str(project)}
    if gpu_ids is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpu_ids))
    for stale in (run_dir / "procs").glob("rank-*.json"):  # the records of an earlier attempt
        stale.unlink(missing_ok=True)
    with open(run_dir / "stdout.log", "ab") as out:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", script],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=project,
            start_new_session=True,
            env=env,
        )
    atomicio.write_bytes(
        run_dir / "job.json",
        json.dumps(
            {
                "kind": kind,
                "args": list(map(str, args)),
                "argv": argv,
                **own_record(proc.pid),
                "started": time.time(),
                "gpus": gpus,
                "gpu_ids": gpu_ids,
            },
            indent=1,
        ).encode(),
    )
    return run_dir


def _option(args: Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` in a command line (``--flag VALUE`` or ``--flag=VALUE``), the last one winning."""
    value = None
    args = list(map(str, args))
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def visible_gpus() -> int:
    """How many CUDA devices this machine shows (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def assign_gpus(n: int, visible: int, busy: set[int]) -> list[int]:
    """The ``n`` lowest GPU indices not in ``busy``; an ``AclEcgError`` when fewer are free."""
    free = [i for i in range(visible) if i not in busy]
    if len(free) < n:
        raise AclEcgError(
            f"{n} GPU(s) requested but only {len(free)} of {visible} are free (in use by running "
            f"jobs: {sorted(busy) or 'none'}); wait for a run to finish or request fewer"
        )
    return free[:n]


def _gpus_for(kind: str, device: str, gpus: int, root: Path, exclude: Path) -> list[int] | None:
    """GPUs for a new job (its ``CUDA_VISIBLE_DEVICES``), or ``None`` to leave the environment as it is.

    Several processes need as many GPUs: a CPU multi-process job is refused, since on a GPU machine it would
    silently start that many gloo processes. An explicit ``cuda:N`` is left to the user; otherwise each job gets
    GPUs that no other running job of ``root`` holds, so two jobs never share one by accident.
    """
    visible = visible_gpus()
    if gpus > 1 and (device == "cpu" or visible == 0):
        raise ConfigError(
            f"gpus={gpus} needs CUDA devices (device {device!r}, {visible} GPU(s) visible); use gpus=1 for a CPU run"
        )
    if kind != "pretrain" or visible == 0 or device == "cpu" or device.startswith("cuda:"):
        return None
    busy: set[int] = set()
    for other in list_runs(root):
        if other.alive and other.path != exclude:
            busy.update(int(i) for i in (read_json(other.path / "job.json").get("gpu_ids") or []))
    return assign_gpus(gpus, visible, busy)


def run_info(run_dir: str | Path) -> RunInfo:
    """The live state of one run directory, derived from its files and whether its process exists."""
    run_dir = Path(run_dir)
    job = read_json(run_dir / "job.json")
    status = read_json(run_dir / "status.json")
    config = read_json(run_dir / "config.json").get("config", {})
    kind = job.get("kind") or ("pretrain" if status or config else "sweep")
    alive = _alive(run_dir, job, status)
    if alive and not job and status.get("state") in ("finished", "failed", "cancelled"):
        # started in-process (a notebook, a script calling pretrain), not by launch(): there is no job to wait for,
        # so a final status stands although the process that wrote it lives on (and must not be signalled)
        alive = False
    exit_path = run_dir / "exit_code"
    exit_code = int(exit_path.read_text().strip() or -1) if exit_path.exists() else None
    state = status.get("state")
    error = status.get("error")
    if alive:
        state = "running" if state in (None, "running", "queued") else state
        if state != "running" and exit_code is None:
            state = "running"  # status already final but the process is still writing its last files
    elif state in ("finished", "failed", "cancelled"):
        pass
    elif exit_code is not None:
        if exit_code == 0:
            state = "finished"
        elif (run_dir / "cancel_requested").exists() or exit_code in (130, 143, -15):
            state = "cancelled"
        else:
            state = "failed"
            error = error or _tail(run_dir / "stdout.log", 5) or f"exit code {exit_code}"
    elif job or status:
        state = "interrupted"
    else:
        state = "queued"
    return RunInfo(
        name=run_dir.name,
        path=run_dir,
        kind=kind,
        state=state,
        # before the run writes its status, the method is the one the job was launched with
        method=status.get("method") or config.get("method") or _option((job or {}).get("args", []), "--method"),
        step=int(status.get("step") or 0),
        epoch=int(status.get("epoch") or 0),
        total_steps=status.get("total_steps"),
        error=error,
        alive=alive,
        started=job.get("started") or status.get("started"),
    )


#: A run whose only sign of life is a pid without a start time is taken as dead once its heartbeat is this old.
STALE_HEARTBEAT_S = 120.0


def _trainers(run_dir: Path) -> list[dict]:
    """The records of the run's training processes that still run (``procs/rank-N.json``, written by the engine)."""
    return live_records(run_dir / "procs")


def _wrapper(job: dict) -> dict:
    """The wrapper shell's process record, from ``job.json``."""
    return {"pid": job.get("pid"), "start": job.get("start"), "host": job.get("host")}


def _alive(run_dir: Path, job: dict, status: dict) -> bool:
    """Whether the run's own processes still run: a trainer (verified by its start time) or the wrapper shell.

    The trainers' records come first: killing the wrapper leaves a trainer that keeps training, and that run is
    running. A pid whose start time is unknown counts only while the heartbeat is fresh.
    """
    if _trainers(run_dir):
        return True
    if job:
        wrapper = _wrapper(job)
    elif status:
        wrapper = status.get("process") or {"pid": status.get("pid"), "start": None, "host": status.get("host")}
    else:
        return False
    if not record_alive(wrapper):
        return False
    if wrapper.get("start") is None and status.get("heartbeat"):
        return time.time() - float(status["heartbeat"]) < STALE_HEARTBEAT_S
    return True


def list_runs(runs_root: str | Path | None = None) -> list[RunInfo]:
    """Every run under ``runs_root`` (default :func:`aclecg.paths.runs_root`), newest first."""
    root = Path(runs_root) if runs_root is not None else paths.runs_root()
    if not root.is_dir():
        return []
    runs = [
        run_info(p) for p in root.iterdir() if p.is_dir() and any((p / f).exists() for f in ("job.json", "status.json"))
    ]
    return sorted(runs, key=lambda r: r.started or 0, reverse=True)


def read_metrics(run_dir: str | Path) -> pd.DataFrame:
    """The run's metrics as a DataFrame (one row per step; a step logged twice keeps its last value)."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    frame = pd.DataFrame(rows)
    if not frame.empty and "step" in frame:
        frame = frame.drop_duplicates("step", keep="last").sort_values("step").reset_index(drop=True)
    return frame


def _tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines; a progress bar's carriage-return updates count as one line, its latest state."""
    try:
        raw = path.read_bytes().decode(errors="replace")  # bytes: text mode would turn each \r into a line
    except FileNotFoundError:
        return ""
    text = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in raw.strip().split("\n")]
    return "\n".join(text[-lines:])


def tail_log(run_dir: str | Path, lines: int = 40) -> str:
    return _tail(Path(run_dir) / "stdout.log", lines)


def cancel(run_dir: str | Path, wait: float = 0.0) -> bool:
    """Ask a running job to stop: its training processes checkpoint and end as cancelled.

    SIGTERM goes to the trainers themselves (every rank under torchrun, identified by pid *and* start time), so
    they save a stop checkpoint and exit cleanly, torchrun exits with them and the wrapper records the exit code.
    Before a trainer has registered (the first seconds of a job), the wrapper's process group is signalled. No
    other process is ever signalled. ``wait > 0`` blocks up to that many seconds until the run has stopped.
    """
    run_dir = Path(run_dir)
    info = run_info(run_dir)
    if not info.alive:
        return False
    (run_dir / "cancel_requested").write_text(str(time.time()))
    trainers = _trainers(run_dir)
    for rec in trainers:
        try:
            os.kill(int(rec["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass
    if not trainers:
        wrapper = _wrapper(read_json(run_dir / "job.json"))
        if record_alive(wrapper):
            try:
                os.killpg(int(wrapper["pid"]), signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    deadline = time.time() + wait
    while wait > 0 and time.time() < deadline and run_info(run_dir).alive:
        time.sleep(0.2)
    return True


def resume(run_dir: str | Path) -> Path:
    """Start a stopped run again: pretraining continues from its last good checkpoint, a sweep skips done cells."""
    run_dir = Path(run_dir)
    info = run_info(run_dir)
    if info.alive:
        raise AclEcgError(f"run {run_dir.name!r} is still running")
    job = read_json(run_dir / "job.json")
    if info.kind == "pretrain":
        return launch("pretrain", [], run_dir.parent, run_dir.name, resume=True, gpus=int(job.get("gpus", 1)))
    if not job:
        raise AclEcgError(f"run {run_dir.name!r} was not started as a job; rerun its command by hand")
    return launch(job["kind"], job["args"], run_dir.parent, run_dir.name, resume=True)
