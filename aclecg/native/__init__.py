"""Optional C kernel for the augmentations' time geometry (crop + span masks + shift in one pass).

``aclecg.augment`` renders every geometric step through :func:`aclecg.augment.render_warp`. Its torch code runs on
any device and dtype; for CPU float32 batches this module provides the same computation as a small C kernel
(``timewarp.c``), about 10x faster on 256 x 12 x 1000 batches (``benchmarks/bench_augment.py``).

The kernel is compiled on first use with the system C compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``; about
one second) into ``<cache root>/native/<hash>/``, keyed by the source, the compiler and the machine, and reused
afterwards. Nothing is downloaded. When no compiler is found, the build fails, or ``ACLECG_NATIVE=0`` is set,
:func:`timewarp` returns ``None`` and callers use the torch code: results are the same either way
(``tests/test_native.py``). :func:`describe` says which path is in use.

>>> from aclecg import native
>>> native.describe()  # doctest: +SKIP
'C kernel (AVX-512), 2 threads'
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

from aclecg.runtime import cache_root

__all__ = ["SHIFT_MODES", "NativeUnavailable", "available", "build", "describe", "enabled", "portable", "timewarp",
           "use"]

SOURCE = Path(__file__).with_name("timewarp.c")
#: shift mode name -> the kernel's code
SHIFT_MODES = {"circular": 0, "zero": 1, "edge": 2}
#: the kernel marks spans with the bits of a 32-bit word, one bit being reserved
MAX_SPANS = 31
#: below this many output values the work is not split across threads
_SPLIT_MIN = 1 << 17
#: outputs larger than this are written with non-temporal stores (they would not stay in the cache anyway)
_STREAM_MIN_BYTES = 8 << 20
_FLAGS = ["-O3", "-std=gnu11", "-fPIC", "-shared", "-ffp-contract=off"]

_lock = threading.Lock()
_state: dict[str, object] = {}
_override: list[bool] = []
_pool: ThreadPoolExecutor | None = None


class NativeUnavailable(RuntimeError):
    """The kernel could not be built or loaded; the message says why."""


def _compiler() -> str | None:
    for name in (os.environ.get("CC", "").strip(), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _library_path(compiler: str) -> Path:
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise NativeUnavailable(f"C compiler {compiler} does not run: {exc}") from None
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), compiler.encode(), version.encode(), " ".join(_FLAGS).encode(),
                 platform.machine().encode(), sys.platform.encode()):
        key.update(part)
        key.update(b"\0")
    return cache_root() / "native" / key.hexdigest()[:16] / "libaclecg_timewarp.so"


def build() -> Path:
    """Compile the kernel unless a build for this source, compiler and machine exists; return the library path.

    Raises :class:`NativeUnavailable` with the compiler's message when it cannot be built.
    """
    compiler = _compiler()
    if compiler is None:
        raise NativeUnavailable("no C compiler found (set CC, or install cc/gcc/clang)")
    target = _library_path(compiler)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        out = Path(tmp) / target.name
        cmd = [compiler, *_FLAGS, str(SOURCE), "-o", str(out), "-lm"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise NativeUnavailable(f"compiling {SOURCE.name} failed: {exc}") from None
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise NativeUnavailable(f"compiling {SOURCE.name} with {compiler} failed: {' | '.join(tail)}")
        os.replace(out, target)  # atomic: concurrent builders leave one complete library
    return target


def _load() -> ctypes.CDLL | None:
    """The loaded library, building it on first call; ``None`` (with the reason kept) when unavailable."""
    with _lock:
        if "lib" in _state:
            return _state["lib"]  # type: ignore[return-value]
        lib = None
        try:
            path = build()
            lib = ctypes.CDLL(str(path))
            fn = lib.aclecg_timewarp
            fn.restype = ctypes.c_int
            fn.argtypes = ([ctypes.c_void_p] * 2 + [ctypes.c_int64] * 5 + [ctypes.c_void_p] * 3 + [ctypes.c_int]
                           + [ctypes.c_void_p] * 2 + [ctypes.c_int64, ctypes.c_int])
            lib.aclecg_timewarp_isa.restype = ctypes.c_int
            lib.aclecg_timewarp_force_scalar.argtypes = [ctypes.c_int]
            _state["isa"] = int(lib.aclecg_timewarp_isa())
            _state["path"] = str(path)
        except (NativeUnavailable, OSError, AttributeError) as exc:
            _state["reason"] = str(exc)
            lib = None
        _state["lib"] = lib
        return lib


def enabled() -> bool:
    """Whether the kernel may be used: not switched off by ``ACLECG_NATIVE=0`` or :func:`use`."""
    if _override:
        return _override[-1]
    return os.environ.get("ACLECG_NATIVE", "1").strip().lower() not in {"0", "false", "no", "off"}


@contextlib.contextmanager
def use(flag: bool) -> Iterator[None]:
    """Within the block, use the kernel (``True``, when available) or always the torch code (``False``)."""
    _override.append(bool(flag))
    try:
        yield
    finally:
        _override.pop()


def available() -> bool:
    """Whether the kernel is enabled and built (builds it if needed)."""
    return enabled() and _load() is not None


def describe() -> str:
    """One line for logs, benchmarks and the app: which implementation renders the time geometry on the CPU."""
    if not enabled():
        return "torch (C kernel switched off)"
    if _load() is None:
        return f"torch (C kernel unavailable: {_state.get('reason')})"
    isa = "AVX-512" if _state.get("isa") == 512 else "portable scalar"
    return f"C kernel ({isa}), {torch.get_num_threads()} threads"


@contextlib.contextmanager
def portable(flag: bool = True) -> Iterator[None]:
    """Within the block, the kernel runs its portable scalar loop even on AVX-512 CPUs (for tests and timing)."""
    lib = _load()
    if lib is None:
        yield
        return
    lib.aclecg_timewarp_force_scalar(int(flag))
    try:
        yield
    finally:
        lib.aclecg_timewarp_force_scalar(0)


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None or _pool._max_workers < workers:  # noqa: SLF001 - grow the pool when threads are raised
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aclecg-timewarp")
        return _pool


def timewarp(x: Tensor, start: Tensor, step: Tensor, shift: Tensor, mode: str, spans: Tensor,
             span_leads: Tensor) -> Tensor | None:
    """Render a warp with the C kernel, or return ``None`` when it does not apply (not CPU float32, gradients
    required, too many spans, kernel off or unavailable): the caller then uses the torch code.

    Arguments are those of :class:`aclecg.augment.Warp`: ``start``, ``step`` (B,) crop, ``shift`` (B,) samples,
    ``mode`` in :data:`SHIFT_MODES`, ``spans`` (B, M, 2) ``[a, e)`` in crop-output samples (``a < 0`` unused),
    ``span_leads`` (B, M, L) bool.
    """
    if (x.device.type != "cpu" or x.dtype != torch.float32 or x.ndim != 3 or x.requires_grad
            or spans.shape[1] > MAX_SPANS or x.shape[-1] < 2 or not enabled()):
        return None
    lib = _load()
    if lib is None:
        return None
    batch, n_leads, length = x.shape
    x = x.contiguous()
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    if batch == 0:
        return y
    start = start.detach().to("cpu", torch.float64).contiguous()
    step = step.detach().to("cpu", torch.float64).contiguous()
    shift = shift.detach().to("cpu", torch.int64).contiguous()
    n_spans = spans.shape[1]
    spans = spans.detach().to("cpu", torch.int64).contiguous()
    span_leads = span_leads.detach().to("cpu", torch.uint8).contiguous()
    stream = int(y.numel() * 4 >= _STREAM_MIN_BYTES)
    ptrs = (x.data_ptr(), y.data_ptr(), batch, n_leads, length)
    tail = (start.data_ptr(), step.data_ptr(), shift.data_ptr(), SHIFT_MODES[mode],
            spans.data_ptr() if n_spans else None, span_leads.data_ptr() if n_spans else None, n_spans, stream)

    def run(b0: int, b1: int) -> int:
        return int(lib.aclecg_timewarp(*ptrs, b0, b1, *tail))

    workers = max(1, min(torch.get_num_threads(), batch))
    if workers == 1 or y.numel() < _SPLIT_MIN:
        codes = [run(0, batch)]
    else:
        cuts = [batch * k // workers for k in range(workers + 1)]
        # the calling thread renders the first chunk while the pool renders the others
        futures = [_executor(workers - 1).submit(run, b0, b1) for b0, b1 in zip(cuts[1:-1], cuts[2:])]
        codes = [run(cuts[0], cuts[1])] + [f.result() for f in futures]
    if any(codes):
        raise RuntimeError(f"aclecg_timewarp failed with code {max(codes, key=abs)} for x {tuple(x.shape)}")
    return y
