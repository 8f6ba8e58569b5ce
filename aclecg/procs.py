"""Process identity: a pid plus its start time, so a recycled pid is never taken for a run's process.

A pid alone is not an identity: after a reboot or a long time the same number belongs to an unrelated process.
Linux gives every process a start time (field 22 of ``/proc/PID/stat``, clock ticks since boot). A record
``{"pid", "start", "host"}`` written by the process itself names it for as long as it lives, and
:func:`record_alive` is true only for that very process. Where ``/proc`` is missing, ``start`` is ``None`` and
the check falls back to the pid alone.

>>> rec = own_record()
>>> record_alive(rec)
True
>>> record_alive({**rec, "start": (rec["start"] or 0) + 1}) or rec["start"] is None
False
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

__all__ = ["live_records", "own_record", "pid_alive", "read_json", "record_alive", "start_time"]


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` while it does not exist yet, is being replaced or is not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()  # fields after "(comm)", which may itself hold spaces


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat_fields(pid)
    return fields is None or fields[0] != "Z"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or ``None`` where ``/proc`` does not tell."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None  # field 22 of stat; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def own_record(pid: int | None = None) -> dict[str, Any]:
    """``{"pid", "start", "host"}`` for ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else int(pid)
    return {"pid": pid, "start": start_time(pid), "host": socket.gethostname()}


def record_alive(record: dict[str, Any] | None) -> bool:
    """True only while the very process the record names runs (same host, pid alive, same start time)."""
    if not record:
        return False
    try:
        pid = int(record.get("pid") or -1)
    except (TypeError, ValueError):
        return False
    if record.get("host") not in (None, socket.gethostname()) or not pid_alive(pid):
        return False
    expected = record.get("start")
    return expected is None or start_time(pid) in (None, expected)


def live_records(folder: Path, pattern: str = "rank-*.json") -> list[dict[str, Any]]:
    """The process records in ``folder`` (a run's ``procs/``) whose process still runs."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [r for r in (read_json(p) for p in sorted(folder.glob(pattern))) if record_alive(r)]
