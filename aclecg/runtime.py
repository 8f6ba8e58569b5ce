"""What code runs on: the torch device, mixed precision, determinism (paths are in :mod:`aclecg.paths`).

One place for these so the data layer, the engine, evaluation and the app agree.
"""

from __future__ import annotations

import os

import torch

from aclecg.constraints import AMP_MODES
from aclecg.errors import ConfigError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` gives CUDA when available, else CPU; an unavailable CUDA request is a ``ConfigError``.

    ``cuda:N`` is checked against the visible GPUs here, at the boundary, rather than failing deep inside a run.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use --device cpu or auto")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from exc
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device {device!r} requested but only {torch.cuda.device_count()} GPU(s) are visible "
            f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})"
        )
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r}; use auto, cpu or cuda[:N]")
    return dev


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` (a CUDA device) computes bf16 natively: compute capability 8.0 (Ampere) or newer.

    ``torch.cuda.is_bf16_supported()`` is not used: it asks about the *current* device and also counts the
    emulated bf16 of older cards, which is slower than fp16 there.
    """
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.cuda.get_device_capability(index)[0] >= 8


def cpu_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16, read from ``/proc/cpuinfo``).

    ``ACLECG_CPU_BF16=0`` or ``=1`` overrides the detection.
    """
    forced = os.environ.get("ACLECG_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_amp(mode: str, device: torch.device, cpu_auto_bf16: bool = False) -> torch.dtype | None:
    """The autocast dtype for ``mode`` on ``device``; ``None`` means full float32.

    * ``auto``: bf16 on GPUs with native bf16 (compute capability >= 8), fp16 (with loss scaling) on older GPUs;
      on CPU float32, or bf16 when ``cpu_auto_bf16`` is set and the CPU has native bf16 (what pretraining asks
      for: measured 1.2-1.3x faster there, with the same linear-probe AUROC; see ``docs/training.md``);
    * ``bf16``: bf16 autocast on CUDA or CPU;
    * ``fp16``: CUDA only (a ``ConfigError`` on CPU);
    * ``off``: float32.
    """
    if mode not in AMP_MODES:
        raise ConfigError(f"amp must be one of {AMP_MODES}, got {mode!r}")
    if mode == "off":
        return None
    if device.type != "cuda":
        if mode == "fp16":
            raise ConfigError("amp fp16 needs a CUDA device; on CPU use --amp bf16 or off")
        if mode == "auto":
            return torch.bfloat16 if cpu_auto_bf16 and cpu_native_bf16() else None
        return torch.bfloat16
    if mode == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


AMP_NAMES = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}


def amp_from_name(name: str) -> torch.dtype | None:
    """The inverse of ``AMP_NAMES`` (what a run directory's config.json records as ``resolved_amp``)."""
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def precision_tag(device: torch.device, amp_dtype: torch.dtype | None) -> str:
    """A short tag for cache keys: ``""`` for CPU float32 (the keys of existing caches), else e.g. ``cuda-bf16``."""
    if device.type == "cpu" and amp_dtype is None:
        return ""
    name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]
    return f"{device.type}-{name}"


def set_deterministic(device: torch.device, enabled: bool) -> None:
    """Opt-in deterministic CUDA kernels (cuDNN deterministic, no benchmark, no TF32).

    On CPU the engine is bit-reproducible anyway; on CUDA without this, resume is exact only up to the
    non-determinism of cuDNN's and cuBLAS's kernel choice.
    """
    if device.type != "cuda" or not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)


# --------------------------------------------------------------------- precision policy of the evaluation arms
def inference_dtype(dev: torch.device) -> torch.dtype | None:
    """Autocast dtype for frozen forward passes: bf16 on GPUs with native bf16, fp16 on older GPUs, none on CPU."""
    return resolve_amp("auto", dev)


def training_dtype(dev: torch.device) -> torch.dtype | None:
    """Autocast dtype for probe/fine-tune training: bf16 where native, else float32 (fp16 would need loss scaling)."""
    dtype = resolve_amp("auto", dev)
    return dtype if dtype == torch.bfloat16 else None


def autocast(dev: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """A ``torch.autocast`` context for ``dtype`` on ``dev`` (disabled when ``dtype`` is None: full float32)."""
    return torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None)
