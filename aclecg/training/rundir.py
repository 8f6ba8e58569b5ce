"""The run directory: the files a pretraining run writes, its lock, its heartbeat, and what resume reads back.

=====================  ==================================================================================
``config.json``        the fully resolved :class:`~aclecg.training.config.PretrainConfig`; ``pretrain --config
                       config.json`` reproduces the run
``metrics.jsonl``      one JSON object per logged step: step, epoch, loss and its terms, lr, samples/s, device, memory
``status.json``        state (one of :data:`STATES`), error, pid, host, heartbeat, progress
``checkpoints/``       ``step_XXXXXXXX.pt`` (last *K* kept), ``best.pt``, each with a ``.sha256`` sidecar
``encoder.pt``         the final online encoder with its metadata, for evaluation and the app
``lock``               held by the process writing the run; two runs never share a directory
``procs/rank-N.json``  pid and process start time of each training process (what cancel and run state trust)
``log.txt``            the engine's messages
=====================  ==================================================================================

Only the main process writes these files, every one of them atomically (:mod:`aclecg.atomicio`). The background
jobs of the app (:mod:`aclecg.jobs`) read them; this module imports no torch (checkpoints are loaded on demand).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aclecg import atomicio
from aclecg.errors import AclEcgError
from aclecg.procs import live_records, own_record, read_json, record_alive

__all__ = ["STATES", "Heartbeat", "RunDir", "clean_stale_files", "find_resume_checkpoint", "truncate_metrics"]

#: The states ``status.json`` records.
STATES = ("queued", "running", "finished", "failed", "cancelled")


class RunDir:
    """Files of one run directory; only the main process writes them."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.metrics = self.path / "metrics.jsonl"
        self.status = self.path / "status.json"
        self.lock = self.path / "lock"
        self.checkpoints = self.path / "checkpoints"
        self.encoder = self.path / "encoder.pt"
        self.log = self.path / "log.txt"
        self.procs = self.path / "procs"  # procs/rank-N.json: pid + start time of each training process
        self._status_lock = threading.Lock()

    def read_status(self) -> dict[str, Any]:
        return read_json(self.status)

    def write_status(self, **updates: Any) -> dict[str, Any]:
        with self._status_lock:
            status = self.read_status()
            status.update(updates)
            status["updated"] = time.time()
            atomicio.write_bytes(self.status, json.dumps(status, indent=1).encode())
            return status

    def acquire_lock(self) -> None:
        """Take the run's lock; a lock left by a dead process (same host) is taken over."""
        self.path.mkdir(parents=True, exist_ok=True)
        me = json.dumps({**own_record(), "time": time.time()})
        for _ in range(2):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    holder = json.loads(self.lock.read_text() or "{}")
                except (OSError, json.JSONDecodeError):
                    holder = {}
                if holder.get("host") == socket.gethostname() and not record_alive(holder):
                    self.lock.unlink(missing_ok=True)
                    continue
                raise AclEcgError(
                    f"run directory {self.path} is in use by pid {holder.get('pid')} on "
                    f"{holder.get('host')}; choose another --run-dir or cancel that run"
                ) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
            return
        raise AclEcgError(f"could not lock {self.path}")

    def release_lock(self) -> None:
        self.lock.unlink(missing_ok=True)

    def write_proc(self, rank: int) -> None:
        """Record this process as the run's rank ``rank`` (what cancel signals and run state trusts)."""
        self.procs.mkdir(parents=True, exist_ok=True)
        atomicio.write_bytes(self.procs / f"rank-{rank}.json", json.dumps({**own_record(), "rank": rank}).encode())

    def live_procs(self) -> list[dict[str, Any]]:
        """The records of this run's training processes that are still running (verified by start time)."""
        return live_records(self.procs)

    def step_checkpoints(self) -> list[Path]:
        return sorted(self.checkpoints.glob("step_*.pt"), reverse=True)


class Heartbeat(threading.Thread):
    """Refreshes ``status.json``'s heartbeat so readers can tell a live run from a dead one."""

    def __init__(self, run: RunDir, every: float = 5.0):
        super().__init__(daemon=True)
        self.run_dir, self.every = run, every
        self.progress: dict[str, Any] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:  # the threading API
        while not self._stop_event.wait(self.every):
            self.run_dir_beat()

    def run_dir_beat(self) -> None:
        try:
            self.run_dir.write_status(heartbeat=time.time(), **self.progress)
        except OSError:
            pass  # a full or read-only disk: the training loop reports it at its next write

    def stop(self) -> None:
        """Stop beating and wait for the thread, so nothing writes the run's files after the run has ended."""
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=10)


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metric rows logged after the checkpoint a run resumes from (they will be logged again)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
    atomicio.write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def find_resume_checkpoint(
    run: RunDir,
    log: Callable[[str], None],
    expected: dict[str, Any] | None = None,
    total_steps: int | None = None,
    restart: bool = False,
) -> dict[str, Any] | None:
    """The newest full training state of this run that passes its integrity checks (``None``: none).

    Step checkpoints are tried newest first, then ``best.pt`` (which holds the full state of its step too); each
    must match ``expected`` (the run's identity, see :mod:`aclecg.training.resume`) and reach no further than
    ``total_steps``. Damaged files are reported and skipped, never loaded; a foreign checkpoint, or only damaged
    ones, raise :class:`~aclecg.errors.CheckpointError` unless ``restart`` sets them aside.
    """
    from aclecg.training.resume import choose_resume_state  # torch: loaded when a run resumes

    limit = total_steps if total_steps is not None else 2**62
    return choose_resume_state(run, expected or {}, limit, restart, log)


def clean_stale_files(run: RunDir) -> list[str]:
    """Remove what an interrupted write can leave behind (the caller holds the run's lock).

    * ``.*.tmp`` files of atomic writes that never got renamed (checkpoint-sized);
    * ``.sha256`` sidecars whose file is missing (a kill between the sidecar and the file).
    """
    removed = []
    for folder in (run.path, run.checkpoints):
        if not folder.is_dir():
            continue
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp.name)
        for sidecar in folder.glob("*.sha256"):
            if not sidecar.with_name(sidecar.name[: -len(".sha256")]).exists():
                sidecar.unlink(missing_ok=True)
                removed.append(sidecar.name)
    return removed
