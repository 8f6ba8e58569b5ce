"""The device side of one training process: which device, what it is, its memory, its random state, one forward.

* :func:`pick_device`: the device a process trains on (under torchrun, the GPU of its ``LOCAL_RANK``);
* :func:`hardware_description`: one line naming the machine, for the run's status and the model cards;
* :func:`memory_fields`: the memory figure of a metrics row;
* :func:`rng_state` / :func:`set_rng_state`: torch's global generator, CUDA's and the augmentations' generator, as
  checkpointed for exact resume;
* :func:`guarded_forward`: the method's loss terms under autocast, an out-of-memory error turned into a reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

from aclecg.errors import ConfigError
from aclecg.parallel import DistInfo

__all__ = ["guarded_forward", "hardware_description", "memory_fields", "pick_device", "rng_state", "set_rng_state"]


def pick_device(config_device: str, device: torch.device, info: DistInfo) -> torch.device:
    """``device`` (resolved from the config's ``config_device``) made concrete for this process, and made current."""
    if info.enabled and device.type == "cuda":
        if str(config_device).startswith("cuda:"):
            raise ConfigError(
                f"device {config_device!r} with {info.world_size} processes: under torchrun each "
                f"process uses the GPU of its LOCAL_RANK; pass --device cuda (or auto) and choose "
                f"the GPUs with CUDA_VISIBLE_DEVICES"
            )
        device = torch.device("cuda", info.local_rank)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)  # no stray context on GPU 0 for a run on cuda:1
    return device


def hardware_description(device: torch.device) -> str:
    """One line naming the machine a run trained on (for model cards)."""
    import platform

    text = f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    if device.type == "cuda":
        text = f"{torch.cuda.get_device_name(device)} ({torch.cuda.device_count()} visible); " + text
    return text + f", torch {torch.__version__}"


def memory_fields(device: torch.device) -> dict[str, float]:
    """The memory figure of one metrics row, named for what it measures.

    On CUDA, ``peak_gpu_memory_mb`` is the peak of allocated tensor memory; on CPU, ``rss_mb`` is the process's
    current resident set size (no peak is tracked there).
    """
    if device.type == "cuda":
        return {"peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return {"rss_mb": round(int(line.split()[1]) / 1024, 1)}
    except OSError:
        pass
    return {"rss_mb": float("nan")}


def rng_state(device: torch.device, aug_gen: torch.Generator) -> dict[str, Any]:
    """Every generator a training step draws from, as a checkpoint stores it."""
    state = {"torch": torch.get_rng_state(), "augment": aug_gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device, aug_gen: torch.Generator) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    aug_gen.set_state(state["augment"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def guarded_forward(
    forward: Callable, view1: torch.Tensor, view2: torch.Tensor, device: torch.device, amp_dtype: torch.dtype | None
) -> tuple[dict[str, Any], str | None]:
    """The method's loss terms, or ``({}, reason)`` when this process ran out of memory."""
    try:
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            return forward(view1, view2), None
    except torch.OutOfMemoryError as exc:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return {}, str(exc).splitlines()[0][:200]


def machine_summary() -> str:
    """This machine in one line for the app's Home page: each GPU with its memory, else the CPU model, the cores
    this process may use, RAM and torch's version."""
    from pathlib import Path

    from aclecg.data.prepare import usable_cpus

    if torch.cuda.is_available():
        parts = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            parts.append(f"cuda:{i} {props.name} ({props.total_memory / 2**30:.0f} GiB)")
        return "GPU: " + "; ".join(parts)
    cpu = "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        total_kb = int(
            next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1]
        )
        mem = f", {total_kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"no GPU — {cpu}, {usable_cpus()} cores{mem}, torch {torch.__version__}"
