"""Background jobs: names, live state, cancel and resume of real detached runs."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from aclecg import jobs, procs
from aclecg.errors import AclEcgError, ConfigError

TINY = json.dumps({"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8})


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("my run", "my-run"),
        ("../../etc/passwd", "etc-passwd"),
        ("..", None),
        ("a/b\\c", "a-b-c"),
        ("ok_1.2-x", "ok_1.2-x"),
        ("/abs", "abs"),
        ("x" * 100, "x" * 64),
    ],
)
def test_sanitize_name(raw, clean):
    if clean is None:
        with pytest.raises(ConfigError):
            jobs.sanitize_name(raw)
    else:
        assert jobs.sanitize_name(raw) == clean


def _fake_run(root: Path, name: str, status: dict | None = None, job: dict | None = None, exit_code=None) -> Path:
    run = root / name
    run.mkdir(parents=True)
    if job is not None:
        (run / "job.json").write_text(json.dumps({"host": socket.gethostname(), "started": time.time(), **job}))
    if status is not None:
        (run / "status.json").write_text(json.dumps({"host": socket.gethostname(), **status}))
    if exit_code is not None:
        (run / "exit_code").write_text(f"{exit_code}\n")
    return run


DEAD_PID = 2**22 + 4321


def test_states_are_derived_from_files_and_processes(tmp_path):
    _fake_run(
        tmp_path, "crashed", status={"state": "running", "pid": DEAD_PID}, job={"kind": "pretrain", "pid": DEAD_PID}
    )
    _fake_run(
        tmp_path,
        "done",
        status={"state": "finished", "pid": DEAD_PID},
        job={"kind": "pretrain", "pid": DEAD_PID},
        exit_code=0,
    )
    _fake_run(tmp_path, "broken", job={"kind": "sweep", "pid": DEAD_PID}, exit_code=2)
    (tmp_path / "broken" / "stdout.log").write_text("working\nerror: no such dataset\n")
    _fake_run(
        tmp_path, "alive", status={"state": "running", "pid": os.getpid()}, job={"kind": "pretrain", "pid": os.getpid()}
    )
    states = {r.name: r for r in jobs.list_runs(tmp_path)}
    assert states["crashed"].state == "interrupted" and states["crashed"].resumable
    assert states["done"].state == "finished"
    assert states["broken"].state == "failed" and "no such dataset" in states["broken"].error
    assert states["alive"].state == "running" and states["alive"].alive
    with pytest.raises(AclEcgError, match="still running"):
        jobs.resume(tmp_path / "alive")


def test_read_metrics_keeps_last_row_per_step(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    lines = [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}, {"step": 2, "loss": 1.5}]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + '\n{"step": 3, "lo')
    frame = jobs.read_metrics(run)
    assert frame["step"].tolist() == [1, 2] and frame["loss"].tolist() == [3.0, 1.5]
    assert jobs.read_metrics(tmp_path / "none").empty


def _wait(predicate, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow  # a real pretraining job, ~10 s: in make test-slow, keeping make test under 90 s
def test_launch_cancel_resume_a_real_run(bundled_prepared, tmp_path):
    args = [
        "--method",
        "simclr",
        "--data",
        str(bundled_prepared),
        "--set",
        f"encoder={TINY}",
        "--batch-size",
        "16",
        "--epochs",
        "1",
        "--max-steps",
        "400",
        "--device",
        "cpu",
        "--no-progress",
        "--set",
        "checkpoint_every=5",
    ]
    run = jobs.launch("pretrain", args, tmp_path, "job 1")
    assert run == tmp_path / "job-1"
    with pytest.raises(AclEcgError, match="already exists"):
        jobs.launch("pretrain", args, tmp_path, "job 1")
    assert _wait(lambda: len(jobs.read_metrics(run)) >= 6), jobs.tail_log(run)
    info = jobs.run_info(run)
    assert info.state == "running" and info.alive and info.method == "simclr"
    assert jobs.cancel(run)
    assert _wait(lambda: jobs.run_info(run).state == "cancelled"), jobs.tail_log(run)
    stopped_at = jobs.run_info(run).step
    assert stopped_at >= 6 and (run / "checkpoints" / f"step_{stopped_at:08d}.pt").exists()
    jobs.resume(run)
    assert _wait(lambda: jobs.read_metrics(run)["step"].max() > stopped_at + 2), jobs.tail_log(run)
    jobs.cancel(run)
    assert _wait(lambda: not jobs.run_info(run).alive)
    assert "resumed from step" in jobs.tail_log(run, 200)


def test_cli_runs_launch_passes_options_after_double_dash(tmp_path, monkeypatch):
    from aclecg.cli import main

    seen = {}
    monkeypatch.setattr(
        jobs,
        "launch",
        lambda kind, args, root, name: (
            seen.update(kind=kind, args=args, root=Path(root), name=name) or Path(root) / name
        ),
    )
    rc = main(["runs", "launch", "my-run", "--root", str(tmp_path), "--kind", "sweep", "--", "--seeds", "2", "--x"])
    assert rc == 0
    assert seen == {"kind": "sweep", "args": ["--seeds", "2", "--x"], "root": tmp_path, "name": "my-run"}
    assert main(["runs", "list", "--root", str(tmp_path / "empty")]) == 0


def test_multi_gpu_launch_goes_through_torchrun(tmp_path, monkeypatch):
    started = {}

    class FakePopen:
        def __init__(self, cmd, **kwargs):
            started["cmd"], started["kwargs"] = cmd, kwargs
            self.pid = DEAD_PID

    monkeypatch.setattr(jobs.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(jobs, "visible_gpus", lambda: 6)
    run = jobs.launch("pretrain", ["--method", "simclr"], tmp_path, "multi", gpus=4)
    assert jobs.run_info(run).method == "simclr"  # known from the launch before the run writes its status
    script = started["cmd"][2]
    assert "-m torch.distributed.run --standalone --nproc_per_node 4 -m aclecg pretrain --method simclr" in script
    assert started["kwargs"]["start_new_session"]
    assert started["kwargs"]["env"]["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"
    job = json.loads((run / "job.json").read_text())
    assert job["gpus"] == 4 and job["gpu_ids"] == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="gpus"):
        jobs.launch("sweep", [], tmp_path, "s", gpus=2)
    with pytest.raises(ConfigError, match="needs CUDA devices"):  # CPU with several processes: refused
        jobs.launch("pretrain", ["--device", "cpu"], tmp_path, "cpu-multi", gpus=2)


def test_gpus_are_assigned_so_that_running_jobs_never_share_one(tmp_path, monkeypatch):
    started = []

    class FakePopen:
        def __init__(self, cmd, **kwargs):
            started.append(kwargs["env"].get("CUDA_VISIBLE_DEVICES"))
            self.pid = os.getpid()  # "alive": the test process itself plays the running wrapper

    monkeypatch.setattr(jobs.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(jobs, "visible_gpus", lambda: 3)
    jobs.launch("pretrain", [], tmp_path, "a", gpus=2)
    jobs.launch("pretrain", [], tmp_path, "b")
    with pytest.raises(AclEcgError, match="only 0 of 3 are free"):
        jobs.launch("pretrain", [], tmp_path, "c")
    jobs.launch("pretrain", ["--device", "cuda:0"], tmp_path, "explicit")  # the user's own choice is kept
    assert started == ["0,1", "2", None]
    assert jobs.assign_gpus(1, 4, {0, 2}) == [1]


def test_a_recycled_pid_is_not_the_run(tmp_path):
    """job.json names a pid that now belongs to another process (start time differs): not running, never signalled."""
    import subprocess
    import sys

    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, "
            "lambda *a: open('TERMED', 'w').write('x')); time.sleep(30)",
        ],
        cwd=tmp_path,
    )
    try:
        rec = procs.own_record(other.pid)
        _fake_run(
            tmp_path,
            "old",
            status={"state": "running", "pid": other.pid, "heartbeat": time.time() - 86400},
            job={"kind": "pretrain", **rec, "start": (rec["start"] or 0) + 12345},
        )
        info = jobs.run_info(tmp_path / "old")
        assert not info.alive and info.state == "interrupted"
        assert not jobs.cancel(tmp_path / "old")
        time.sleep(0.3)
        assert other.poll() is None and not (tmp_path / "TERMED").exists()
    finally:
        other.kill()
        other.wait()


def test_a_trainer_whose_wrapper_was_killed_is_still_running(tmp_path):
    """The trainer's own record (pid + start time) keeps the run 'running' even with the wrapper gone."""
    from aclecg.training.rundir import RunDir

    _fake_run(
        tmp_path, "orphan", status={"state": "running", "pid": DEAD_PID}, job={"kind": "pretrain", "pid": DEAD_PID}
    )
    RunDir(tmp_path / "orphan").write_proc(0)  # this test process plays the trainer
    info = jobs.run_info(tmp_path / "orphan")
    assert info.alive and info.state == "running"
    (tmp_path / "orphan" / "procs" / "rank-0.json").unlink()
    assert jobs.run_info(tmp_path / "orphan").state == "interrupted"


def test_tail_log_shows_a_progress_bar_as_its_latest_state(tmp_path):
    (tmp_path / "stdout.log").write_text(
        "start\nsweep:  10%|#  | 1/10\rsweep:  20%|## | 2/10\rsweep:  30%|###| 3/10\ncell done\rnext cell 40%"
    )
    assert jobs.tail_log(tmp_path, 3).splitlines() == ["start", "sweep:  30%|###| 3/10", "next cell 40%"]
    assert jobs.tail_log(tmp_path / "missing") == ""


def test_a_run_finished_in_this_process_is_finished_not_running(tmp_path, bundled_prepared):
    """pretrain() called in-process (a notebook) leaves its live process in status.json; the run is finished."""
    from aclecg.training import PretrainConfig, pretrain

    config = PretrainConfig(
        method="simclr",
        data=[str(bundled_prepared)],
        encoder={"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8},
        epochs=1,
        max_steps=2,
        batch_size=8,
        checkpoint_every=2,
        device="cpu",
    )
    pretrain(config, tmp_path / "nb-run", progress=False)
    info = jobs.run_info(tmp_path / "nb-run")
    assert info.state == "finished" and info.step == 2 and not info.alive  # Cancel must not signal this process
