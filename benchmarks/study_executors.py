#!/usr/bin/env python
"""The full-PTB-XL study file on one prepared corpus, run by the local executor and by a two-node Ray cluster:
the same results (issue 30).

Runs ``aclecg study run studies/full-ptbxl.toml`` twice with a short-budget set of ``--set`` overrides pointing
the file at ``--data`` (every task kind: pretraining, embedding, probe and trained cells; test folds 10 and 8; the
methods ``acl_ecg`` and ``dlc``; 1 label seed, fraction 0.1, multilabel; pretraining ``--pretrain-steps``
optimiser steps, trained arms ``--train-steps`` steps, one learning rate):

1. ``--executor local --workers W --threads T`` into ``OUT/run``, then moved to ``OUT/local``;
2. on a local Ray cluster started with the venv's ``ray`` CLI (a head and a second node, ``W/2 * T`` CPUs each,
   Ray's files in a fresh ``/tmp/ray*`` folder), ``--executor ray --threads T`` into ``OUT/run`` again, moved to
   ``OUT/ray``; the cluster's processes are killed by PID at the end, also on failure.

Both runs write to the same path, so the paths the results record (a cell's checkpoint) are the same, and each
has its own embeddings cache (``OUT/cache-local``, ``OUT/cache-ray``), so neither reuses the other's work. Then
every file of the two runs folders and of the two embeddings caches is compared (logs, a run's status, lock and
process records aside): byte for byte (encoders, cells' ``.npz`` predictions, embeddings, tables, ``sweep.json``);
where the bytes differ, ``.npz`` files array for array, and ``.json``/``.jsonl`` files as JSON without their
wall-time fields: a cell record's, ``task.json``'s and ``embedded-*.json``'s ``seconds``, and ``time``,
``samples_per_s`` and ``rss_mb`` of a pretraining's ``metrics.jsonl`` (its losses are compared). The verdict line
says SAME or DIFFERENT, with each executor's wall time, tasks run, what the study exercised (every task kind, at
least two test folds and two methods, or DIFFERENT), and the load average before and after (``idle`` when the
1-minute load is under half the cores, else ``UNDER LOAD``); ``--json`` writes it all. ``--compare-only``
compares the folders of an earlier run again.

    # a synthetic 21.8k-record PTB-XL layout (speed checks only), prepared once
    python benchmarks/make_scale_corpus.py --format ptbxl --records 21799 --out /tmp/scale/ptbxl-raw
    python -m aclecg prepare --format ptbxl --input /tmp/scale/ptbxl-raw --output /tmp/scale/ptbxl
    python benchmarks/study_executors.py --data /tmp/scale/ptbxl --out /tmp/study-executors \\
        --json benchmarks/results-study-executors.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from aclecg.errors import AclEcgError
from aclecg.studyplan.localray import LocalRayCluster

REPO = Path(__file__).resolve().parents[1]
STUDY = "studies/full-ptbxl.toml"
MARKER = ".study-executors"
#: Fields of JSON results that hold a wall time or a measurement of the machine (a pretraining's ``metrics.jsonl``:
#: ``time``, ``samples_per_s``, ``rss_mb``), left out where the bytes differ.
WALL_KEYS = {"seconds", "time", "heartbeat", "started", "finished", "updated", "elapsed", "samples_per_s", "rss_mb"}
#: Not results: logs, a run's live status, its lock and the records of its processes (``procs/rank-N.json``).
SKIP_NAMES = {"status.json", "log.txt", "lock"}
SKIP_FOLDERS = {"procs"}


def short_budget(data: Path, runs: Path, pretrain_steps: int, train_steps: int) -> list[str]:
    """The ``--set`` overrides: the study file at ``data``, its runs in ``runs``, every task kind at a short budget."""
    return [
        f"study.runs={json.dumps(str(runs))}",
        f"data.pretrain=[{json.dumps(str(data))}]",
        f"data.downstream={json.dumps(str(data))}",
        "folds.test=[10, 8]",
        "pretrain.seeds={10 = 0, 8 = 2}",
        'pretrain.methods=["acl_ecg", "dlc"]',
        "pretrain.official_only=[]",
        "pretrain.epochs=1",
        f"pretrain.overrides.max_steps={pretrain_steps}",
        "pretrain.overrides.batch_size=32",
        "evaluation.seeds=1",
        f"evaluation.max_steps={train_steps}",
        "evaluation.eval_every=5",
        "evaluation.lr_grid=[0.001]",
        "evaluation.probe_grid=[0.01, 1.0]",
        "evaluation.n_bootstrap=50",
        *(f"sweep.{i}.fractions=[0.1]" for i in range(5)),
        *(f'sweep.{i}.protocols=["multilabel"]' for i in range(3)),
        "sweep.3.folds=[8]",
        "sweep.4.folds=[8]",
    ]


def load_line(when: str) -> tuple[str, dict[str, Any]]:
    one, five, fifteen = os.getloadavg()
    cores = os.cpu_count() or 1
    verdict = "idle" if one < 0.5 * cores else "UNDER LOAD"
    line = f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {cores} cores: {verdict}"
    return line, {"load": [one, five, fifteen], "cores": cores, "verdict": verdict}


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "ACLECG_CACHE": str(cache), "RAY_USAGE_STATS_ENABLED": "0"}


def run_study(sets: list[str], extra: list[str], cache: Path, timeout: float) -> dict[str, Any]:
    """One ``study run``: its exit code, wall time, summary line and the tail of its errors."""
    cmd = [sys.executable, "-m", "aclecg", "study", "run", STUDY, "--no-progress", *extra]
    cmd += [a for s in sets for a in ("--set", s)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=_env(cache), capture_output=True, text=True, timeout=timeout)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = 124, str(exc.stdout or ""), f"timed out after {timeout:.0f} s"
    summary = next((line for line in out.splitlines() if " tasks run, " in line), "")
    tasks = int(summary.split(" tasks run")[0]) if summary else 0
    return {
        "rc": rc,
        "wall_s": round(time.perf_counter() - started, 1),
        "tasks_run": tasks,
        "summary": summary,
        "stderr_tail": err.strip().splitlines()[-5:],
    }


# ------------------------------------------------------------------------------------------------ comparison
def _drop_wall(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_wall(v) for k, v in value.items() if k not in WALL_KEYS}
    if isinstance(value, list):
        return [_drop_wall(v) for v in value]
    return value


def _same_arrays(a: Path, b: Path) -> bool:
    with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
        if set(x.files) != set(y.files):
            return False
        return all(x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k], equal_nan=True) for k in x.files)


def _same_json(a: Path, b: Path) -> bool:
    if a.suffix == ".jsonl":
        la, lb = a.read_text().splitlines(), b.read_text().splitlines()
        return len(la) == len(lb) and all(
            _drop_wall(json.loads(x)) == _drop_wall(json.loads(y)) for x, y in zip(la, lb)
        )
    return _drop_wall(json.loads(a.read_text())) == _drop_wall(json.loads(b.read_text()))


def compare(left: Path, right: Path) -> dict[str, Any]:
    """Every result file of two runs folders compared (see the module docstring)."""
    files = {p.relative_to(left) for p in left.rglob("*") if p.is_file()}
    files |= {p.relative_to(right) for p in right.rglob("*") if p.is_file()}
    out: dict[str, Any] = {"bytes": 0, "arrays": 0, "json_without_wall_times": 0, "skipped": 0}
    out.update(missing=[], different=[])
    for rel in sorted(files):
        a, b = left / rel, right / rel
        if rel.name in SKIP_NAMES or rel.suffix == ".log" or SKIP_FOLDERS & set(rel.parts[:-1]):
            out["skipped"] += 1
        elif not (a.is_file() and b.is_file()):
            out["missing"].append(f"{rel} (only in {'local' if a.is_file() else 'ray'})")
        elif a.read_bytes() == b.read_bytes():
            out["bytes"] += 1
        elif rel.suffix == ".npz" and _same_arrays(a, b):
            out["arrays"] += 1
        elif rel.suffix in (".json", ".jsonl") and _same_json(a, b):
            out["json_without_wall_times"] += 1
        else:
            out["different"].append(str(rel))
    return out


def exercised(runs: Path) -> dict[str, Any]:
    """What the study ran, read from its outputs: tasks by kind, test folds and methods."""
    markers = list(runs.glob("eval-test*/*/task.json"))
    kinds = {"pretrain": len(markers), "embed": len(list(runs.glob("eval-test*/*/embedded-*.json")))}
    kinds.update(probe=0, trained=0)
    for cell in runs.glob("sweeps/*/cells/*.json"):
        kind = json.loads(cell.read_text()).get("arm_kind")
        kinds["probe" if kind in ("linear_probe", "random_init") else "trained"] += 1
    folds = sorted({int(m.parent.parent.name.removeprefix("eval-test")) for m in markers})
    return {"tasks": kinds, "test_folds": folds, "methods": sorted({m.parent.name for m in markers})}


# ------------------------------------------------------------------------------------------------ main
def _fresh(out: Path) -> None:
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise SystemExit(f"{out} is not empty and was not made by this script: give an empty or new --out")
    for name in ("run", "local", "ray", "cache-run", "cache-local", "cache-ray"):
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by benchmarks/study_executors.py\n")


def _one(out: Path, name: str, sets: list[str], extra: list[str], timeout: float) -> dict[str, Any]:
    """One executor's run into OUT/run (and OUT/cache-run), moved to OUT/<name> (and OUT/cache-<name>)."""
    result = run_study(sets, extra, out / "cache-run", timeout)
    for src, dest in ((out / "run", out / name), (out / "cache-run", out / f"cache-{name}")):
        if src.exists():
            src.rename(dest)
    return result


def run_both(args: argparse.Namespace, out: Path, sets: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The local run, then the Ray run on a fresh two-node cluster (stopped by PID, also on failure)."""
    threads = ["--threads", str(args.threads)]
    local = _one(out, "local", sets, ["--executor", "local", "--workers", str(args.workers), *threads], args.timeout)
    print(f"local: rc {local['rc']}, {local['wall_s']:.0f} s: {local['summary'] or local['stderr_tail']}", flush=True)
    cluster = LocalRayCluster(max(1, args.workers // 2) * args.threads, env=_env(out / "cache-run"))
    try:
        cluster.start()
    except AclEcgError as exc:
        raise SystemExit(str(exc)) from None
    try:
        ray = _one(out, "ray", sets, ["--executor", "ray", "--address", cluster.address, *threads], args.timeout)
    finally:
        ray_procs = cluster.stop()
    what = ray["summary"] or ray["stderr_tail"]
    print(f"ray:   rc {ray['rc']}, {ray['wall_s']:.0f} s: {what} ({ray_procs} Ray processes stopped)", flush=True)
    return local, ray


def verdict_line(local: dict, ray: dict, diff: dict | None, ran: dict, loads: tuple[dict, dict]) -> tuple[bool, str]:
    ok = (
        diff is not None and not diff["different"] and not diff["missing"]
        and local["rc"] == ray["rc"] == 0 and local["tasks_run"] == ray["tasks_run"]
        and all(ran["tasks"].values()) and len(ran["test_folds"]) >= 2 and len(ran["methods"]) >= 2
    )  # fmt: skip
    if diff is not None and ok:
        n = sum(diff[k] for k in ("bytes", "arrays", "json_without_wall_times"))
        detail = (
            f"{n} result files equal ({diff['bytes']} byte for byte, {diff['arrays']} .npz array for array, "
            f"{diff['json_without_wall_times']} JSON without wall times; {diff['skipped']} logs skipped)"
        )
    else:
        detail = f"differing: {(diff or {}).get('different', [])[:3]}, missing: {(diff or {}).get('missing', [])[:3]}"
    before, after = loads
    return ok, (
        f"{'SAME' if ok else 'DIFFERENT'}: {detail}; local {local['wall_s']:.0f} s, ray (2 nodes) "
        f"{ray['wall_s']:.0f} s, {local['tasks_run']}/{ray['tasks_run']} tasks run; exercised {ran['tasks']} on test "
        f"folds {ran['test_folds']} and methods {ran['methods']}; load {before['load'][0]:.2f} -> "
        f"{after['load'][0]:.2f} ({before['verdict']} -> {after['verdict']})"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="a prepared PTB-XL-layout folder (aclecg prepare)")
    p.add_argument("--out", default=Path("/tmp/study-executors"), type=Path, help="work folder (%(default)s)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--workers", type=int, default=2, help="parallel tasks of each executor (%(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (Ray CPUs) per task (%(default)s)")
    p.add_argument("--pretrain-steps", type=int, default=3, help="optimiser steps per pretraining (%(default)s)")
    p.add_argument("--train-steps", type=int, default=10, help="steps of the trained arms (%(default)s)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per executor (%(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more study overrides")
    p.add_argument("--compare-only", action="store_true", help="compare OUT/local and OUT/ray again, run nothing")
    args = p.parse_args(argv)
    data, out = args.data.resolve(), args.out.resolve()
    if not (data / "manifest.json").is_file():
        raise SystemExit(f"--data {data}: not a prepared folder (no manifest.json); run aclecg prepare first")
    sets = short_budget(data, out / "run", args.pretrain_steps, args.train_steps) + list(args.set)
    before, load_before = load_line("before")
    print(before, flush=True)
    if args.compare_only:
        local = ray = {"rc": 0, "wall_s": 0.0, "tasks_run": 0, "summary": "not run (--compare-only)"}
    else:
        _fresh(out)
        local, ray = run_both(args, out, sets)
    after, load_after = load_line("after")
    diff = None
    if (out / "local").is_dir() and (out / "ray").is_dir():  # the runs folders, then the embeddings caches
        diff = compare(out / "local", out / "ray")
        cache = compare(out / "cache-local", out / "cache-ray")
        for key, value in cache.items():
            diff[key] += [f"cache/{v}" for v in value] if isinstance(value, list) else value
    ran = exercised(out / "local")
    ok, verdict = verdict_line(local, ray, diff, ran, (load_before, load_after))
    print(after)
    print(verdict)
    if args.json:
        report = {
            "verdict": verdict, "same": ok, "data": str(data), "out": str(out), "study": STUDY, "sets": sets,
            "workers": args.workers, "threads": args.threads, "local": local, "ray": ray, "compare": diff,
            "exercised": ran, "load_before": load_before, "load_after": load_after,
        }  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
