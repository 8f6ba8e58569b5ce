"""The wrapper process of a background job: it waits for free job slots, then runs the job's command.

``python -m aclecg.jobrunner --run-dir RUN --slots-dir DIR --ticket T --wait-fd FD --slots N --need G --visible V
[--pin] -- CMD ...``

A runs root has ``N`` job slots (:func:`aclecg.joblimits.max_jobs`: one per GPU, one on a CPU machine, or
``ACLECG_MAX_JOBS``), each a lock file ``DIR/slot-K.lock``. A job holds ``G`` of them (its GPU count) while its
command runs; a job that finds too few free waits, in the order the jobs were launched (a place in line is a locked
file ``DIR/waiting/TICKET``, see :func:`enqueue`), in state ``queued``. The locks are ``flock`` locks, which the
kernel releases when their holder exits however it ends (``kill -9``, a crash), so a slot never stays taken by a
dead job; the command inherits them, so they stay held while it runs even if this wrapper is gone. With ``--pin``
slot ``K`` means GPU ``K mod V``: the command sees only its slots' GPUs (``CUDA_VISIBLE_DEVICES``), so two jobs
never share a GPU.

Files written into the run directory: ``slot.json`` (slots and GPUs, once they are held) and ``exit_code`` (the
command's exit status, 128 + signal for a signal, 143 for a job cancelled while it was queued). SIGTERM while
queued ends the wait; while the command runs the command itself receives it (:func:`aclecg.jobs.cancel` signals
the trainers or the whole process group) and this wrapper records how it ended.

This module imports nothing heavy: the wrapper starts in a fraction of a second and waits with little memory.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

SLOT_FILE = "slot.json"
POLL_S = 0.25
CANCELLED_WHILE_QUEUED = 143  # what a shell reports for a process ended by SIGTERM


class _Cancelled(Exception):
    """SIGTERM arrived while the job was waiting for a slot."""


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def slot_gpu(slot: int, visible: int) -> int:
    """The GPU a slot stands for (slots beyond the GPU count wrap around)."""
    return slot % visible


def choose(free: list[int], need: int, visible: int, pin: bool) -> list[int] | None:
    """``need`` of the ``free`` slots (pinned jobs: on as many different GPUs), or ``None`` when too few are free.

    >>> choose([0, 2, 3], 2, 4, True), choose([0, 4], 2, 4, True), choose([1], 2, 4, False)
    ([0, 2], None, None)
    """
    chosen: list[int] = []
    gpus: set[int] = set()
    for slot in sorted(free):
        if pin and visible and slot_gpu(slot, visible) in gpus:
            continue
        chosen.append(slot)
        if pin and visible:
            gpus.add(slot_gpu(slot, visible))
        if len(chosen) == need:
            return chosen
    return None


def _try_lock(path: Path, mode: int = fcntl.LOCK_EX) -> int | None:
    """An open descriptor holding the lock on ``path``, or ``None`` when another process holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:  # a waiting file removed meanwhile
        return None
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def enqueue(slots_dir: Path) -> tuple[int, int]:
    """Take the next place in the queue of ``slots_dir``: ``(ticket, fd)``, the descriptor locking the place's file.

    Called by the launcher (under its launch lock, so tickets follow the launches); the descriptor goes to the
    wrapper, which keeps the place locked while it waits. A place whose file is not locked is a dead waiter's.
    """
    waiting = slots_dir / "waiting"
    waiting.mkdir(parents=True, exist_ok=True)
    counter = slots_dir / "ticket"
    try:
        ticket = int(counter.read_text().strip() or 0) + 1
    except (FileNotFoundError, ValueError):
        ticket = 1
    _write(counter, f"{ticket}\n")
    tmp = waiting / f".{ticket}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.replace(tmp, waiting / f"{ticket:012d}")  # visible only once locked
    return ticket, fd


def _first_in_line(waiting: Path, ticket: int) -> bool:
    """Whether no live job that was launched earlier still waits (dead waiters' places are cleared)."""
    for path in sorted(waiting.glob("[0-9]*")):
        if int(path.name) >= ticket:
            return True
        fd = _try_lock(path, fcntl.LOCK_SH)
        if fd is None:
            return False  # an earlier job waits: its turn first
        path.unlink(missing_ok=True)  # its waiter is gone
        os.close(fd)
    return True


def acquire(
    slots_dir: Path, ticket: int, n_slots: int, need: int, visible: int, pin: bool
) -> tuple[list[int], list[int]]:
    """Wait until this job is first in line and ``need`` of the ``n_slots`` slots are free; the slots' numbers and
    the descriptors that hold them."""
    while True:
        if _first_in_line(slots_dir / "waiting", ticket):
            held = {k: fd for k in range(n_slots) if (fd := _try_lock(slots_dir / f"slot-{k}.lock")) is not None}
            chosen = choose(list(held), need, visible, pin)
            for k, fd in held.items():
                if chosen is None or k not in chosen:
                    os.close(fd)
            if chosen is not None:
                return chosen, [held[k] for k in chosen]
        time.sleep(POLL_S)


def _parse(argv: list[str]) -> argparse.Namespace:
    cut = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(prog="python -m aclecg.jobrunner", description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--slots-dir", type=Path, required=True)
    p.add_argument("--ticket", type=int, required=True, help="place in the queue (see enqueue)")
    p.add_argument("--wait-fd", type=int, default=None, help="descriptor locking that place")
    p.add_argument("--slots", type=int, default=1)
    p.add_argument("--need", type=int, default=1)
    p.add_argument("--visible", type=int, default=0)
    p.add_argument("--pin", action="store_true")
    args = p.parse_args(argv[:cut])
    args.command = argv[cut + 1 :]
    if not args.command:
        p.error("no command after --")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    child: subprocess.Popen | None = None

    def on_term(signum: int, frame: FrameType | None) -> None:
        if child is None:
            raise _Cancelled
        # the command got the same signal (the process group) or its trainers were signalled: wait for it

    signal.signal(signal.SIGTERM, on_term)
    exit_path = args.run_dir / "exit_code"
    try:
        slots, fds = acquire(args.slots_dir, args.ticket, max(args.slots, 1), max(args.need, 1), args.visible, args.pin)
        (args.slots_dir / "waiting" / f"{args.ticket:012d}").unlink(missing_ok=True)  # out of the line
        if args.wait_fd is not None:
            os.close(args.wait_fd)
        env = dict(os.environ)
        gpu_ids = [slot_gpu(k, args.visible) for k in slots] if args.pin and args.visible else None
        if gpu_ids is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpu_ids))
        _write(args.run_dir / SLOT_FILE, json.dumps({"slots": slots, "gpu_ids": gpu_ids, "since": time.time()}))
        print(f"[aclecg] job slot(s) {slots}" + (f", GPU(s) {gpu_ids}" if gpu_ids else "") + ": starting", flush=True)
        child = subprocess.Popen(args.command, env=env, pass_fds=fds)
    except _Cancelled:
        (args.slots_dir / "waiting" / f"{args.ticket:012d}").unlink(missing_ok=True)
        _write(exit_path, f"{CANCELLED_WHILE_QUEUED}\n")
        return CANCELLED_WHILE_QUEUED
    code = child.wait()
    code = code if code >= 0 else 128 - code
    _write(exit_path, f"{code}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
