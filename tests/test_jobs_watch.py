"""Run monitoring (issue 31): progress figures of a run, the committed curves' step costs, the launch estimate, the
state sentences and the multi-run loss chart (``aclecg.jobs_watch``, ``aclecg.viz.compared_loss_curves``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from aclecg import jobs, jobs_watch, viz


def _metrics(steps: int, dt: float, t0: float = 1000.0, lr0: float = 1e-3) -> pd.DataFrame:
    return pd.DataFrame(
        {"step": range(1, steps + 1), "loss": 1.0, "lr": [lr0 / s for s in range(1, steps + 1)]}
        | {"time": [t0 + dt * s for s in range(1, steps + 1)]}
    )


def test_run_progress_of_a_running_run():
    metrics = _metrics(30, dt=0.5)  # 2 steps/s
    status = {"started": 1000.0, "step": 30, "total_steps": 130}
    p = jobs_watch.run_progress(metrics, status, "running", now=1100.0)
    assert p.elapsed_s == pytest.approx(100.0)
    assert p.steps_per_s == pytest.approx(2.0)
    assert p.eta_s == pytest.approx(100 / 2.0)  # 100 steps left at 2 steps/s
    assert p.lr == pytest.approx(1e-3 / 30)  # the last logged step's lr


def test_run_progress_measures_the_last_steps_speed():
    """A run that slowed down: the ETA follows the recent speed, not the average since the start."""
    fast, slow = _metrics(40, dt=0.1), _metrics(40, dt=1.0, t0=1004.0)
    slow["step"] += 40
    metrics = pd.concat([fast, slow], ignore_index=True)
    p = jobs_watch.run_progress(metrics, {"started": 1000.0, "step": 80, "total_steps": 100}, "running", now=1050)
    assert p.steps_per_s == pytest.approx(1.0)
    assert p.eta_s == pytest.approx(20.0)


def test_run_progress_of_a_stopped_run_has_no_eta_and_ends_at_its_last_write():
    metrics = _metrics(10, dt=1.0)
    status = {"started": 1000.0, "finished": 1012.0, "updated": 1013.0, "step": 10, "total_steps": 10}
    p = jobs_watch.run_progress(metrics, status, "finished", now=99999.0)
    assert p.elapsed_s == pytest.approx(12.0) and p.eta_s is None
    cancelled = jobs_watch.run_progress(metrics, {"started": 1000.0, "updated": 1005.0}, "cancelled", now=9e9)
    assert cancelled.elapsed_s == pytest.approx(5.0)


def test_run_progress_without_files_says_nothing():
    p = jobs_watch.run_progress(pd.DataFrame(), {}, "queued", now=1.0)
    assert (p.elapsed_s, p.eta_s, p.steps_per_s, p.lr) == (None, None, None, None)
    assert jobs_watch.format_duration(p.eta_s) == "–"


def test_run_progress_of_a_real_run_directory(tmp_path):
    """What the engine writes (metrics.jsonl rows, status.json) read through the library the page calls."""
    run = tmp_path / "r"
    run.mkdir()
    rows = [{"step": s, "loss": 2.0, "lr": 0.01, "time": 500.0 + 0.25 * s} for s in range(1, 11)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (run / "status.json").write_text(json.dumps({"started": 500.0, "step": 10, "total_steps": 50}))
    p = jobs_watch.run_progress(jobs.read_metrics(run), jobs_watch.read_status(run), "running", now=510.0)
    assert p.steps_per_s == pytest.approx(4.0) and p.eta_s == pytest.approx(10.0) and p.lr == 0.01


def _curve(folder: Path, dt: float, batch: int | None = 64, method: str | None = "simclr", device="cpu") -> None:
    folder.mkdir(parents=True)
    gaps = [dt] * 30 + [60.0]  # one long pause (a checkpoint, another job): the median ignores it
    t, rows = 0.0, []
    for s, gap in enumerate(gaps, start=1):
        t += gap
        rows.append({"step": s, "loss": 1.0, "time": t, "device": device})
    (folder / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    if method is not None:
        (folder / "config.json").write_text(json.dumps({"method": method, "batch_size": batch}))


def test_measured_step_costs_per_method_from_committed_curves(tmp_path):
    _curve(tmp_path / "simclr", 0.2)
    _curve(tmp_path / "sens" / "simclr-e60", 0.8, batch=128)  # at batch 64: 0.4
    _curve(tmp_path / "rot" / "byol", 0.3, method=None)  # no config: the folder names the method
    _curve(tmp_path / "gpu" / "x", 0.01, method="simclr", device="cuda:0")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.jsonl").write_text("{not json\n")
    costs = jobs_watch.measured_step_costs(tmp_path)
    assert costs[("simclr", "cpu")].seconds == pytest.approx(0.3)  # median of 0.2 and 0.4
    assert costs[("simclr", "cpu")].runs == 2
    assert costs[("byol", "cpu")].seconds == pytest.approx(0.3)
    assert costs[("simclr", "cuda")].seconds == pytest.approx(0.01)
    assert jobs_watch.measured_step_costs(tmp_path / "missing") == {}


def test_estimate_is_epochs_times_steps_per_epoch_times_seconds_per_step(tmp_path):
    _curve(tmp_path / "simclr", 0.5)
    _curve(tmp_path / "byol", 0.1, method="byol")
    costs = jobs_watch.measured_step_costs(tmp_path)
    est = jobs_watch.estimate_pretrain(costs, "simclr", "cpu", n_records=650, epochs=20, batch_size=64)
    assert est.steps_per_epoch == 10 and est.steps == 200
    assert est.seconds == pytest.approx(200 * 0.5)
    assert "simclr" in est.basis
    double = jobs_watch.estimate_pretrain(costs, "simclr", "cpu", n_records=650, epochs=20, batch_size=128)
    assert double.seconds_per_step == pytest.approx(1.0) and double.steps_per_epoch == 5
    other = jobs_watch.estimate_pretrain(costs, "vicreg", "cpu", n_records=640, epochs=1, batch_size=64)
    assert other.seconds_per_step == pytest.approx(0.3) and "no curve of vicreg" in other.basis
    assert jobs_watch.estimate_pretrain(costs, "simclr", "cuda:0", 640, 1, 64) is None  # no GPU measurement
    assert jobs_watch.estimate_pretrain(costs, "simclr", "cpu", 10, 1, 64) is None  # not one batch


def test_the_committed_curves_give_a_cost_for_every_method_here():
    """The repository's own checkpoints/**/metrics.jsonl: the figures the Pretraining page's estimate uses."""
    from aclecg.methods import list_methods

    costs = jobs_watch.measured_step_costs(Path(__file__).resolve().parents[1] / "checkpoints")
    shipped = {m.name for m in list_methods()} & {"acl_ecg", "simclr", "byol", "moco", "lcd", "dlc"}
    assert shipped <= {m for m, d in costs if d == "cpu"}
    assert all(0.01 < c.seconds < 10 for c in costs.values())


def test_training_records_leave_the_test_split_out():
    records = pd.DataFrame({"split": ["train", "val", "test", "train"]})
    assert jobs_watch.training_records(records) == 3
    assert jobs_watch.training_records(pd.DataFrame({"x": [1, 2]})) == 2


@pytest.mark.parametrize("state", ["queued", "running", "cancelling", "cancelled", "finished", "failed", "interrupted"])
def test_every_state_says_what_happens(state):
    text = jobs_watch.state_help(state)
    assert text.endswith(".") and len(text.split()) >= 5


def test_format_duration():
    assert [jobs_watch.format_duration(s) for s in (0, 59.4, 61, 3599, 7260)] == [
        "0 s",
        "59 s",
        "1 min 01 s",
        "59 min 59 s",
        "2 h 01 min",
    ]


def test_compared_loss_curves_draw_one_line_per_run():
    curves = {"a": _metrics(5, 1.0), "b": _metrics(8, 1.0), "empty": pd.DataFrame()}
    fig = viz.compared_loss_curves(curves)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[1].x) == list(range(1, 9))
    assert fig.data[0].line.color != fig.data[1].line.color
    assert not viz.compared_loss_curves({"x": pd.DataFrame()}).data
