"""Limits on background jobs: concurrent job slots, queue length, the runs folder's disk quota, and the caps on
what a browser may launch.

Each is read from the environment when a job is launched, so an operator sets them where the app starts:

* ``ACLECG_MAX_JOBS``: jobs running at once (default: one per visible GPU, one on a CPU machine); more wait
  queued (see :mod:`aclecg.jobrunner`).
* ``ACLECG_MAX_QUEUED``: jobs waiting at once (default 16); a launch beyond is refused.
* ``ACLECG_RUNS_QUOTA_GB``: size of the runs folder above which launches are refused (default 20; ``0``: none).
* :data:`aclecg.constraints.APP_LAUNCH_PARAMS`: epochs, batch size and seeds a browser may ask for.

>>> check_app_caps("pretrain", ["--epochs", "5", "--batch-size", "64"])
>>> check_app_caps("pretrain", ["--epochs", "5000", "--batch-size", "64"])
Traceback (most recent call last):
...
aclecg.errors.ConfigError: launch from the app: epochs must be an integer in [1, 200], got 5000
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from aclecg.constraints import APP_LAUNCH_PARAMS, Integer, validate
from aclecg.errors import AclEcgError, ConfigError

MAX_JOBS_ENV = "ACLECG_MAX_JOBS"
MAX_QUEUED_ENV = "ACLECG_MAX_QUEUED"
QUOTA_ENV = "ACLECG_RUNS_QUOTA_GB"
DEFAULT_MAX_QUEUED = 16
DEFAULT_QUOTA_GB = 20.0

#: Command-line flag of each capped parameter, and the job kinds that must give it when launched from the app.
_CAPPED_FLAGS = {"epochs": "--epochs", "batch_size": "--batch-size", "seeds": "--seeds"}
_REQUIRED = {"pretrain": ("epochs", "batch_size"), "sweep": ()}


def _env_number(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def max_jobs(visible_gpus: int) -> int:
    """Jobs that may run at once: ``ACLECG_MAX_JOBS``, else one per GPU (one without a GPU)."""
    value = _env_number(MAX_JOBS_ENV, max(visible_gpus, 1), 1)
    if value != int(value):
        raise ConfigError(f"{MAX_JOBS_ENV}={value:g} must be a whole number")
    return int(value)


def max_queued() -> int:
    """Jobs that may wait for a slot at once (``ACLECG_MAX_QUEUED``, default 16)."""
    return int(_env_number(MAX_QUEUED_ENV, DEFAULT_MAX_QUEUED, 0))


def quota_bytes() -> int | None:
    """The runs folder's quota in bytes (``ACLECG_RUNS_QUOTA_GB``, default 20 GB), or ``None`` for no quota."""
    gb = _env_number(QUOTA_ENV, DEFAULT_QUOTA_GB, 0)
    return int(gb * 1e9) if gb > 0 else None


def folder_bytes(root: Path) -> int:
    """Bytes of the files under ``root`` (links not followed; files vanishing meanwhile are skipped)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def check_quota(root: Path) -> None:
    """An :class:`AclEcgError` when the runs folder ``root`` has reached its quota."""
    quota = quota_bytes()
    if quota is None or not root.is_dir():
        return
    used = folder_bytes(root)
    if used >= quota:
        raise AclEcgError(
            f"the runs folder holds {used / 1e9:.1f} GB, over its quota of {quota / 1e9:g} GB ({QUOTA_ENV}); "
            "delete finished runs you no longer need, or ask the operator to raise the quota"
        )


def app_bounds(name: str) -> tuple[int, int]:
    """The smallest and largest value of a capped integer of :data:`APP_LAUNCH_PARAMS` (what a form offers)."""
    constraint = APP_LAUNCH_PARAMS[name]
    if not isinstance(constraint, Integer) or constraint.lo is None or constraint.hi is None:
        raise TypeError(f"{name} is not a bounded integer")
    return constraint.lo, constraint.hi


def option_value(args: Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` in a command line (``--flag VALUE`` or ``--flag=VALUE``, the last one winning)."""
    value = None
    args = [str(a) for a in args]
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def check_app_caps(kind: str, args: Sequence[str]) -> None:
    """A :class:`ConfigError` unless a launch from the app stays within :data:`APP_LAUNCH_PARAMS`.

    The app's form already bounds its widgets; this check is the library's own, so a crafted request cannot ask
    for more. A pretraining launch must name its epochs and batch size, and may not load a configuration file or
    override settings (``--config``, ``--set``) that the caps would not see.
    """
    args = [str(a) for a in args]
    for flag in ("--config", "--set", "--max-steps"):
        if any(a == flag or a.startswith(flag + "=") for a in args):
            raise ConfigError(f"launch from the app: {flag} is not allowed (use the form's fields)")
    values: dict[str, object] = {}
    for name, flag in _CAPPED_FLAGS.items():
        raw = option_value(args, flag)
        if raw is None:
            if name in _REQUIRED.get(kind, ()):
                raise ConfigError(f"launch from the app: {flag} must be given")
            continue
        try:
            values[name] = int(raw)
        except ValueError:
            raise ConfigError(f"launch from the app: {flag} must be an integer, got {raw!r}") from None
    validate("launch from the app", APP_LAUNCH_PARAMS, values)


def pretrain_form(preset: str, method: str, stamp: str) -> dict[str, object]:
    """What the app's launch form shows for a run preset and method: the preset's epochs and batch size (within
    the app's caps) and a run name naming method and preset, ``METHOD-PRESET-STAMP``.

    The form passes exactly these to ``pretrain`` (``--epochs``, ``--batch-size``), so a run uses what it shows.

    >>> pretrain_form("cpu-small", "simclr", "1205-0900")
    {'epochs': 20, 'batch_size': 64, 'name': 'simclr-cpu-small-1205-0900'}
    """
    from aclecg.training.config import RUN_PRESETS

    values = RUN_PRESETS.get(preset)
    (e_lo, e_hi), (b_lo, b_hi) = app_bounds("epochs"), app_bounds("batch_size")
    return {
        "epochs": min(max(int(values.get("epochs", 2)), e_lo), e_hi),
        "batch_size": min(max(int(values.get("batch_size", 64)), b_lo), b_hi),
        "name": f"{method}-{preset}-{stamp}",
    }
