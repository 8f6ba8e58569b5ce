"""Run a function on untrusted input in a child process with a memory and a time limit.

A parser fed a hostile file can crash (a segfault in native code), allocate without bound (a decompression bomb)
or loop. Run in the server's own process, any of these takes the server down for every user. :func:`run` calls a
picklable, importable function in a child process instead:

* the child comes from multiprocessing's ``forkserver``: a separate, single-threaded interpreter started once per
  process, which imports the ``preload`` modules once and forks a fresh child for every call. Nothing of the
  caller's threads, locks or memory is inherited (the caller is never forked), and a call costs a fork, not an
  interpreter start;
* the child may map at most ``memory_bytes`` of address space beyond what it holds when it starts
  (``RLIMIT_AS``, soft and hard, so it cannot raise it again); it may not write files larger than the result limit
  (``RLIMIT_FSIZE``) and cannot dump core;
* the caller kills the child after ``timeout_s``;
* the answer comes back on a pipe as JSON plus raw numeric arrays (no pickle: the caller never unpickles bytes
  written by the child); its length comes first, and one over ``max_result_bytes`` is refused unread.

A crash, a timeout, running out of memory or an oversized result becomes a :class:`SandboxRejected` (a
:class:`~aclecg.errors.DataError`) naming what happened, e.g. ``the parser crashed (signal 11, SIGSEGV)``
(``what`` names the function for the message); a :class:`~aclecg.errors.DataError` raised by the function comes
back as a ``DataError`` with its message. The caller lives on either way.

This contains crashes and resource exhaustion. It is not a security boundary against code that has taken over
the child (the child runs as the same user, without a seccomp filter).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import selectors
import signal
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import forkserver
from typing import Any

import numpy as np

from aclecg.errors import DataError

__all__ = ["Limits", "SandboxRejected", "decode", "encode", "run", "warm_up"]


@dataclass(frozen=True)
class Limits:
    """What a sandboxed call may use."""

    memory_bytes: int = 1 << 30  # address space the child may add to what it holds after its imports
    timeout_s: float = 20.0
    max_result_bytes: int = 256 << 20


class SandboxRejected(DataError):
    """The sandboxed call did not finish normally; ``kind`` is crashed, timeout, memory, result or error."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


# ------------------------------------------------------------------------------------------------ wire format
# 8-byte length of the JSON part, the JSON (values; arrays as [dtype, shape, offset]), then the arrays' raw bytes.
# Decoding makes arrays that view the received buffer: no copy, no pickle, only plain numeric dtypes.

_KINDS = "biufc"  # bool, signed, unsigned, float, complex


def _plain(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _KINDS:
            raise TypeError(f"arrays of dtype {value.dtype} cannot leave the sandbox")
        arrays.append(value if value.flags.c_contiguous else value.copy(order="C"))
        return {"a": len(arrays) - 1}
    if isinstance(value, np.generic):
        return {"v": value.item()}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("only str dict keys can leave the sandbox")
        return {"d": [[k, _plain(v, arrays)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"l" if isinstance(value, list) else "t": [_plain(v, arrays) for v in value]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"v": value}
    raise TypeError(f"a {type(value).__name__} cannot leave the sandbox")


def _unplain(node: Any, arrays: list[np.ndarray]) -> Any:
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError("malformed sandbox result")
    ((tag, body),) = node.items()
    if tag == "a":
        return arrays[int(body)]
    if tag == "v":
        if body is not None and not isinstance(body, (bool, int, float, str)):
            raise ValueError("malformed sandbox result (value)")
        return body
    if tag == "d":
        return {str(k): _unplain(v, arrays) for k, v in body}
    if tag in ("l", "t"):
        items = [_unplain(v, arrays) for v in body]
        return items if tag == "l" else tuple(items)
    raise ValueError(f"malformed sandbox result (tag {tag!r})")


def _parts(value: Any) -> list[bytes | memoryview]:
    """The pieces of :func:`encode`'s bytes, arrays as views of their memory (the child writes them uncopied)."""
    arrays: list[np.ndarray] = []
    tree = _plain(value, arrays)
    layout, offset = [], 0
    for array in arrays:
        layout.append([array.dtype.str, list(array.shape), offset])
        offset += array.nbytes
    text = json.dumps({"tree": tree, "arrays": layout}).encode()
    return [struct.pack("<Q", len(text)), text, *(array.reshape(-1).view(np.uint8).data for array in arrays)]


def encode(value: Any) -> bytes:
    """``value`` (None, bool, int, float, str, lists, tuples, str-keyed dicts, numeric arrays) as bytes."""
    return b"".join(_parts(value))


def decode(data: bytes | bytearray | memoryview) -> Any:
    """Inverse of :func:`encode`; never unpickles. Arrays view ``data`` (writable if ``data`` is a bytearray)."""
    view = memoryview(data)
    (size,) = struct.unpack_from("<Q", view, 0)
    if size > len(view) - 8:
        raise ValueError("malformed sandbox result (length)")
    head = json.loads(bytes(view[8 : 8 + size]))
    start = 8 + size
    arrays: list[np.ndarray] = []
    for dtype_str, shape, offset in head["arrays"]:
        dtype = np.dtype(str(dtype_str))
        if dtype.kind not in _KINDS or dtype.hasobject:
            raise ValueError(f"malformed sandbox result (dtype {dtype_str!r})")
        count = int(np.prod([int(n) for n in shape], dtype=np.int64))
        if count < 0 or start + int(offset) + count * dtype.itemsize > len(view):
            raise ValueError("malformed sandbox result (array bounds)")
        flat = np.frombuffer(view, dtype=dtype, count=count, offset=start + int(offset))
        arrays.append(flat.reshape([int(n) for n in shape]))
    return _unplain(head["tree"], arrays)


# ------------------------------------------------------------------------------------------------ child side


def _address_space() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(sender: Any, fn: Callable[..., Any], args: tuple[Any, ...], memory_bytes: int, max_bytes: int) -> None:
    """Runs in the child: limit it, call ``fn``, write the length-prefixed, encoded answer to ``sender``'s pipe."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    cap = _address_space() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        parts = _parts(("ok", fn(*args)))
    except MemoryError:
        parts = _parts(("memory", ""))
    except DataError as exc:
        parts = _parts(("data", str(exc)))
    except Exception as exc:  # any other failure of the function, named in one line
        first = (str(exc).splitlines() or [""])[0][:200]
        parts = _parts(("error", f"{type(exc).__name__}: {first}" if first else type(exc).__name__))
    size = sum(len(part) for part in parts)
    if size > max_bytes:
        parts = _parts(("result", ""))
        size = sum(len(part) for part in parts)
    with os.fdopen(sender.fileno(), "wb", closefd=False) as out:
        out.write(struct.pack("<Q", size))
        for part in parts:
            out.write(part)
    sender.close()


# ------------------------------------------------------------------------------------------------ caller side

_lock = threading.Lock()


def _context(preload: Sequence[str]) -> Any:
    """The forkserver context; before its server starts, it is told to import ``preload`` (and ``__main__``).

    ``__main__`` is imported once by the fork server, as multiprocessing does by default, so that a child does
    not import a script-started main module (e.g. ``streamlit``'s launcher) again for every call.
    """
    ctx = multiprocessing.get_context("forkserver")
    with _lock:
        if forkserver._forkserver._forkserver_pid is None:  # type: ignore[attr-defined]
            ctx.set_forkserver_preload(["__main__", *preload])
    return ctx


def warm_up(preload: Sequence[str] = ()) -> None:
    """Start the fork server now (it imports ``preload`` once), so that the first :func:`run` does not wait."""
    _context(preload)
    forkserver.ensure_running()


def _read_into(fd: int, buf: memoryview, deadline: float) -> tuple[int, bool]:
    """Fill ``buf`` from ``fd`` until full, closed or past ``deadline``; (bytes read, timed out)."""
    got = 0
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while got < len(buf):
            left = deadline - time.monotonic()
            if left <= 0:
                return got, True
            if not sel.select(left):
                continue
            n = os.readv(fd, [buf[got:]])
            if n == 0:
                break
            got += n
    return got, False


def _collect(fd: int, limits: Limits, deadline: float) -> tuple[bytearray | None, bool, bool]:
    """Read the child's answer: (answer or None, timed out, answer too big).

    The answer's length comes first: one that exceeds the limit is refused before anything is allocated for it.
    """
    head = bytearray(8)
    got, timed_out = _read_into(fd, memoryview(head), deadline)
    if got != 8 or timed_out:
        return None, timed_out, False
    (size,) = struct.unpack("<Q", head)
    if size > limits.max_result_bytes:
        return None, False, True
    data = bytearray(size)
    got, timed_out = _read_into(fd, memoryview(data), deadline)
    return (data if got == size and not timed_out else None), timed_out, False


def run(
    fn: Callable[..., Any],
    *args: Any,
    limits: Limits = Limits(),
    what: str = "the parser",
    preload: Sequence[str] = (),
) -> Any:
    """``fn(*args)`` in a sandboxed child; its result, or :class:`SandboxRejected` / :class:`DataError`.

    ``fn`` must be importable by name (a module-level function), ``args`` picklable and the result encodable (see
    :func:`encode`). ``preload`` names modules the fork server imports when it starts (their import time and memory
    are then not part of a call's limits); it counts only for the call that starts the server.
    """
    ctx = _context(preload)
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child, args=(sender, fn, args, limits.memory_bytes, limits.max_result_bytes), daemon=True
    )
    try:
        proc.start()
    finally:
        sender.close()
    data, timed_out, too_big = None, False, False
    try:
        data, timed_out, too_big = _collect(receiver.fileno(), limits, time.monotonic() + limits.timeout_s)
    finally:
        receiver.close()
        if timed_out or too_big:
            proc.kill()
        proc.join(5.0)  # an ended child's status (e.g. the signal that killed it) arrives just after its pipe closes
        if proc.exitcode is None:
            proc.kill()
            proc.join()
    return _answer(data, proc.exitcode, timed_out, too_big, limits, what)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _answer(data: bytearray | None, code: int | None, timed_out: bool, too_big: bool, limits: Limits, what: str) -> Any:
    if timed_out:
        raise SandboxRejected(f"{what} took longer than {limits.timeout_s:g} s", "timeout")
    if too_big or code == -signal.SIGXFSZ:
        raise SandboxRejected(f"{what} returned more than {limits.max_result_bytes >> 20} MB", "result")
    if data is None:
        if code is not None and code < 0:
            raise SandboxRejected(f"{what} crashed (signal {-code}, {_signal_name(-code)})", "crashed")
        raise SandboxRejected(f"{what} stopped without a result (exit code {code})", "crashed")
    try:
        tag, body = decode(data)
    except (ValueError, TypeError, KeyError, IndexError, struct.error) as exc:
        raise SandboxRejected(f"{what} returned a malformed result ({exc})", "result") from None
    if tag == "ok":
        return body
    if tag == "data":
        raise DataError(str(body))
    if tag == "memory":
        raise SandboxRejected(f"{what} needed more than {limits.memory_bytes >> 20} MB of memory", "memory")
    if tag == "result":
        raise SandboxRejected(f"{what} returned more than {limits.max_result_bytes >> 20} MB", "result")
    raise SandboxRejected(f"{what} failed ({body})", "error")
