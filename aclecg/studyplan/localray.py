"""A two-node Ray cluster on this machine, for trying ``--executor ray`` without a cluster (and for the slow test
and ``benchmarks/study_executors.py``): a head and a second node started with the ``ray`` command beside this
Python, each with its own CPUs, and stopped by PID (every process naming the cluster's temporary folder, and their
descendants), also when starting fails half-way.

    with LocalRayCluster(cpus=1) as cluster:
        run_study(plan, RayExecutor(address=cluster.address))
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from aclecg.errors import AclEcgError

__all__ = ["LocalRayCluster", "cluster_pids", "processes"]

RAY = Path(sys.executable).with_name("ray")


def processes() -> dict[int, tuple[int, str, str]]:
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


def cluster_pids(tag: str) -> set[int]:
    """The processes of one local cluster: those whose command line names ``tag`` (its temporary folder), and
    their descendants; never this process."""
    procs, me = processes(), os.getpid()
    found = {p for p, (_, _, cmd) in procs.items() if tag in cmd and p != me}
    grew = True
    while grew:
        kids = {p for p, (pp, _, _) in procs.items() if pp in found and p not in found and p != me}
        found |= kids
        grew = bool(kids)
    return found


class LocalRayCluster:
    """``cpus`` CPUs per node; ``env`` for both nodes, ``worker_env`` added for the second (e.g. a marker that
    lets a test find the worker node's tasks). ``address`` and ``temp`` are set once started."""

    def __init__(
        self, cpus: int = 1, env: Mapping[str, str] | None = None, worker_env: Mapping[str, str] | None = None
    ):
        self.cpus, self.env, self.worker_env = int(cpus), dict(env or os.environ), dict(worker_env or {})
        self.address = ""
        self.temp = Path()

    def start(self) -> LocalRayCluster:
        self.temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths stay < 108 chars
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        common = [f"--num-cpus={self.cpus}", "--disable-usage-stats"]
        head = [str(RAY), "start", "--head", f"--port={port}", f"--temp-dir={self.temp}", "--include-dashboard=false"]
        env = {**self.env, "RAY_USAGE_STATS_ENABLED": "0"}
        nodes = [(head + common, env), ([str(RAY), "start", f"--address=127.0.0.1:{port}", *common], env)]
        nodes[1] = (nodes[1][0], {**env, **self.worker_env})
        for cmd, node_env in nodes:
            try:
                proc = subprocess.run(cmd, env=node_env, capture_output=True, text=True, timeout=180)
            except (OSError, subprocess.TimeoutExpired) as exc:
                self.stop()
                raise AclEcgError(f"ray start failed ({' '.join(cmd[:3])}): {exc}") from None
            if proc.returncode != 0:
                self.stop()
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                raise AclEcgError(f"ray start failed ({' '.join(cmd[:3])}): {' | '.join(tail)}")
        self.address = f"127.0.0.1:{port}"
        return self

    def stop(self) -> int:
        """Kill the cluster's processes by PID and remove its folder; how many processes there were."""
        if not self.temp.name:
            return 0
        pids = cluster_pids(str(self.temp))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp, ignore_errors=True)
        return len(pids)

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
