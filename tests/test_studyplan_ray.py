"""Slow: the study on a real local Ray cluster (a head and a second worker node on this machine).

A task is running on the worker node when the test SIGKILLs that node's raylet and the task's process; Ray retries
the task on the head, and every cell the study writes equals, array for array, what the local executor writes
(the cell records too, but for their measured ``seconds`` and the run folder in their checkpoint path).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")


def _procs() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, name, command line) of every process of this machine (from /proc)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        out[int(d)] = (int(stat.rsplit(")", 1)[1].split()[1]), name, cmd)
    return out


def _cluster_pids(tag: str) -> set[int]:
    """The processes of our Ray cluster: those naming its temporary folder, and their descendants."""
    procs = _procs()
    found = {p for p, (_, _, cmd) in procs.items() if tag in cmd and p != os.getpid()}
    grew = True
    while grew:
        kids = {p for p, (pp, _, _) in procs.items() if pp in found and p not in found and p != os.getpid()}
        found |= kids
        grew = bool(kids)
    return found


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ray_cluster(tmp_path):
    """A head (1 CPU) and a worker node (1 CPU, the victim) started with `ray start`; stopped by PID."""
    pytest.importorskip("ray")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must stay < 108 chars
    port = _free_port()
    victim = tmp_path / "victim"
    victim.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "ACLECG_CACHE": str(tmp_path / "cache"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    common = ["--num-cpus=1", "--disable-usage-stats"]
    try:
        subprocess.run(
            [str(RAY), "start", "--head", f"--port={port}", f"--temp-dir={temp}", "--include-dashboard=false", *common],
            env=env, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run(
            [str(RAY), "start", f"--address=127.0.0.1:{port}", *common],
            env={**env, "ACLECG_TEST_VICTIM": str(victim)}, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        yield {"address": f"127.0.0.1:{port}", "victim": victim, "temp": temp}
    finally:
        _kill(_cluster_pids(str(temp)))
        shutil.rmtree(temp, ignore_errors=True)


def _cells(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted((root / "runs" / "sweeps").glob("*/cells/*")):
        name = f"{path.parent.parent.name}/{path.name}"
        if path.suffix == ".json":
            rec = json.loads(path.read_text().replace(str(root), "ROOT"))
            rec.pop("seconds")
            out[name] = rec
        else:
            with np.load(path, allow_pickle=False) as z:
                out[name] = {k: z[k] for k in z.files}
    return out


def test_ray_study_survives_a_lost_node_and_equals_the_local_run(tmp_path, ray_cluster, monkeypatch):
    from aclecg.studyplan import load_study
    from aclecg.studyplan.executors import LocalExecutor, RayExecutor, run_study
    from aclecg.studyplan.tasks import StudyPlan
    from tests.helpers.slowdata import SlowPrepared
    from tests.test_studyplan import _commit_encoders, _record_rotation_configs, _tiny_study

    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache-local"))
    data = SlowPrepared(n_patients=80, t=64)
    roots = {}
    for name in ("local", "ray"):
        roots[name] = tmp_path / name
        _commit_encoders(roots[name], data)
        _record_rotation_configs(StudyPlan(load_study(_tiny_study(roots[name])), {"toy": data}))
    local = run_study(
        StudyPlan(load_study(roots["local"] / "tiny.toml"), {"toy": data}), LocalExecutor(workers=1, threads=1)
    )
    assert local.failed == {} and local.computed == 34

    killed: list[tuple[int, int]] = []

    def kill_the_victim_mid_task() -> None:
        deadline = time.time() + 150
        while time.time() < deadline and not killed:
            for marker in ray_cluster["victim"].iterdir():
                if marker.suffix != ".tmp":
                    task_pid, raylet = int(marker.name), int(marker.read_text())
                    assert _procs()[raylet][1] == "raylet"  # the task's process is a worker of the victim's raylet
                    _kill([raylet, task_pid])
                    killed.append((raylet, task_pid))
                    return
            time.sleep(0.1)

    watcher = threading.Thread(target=kill_the_victim_mid_task, daemon=True)
    watcher.start()
    plan = StudyPlan(load_study(roots["ray"] / "tiny.toml"), {"toy": data})
    remote = run_study(plan, RayExecutor(ray_cluster["address"], threads=1, max_retries=3))
    watcher.join(timeout=5)
    assert killed, "no task ran on the worker node"
    assert remote.failed == {} and remote.computed == 34 and remote.waiting == 0
    mine, theirs = _cells(roots["ray"]), _cells(roots["local"])
    assert sorted(mine) == sorted(theirs) and len(mine) == 2 * (24 + 2)
    for name, value in theirs.items():
        if isinstance(value, dict) and name.endswith(".npz"):
            got = mine[name]
            assert isinstance(got, dict) and set(got) == set(value)
            for key, array in value.items():
                assert got[key].dtype == array.dtype and np.array_equal(got[key], array), (name, key)
        else:
            assert mine[name] == value, name
