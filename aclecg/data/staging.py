"""The temporary folder ``prepare`` writes into: its name, its cleanup after a crash, SIGTERM and write errors.

``prepare`` writes a dataset into the hidden sibling ``.<name>.tmp-<pid>-<hex>`` of its output and renames it into
place when complete (an older dataset there is first moved aside to ``.<name>.old-<pid>-<hex>``). This module

* names those folders after the owning process and records its host in a ``.owner`` file;
* removes, when a new run starts, the ones left by a process of this host that is no longer alive (a run killed
  by SIGKILL or a power cut); a moved-aside older dataset whose replacement never arrived is put back instead;
* turns SIGTERM into an exception while a run writes (:func:`sigterm_raises`), so the temporary folder is removed
  as for Ctrl-C, and holds SIGTERM back while the finished folder is renamed into place;
* turns a failing write (read-only file system, disk full, no permission) into one
  :class:`~aclecg.errors.StorageError` naming the folder.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aclecg.errors import StorageError

__all__ = [
    "Terminated",
    "exit_on_sigterm",
    "held_sigterm",
    "new_temporary",
    "remove_stale",
    "sigterm_raises",
    "storage_error",
]

OWNER = ".owner"


class Terminated(KeyboardInterrupt):
    """The run was stopped by SIGTERM (its temporary folder is removed on the way out)."""


def storage_error(exc: OSError, folder: Path) -> StorageError:
    """One-line :class:`StorageError` for a write into ``folder`` that failed with ``exc``."""
    return StorageError(exc.errno, f"cannot write the prepared dataset in {folder}: {exc.strerror or exc}")


def new_temporary(output: Path) -> Path:
    """Create the hidden temporary sibling of ``output`` for this process (with its ``.owner`` file)."""
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    (tmp / OWNER).write_text(f"{socket.gethostname()}\n{os.getpid()}\n")
    return tmp


def trash_name(output: Path) -> Path:
    """Where an older dataset at ``output`` is moved while the new one is renamed into place."""
    return output.with_name(f".{output.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to another user, or cannot be asked: leave its folder alone
        return True
    return True


def _same_host(folder: Path) -> bool:
    try:
        host = (folder / OWNER).read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return True  # no owner file (an older dataset moved aside, or a run killed before writing it)
    return host == socket.gethostname()


def remove_stale(output: Path) -> list[Path]:
    """Remove the temporary folders of earlier runs into ``output`` whose process (on this host) has died.

    A moved-aside older dataset (``.old-``) is put back at ``output`` when nothing replaced it, else removed.
    Returns the folders handled. Errors are ignored: a folder that cannot be removed stays for the next run.
    """
    pattern = re.compile(rf"\.{re.escape(output.name)}\.(tmp|old)-(\d+)-[0-9a-f]{{8}}")
    handled = []
    try:
        entries = sorted(output.parent.iterdir())
    except OSError:
        return []
    for path in entries:
        match = pattern.fullmatch(path.name)
        if not match or path.is_symlink() or not path.is_dir() or _alive(int(match[2])) or not _same_host(path):
            continue
        try:
            if match[1] == "old" and not os.path.lexists(output):
                os.replace(path, output)
            else:
                shutil.rmtree(path)
        except OSError:
            continue
        handled.append(path)
    return handled


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated` (once: a second SIGTERM is ignored while cleaning up).

    Only in the main thread (Python delivers signals there); elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated("terminated by SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """In a worker process: SIGTERM (``Pool.terminate``) exits through ``SystemExit``, so ``finally`` blocks run
    (a reader's private copy of a record is removed instead of being left in /dev/shm)."""
    signal.signal(signal.SIGTERM, _exit)


@contextmanager
def held_sigterm() -> Iterator[None]:
    """Hold SIGTERM back within the block (the renames that publish a dataset); it is delivered afterwards."""
    block = getattr(signal, "pthread_sigmask", None)
    if block is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    block(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        block(signal.SIG_UNBLOCK, {signal.SIGTERM})
