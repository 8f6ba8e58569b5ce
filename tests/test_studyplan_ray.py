"""Slow: the study on a real local Ray cluster (a head and a second worker node on this machine).

A task is running on the worker node when the test SIGKILLs that node's raylet and the task's process; Ray retries
the task on the head, and every cell the study writes equals, array for array, what the local executor writes
(the cell records too, but for their measured ``seconds`` and the run folder in their checkpoint path).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def ray_cluster(tmp_path):
    """A head (1 CPU) and a worker node (1 CPU, the victim) started with `ray start`; stopped by PID."""
    pytest.importorskip("ray")
    from aclecg.studyplan.localray import LocalRayCluster

    victim = tmp_path / "victim"
    victim.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "ACLECG_CACHE": str(tmp_path / "cache")}
    with LocalRayCluster(cpus=1, env=env, worker_env={"ACLECG_TEST_VICTIM": str(victim)}) as cluster:
        yield {"address": cluster.address, "victim": victim, "temp": cluster.temp}


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
    from aclecg.studyplan.localray import processes
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
                    assert processes()[raylet][1] == "raylet"  # the task's process is a worker of the victim's raylet
                    for pid in (raylet, task_pid):
                        os.kill(pid, signal.SIGKILL)
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
