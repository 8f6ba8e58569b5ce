"""Self-supervised pretraining: one function, a run directory as its contract, exact resume, CPU/GPU/multi-GPU.

``pretrain(config, run_dir)`` trains one method on one or more prepared datasets and writes ``config.json``,
``metrics.jsonl``, ``status.json``, ``checkpoints/`` and ``encoder.pt`` into ``run_dir``; a run killed at any step
and resumed ends bit-identical to an uninterrupted one on CPU.

=================  ===============================================================================================
``config``         :class:`PretrainConfig` (plain data) and the run presets (:data:`RUN_PRESETS`, :data:`PRESETS`)
``data``           :class:`PretrainData` (prepared datasets read as one), :func:`epoch_permutation`
``schedule``       :func:`lr_at`, the learning-rate schedule
``rundir``         :class:`RunDir` (the run's files, its lock), :class:`Heartbeat`, :data:`STATES`, resume helpers
``devices``        device choice, hardware line, memory figures, random state, the guarded forward
``session``        :func:`run_session`: a process settles the run before training and records how it ended
``loop``           :func:`pretrain` and the :class:`Trainer` that runs the loop
=================  ===============================================================================================

The names below are loaded on first use, so ``from aclecg.training.rundir import RunDir`` or
``from aclecg.training import PRESETS`` (what the Pretraining page reads) imports neither torch nor the engine. The
background jobs (:mod:`aclecg.jobs`) import nothing from here: they read a run's ``status.json`` and
``metrics.jsonl`` as files.

>>> from aclecg.training import PretrainConfig, RUN_PRESETS
>>> sorted(RUN_PRESETS.names())
['cpu-quick', 'cpu-small', 'gpu-base']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aclecg import lazy

if TYPE_CHECKING:
    from aclecg.training.config import PRESETS, RUN_PRESETS, PretrainConfig, build_encoder_config, build_method
    from aclecg.training.data import PretrainData, epoch_permutation, resolve_data_path
    from aclecg.training.devices import hardware_description
    from aclecg.training.loop import MAX_CONSECUTIVE_SKIPS, Trainer, pretrain
    from aclecg.training.rundir import (
        STATES,
        Heartbeat,
        RunDir,
        clean_stale_files,
        find_resume_checkpoint,
        truncate_metrics,
    )
    from aclecg.training.schedule import lr_at
    from aclecg.training.session import RunContext, run_session

#: Public name -> the submodule that defines it.
_EXPORTS: dict[str, str] = {
    "PretrainConfig": "config",
    "RUN_PRESETS": "config",
    "PRESETS": "config",
    "build_encoder_config": "config",
    "build_method": "config",
    "PretrainData": "data",
    "resolve_data_path": "data",
    "epoch_permutation": "data",
    "lr_at": "schedule",
    "STATES": "rundir",
    "RunDir": "rundir",
    "Heartbeat": "rundir",
    "find_resume_checkpoint": "rundir",
    "clean_stale_files": "rundir",
    "truncate_metrics": "rundir",
    "hardware_description": "devices",
    "RunContext": "session",
    "run_session": "session",
    "pretrain": "loop",
    "Trainer": "loop",
    "MAX_CONSECUTIVE_SKIPS": "loop",
}

__all__ = [
    "MAX_CONSECUTIVE_SKIPS",
    "PRESETS",
    "RUN_PRESETS",
    "STATES",
    "Heartbeat",
    "PretrainConfig",
    "PretrainData",
    "RunContext",
    "RunDir",
    "Trainer",
    "build_encoder_config",
    "build_method",
    "clean_stale_files",
    "epoch_permutation",
    "find_resume_checkpoint",
    "hardware_description",
    "lr_at",
    "pretrain",
    "resolve_data_path",
    "run_session",
    "truncate_metrics",
]
assert set(__all__) == set(_EXPORTS)


def __getattr__(name: str) -> Any:
    return lazy.load(__name__, _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
