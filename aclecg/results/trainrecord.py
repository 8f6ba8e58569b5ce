"""What a model card says of how an encoder was trained, read from a run folder or from a committed checkpoint.

A run folder (``runs/ship-NAME``) holds ``status.json`` (state, start and end, hardware), ``config.json`` (the
configuration with the resolved device and precision) and ``metrics.jsonl`` (every step's loss). A committed
checkpoint folder (``checkpoints/NAME``) keeps only the plain configuration and ``metrics.jsonl``: its training
time then comes from the first and last step's clock, its device from the steps, and its precision is "not
recorded" rather than guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aclecg.errors import DataError

__all__ = ["TrainingRecord", "read_training_record"]


@dataclass(frozen=True)
class TrainingRecord:
    """``config``: the training configuration; ``precision``, ``device``, ``hardware``, ``minutes``,
    ``processes``: as the card prints them; ``metrics``: every logged step."""

    config: dict[str, Any]
    precision: str
    device: str
    hardware: str
    minutes: float
    processes: int
    metrics: list[dict[str, Any]]


def _metrics(folder: Path) -> list[dict[str, Any]]:
    path = folder / "metrics.jsonl"
    if not path.is_file():
        raise DataError(f"{folder}: no metrics.jsonl, so its loss curve and training time are unknown")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise DataError(f"{path}: no logged step")
    return rows


def read_training_record(folder: str | Path) -> TrainingRecord:
    """The training facts of ``folder``: a finished run folder, or a committed checkpoint folder (no status)."""
    folder = Path(folder)
    metrics = _metrics(folder)
    stored = json.loads((folder / "config.json").read_text())
    status_path = folder / "status.json"
    if status_path.is_file():
        status = json.loads(status_path.read_text())
        if status.get("state") != "finished":
            raise DataError(f"{folder} has not finished (state {status.get('state')!r})")
        return TrainingRecord(
            config=stored["config"],
            precision=stored.get("resolved_amp") or "fp32",
            device=stored.get("resolved_device", "the training device"),
            hardware=status.get("hardware") or "hardware not recorded (this run predates the status field)",
            minutes=(status.get("finished", 0) - status.get("started", 0)) / 60,
            processes=int(status.get("world_size", 1)),
            metrics=metrics,
        )
    config = stored.get("config", stored)  # a committed folder keeps the plain configuration
    clock = [float(m["time"]) for m in metrics if isinstance(m.get("time"), (int, float))]
    device = str(metrics[-1].get("device", "the training device"))
    return TrainingRecord(
        config=config,
        precision="not recorded",
        device=device,
        hardware=f"{device}, timed from its first to its last step",
        minutes=(max(clock) - min(clock)) / 60 if len(clock) > 1 else 0.0,
        processes=int(metrics[-1].get("world_size", 1)),
        metrics=metrics,
    )
