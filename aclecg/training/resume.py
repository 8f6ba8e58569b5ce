"""What ``pretrain --resume`` may continue from: the run's own intact checkpoints, and nothing else.

Before anything in the run directory changes, every step checkpoint and ``best.pt`` is read and sorted:

* **usable**: verified (:func:`aclecg.checkpoint.load_checkpoint`), holding the full training state, and made by
  this run: the same method, hyper-parameters, encoder configuration, data fingerprint, excluded splits and folds
  and seed, at a step this run reaches (and that its file name states);
* **damaged**: fails its integrity checks or cannot be read;
* **foreign**: intact, but from another run or holding no training state.

The newest usable checkpoint is resumed from; a damaged newer one is skipped with a warning (resuming rewrites that
step). A foreign checkpoint stops the resume, since continuing would overwrite or prune it, and so do damaged
checkpoints when none is usable, since that would start from scratch over them. Either refusal is one line naming
the files, and nothing in the run directory has changed. With ``restart`` every unusable file is moved (never
deleted) to ``checkpoints/set-aside/<time>/`` and the run continues from the newest usable checkpoint, or from
scratch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aclecg import checkpoint as ckpt
from aclecg.errors import AclEcgError, CheckpointError
from aclecg.training.rundir import RunDir

__all__ = ["IDENTITY_FIELDS", "Inspected", "choose_resume_state", "identity_differences", "inspect_checkpoint"]

#: What must agree between a checkpoint and the run resuming from it (besides a reachable step).
IDENTITY_FIELDS = ("method", "hparams", "encoder_config", "data_fingerprint", "exclude_splits", "exclude_folds", "seed")

#: Where ``restart`` moves the checkpoints a resume cannot use.
SET_ASIDE = "set-aside"


@dataclass
class Inspected:
    """One checkpoint file as a resume sees it; ``problem`` is ``None`` for a usable one."""

    path: Path
    state: dict[str, Any] | None
    problem: str | None = None
    foreign: bool = False


def _identity_of(state: dict[str, Any]) -> dict[str, Any]:
    prov = ckpt.provenance_of(state)
    return {
        "method": state.get("method"),
        "hparams": state.get("hparams"),
        "encoder_config": state.get("encoder_config"),
        "data_fingerprint": prov["data_fingerprint"],
        "exclude_splits": prov["exclude_splits"],
        "exclude_folds": prov["exclude_folds"],
        "seed": prov["seed"],
    }


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    if isinstance(value, str) and len(value) == 64:  # a sha256 fingerprint
        text = value[:12] + "…"
    return text if len(text) <= 60 else text[:57] + "…"


def _normalise(name: str, value: Any) -> Any:
    if name in ("exclude_splits", "exclude_folds") and isinstance(value, (list, tuple)):
        return sorted(str(v) for v in value)
    return value


def identity_differences(state: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Each identity field where the checkpoint ``state`` differs from the run's ``expected`` values, as
    ``"field X (this run: Y)"`` (sub-keys for dicts); fields the checkpoint does not record are not compared."""
    found = _identity_of(state)
    out = []
    for name in IDENTITY_FIELDS:
        mine, theirs = expected.get(name), found.get(name)
        if theirs is None or mine is None or _normalise(name, mine) == _normalise(name, theirs):
            continue
        if isinstance(mine, dict) and isinstance(theirs, dict):
            for key in sorted(set(mine) | set(theirs), key=str):
                if mine.get(key) != theirs.get(key):
                    out.append(f"{name}.{key} {_short(theirs.get(key))} (this run: {_short(mine.get(key))})")
        else:
            out.append(f"{name} {_short(theirs)} (this run: {_short(mine)})")
    return out


def _step_problem(path: Path, state: dict[str, Any], total_steps: int) -> str | None:
    step = state.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= total_steps:
        return f"step {step!r} (this run: 0..{total_steps})"
    if path.name.startswith("step_"):
        try:
            named = int(path.stem.split("_", 1)[1])
        except ValueError:
            return None
        if named != step:
            return f"step {step} (its file name: {named})"
    return None


def inspect_checkpoint(path: Path, expected: dict[str, Any], total_steps: int) -> Inspected:
    """Read one checkpoint and say whether this run can resume from it."""
    try:
        state = ckpt.load_checkpoint(path)
    except AclEcgError as exc:
        return Inspected(path, None, str(exc))
    if "optimizer" not in state or "rng" not in state or "model" not in state:
        return Inspected(path, None, "holds no training state", foreign=True)
    differences = identity_differences(state, expected)
    step_problem = _step_problem(path, state, total_steps)
    if step_problem:
        differences.append(step_problem)
    if differences:
        return Inspected(path, None, "from another run: " + ", ".join(differences), foreign=True)
    return Inspected(path, state)


def _set_aside(run: RunDir, paths: list[Path], log: Callable[[str], None]) -> None:
    """Move ``paths`` and their sidecars to ``checkpoints/set-aside/<time>/`` (same file system: renames)."""
    base = folder = run.checkpoints / SET_ASIDE / time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    folder.mkdir(parents=True)
    for path in paths:
        for item in (path, path.with_name(path.name + ".sha256")):
            if item.exists():
                os.replace(item, folder / item.name)
    log(f"set aside {len(paths)} unusable checkpoint(s) in {folder}: {', '.join(p.name for p in paths)}")


def choose_resume_state(
    run: RunDir, expected: dict[str, Any], total_steps: int, restart: bool, log: Callable[[str], None]
) -> dict[str, Any] | None:
    """The training state to resume from (``None``: start from scratch), or :class:`CheckpointError` (one line,
    nothing changed) when a foreign checkpoint is present, or only damaged ones, and ``restart`` is not set."""
    candidates = [p for p in run.step_checkpoints() + [run.checkpoints / "best.pt"] if p.is_file()]
    inspected = [inspect_checkpoint(path, expected, total_steps) for path in candidates]
    usable = next((item for item in inspected if item.problem is None), None)
    foreign = [item for item in inspected if item.foreign]
    damaged = [item for item in inspected if item.problem is not None and not item.foreign]
    for item in inspected:
        if item.foreign:
            log(f"warning: {item.path.name} cannot be resumed: {item.problem}")
        elif item.problem is not None:
            log(f"warning: {item.problem}; falling back to the previous checkpoint")
    if not restart and (foreign or (damaged and usable is None)):
        if foreign:
            what = "not made by this run: " + "; ".join(f"{item.path.name} ({item.problem})" for item in foreign)
            action = "move them away (resuming would overwrite or prune them) or pass --restart to set them aside"
        else:
            names = ", ".join(item.path.name for item in damaged)
            what = f"no checkpoint can be used ({names} failed their integrity checks)"
            action = "pass --restart to set them aside and start from scratch"
        raise CheckpointError(f"cannot resume {run.path}: {what}; nothing was changed: {action}")
    if restart:
        unusable = foreign + (damaged if usable is None else [])
        if unusable:
            _set_aside(run, [item.path for item in unusable], log)
    if usable is None:
        return None
    log(f"resuming from {usable.path.name}")
    return usable.state
