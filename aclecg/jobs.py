"""Background runs for the app: launch, list, tail, cancel and resume jobs that outlive the browser tab.

A job is ``python -m aclecg <kind> ...`` started as a detached process group (so it survives the Streamlit script
run, a closed tab and an app restart), writing into its own run directory under a runs root:

* ``job.json``: kind, argv, pid, host, start time (written by :func:`launch`)
* ``stdout.log``: everything the command prints
* ``exit_code``: written by the wrapper shell when the command ends
* ``status.json`` / ``metrics.jsonl``: written by the pretraining engine (see :mod:`aclecg.train`)

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
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from aclecg.checkpoint import atomic_write_bytes
from aclecg.errors import AclEcgError, ConfigError
from aclecg.train import pid_alive, read_json

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNS_ROOT = Path(os.environ.get("ACLECG_RUNS", REPO_ROOT / "runs"))
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


def launch(kind: str, args: Sequence[str], runs_root: str | Path = DEFAULT_RUNS_ROOT, name: str = "run",
           resume: bool = False, gpus: int = 1) -> Path:
    """Start ``python -m aclecg KIND ARGS`` detached, writing into ``runs_root/NAME``; returns the run directory.

    For ``pretrain`` the run directory is passed as ``--run-dir``, for ``sweep`` as ``--out``. ``gpus > 1``
    starts a pretraining run through ``torch.distributed.run`` (torchrun) with one process per GPU; cancelling
    signals the whole process group, and every process stops at the same step after a checkpoint.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown job kind {kind!r}; expected one of {KINDS}")
    if not isinstance(gpus, int) or gpus < 1 or (gpus > 1 and kind != "pretrain"):
        raise ConfigError(f"gpus must be a positive integer (and > 1 only for pretrain), got {gpus!r}")
    root = Path(runs_root)
    run_dir = root / sanitize_name(name)
    job = read_json(run_dir / "job.json")
    if job and not resume:
        raise AclEcgError(f"a run named {run_dir.name!r} already exists; choose another name or resume it")
    if job and pid_alive(int(job.get("pid", -1))) and job.get("host") == socket.gethostname():
        raise AclEcgError(f"run {run_dir.name!r} is still running (pid {job['pid']})")
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
    with open(run_dir / "stdout.log", "ab") as out:
        proc = subprocess.Popen(["/bin/sh", "-c", script], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=REPO_ROOT, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    atomic_write_bytes(run_dir / "job.json", json.dumps(
        {"kind": kind, "args": list(map(str, args)), "argv": argv, "pid": proc.pid, "host": socket.gethostname(),
         "started": time.time(), "gpus": gpus}, indent=1).encode())
    return run_dir


def run_info(run_dir: str | Path) -> RunInfo:
    """The live state of one run directory, derived from its files and whether its process exists."""
    run_dir = Path(run_dir)
    job = read_json(run_dir / "job.json")
    status = read_json(run_dir / "status.json")
    config = read_json(run_dir / "config.json").get("config", {})
    kind = job.get("kind") or ("pretrain" if status or config else "sweep")
    same_host = job.get("host", status.get("host")) in (None, socket.gethostname())
    pid = int(job.get("pid") or status.get("pid") or -1)
    alive = same_host and pid_alive(pid)
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
    return RunInfo(name=run_dir.name, path=run_dir, kind=kind, state=state,
                   method=status.get("method") or config.get("method"), step=int(status.get("step") or 0),
                   epoch=int(status.get("epoch") or 0), total_steps=status.get("total_steps"), error=error,
                   alive=alive, started=job.get("started") or status.get("started"))


def list_runs(runs_root: str | Path = DEFAULT_RUNS_ROOT) -> list[RunInfo]:
    """Every run under ``runs_root``, newest first."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    runs = [run_info(p) for p in root.iterdir()
            if p.is_dir() and any((p / f).exists() for f in ("job.json", "status.json"))]
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
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(text[-lines:])


def tail_log(run_dir: str | Path, lines: int = 40) -> str:
    return _tail(Path(run_dir) / "stdout.log", lines)


def cancel(run_dir: str | Path) -> bool:
    """Ask a running job to stop (SIGTERM to its process group: it checkpoints, then ends as cancelled)."""
    info = run_info(run_dir)
    if not info.alive:
        return False
    job = read_json(Path(run_dir) / "job.json")
    (Path(run_dir) / "cancel_requested").write_text(str(time.time()))
    pid = int(job.get("pid") or -1)
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
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
