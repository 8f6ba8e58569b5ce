"""Optional C kernel for the augmentations on the CPU: their time geometry in one pass, and Physio-AUG in one call.

``aclecg.augment`` renders every geometric step (crop, zero-fill cycle mask, time-out, shift) through
:func:`aclecg.augment.render_warp`, whose torch code runs on any device and dtype. For CPU float32 batches this
module does the same in C (``timewarp.c``): :func:`timewarp` renders a warp, :func:`physio` also derives
Physio-AUG's parameters from the random draws. Physio-AUG on 256 x 12 x 1000 takes 1.0-1.7 ms instead of 7-9 ms
in torch on two cores (``benchmarks/bench_augment.py``).

The kernel is compiled on first use with the system C compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``; about
one second) into ``<cache root>/native/<hash>/``, keyed by the source, the compiler and the machine, and reused
afterwards. Nothing is downloaded. When no compiler is found, the build fails, or ``ACLECG_NATIVE=0`` is set, the
functions return ``None`` and callers use the torch code: the views are the same either way
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
from typing import Callable, Iterator

import torch
from torch import Tensor

from aclecg.runtime import cache_root

__all__ = ["SHIFT_MODES", "NativeUnavailable", "accepts", "available", "build", "describe", "enabled", "physio",
           "portable", "timewarp", "use"]

SOURCE = Path(__file__).with_name("timewarp.c")
#: shift mode name -> the kernel's code
SHIFT_MODES = {"circular": 0, "zero": 1, "edge": 2}
#: the kernel marks spans with the bits of a 32-bit word, one bit being reserved
MAX_SPANS = 31
#: leads per record the kernel accepts
MAX_LEADS = 64
_MAX_PEAKS = 4096
#: below this many output values the work is not split across threads
_SPLIT_MIN = 1 << 17
#: outputs larger than this are written with non-temporal stores (they would not stay in the cache anyway)
_STREAM_MIN_BYTES = 8 << 20
_FLAGS = ["-O3", "-std=gnu11", "-fPIC", "-shared", "-ffp-contract=off"]

_lock = threading.Lock()
_state: dict[str, object] = {}
_override: list[bool] = []
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


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
            fn = lib.aclecg_physio
            fn.restype = ctypes.c_int
            fn.argtypes = ([ctypes.c_void_p] * 2 + [ctypes.c_int64] * 5 + [ctypes.c_void_p, ctypes.c_int64]
                           + [ctypes.c_void_p] * 6 + [ctypes.c_int])
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
    """A pool of at least ``workers`` threads, created anew after a fork (a child inherits no running threads)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or _pool._max_workers < workers:  # noqa: SLF001
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aclecg-timewarp")
            _pool_pid = os.getpid()
        return _pool


def _as(t: Tensor, dtype: torch.dtype) -> Tensor:
    """``t`` as a contiguous CPU tensor of ``dtype`` (no copy when it already is one)."""
    if t.dtype == dtype and t.device.type == "cpu" and t.is_contiguous():
        return t
    return t.detach().to("cpu", dtype).contiguous()


def accepts(x: Tensor, rpeaks: Tensor | None = None, n_spans: int = 0) -> bool:
    """Whether the kernel will render ``x`` (and :func:`physio` with these R-peaks and up to ``n_spans`` spans)."""
    if n_spans > MAX_SPANS or (rpeaks is not None and rpeaks.shape[1] > _MAX_PEAKS):
        return False
    return _applicable(x) is not None


def _applicable(x: Tensor) -> ctypes.CDLL | None:
    """The library when the kernel can render ``x``: a CPU float32 (B, L, T) batch without gradients."""
    if (x.device.type != "cpu" or x.dtype != torch.float32 or x.ndim != 3 or x.requires_grad or x.shape[-1] < 2
            or x.shape[1] > MAX_LEADS or not enabled()):
        return None
    return _load()


def _split(name: str, fn: Callable[[int, int], int], batch: int, numel: int) -> None:
    """Run ``fn(b0, b1)`` over the batch, split across ``torch.get_num_threads()`` threads (ctypes releases the
    GIL); the calling thread takes the first chunk."""
    workers = max(1, min(torch.get_num_threads(), batch))
    if workers == 1 or numel < _SPLIT_MIN:
        codes = [fn(0, batch)]
    else:
        cuts = [batch * k // workers for k in range(workers + 1)]
        pool = _executor(workers - 1)
        futures = [pool.submit(fn, b0, b1) for b0, b1 in zip(cuts[1:-1], cuts[2:], strict=True)]
        codes = [fn(cuts[0], cuts[1])] + [f.result() for f in futures]
    if any(codes):
        raise RuntimeError(f"{name} failed with code {max(codes, key=abs)} (-1: bad sizes, -2: out of memory)")


def timewarp(x: Tensor, start: Tensor, step: Tensor, shift: Tensor, mode: str, spans: Tensor,
             span_leads: Tensor) -> Tensor | None:
    """Render a warp with the C kernel, or return ``None`` when it does not apply (not CPU float32, gradients
    required, too many spans, kernel off or unavailable): the caller then uses the torch code.

    Arguments are those of :class:`aclecg.augment.Warp`: ``start``, ``step`` (B,) crop, ``shift`` (B,) samples,
    ``mode`` in :data:`SHIFT_MODES`, ``spans`` (B, M, 2) ``[a, e)`` in crop-output samples (``a < 0`` unused),
    ``span_leads`` (B, M, L) bool.
    """
    lib = _applicable(x) if spans.shape[1] <= MAX_SPANS else None
    if lib is None:
        return None
    start, step = _as(start, torch.float64), _as(step, torch.float64)
    shift, spans, span_leads = _as(shift, torch.int64), _as(spans, torch.int64), _as(span_leads, torch.uint8)
    n_spans = spans.shape[1]
    return _render(lib.aclecg_timewarp, x, (
        start.data_ptr(), step.data_ptr(), shift.data_ptr(), SHIFT_MODES[mode],
        spans.data_ptr() if n_spans else None, span_leads.data_ptr() if n_spans else None, n_spans))


def physio(x: Tensor, rpeaks: Tensor, u_crop: Tensor, u_mask: Tensor, u_shift: Tensor, *,
           crop_scale: tuple[float, float], n_cycles: tuple[int, int], window: str, pre: int, post: int,
           fallback_len: int, scope: int, region_table: Tensor, max_shift: float, rr_default: float,
           mode: str) -> Tensor | None:
    """Physio-AUG (random scale crop -> zero-fill cardiac-cycle mask -> temporal shift) in one C call: the steps'
    parameters are derived from the uniform draws ``u_crop`` (B, 2), ``u_mask`` (B, 3 + C) and ``u_shift`` (B,)
    exactly as :class:`aclecg.augment.Compose` derives them in torch, then rendered. ``None`` when the kernel does
    not apply (the caller then runs the torch planning).

    ``rpeaks`` (B, K) must be compact (as ``sanitize_rpeaks`` returns them); ``scope`` is -2 (all leads), -1 (a
    random region per sample) or a region's row in ``region_table`` (R, L); ``max_shift`` in samples, negative for
    the median RR; ``rr_default`` the limit in samples when a record has fewer than two peaks.
    """
    lib = _applicable(x)
    if lib is None or not accepts(x, rpeaks, n_cycles[1] + 1):
        return None
    rpeaks = _as(rpeaks, torch.int64)
    u_crop, u_mask, u_shift = _as(u_crop, torch.float32), _as(u_mask, torch.float32), _as(u_shift, torch.float32)
    table = _as(region_table, torch.uint8)
    dp = torch.tensor([crop_scale[0], crop_scale[1] - crop_scale[0], max_shift, rr_default], dtype=torch.float64)
    ip = torch.tensor([n_cycles[0], n_cycles[1], {"rr": 0, "pqrst": 1}[window], pre, post, fallback_len, scope,
                       table.shape[0], SHIFT_MODES[mode]], dtype=torch.int64)
    return _render(lib.aclecg_physio, x, (
        rpeaks.data_ptr(), rpeaks.shape[1], u_crop.data_ptr(), u_mask.data_ptr(), u_shift.data_ptr(),
        dp.data_ptr(), ip.data_ptr(), table.data_ptr()))


def _render(fn: Callable[..., int], x: Tensor, args: tuple) -> Tensor:
    """A new output for ``x`` (B, L, T), filled by ``fn(x, y, B, L, T, b0, b1, *args, stream)`` over the batch.

    ``args`` holds raw pointers: the tensors behind them must stay alive in the caller until this returns.
    """
    batch, n_leads, length = x.shape
    x = x.contiguous()
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    if batch:
        head = (x.data_ptr(), y.data_ptr(), batch, n_leads, length)
        tail = (*args, int(y.numel() * 4 >= _STREAM_MIN_BYTES))
        _split(fn.__name__, lambda b0, b1: int(fn(*head, b0, b1, *tail)), batch, y.numel())
    return y
