"""Where things live and what they run on: the repository root, the on-disk cache root, the torch device.

One place for these so the data layer, the engine, evaluation and the app agree.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from aclecg.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """Root of every on-disk cache (prepared data, embeddings, 2-D maps): ``$ACLECG_CACHE`` or ``<repo>/.cache``."""
    env = os.environ.get("ACLECG_CACHE", "").strip()
    return Path(env).expanduser().resolve() if env else REPO_ROOT / ".cache"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` gives CUDA when available, else CPU; an unavailable CUDA request is a ``ConfigError``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use --device cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from exc
