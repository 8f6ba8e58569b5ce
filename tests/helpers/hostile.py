"""Builders of hostile dataset files, for the data readers' and the upload's tests.

Each function writes into a folder the test owns (``tmp_path``) and returns what it wrote. Records are copies of the
bundled Challenge record A0001 (12 leads, 500 Hz, 7500 samples, a MAT-4 ``val`` matrix) with one thing made
hostile, so a reader that refuses them refuses exactly that thing.

* MATLAB files: :func:`reserved_type_mat` (a 224-byte MAT-5 file whose compressed element holds the reserved data
  type 10: crashed ``scipy.io.loadmat``), :func:`zlib_bomb_mat` (about 1.2 MB that inflate to 1.26 GB of zeros),
  :func:`cell_ecg_mat` (CPSC's ``ECG`` as a cell array);
* files that are not regular files: :func:`fifo_record` (the signal file, or the header, is a FIFO),
  :func:`device_record` (the signal file links to ``/dev/zero``), :func:`mknod_record` (it is a character device;
  root only);
* links and layouts: :func:`multisegment_escape` (a multi-segment header whose segment header and signal file link
  outside), :func:`duplicate_names` (one record name in two sub-folders), :func:`linked_reference` (a CPSC
  ``REFERENCE.csv`` linking outside);
* header values: :func:`high_fs_record` (1 MHz), :func:`long_record` (a sample count far past 30 minutes),
  :func:`huge_age_record` (``Age: 1e308``).

:func:`run_isolated` runs a function in a forked child with a time limit and a memory guard, so a reader that
crashes (segfault), hangs (FIFO) or allocates without bound fails the test instead of the test run.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aclecg.data import BUNDLED_RAW_DIR

SOURCE = BUNDLED_RAW_DIR / "challenge-2021" / "training" / "cpsc_2018"
#: The Dx code of A0001 (I-AVB), so copies are labelled records.
DX = "59118001"


def challenge_record(root: Path, name: str, source: str = "A0001") -> Path:
    """Copy a bundled Challenge record into ``root`` as ``name`` (header text renamed); return the header path."""
    root.mkdir(parents=True, exist_ok=True)
    text = (SOURCE / f"{source}.hea").read_text().replace(source, name)
    (root / f"{name}.hea").write_text(text)
    shutil.copy(SOURCE / f"{source}.mat", root / f"{name}.mat")
    return root / f"{name}.hea"


def _edit_record_line(hea: Path, index: int, value: str) -> None:
    lines = hea.read_text().splitlines()
    fields = lines[0].split()
    fields[index] = value
    lines[0] = " ".join(fields)
    hea.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------- MATLAB files


def _mat5_header() -> bytes:
    text = b"MATLAB 5.0 MAT-file, hostile test file"
    return text.ljust(116, b" ") + bytes(8) + struct.pack("<H", 0x0100) + b"IM"


def _matrix_prefix(name: bytes, rows: int, cols: int) -> bytes:
    """The start of a MAT-5 ``miMATRIX`` holding a ``rows x cols`` double array (values follow)."""
    nbytes = rows * cols * 8
    name_el = struct.pack("<II", 1, len(name)) + name.ljust(-(-len(name) // 8) * 8, b"\0")
    body = (
        struct.pack("<IIII", 6, 8, 6, 0)  # array flags: class double
        + struct.pack("<IIii", 5, 8, rows, cols)  # dimensions
        + name_el
        + struct.pack("<II", 9, nbytes)  # real part: miDOUBLE
    )
    return struct.pack("<II", 14, len(body) + nbytes) + body


def _element(mtype: int, payload: bytes) -> bytes:
    return struct.pack("<II", mtype, len(payload)) + payload + bytes(-len(payload) % 8)


def reserved_type_mat(path: Path) -> Path:
    """A 224-byte MAT-5 file: one ``miCOMPRESSED`` matrix whose real part has the reserved data type 10.

    ``scipy.io.loadmat`` (1.17) dies of a segmentation fault on it.
    """
    body = (
        _element(6, struct.pack("<II", 6, 0))  # array flags: class double
        + _element(5, struct.pack("<ii", 2, 2))  # dimensions 2 x 2
        + _element(1, b"val")
        + _element(10, bytes(32))  # the real part, with reserved data type 10
    )
    packed = zlib.compress(_element(14, body), 9)
    data = _mat5_header() + struct.pack("<II", 15, len(packed)) + packed
    path.write_bytes(data.ljust(224, b"\0"))
    return path


def zlib_bomb_mat(path: Path, chunks: int = 800, lie: bool = False) -> Path:
    """A MAT-5 file with one ``miCOMPRESSED`` ``val`` of ``12 x 16384*chunks`` zeros (1.5 MiB of zeros a chunk).

    The default inflates 1.2 MB to 1.26 GB. Built in milliseconds: after a full flush every chunk compresses to the
    same bytes, so one chunk's bytes are repeated and the zlib trailer (Adler-32) is computed arithmetically. With
    ``lie=True`` the matrix declares only 64 values, so the stream runs far past the size it declares.
    """
    cols = 16384 * chunks
    prefix = _matrix_prefix(b"val", 12, 64 if lie else cols)
    zeros = bytes(12 * 8 * 16384)
    packer = zlib.compressobj(9)
    head = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    adler = zlib.adler32(prefix)
    a, b = adler & 0xFFFF, adler >> 16
    b = (b + len(zeros) * chunks * a) % 65521  # Adler-32 over zeros: a stays, b grows by a per byte
    stream = head + block * chunks + b"\x03\x00" + struct.pack(">I", (b << 16) | a)
    path.write_bytes(_mat5_header() + struct.pack("<II", 15, len(stream)) + stream)
    return path


def cell_ecg_mat(path: Path) -> Path:
    """A CPSC-style file whose ``ECG`` is a cell array (refused by name, not read)."""
    import numpy as np
    import scipy.io

    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = np.zeros((12, 10))
    scipy.io.savemat(path, {"ECG": cell})
    return path


# --------------------------------------------------------------------------------------- not regular files


def fifo_record(root: Path, name: str = "FIFO", which: str = ".mat") -> Path:
    """A record whose signal file (``which=".mat"``) or header (``".hea"``) is a FIFO nobody writes to."""
    challenge_record(root, name)
    target = root / f"{name}{which}"
    target.unlink()
    os.mkfifo(target)
    return target


def device_record(root: Path, name: str = "DEVZERO", device: str = "/dev/zero") -> Path:
    """A record whose signal file is a symbolic link to ``/dev/zero`` (a link out of the folder to a device)."""
    challenge_record(root, name)
    target = root / f"{name}.mat"
    target.unlink()
    target.symlink_to(device)
    return target


def mknod_record(root: Path, name: str = "CHARDEV") -> Path | None:
    """A record whose signal file is a character device inside the folder (``/dev/zero``'s numbers); None when
    this process may not create device nodes (not root)."""
    challenge_record(root, name)
    target = root / f"{name}.mat"
    target.unlink()
    try:
        os.mknod(target, 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    except (PermissionError, OSError):
        return None
    return target


# ------------------------------------------------------------------------------------------ links, layouts


def multisegment_escape(root: Path, outside: Path, name: str = "MULTI", fs: int = 500, n: int = 7500) -> Path:
    """A multi-segment header ``name/1 12 fs n`` whose one segment ``<name>_1`` links to a record in ``outside``.

    ``root/<name>_1.hea`` and ``root/<name>_1.mat`` are symbolic links to a full record written in ``outside``;
    ``name`` may hold sub-folders (``records100/00000/00001_lr``). Returns the multi-segment header.
    """
    segment = f"{Path(name).name}_1"
    challenge_record(outside, segment)
    hea = root / f"{name}.hea"
    hea.parent.mkdir(parents=True, exist_ok=True)
    hea.write_text(f"{Path(name).name}/1 12 {fs} {n}\n{segment} {n}\n#Age: 50\n#Sex: Male\n#Dx: {DX}\n")
    for ext in (".hea", ".mat"):
        (hea.parent / f"{segment}{ext}").symlink_to(outside / f"{segment}{ext}")
    return hea


def duplicate_names(root: Path, name: str = "DUP") -> tuple[Path, Path]:
    """The same record name in two sub-folders, ``a/`` and ``b/`` (the second a different recording)."""
    first = challenge_record(root / "a", name, "A0001")
    second = challenge_record(root / "b", name, "A0002")
    return first, second


def linked_reference(root: Path, outside: Path) -> Path:
    """A CPSC folder whose ``REFERENCE.csv`` is a symbolic link to a file in ``outside``."""
    outside.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    (outside / "REFERENCE.csv").write_text("Recording,First_label,Second_label,Third_label\nA0001,1,,\n")
    link = root / "REFERENCE.csv"
    link.symlink_to(outside / "REFERENCE.csv")
    return link


# ----------------------------------------------------------------------------------------- header values


def high_fs_record(root: Path, name: str = "HIGHFS", fs: str = "1000000") -> Path:
    """A record whose header declares a sampling rate of ``fs`` Hz (1 MHz: 7500 samples are 7.5 ms)."""
    hea = challenge_record(root, name)
    _edit_record_line(hea, 2, fs)
    return hea


def long_record(root: Path, name: str = "LONG", n: int = 2_000_000_000) -> Path:
    """A record whose header declares ``n`` samples (2e9 at 500 Hz: 46 days) over a 7500-sample signal file."""
    hea = challenge_record(root, name)
    _edit_record_line(hea, 3, str(n))
    return hea


def huge_age_record(root: Path, name: str = "OLD", age: str = "1e308") -> Path:
    """A record whose header gives ``#Age: 1e308``."""
    hea = challenge_record(root, name)
    hea.write_text(hea.read_text().replace("#Age: 74", f"#Age: {age}"))
    return hea


# ------------------------------------------------------------------------------------------- isolation


@dataclass
class Outcome:
    """What :func:`run_isolated` saw: ``status`` "ok", "raised" (``value`` is "Type: message"), "crashed" (a
    signal killed the child: ``value`` is its number), "timeout" or "exit"; wall seconds; extra peak memory (MB)."""

    status: str
    value: Any = None
    seconds: float = 0.0
    extra_mb: float = 0.0


def run_isolated(fn: Callable[..., Any], *args: Any, timeout: float = 20.0, guard_mb: int = 1024) -> Outcome:
    """Run ``fn(*args)`` in a forked child so that a crash, a hang or a memory blow-up fails a test, not the run.

    The child's address space is capped at its current size plus ``guard_mb`` (a blow-up becomes MemoryError), it
    is killed after ``timeout`` seconds, and it reports its result (pickled), its time and the growth of its peak
    resident memory. Linux/macOS only (fork).
    """
    import pickle
    import resource

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            size = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            hard = resource.getrlimit(resource.RLIMIT_AS)[1]
            cap = size + guard_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
            began = time.perf_counter()
            try:
                result: tuple[str, Any] = ("ok", fn(*args))
            except BaseException as exc:  # report everything, KeyboardInterrupt subclasses included
                result = ("raised", f"{type(exc).__name__}: {exc}")
            seconds = time.perf_counter() - began
            extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_rss) / 1024  # KiB -> MiB (Linux)
            try:
                payload = pickle.dumps((*result, seconds, extra))
            except Exception:
                payload = pickle.dumps((result[0], repr(result[1]), seconds, extra))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    os.set_blocking(read_end, False)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    status = None
    while status is None:
        try:
            while chunk := os.read(read_end, 1 << 16):
                chunks.append(chunk)
        except BlockingIOError:
            pass
        done, status_code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = status_code
        elif time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            return Outcome("timeout", None, timeout)
        else:
            time.sleep(0.01)
    try:
        while chunk := os.read(read_end, 1 << 16):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    os.close(read_end)
    if os.WIFSIGNALED(status):
        return Outcome("crashed", os.WTERMSIG(status))
    if not chunks:
        return Outcome("exit", os.WEXITSTATUS(status))
    kind, value, seconds, extra = pickle.loads(b"".join(chunks))
    return Outcome(kind, value, seconds, extra)


def in_process_pools(monkeypatch, prepare_module) -> list[int]:
    """Make ``prepare``'s worker pool run its work in this process; returns the list of pool sizes asked for."""
    sizes: list[int] = []

    class InProcessPool:  # records the pool size and runs the work here instead of starting processes
        def __init__(self, processes, initializer, initargs):
            sizes.append(processes)
            initializer(*initargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def imap(self, fn, jobs, chunksize=1):
            return map(fn, jobs)

    monkeypatch.setattr(prepare_module, "get_context", lambda method: type("Context", (), {"Pool": InProcessPool})())
    return sizes
