"""What the Pretraining page shows of a run beyond its state: progress figures and a cost estimate before launch.

* :func:`run_progress`: elapsed time, ETA, steps/s and the current learning rate of a run, from its
  ``metrics.jsonl`` rows (:func:`aclecg.jobs.read_metrics`) and ``status.json``;
* :func:`measured_step_costs`: seconds per training step per method and device class, measured from the loss
  curves committed with the shipped checkpoints (``checkpoints/**/metrics.jsonl``, one row per step with its
  wall-clock ``time``);
* :func:`estimate_pretrain`: epochs × steps/epoch × seconds/step for a run about to be launched.

Nothing here imports torch or Streamlit.

>>> format_duration(3725)
'1 h 02 min'
>>> format_duration(42.4)
'42 s'
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aclecg.procs import read_json

#: How many of the last logged steps the speed (and so the ETA) is measured over.
SPEED_WINDOW = 20
#: How many rows of each committed curve its step time is measured on.
MAX_CURVE_ROWS = 200
#: The batch size the committed curves were trained with; a step's cost is scaled linearly from it.
REFERENCE_BATCH = 64


def format_duration(seconds: float | None) -> str:
    """``'42 s'``, ``'3 min 05 s'``, ``'1 h 02 min'``; ``'–'`` for an unknown duration."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


@dataclass(frozen=True)
class RunProgress:
    """Progress figures of one run; ``None`` where the files do not tell."""

    elapsed_s: float | None
    eta_s: float | None
    steps_per_s: float | None
    lr: float | None


def read_status(run_dir: str | Path) -> dict:
    """A run's ``status.json`` (empty when missing or unreadable)."""
    return read_json(Path(run_dir) / "status.json")


def _speed(metrics: pd.DataFrame) -> float | None:
    """Steps per second over the last :data:`SPEED_WINDOW` logged steps (wall clock, from their ``time``)."""
    if metrics is None or metrics.empty or not {"step", "time"} <= set(metrics.columns):
        return None
    tail = metrics[["step", "time"]].dropna().tail(SPEED_WINDOW + 1)
    if len(tail) < 2:
        return None
    steps = float(tail["step"].iloc[-1] - tail["step"].iloc[0])
    seconds = float(tail["time"].iloc[-1] - tail["time"].iloc[0])
    return steps / seconds if steps > 0 and seconds > 0 else None


def run_progress(metrics: pd.DataFrame, status: dict, state: str, now: float | None = None) -> RunProgress:
    """Elapsed time, ETA, steps/s and current lr of a run.

    ``metrics`` is the run's :func:`aclecg.jobs.read_metrics`, ``status`` its ``status.json`` and ``state`` its
    :class:`aclecg.jobs.RunInfo` state. Elapsed runs from the status's ``started`` to now while the run runs, to its
    last write (``finished`` or ``updated``) once it stopped. Steps/s is measured over the last logged steps; the
    ETA is the steps left at that speed, only while the run is running.
    """
    now = time.time() if now is None else now
    started = status.get("started")
    running = state in ("running", "cancelling")
    end = now if running else status.get("finished") or status.get("updated")
    elapsed = float(end) - float(started) if started is not None and end is not None else None
    speed = _speed(metrics)
    lr = None
    if metrics is not None and not metrics.empty and "lr" in metrics.columns:
        lr = float(metrics["lr"].dropna().iloc[-1]) if metrics["lr"].notna().any() else None
    eta = None
    total = status.get("total_steps")
    step = int(status.get("step") or (metrics["step"].iloc[-1] if metrics is not None and not metrics.empty else 0))
    if state == "running" and speed and total:
        eta = max(int(total) - step, 0) / speed
    return RunProgress(
        elapsed_s=max(elapsed, 0.0) if elapsed is not None else None, eta_s=eta, steps_per_s=speed, lr=lr
    )


@dataclass(frozen=True)
class StepCost:
    """Measured seconds per training step of one method on one device class (at :data:`REFERENCE_BATCH`)."""

    method: str
    device: str
    seconds: float
    batch_size: int
    runs: int
    sources: tuple[str, ...]


def device_class(device: str) -> str:
    """``'cpu'`` or ``'cuda'`` (the class a device string belongs to: ``cuda:1`` is ``cuda``)."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


def _curve_cost(path: Path) -> tuple[str, str, float, int] | None:
    """(method, device class, median seconds per step, batch size) of one committed curve, or ``None``."""
    config = read_json(path.parent / "config.json")
    config = config.get("config", config)
    method = config.get("method") or path.parent.name  # checkpoints/rotations/FOLD/METHOD has no config
    rows = []
    with path.open() as fh:  # the first steps are enough for a median, and keep the page's first open fast
        lines = [line for _, line in zip(range(MAX_CURVE_ROWS), fh)]
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    times = [(r["step"], r["time"], r.get("device", "cpu")) for r in rows if "step" in r and "time" in r]
    gaps = [(t2 - t1) / (s2 - s1) for (s1, t1, _), (s2, t2, _) in itertools.pairwise(times) if s2 > s1 and t2 > t1]
    if len(gaps) < 5:
        return None
    # the median step: a curve's gaps include checkpoints and other jobs' bursts on a shared machine
    return str(method), device_class(times[0][2]), statistics.median(gaps), int(config.get("batch_size", 64))


def measured_step_costs(checkpoints: str | Path) -> dict[tuple[str, str], StepCost]:
    """Seconds per step per (method, device class), from every ``metrics.jsonl`` under ``checkpoints``.

    Each curve gives its median gap between logged steps (at its batch size, scaled to :data:`REFERENCE_BATCH`);
    a method's figure is the median over its curves. Unreadable or too short curves are skipped.
    """
    root = Path(checkpoints)
    found: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for path in sorted(root.rglob("metrics.jsonl")) if root.is_dir() else []:
        try:
            cost = _curve_cost(path)
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if cost is None:
            continue
        method, device, seconds, batch = cost
        found.setdefault((method, device), []).append((seconds * REFERENCE_BATCH / max(batch, 1), str(path)))
    return {
        key: StepCost(
            method=key[0],
            device=key[1],
            seconds=statistics.median(s for s, _ in items),
            batch_size=REFERENCE_BATCH,
            runs=len(items),
            sources=tuple(Path(p).relative_to(root).as_posix() for _, p in items),
        )
        for key, items in found.items()
    }


def committed_curves(checkpoints: str | Path) -> dict[str, Path]:
    """The loss curves committed beside encoders: ``{label: folder}``, the label being the folder's path under
    ``checkpoints`` (``rotations/test8/acl_ecg``); the Pretraining page compares them with live runs."""
    root = Path(checkpoints)
    if not root.is_dir():
        return {}
    return {path.parent.relative_to(root).as_posix(): path.parent for path in sorted(root.rglob("metrics.jsonl"))}


@dataclass(frozen=True)
class CostEstimate:
    """A rough duration of a run about to be launched, and where its figure comes from."""

    seconds: float
    steps: int
    steps_per_epoch: int
    seconds_per_step: float
    basis: str


def estimate_pretrain(
    costs: dict[tuple[str, str], StepCost], method: str, device: str, n_records: int, epochs: int, batch_size: int
) -> CostEstimate | None:
    """epochs × steps/epoch × seconds/step for ``method`` on ``device``'s class, or ``None`` without a measurement.

    Steps/epoch is ``n_records // batch_size`` (the engine drops the last partial batch). Seconds/step is the
    method's measured figure (another method's median when this one has none), scaled linearly with the batch
    size: rough, on the measuring machine's cores and the small encoder.
    """
    cls = device_class(device)
    steps_per_epoch = int(n_records) // max(int(batch_size), 1)
    if steps_per_epoch < 1:
        return None
    cost = costs.get((method, cls))
    same_device = [c for (m, d), c in costs.items() if d == cls]
    if cost is None and not same_device:
        return None
    if cost is not None:
        per_step = cost.seconds
        basis = f"{method}'s median step in {cost.runs} committed curve(s) on {cls} ({', '.join(cost.sources[:2])}…)"
    else:
        per_step = statistics.median(c.seconds for c in same_device)
        basis = f"no curve of {method}: the median step of {len(same_device)} other methods' curves on {cls}"
    per_step *= int(batch_size) / REFERENCE_BATCH
    steps = steps_per_epoch * int(epochs)
    return CostEstimate(steps * per_step, steps, steps_per_epoch, per_step, basis)


def training_records(records: pd.DataFrame, exclude_splits: tuple[str, ...] = ("test",)) -> int:
    """How many of a prepared dataset's records pretraining uses (its ``split`` column outside ``exclude_splits``,
    as :class:`aclecg.training.data.PretrainData` counts them)."""
    if "split" not in records:
        return len(records)
    return int((~records["split"].astype(str).isin(list(exclude_splits))).sum())


#: One sentence per run state: what happens now and what the user can do.
STATE_HELP = {
    "queued": "Waiting for a free job slot; it starts by itself, and Cancel takes it out of the queue.",
    "running": "Training now; the figures below refresh every few seconds.",
    "cancelling": "Cancel was asked: the run saves a checkpoint and stops.",
    "cancelled": "Stopped on request after saving a checkpoint; Resume continues from it.",
    "finished": "Trained to the end; its encoder is exported (encoder.pt).",
    "failed": "Stopped with an error (shown below); Resume retries from the last good checkpoint.",
    "interrupted": "Its process is gone without a final state (a restart or a kill); Resume continues it.",
}


def state_help(state: str) -> str:
    """What a run state means, in one sentence (empty for an unknown state)."""
    return STATE_HELP.get(state, "")
