"""One process's session of a run: settle the run directory before training, record how it ended after.

:func:`run_session` is a context manager around the training loop. On entry, rank 0 validates the run directory,
takes its lock, removes what an interrupted write left and (on resume) adopts the stored configuration and
precision; every rank learns the outcome, so all of them start together or fail with the same error. Each process
then settles its device and precision, registers itself in ``procs/``, and the main process writes ``status.json``
and ``config.json`` and starts the heartbeat. What enters the ``with`` block is a :class:`RunContext`. On exit, a
failure or an interrupt is recorded in ``status.json`` (``failed``/``cancelled``), the heartbeat stops, and the lock
is released.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

import torch

from aclecg import atomicio
from aclecg.errors import AclEcgError
from aclecg.parallel import DistInfo, broadcast_object
from aclecg.procs import own_record, read_json
from aclecg.runtime import AMP_NAMES, amp_from_name, resolve_amp, set_deterministic
from aclecg.training.config import PretrainConfig
from aclecg.training.devices import hardware_description, pick_device
from aclecg.training.rundir import Heartbeat, RunDir, clean_stale_files

__all__ = ["RunContext", "RunLog", "StopRequest", "run_session"]


class StopRequest:
    """Set by SIGTERM/SIGINT: the loop checkpoints at the next step boundary and ends as 'cancelled'."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:  # the signal API; both unused
        self.requested = True


class RunLog:
    """The engine's messages: on stderr and in the run's ``log.txt`` (once opened), from the main process only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._fh: TextIO | None = None

    def open(self, path: Path) -> None:
        self._fh = open(path, "a")

    def close(self) -> None:
        if self._fh:
            self._fh.close()
            self._fh = None

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(message, file=sys.stderr, flush=True)
            if self._fh:
                self._fh.write(message + "\n")
                self._fh.flush()


@dataclass
class RunContext:
    """One process's part of a run, as :func:`run_session` hands it to the training loop."""

    config: PretrainConfig  # the configuration every rank trains with (the stored one on resume)
    run: RunDir
    device: torch.device
    info: DistInfo
    amp_dtype: torch.dtype | None  # None: float32
    log: Callable[[str], None]
    stopper: StopRequest
    heartbeat: Heartbeat | None = None  # main process only
    resume: bool = False
    restart: bool = False  # on resume: set unusable checkpoints aside instead of refusing (training.resume)
    progress: bool = True
    stop_after_steps: int | None = None


@contextlib.contextmanager
def run_session(
    config: PretrainConfig,
    run_dir: str | Path,
    device: torch.device,
    info: DistInfo,
    resume: bool = False,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> Iterator[RunContext]:
    """Settle the run for this process, yield its :class:`RunContext`, and record how the run ended."""
    run = RunDir(run_dir)
    main = info.is_main
    log = RunLog(main)

    # Rank 0 validates the run directory, takes the lock and (on resume) adopts the stored configuration;
    # the outcome, and the configuration every rank trains with, is broadcast.
    setup_error: str | None = None
    stored_amp: str | None = None
    locked = False
    if main:
        config, setup_error, stored_amp, locked = _settle(config, run, device, info, resume, log)
    resolved, setup_error, stored_amp = broadcast_object((config.to_dict(), setup_error, stored_amp), info)
    if setup_error is not None:
        if main:
            raise AclEcgError(setup_error)
        raise AclEcgError(f"rank 0 could not start the run: {setup_error}")
    config = PretrainConfig.from_dict(resolved)
    stopper = StopRequest()
    stopper.install()
    heartbeat: Heartbeat | None = None
    try:
        device = pick_device(config.device, device, info)
        set_deterministic(device, config.deterministic)
        amp_dtype = amp_from_name(stored_amp) if stored_amp else resolve_amp(config.amp, device, cpu_auto_bf16=True)
        run.write_proc(info.rank)
        if main:
            heartbeat = _start(run, config, device, info, amp_dtype, bool(stored_amp), log)
        yield RunContext(
            config=config,
            run=run,
            device=device,
            info=info,
            amp_dtype=amp_dtype,
            log=log,
            stopper=stopper,
            heartbeat=heartbeat,
            resume=resume,
            progress=progress,
            stop_after_steps=stop_after_steps,
        )
    except BaseException as exc:
        if heartbeat:
            heartbeat.stop()
        if main:
            _record_end(run, exc, log)
        raise
    finally:
        if heartbeat:
            heartbeat.stop()
        log.close()
        if locked:
            run.release_lock()


def _settle(
    config: PretrainConfig, run: RunDir, device: torch.device, info: DistInfo, resume: bool, log: RunLog
) -> tuple[PretrainConfig, str | None, str | None, bool]:
    """Rank 0's checks before training: ``(config, setup error or None, the stored precision, whether locked)``.

    Refuses a run directory that holds a run unless resuming, takes the lock, removes files an interrupted write
    left, and on resume adopts the stored configuration and the precision the run started with."""
    stored_amp: str | None = None
    locked = False
    try:
        device = pick_device(config.device, device, info)
        if not resume and run.config.exists() and run.step_checkpoints():
            raise AclEcgError(f"{run.path} already holds a run; pass --resume to continue it or choose a new --run-dir")
        run.acquire_lock()
        locked = True
        removed = clean_stale_files(run)
        if removed:
            log(f"removed {len(removed)} file(s) left by an interrupted write: {', '.join(sorted(removed))}")
        if resume and run.config.exists():
            stored = PretrainConfig.from_file(run.config)
            if stored.to_dict() != config.to_dict():
                log("note: resuming with the configuration stored in the run directory")
            config = stored
            # A resumed run keeps the precision it started with, even if "auto" would now choose another;
            # runs from before this record trained CPU float32.
            stored_amp = read_json(run.config).get("resolved_amp") or ("off" if device.type == "cpu" else None)
    except AclEcgError as exc:
        return config, str(exc), stored_amp, locked
    return config, None, stored_amp, locked


def _start(
    run: RunDir,
    config: PretrainConfig,
    device: torch.device,
    info: DistInfo,
    amp_dtype: torch.dtype | None,
    kept_amp: bool,
    log: RunLog,
) -> Heartbeat:
    """Rank 0: open the log, record the run as running with its resolved configuration, start the heartbeat."""
    log.open(run.log)
    log(f"precision: {AMP_NAMES[amp_dtype]} (amp={config.amp}{', as the run started' if kept_amp else ''}, {device})")
    run.write_status(
        state="running",
        pid=os.getpid(),
        process=own_record(),
        host=socket.gethostname(),
        heartbeat=time.time(),
        error=None,
        started=time.time(),
        method=config.method,
        world_size=info.world_size,
        hardware=hardware_description(device),
    )
    atomicio.write_json(
        run.config,
        {
            "run": str(run.path.name),
            "config": config.to_dict(),
            "resolved_device": str(device),
            "resolved_amp": AMP_NAMES[amp_dtype],
            "world_size": info.world_size,
        },
    )
    heartbeat = Heartbeat(run)
    heartbeat.start()
    return heartbeat


def _record_end(run: RunDir, exc: BaseException, log: RunLog) -> None:
    """Rank 0: record a run stopped by Ctrl-C as cancelled and any other exception as failed, with its message."""
    cancelled = isinstance(exc, KeyboardInterrupt)
    try:
        run.write_status(
            state="cancelled" if cancelled else "failed",
            error=None if cancelled else f"{type(exc).__name__}: {exc}",
            heartbeat=time.time(),
        )
    except OSError as status_exc:  # the disk that failed the run may refuse the status too
        log(f"warning: could not record the failure in {run.status}: {status_exc}")
