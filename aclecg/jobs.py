"""Background runs for the app: launch, list, tail, cancel and resume jobs that outlive the browser tab.

A job is ``python -m aclecg <kind> ...`` started as a detached process group (so it survives the Streamlit script
run, a closed tab and an app restart) under a small wrapper (:mod:`aclecg.jobrunner`) that first waits for a free
job slot, writing into its own run directory under a runs root:

* ``job.json``: kind, argv, the wrapper's pid with its process start time, host, GPU count and owner
  (written by :func:`launch`)
* ``slot.json``: the job slots and GPUs the wrapper holds once the command starts (before that: ``queued``)
* ``procs/rank-N.json``: pid and process start time of each training process, written by the trainer itself;
  this is what run state and :func:`cancel` trust (a pid alone may have been recycled by an unrelated process)
* ``stdout.log``: everything the command prints
* ``exit_code``: written by the wrapper when the command ends
* ``status.json`` / ``metrics.jsonl``: written by the pretraining engine (see :mod:`aclecg.training.rundir`)

A job whose process is gone without an exit code or a final status (machine restart, ``kill -9``) is reported as
``interrupted`` and can be resumed: never as running. Who may launch, cancel and resume is decided by
:mod:`aclecg.access`; how many jobs run, wait and how much disk they may fill by :mod:`aclecg.joblimits`.

>>> from aclecg import jobs                                            # doctest: +SKIP
>>> run = jobs.launch("pretrain", ["--method", "simclr", "--data", "prep/ptbxl"], "runs", "my-run")  # doctest: +SKIP
>>> [r.state for r in jobs.list_runs("runs")]                          # doctest: +SKIP
['running']
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from aclecg import access, atomicio, joblimits, jobrunner, paths
from aclecg.errors import AclEcgError, ConfigError
from aclecg.logtext import readable_log
from aclecg.procs import live_records, own_record, read_json, record_alive

KINDS = ("pretrain", "sweep")
#: Folder of the runs root holding the job slots' and the launch lock files (no run is named like it).
SLOTS_DIR = ".slots"
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
    state: str  # queued, running, cancelling, finished, failed, cancelled, interrupted
    method: str | None = None
    step: int = 0
    epoch: int = 0
    total_steps: int | None = None
    error: str | None = None
    alive: bool = False
    started: float | None = None
    #: Who launched it (``job.json``'s owner, see :mod:`aclecg.access`); ``None``: the operator (a shell, a script).
    owner: str | None = None

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

    The job starts when it finds free job slots (:mod:`aclecg.jobrunner`; :func:`aclecg.joblimits.max_jobs` of
    them), and is ``queued`` until then. Refused with one clear message: a name already taken (two launches of one
    name at once included: the run directory is created exclusively, under the root's launch lock), a read-only
    app or a user who may not launch (:mod:`aclecg.access`), a browser's request beyond the app's caps, a full
    queue, and a runs folder over its quota. The owner (the acting user, see :func:`aclecg.access.acting_as`) is
    recorded in ``job.json``; a resumed run keeps its owner.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown job kind {kind!r}; expected one of {KINDS}")
    if not isinstance(gpus, int) or gpus < 1 or (gpus > 1 and kind != "pretrain"):
        raise ConfigError(f"gpus must be a positive integer (and > 1 only for pretrain), got {gpus!r}")
    actor = access.require_write("resume" if resume else "launch")
    if actor is not None and not resume:
        joblimits.check_app_caps(kind, args)
    root = Path(runs_root) if runs_root is not None else paths.runs_root()
    run_dir = root / sanitize_name(name)
    device = _option(args, "--device") or "auto"
    visible = visible_gpus()
    if gpus > 1 and (device == "cpu" or visible < gpus):
        raise ConfigError(
            f"gpus={gpus} needs as many CUDA devices (device {device!r}, {visible} GPU(s) visible); "
            "use gpus=1 for a CPU run"
        )
    slots = joblimits.max_jobs(visible)
    if gpus > slots:
        raise ConfigError(f"gpus={gpus} needs {gpus} job slots, but {joblimits.MAX_JOBS_ENV}={slots}")
    root.mkdir(parents=True, exist_ok=True)
    with _launch_lock(root):
        joblimits.check_quota(root)
        if sum(r.state == "queued" for r in list_runs(root)) >= joblimits.max_queued():
            raise AclEcgError(
                f"{joblimits.max_queued()} runs are already waiting for a job slot ({joblimits.MAX_QUEUED_ENV}); "
                "wait for one to start or cancel one"
            )
        owner = _claim(run_dir, resume, actor)
        pin = visible > 0 and device != "cpu" and not device.startswith("cuda:")
        try:
            _start(kind, args, run_dir, resume, gpus, owner, _Placement(slots, visible, pin))
        except BaseException:
            _release(run_dir, resume)
            raise
    return run_dir


@contextlib.contextmanager
def _launch_lock(root: Path) -> Iterator[None]:
    """One launch at a time in ``root`` (an ``flock``, released by the kernel if the launcher dies)."""
    folder = root / SLOTS_DIR
    folder.mkdir(exist_ok=True)
    fd = os.open(folder / "launch.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _claim(run_dir: Path, resume: bool, actor: access.Actor | None) -> str | None:
    """Take the run directory for a new run (created exclusively) or check a resumed one; its owner."""
    if not resume:
        try:
            run_dir.mkdir()
        except FileExistsError:
            raise AclEcgError(
                f"a run named {run_dir.name!r} already exists; choose another name or resume it"
            ) from None
        return actor.name if actor is not None else None
    job = read_json(run_dir / "job.json")
    if not run_dir.is_dir():
        raise AclEcgError(f"no run named {run_dir.name!r} to resume")
    if run_info(run_dir).alive:
        raise AclEcgError(f"run {run_dir.name!r} is still running")
    access.require_owner("resume", run_dir.name, job.get("owner"))
    return job.get("owner")


def _release(run_dir: Path, resume: bool) -> None:
    """Give a name back after a refused or failed start (only a directory this launch created)."""
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)


def _command(kind: str, args: Sequence[str], run_dir: Path, resume: bool, gpus: int) -> list[str]:
    """The job's own command line: ``python [-m torch.distributed.run ...] -m aclecg KIND ARGS TARGET``."""
    target = ["--run-dir", str(run_dir)] if kind == "pretrain" else ["--out", str(run_dir)]
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(gpus)] if gpus > 1 else []
    argv = [sys.executable, *launcher, "-m", "aclecg", kind, *map(str, args), *target]
    if resume and kind == "pretrain" and "--resume" not in argv:
        argv.append("--resume")
    return argv


class _Placement(NamedTuple):
    """Where a job may run: the root's job slots, the GPUs visible, and whether slots pin GPUs."""

    slots: int
    visible: int
    pin: bool


def _start(
    kind: str,
    args: Sequence[str],
    run_dir: Path,
    resume: bool,
    gpus: int,
    owner: str | None,
    where: _Placement,
) -> None:
    """Start the job's wrapper (:mod:`aclecg.jobrunner`) in a new session and record it in ``job.json``."""
    slots, visible, pin = where
    argv = _command(kind, args, run_dir, resume, gpus)
    for stale in ("exit_code", "cancel_requested", jobrunner.SLOT_FILE):
        (run_dir / stale).unlink(missing_ok=True)
    for stale_proc in (run_dir / "procs").glob("rank-*.json"):  # the records of an earlier attempt
        stale_proc.unlink(missing_ok=True)
    slots_dir = run_dir.parent / SLOTS_DIR
    ticket, place = jobrunner.enqueue(slots_dir)  # a place in line now, so jobs start in the order launched
    wrapper = [sys.executable, "-m", "aclecg.jobrunner", "--run-dir", str(run_dir), "--slots-dir", str(slots_dir)]
    wrapper += ["--ticket", str(ticket), "--wait-fd", str(place), "--slots", str(slots), "--need", str(gpus)]
    wrapper += ["--visible", str(visible), *(["--pin"] if pin else []), "--", *argv]
    project = paths.project_root()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ACLECG_HOME": str(project)}
    try:
        with open(run_dir / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                wrapper,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=project,
                start_new_session=True,
                env=env,
                pass_fds=(place,),
            )
    finally:
        os.close(place)  # the wrapper holds the place now (or, if it did not start, nobody does)
    job = {"kind": kind, "args": list(map(str, args)), "argv": argv, "wrapper": "jobrunner", **own_record(proc.pid)}
    job.update(started=time.time(), gpus=gpus, owner=owner)
    atomicio.write_bytes(run_dir / "job.json", json.dumps(job, indent=1).encode())


_option = joblimits.option_value


def visible_gpus() -> int:
    """How many CUDA devices this machine shows (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def gpu_ids(run_dir: str | Path) -> list[int] | None:
    """The GPUs a started job runs on (from its wrapper's ``slot.json``), ``None`` when not pinned or not started."""
    ids = read_json(Path(run_dir) / jobrunner.SLOT_FILE).get("gpu_ids")
    return [int(i) for i in ids] if isinstance(ids, list) else None


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
    cancel_asked = (run_dir / "cancel_requested").exists()
    if alive and cancel_asked:
        state = "cancelling"  # asked to stop; its processes are still saving and exiting
    elif alive and _waiting(run_dir, job):
        state = "queued"
    elif alive:
        state = "running" if state in (None, "running", "queued") else state
        if state != "running" and exit_code is None:
            state = "running"  # status already final but the process is still writing its last files
    elif state in ("finished", "failed", "cancelled"):
        pass
    elif exit_code is not None:
        if exit_code == 0:
            state = "finished"
        elif cancel_asked or exit_code in (130, 143, -15):
            state = "cancelled"
        else:
            state = "failed"
            error = error or _tail(run_dir / "stdout.log", 5) or f"exit code {exit_code}"
    elif cancel_asked:
        state = "cancelled"  # asked to stop and gone, though its wrapper did not record how it ended: record it
        with contextlib.suppress(OSError):
            atomicio.write_bytes(exit_path, f"{jobrunner.CANCELLED_WHILE_QUEUED}\n".encode())
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
        owner=job.get("owner"),
    )


#: How the app writes a state that is on its way to another one.
_STATE_TEXT = {"cancelling": "cancelling…"}


def state_text(state: str) -> str:
    """A run state as the app shows it (``cancelling`` with an ellipsis: it is on its way to ``cancelled``)."""
    return _STATE_TEXT.get(state, state)


def run_label(info: RunInfo) -> str:
    """The run picker's label of a run, from the same :class:`RunInfo` the state display reads.

    >>> run_label(RunInfo(name="r1", path=Path("r1"), kind="pretrain", state="cancelling", method="simclr"))
    'r1 · cancelling… · simclr'
    """
    return f"{info.name} · {state_text(info.state)} · {info.method or '?'}"


def _waiting(run_dir: Path, job: dict) -> bool:
    """Whether a live job still waits for a job slot (its wrapper has not started the command yet)."""
    return job.get("wrapper") == "jobrunner" and not (run_dir / jobrunner.SLOT_FILE).exists() and not _trainers(run_dir)


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
    """The last ``lines`` lines as a browser should show them (:func:`aclecg.logtext.readable_log`): no terminal
    control codes, a progress bar's redraws as one line, its latest state."""
    try:
        raw = path.read_bytes().decode(errors="replace")  # bytes: text mode would turn each \r into a line
    except FileNotFoundError:
        return ""
    return "\n".join(readable_log(raw).split("\n")[-lines:])


def tail_log(run_dir: str | Path, lines: int = 40) -> str:
    return _tail(Path(run_dir) / "stdout.log", lines)


def without_server_paths(text: str, runs_root: str | Path | None = None) -> str:
    """``text`` with the server's folders taken out, for a browser: paths under the runs root become relative to it
    (``my-run/encoder.pt``), under the project relative to the project, the Python installation ``<python>`` and
    the home folder ``~``.

    >>> without_server_paths("saved /srv/app/runs/a/encoder.pt", "/srv/app/runs")
    'saved a/encoder.pt'
    """
    root = Path(runs_root) if runs_root is not None else paths.runs_root()
    folders = [(root, ""), (paths.project_root(), ""), (Path(sys.prefix), "<python>/"), (Path.home(), "~/")]
    pairs: dict[str, str] = {}
    for folder, shown in folders:
        for form in {str(folder), str(folder.resolve())}:
            if form not in ("/", ""):
                pairs.setdefault(form.rstrip("/") + "/", shown)
    for form in sorted(pairs, key=len, reverse=True):  # the longest (innermost) folder first
        text = text.replace(form, pairs[form])
    return text


def cancel(run_dir: str | Path, wait: float = 0.0) -> bool:
    """Ask a running job to stop: its training processes checkpoint and end as cancelled.

    SIGTERM goes to the trainers themselves (every rank under torchrun, identified by pid *and* start time), so
    they save a stop checkpoint and exit cleanly, torchrun exits with them and the wrapper records the exit code.
    Before a trainer has registered (the first seconds of a job), the wrapper's process group is signalled. No
    other process is ever signalled. ``wait > 0`` blocks up to that many seconds until the run has stopped.
    """
    run_dir = Path(run_dir)
    info = run_info(run_dir)
    access.require_owner("cancel", run_dir.name, info.owner)
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
    access.require_owner("resume", run_dir.name, info.owner)
    if info.alive:
        raise AclEcgError(f"run {run_dir.name!r} is still running")
    job = read_json(run_dir / "job.json")
    if info.kind == "pretrain":
        # the run's own config.json once it has started; the launch's options for a job stopped while queued
        args = [] if (run_dir / "config.json").is_file() else job.get("args", [])
        return launch("pretrain", args, run_dir.parent, run_dir.name, resume=True, gpus=int(job.get("gpus", 1)))
    if not job:
        raise AclEcgError(f"run {run_dir.name!r} was not started as a job; rerun its command by hand")
    return launch(job["kind"], job["args"], run_dir.parent, run_dir.name, resume=True)
