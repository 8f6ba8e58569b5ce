"""Background jobs: names, live state, cancel and resume of real detached runs."""

from __future__ import annotations

import json
import os
import shlex
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
    monkeypatch.delenv("ACLECG_MAX_JOBS", raising=False)
    run = jobs.launch("pretrain", ["--method", "simclr"], tmp_path, "multi", gpus=4)
    assert jobs.run_info(run).method == "simclr"  # known from the launch before the run writes its status
    wrapper, command = started["cmd"][: started["cmd"].index("--")], shlex.join(started["cmd"])
    assert wrapper[1:3] == ["-m", "aclecg.jobrunner"]
    assert "--ticket 1" in shlex.join(wrapper)  # the first in line
    assert "--slots 6 --need 4 --visible 6 --pin" in shlex.join(wrapper)  # four of six slots, each its own GPU
    assert "-m torch.distributed.run --standalone --nproc_per_node 4 -m aclecg pretrain --method simclr" in command
    assert started["kwargs"]["start_new_session"]
    job = json.loads((run / "job.json").read_text())
    assert job["gpus"] == 4 and job["argv"] == started["cmd"][len(wrapper) + 1 :]
    with pytest.raises(ConfigError, match="gpus"):
        jobs.launch("sweep", [], tmp_path, "s", gpus=2)
    with pytest.raises(ConfigError, match="needs as many CUDA devices"):  # CPU with several processes: refused
        jobs.launch("pretrain", ["--device", "cpu"], tmp_path, "cpu-multi", gpus=2)
    with pytest.raises(ConfigError, match="needs as many CUDA devices"):
        jobs.launch("pretrain", [], tmp_path, "too-many", gpus=7)


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


# ------------------------------------------------------------------------------------ slots, queue, owners, limits
#: A job's command stand-in: it says which GPUs it sees, then runs until its run folder holds a `release` file.
FAKE_JOB = (
    "import os, pathlib, signal, sys, time\n"
    "run = pathlib.Path(sys.argv[1])\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))\n"
    "(run / 'env.txt').write_text(os.environ.get('CUDA_VISIBLE_DEVICES', '-'))\n"
    "while not (run / 'release').exists():\n"
    "    time.sleep(0.05)\n"
)


@pytest.fixture
def fake_jobs(tmp_path, monkeypatch):
    """Real wrappers (aclecg.jobrunner) around a tiny stand-in command; every wrapper is ended afterwards."""
    import signal
    import sys

    monkeypatch.setattr(
        jobs, "_command", lambda kind, args, run_dir, resume, gpus: [sys.executable, "-c", FAKE_JOB, str(run_dir)]
    )
    monkeypatch.setattr(jobs, "visible_gpus", lambda: 0)
    for name in ("ACLECG_MAX_JOBS", "ACLECG_MAX_QUEUED", "ACLECG_RUNS_QUOTA_GB", "ACLECG_READONLY"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    for job in tmp_path.glob("*/job.json"):
        (job.parent / "release").touch()
        rec = json.loads(job.read_text())
        if procs.record_alive(rec):
            try:
                os.killpg(int(rec["pid"]), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _started(run: Path) -> str | None:
    """What the stand-in command saw as CUDA_VISIBLE_DEVICES once it runs, else None."""
    env = run / "env.txt"
    return env.read_text() if env.exists() and env.read_text() else None


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_jobs_beyond_the_slots_wait_queued_and_start_in_order(fake_jobs, monkeypatch):
    """Ten launches at once used to start ten trainers on two cores: now one runs per slot, the rest wait."""
    monkeypatch.setenv("ACLECG_MAX_JOBS", "1")
    runs = [jobs.launch("sweep", [], fake_jobs, f"j{i}") for i in range(3)]
    assert _wait(lambda: _started(runs[0]) is not None, 20)
    time.sleep(0.3)
    assert [jobs.run_info(r).state for r in runs] == ["running", "queued", "queued"]
    assert _started(runs[1]) is None and _started(runs[2]) is None
    assert jobs.cancel(runs[2])  # a queued job can be cancelled: it never starts
    assert _wait(lambda: jobs.run_info(runs[2]).state == "cancelled", 20)
    (runs[0] / "release").touch()
    assert _wait(lambda: _started(runs[1]) is not None, 20)  # the slot passes to the next in line
    assert _wait(lambda: jobs.run_info(runs[0]).state == "finished", 20)
    assert jobs.run_info(runs[1]).state == "running" and _started(runs[2]) is None


@pytest.mark.slow  # real job wrappers, about 1.5 s
def test_gpus_are_assigned_so_that_running_jobs_never_share_one(fake_jobs, monkeypatch):
    monkeypatch.setattr(jobs, "visible_gpus", lambda: 3)
    a = jobs.launch("pretrain", [], fake_jobs, "a", gpus=2)
    assert _wait(lambda: _started(a) is not None, 20)
    b = jobs.launch("pretrain", [], fake_jobs, "b")
    assert _wait(lambda: _started(b) is not None, 20)
    c = jobs.launch("pretrain", [], fake_jobs, "c")  # every GPU is taken: c waits instead of sharing one
    time.sleep(0.5)
    assert (_started(a), _started(b), _started(c)) == ("0,1", "2", None)
    assert jobs.run_info(c).state == "queued" and jobs.gpu_ids(b) == [2]
    (b / "release").touch()
    assert _wait(lambda: _started(c) == "2", 20)
    cpu = jobs.launch("pretrain", ["--device", "cpu"], fake_jobs, "cpu")  # an explicit device is left alone...
    (a / "release").touch()
    assert _wait(lambda: _started(cpu) == "-", 20)  # ...but it still takes a slot


def test_a_taken_name_is_refused_even_by_two_launches_at_once(tmp_path, monkeypatch, capsys):
    """Both `runs launch` calls used to return 0 and job.json named the refused one's wrapper."""
    import threading

    from aclecg.cli import main

    pids = iter(range(DEAD_PID, DEAD_PID + 10))

    class SlowPopen:  # starting a process takes a while: both launches would be past their checks
        def __init__(self, cmd, **kwargs):
            time.sleep(0.3)
            self.pid = next(pids)

    monkeypatch.setattr(jobs.subprocess, "Popen", SlowPopen)
    monkeypatch.setattr(jobs, "visible_gpus", lambda: 0)
    codes: list[int] = []
    argv = ["runs", "launch", "same", "--root", str(tmp_path), "--kind", "sweep", "--", "--seeds", "1"]
    threads = [threading.Thread(target=lambda: codes.append(main(list(argv)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [0, 2]
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert err == ["error: a run named 'same' already exists; choose another name or resume it"]
    assert json.loads((tmp_path / "same" / "job.json").read_text())["pid"] == DEAD_PID  # the one that started


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_a_second_session_cannot_cancel_or_resume_the_first_ones_run(fake_jobs, monkeypatch):
    from aclecg.access import AccessError, Actor, acting_as

    monkeypatch.setenv("ACLECG_MAX_JOBS", "1")
    alice, mallory = Actor("session:alice"), Actor("session:mallory")
    with acting_as(alice):
        run = jobs.launch("sweep", ["--seeds", "1"], fake_jobs, "alices")
    assert json.loads((run / "job.json").read_text())["owner"] == "session:alice"
    assert _wait(lambda: _started(run) is not None, 20)
    with acting_as(mallory), pytest.raises(AccessError, match="started by another user or browser session"):
        jobs.cancel(run)
    assert jobs.run_info(run).state == "running" and not (run / "cancel_requested").exists()
    with acting_as(alice):
        assert jobs.cancel(run)
    assert _wait(lambda: jobs.run_info(run).state == "cancelled", 20)
    with acting_as(mallory), pytest.raises(AccessError, match="resume refused"):
        jobs.resume(run)
    with acting_as(alice):
        jobs.resume(run)
    assert json.loads((run / "job.json").read_text())["owner"] == "session:alice"  # a resumed run keeps its owner
    assert _wait(lambda: jobs.run_info(run).state == "running", 20)
    assert jobs.cancel(run)  # the operator (a shell on the server, no actor) may act on every run


def test_read_only_refuses_launch_cancel_and_resume_whoever_asks(fake_jobs, monkeypatch):
    from aclecg.access import AccessError, acting_as, session_actor

    run = jobs.launch("sweep", [], fake_jobs, "mine")
    monkeypatch.setenv("ACLECG_READONLY", "1")
    for action in (
        lambda: jobs.launch("sweep", [], fake_jobs, "other"),
        lambda: jobs.cancel(run),
        lambda: jobs.resume(run),
    ):
        with pytest.raises(AccessError, match="read-only"):
            action()
    assert not (fake_jobs / "other").exists()
    monkeypatch.delenv("ACLECG_READONLY")
    network = session_actor(address="0.0.0.0", token="t")  # served on a network without login
    assert not network.can_write
    with acting_as(network), pytest.raises(AccessError, match="without login"):
        jobs.launch("sweep", [], fake_jobs, "other")
    assert session_actor(address="127.0.0.1", token="t").can_write
    assert session_actor(address="0.0.0.0", token="t", user="alice", auth=True).name == "user:alice"
    assert not session_actor(address="127.0.0.1", token="t", auth=True).can_write  # login configured, not logged in


def test_a_browser_launch_is_capped_and_the_runs_folder_has_a_quota(fake_jobs, monkeypatch):
    from aclecg.access import Actor, acting_as

    with acting_as(Actor("session:s")):
        for args, message in (
            (["--epochs", "5000", "--batch-size", "64"], r"epochs must be an integer in \[1, 200\]"),
            (["--epochs", "5", "--batch-size", "4096"], r"batch_size must be an integer in \[2, 512\]"),
            (["--epochs", "5", "--batch-size", "64", "--set", "epochs=9999"], "--set is not allowed"),
            (["--batch-size", "64"], "--epochs must be given"),
        ):
            with pytest.raises(ConfigError, match=message):
                jobs.launch("pretrain", args, fake_jobs, "big")
        with pytest.raises(ConfigError, match="seeds must be"):
            jobs.launch("sweep", ["--seeds", "50"], fake_jobs, "big")
    assert not (fake_jobs / "big").exists()  # a refused launch does not use the name up
    (fake_jobs / "old").mkdir()
    (fake_jobs / "old" / "checkpoint.pt").write_bytes(b"\0" * 3000)
    monkeypatch.setenv("ACLECG_RUNS_QUOTA_GB", "0.000002")  # 2 kB
    with pytest.raises(AclEcgError, match=r"over its quota of 2e-06 GB \(ACLECG_RUNS_QUOTA_GB\)"):
        jobs.launch("sweep", [], fake_jobs, "new")
    monkeypatch.setenv("ACLECG_RUNS_QUOTA_GB", "0")  # no quota
    monkeypatch.setenv("ACLECG_MAX_JOBS", "1")
    monkeypatch.setenv("ACLECG_MAX_QUEUED", "1")
    first = jobs.launch("sweep", [], fake_jobs, "new")
    assert _wait(lambda: _started(first) is not None, 20)
    jobs.launch("sweep", [], fake_jobs, "waits")
    assert _wait(lambda: jobs.run_info(fake_jobs / "waits").state == "queued", 20)
    with pytest.raises(AclEcgError, match="1 runs are already waiting for a job slot"):
        jobs.launch("sweep", [], fake_jobs, "third")
