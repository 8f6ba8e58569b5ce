"""Benchmark: how every step of the product grows with the number of records, on full-size raw layouts.

    *** The data are SYNTHETIC CLONES of the bundled real records (benchmarks/make_scale_corpus.py): the figures
    are for speed and memory only, never for reported results. ***

For each PTB-XL size of ``--sizes`` (default 1,000, 5,000 and 21,799 records) and each Challenge 2021 size of
``--challenge`` (default 20,000 records at 500 Hz) the corpus is built (or reused) in ``--workdir``, then each step
runs in its own subprocess, so its peak memory is its own:

* ``prepare``: ``python -m aclecg prepare`` (default workers unless ``--prepare-workers``), 100 Hz, 10 s windows;
* ``pretrain-input``: the pretraining engine's data path: :class:`aclecg.training.data.PretrainData` over the
  prepared data, a fixed number of global batches (``--batches``, after two untimed ones) read in an epoch's order
  and augmented twice with the ACL-ECG method's default augmentation (no encoder; samples/s is over the timed
  batches, the setup is in the wall time);
* ``embed``: ``python -m aclecg embed --refresh`` with the shipped ``checkpoints/acl_ecg/encoder.pt``;
* ``probe``: one ``aclecg sweep`` cell, ``--arms linear_probe --fractions 1 --seeds 1`` (embeddings from ``embed``);
* ``trained``: one ``supervised`` sweep cell with a fixed budget (``--trained-steps``, one learning rate), to show
  that a trained arm's memory stays flat in the dataset size;
* ``map``: ``python -m aclecg umap`` (the fast map) of the checkpoint's embeddings;
* ``neighbours``: ``python -m aclecg neighbours --evaluate`` (checkpoint, random-init, raw-signal and chance rows).

Each step's wall time, records/s (for ``pretrain-input``: samples/s over its batches) and peak memory are reported:
``maxrss`` is the child's ``ru_maxrss`` from ``wait4`` (its largest process's peak resident set, exact), ``anon``
the peak of the summed ``RssAnon`` of the child and its descendants, sampled every 0.1 s (what the process tree
held privately, page cache of memory-mapped files excluded). Wall times include the interpreter's start and
imports (measured once and printed as ``startup``). The growth exponent between consecutive sizes is
``log(v2 / v1) / log(n2 / n1)`` (0 = flat, 1 = linear, 2 = quadratic). Figures are labelled "idle" only when the
1-minute load average is below 0.3 at the start. Step outputs live in ``<size folder>/out`` with
``ACLECG_CACHE`` pointing there, so nothing is written to the project's caches.

Disk: the corpus, prepared data and embeddings of a size are estimated before anything starts and the run is
refused when the work folder's file system has too little room. Without ``--keep`` each size's folder is removed
once measured, so the peak is the largest size's (estimated 4.6 GB for the 20,000 Challenge records, 2.0 GB for
21,799 PTB-XL records); with ``--keep`` everything stays (7.1 GB for the defaults; corpora are reused by a later run).

    .venv/bin/python benchmarks/bench_scale.py                                    # full size: idle machine only
    .venv/bin/python benchmarks/bench_scale.py --sizes 200 400 --challenge 200    # a quick check that it works
    .venv/bin/python benchmarks/bench_scale.py --workdir /data/scale --keep --json scale.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

import make_scale_corpus as corpus  # noqa: E402  # benchmarks/ is on sys.path when a script here runs

STEPS = ("prepare", "pretrain-input", "embed", "probe", "trained", "map", "neighbours")
LABEL_SET = {"ptbxl": "superdiagnostic", "challenge": "scored"}
CHECKPOINT = REPO / "checkpoints" / "acl_ecg" / "encoder.pt"
PREPARED_ROW_BYTES = 12 * 1000 * 4 + 2048  # signals.npy row + records.csv, R-peaks, labels
OUTPUT_ROW_BYTES = 2 * 768 * 4 + 4096  # checkpoint and random-init embeddings, map, sweep predictions
SAMPLE_EVERY_S = 0.1
WARMUP_BATCHES = 2  # pretrain-input: read and augmented before the timed batches


def growth_exponent(n1: float, v1: float, n2: float, v2: float) -> float | None:
    """``log(v2 / v1) / log(n2 / n1)``: 0 flat, 1 linear, 2 quadratic; None when undefined."""
    if min(n1, n2, v1, v2) <= 0 or n1 == n2:
        return None
    return math.log(v2 / v1) / math.log(n2 / n1)


# --------------------------------------------------------------------------------------------- measuring a child


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            with open(f"{task.path}/children") as fh:
                out += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return out


def _anon_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_anon_kb(pid: int) -> int:
    """Summed ``RssAnon`` of ``pid`` and all its descendants, in kB (0 where /proc cannot tell)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _anon_kb(p)
        todo += _children(p)
    return total


def run_measured(cmd: list[str], log: Path, env: dict, timeout: float) -> dict:
    """Run ``cmd`` (output to ``log``); its wall time, exit status, ``ru_maxrss`` and sampled peak RssAnon (MB)."""
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)
        peak_kb, status, usage = 0, 0, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_kb = max(peak_kb, tree_anon_kb(proc.pid))
            if time.perf_counter() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGTERM)  # our own child's process group
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(SAMPLE_EVERY_S)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; tell Popen
    return {
        "wall_s": round(wall, 3),
        "rc": proc.returncode,
        "maxrss_mb": round(usage.ru_maxrss / 1024.0, 1) if usage else None,
        "anon_peak_mb": round(peak_kb / 1024.0, 1),
        "timed_out": wall > timeout,
    }


# --------------------------------------------------------------------------------------------- the steps


def pretrain_input(prepared: Path, batches: int, batch_size: int, seed: int = 0) -> dict:
    """The engine's per-step input: ``batches`` global batches read and augmented twice (run in a child)."""
    import torch

    from aclecg.augment import build_augmentation
    from aclecg.leads import LEADS, default_region_map
    from aclecg.methods.registry import method_info
    from aclecg.training.data import PretrainData, epoch_permutation

    t0 = time.perf_counter()
    data = PretrainData([prepared], LEADS)
    spec = method_info("acl_ecg").default_augmentation
    augment = build_augmentation(spec, fs=data.fs, leads=LEADS, region_map=default_region_map())
    generator = torch.Generator().manual_seed(seed + 17)
    order = epoch_permutation(len(data), seed, 0)
    batch_size = min(batch_size, len(data))
    per_epoch = len(data) // batch_size
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    for step in range(-WARMUP_BATCHES, batches):
        if step == 0:
            t1 = time.perf_counter()
        pos = step % per_epoch
        x, peaks = data.batch(order[pos * batch_size : (pos + 1) * batch_size], 32)
        with torch.no_grad():
            augment(x, peaks, generator=generator)
            augment(x, peaks, generator=generator)
    loop = time.perf_counter() - t1
    return {"setup_s": round(setup, 3), "loop_s": round(loop, 3), "samples_per_s": batches * batch_size / loop}


def step_command(step: str, fmt: str, folder: Path, args: argparse.Namespace) -> list[str]:
    """The command line of one step on the size folder ``folder`` (raw corpus in ``raw/``, outputs in ``out/``)."""
    cli = [sys.executable, "-m", "aclecg"]
    prepared, out, ckpt = str(folder / "out" / "prepared"), folder / "out", str(CHECKPOINT)
    label = ["--label-set", LABEL_SET[fmt]]
    cell = ["--fractions", "1", "--seeds", "1", "--no-progress"]
    if step == "prepare":
        cmd = cli + ["prepare", "--format", fmt, "--input", str(folder / "raw"), "--output", prepared, "--quiet"]
        return cmd + (["--workers", str(args.prepare_workers)] if args.prepare_workers is not None else [])
    if step == "pretrain-input":
        return [
            sys.executable,
            __file__,
            "--child-pretrain-input",
            prepared,
            "--child-result",
            str(out / "pi.json"),
            "--batches",
            str(args.batches),
            "--batch-size",
            str(args.batch_size),
        ]
    if step == "embed":
        return cli + ["embed", "--checkpoint", ckpt, "--data", prepared, "--refresh"]
    if step == "probe":
        return cli + [
            "sweep",
            "--checkpoint",
            ckpt,
            "--data",
            prepared,
            *label,
            "--arms",
            "linear_probe",
            *cell,
            "--out",
            str(out / "sweep-probe"),
        ]
    if step == "trained":
        return cli + [
            "sweep",
            "--data",
            prepared,
            *label,
            "--arms",
            "supervised",
            "--encoder",
            "small",
            *cell,
            "--max-steps",
            str(args.trained_steps),
            "--eval-every",
            str(max(1, args.trained_steps // 2)),
            "--dense-until",
            "0",
            "--lr-grid",
            "0.001",
            "--out",
            str(out / "sweep-trained"),
        ]
    if step == "map":
        return cli + ["umap", "--checkpoint", ckpt, "--data", prepared, "--out", str(out / "map.csv")]
    if step == "neighbours":
        return cli + [
            "neighbours",
            "--evaluate",
            "--checkpoint",
            ckpt,
            "--data",
            prepared,
            *label,
            "--out",
            str(out / "neighbours.csv"),
        ]
    raise ValueError(step)


def measure_size(fmt: str, n: int, folder: Path, args: argparse.Namespace) -> list[dict]:
    """Build or reuse the corpus of one size, then run and measure each chosen step; one row per step."""
    made = corpus.make_corpus(fmt, n, folder / "raw", seed=0)
    rows = [{"format": fmt, "n": n, "step": "corpus", "wall_s": made["seconds"], "reused": made["reused"]}]
    out = folder / "out"
    shutil.rmtree(out, ignore_errors=True)  # outputs of an earlier run (a sweep folder would be resumed)
    out.mkdir(parents=True)
    env = {**os.environ, "ACLECG_CACHE": str(out / "cache"), "PYTHONPATH": str(REPO)}
    for step in args.steps:
        cmd = step_command(step, fmt, folder, args)
        row = {"format": fmt, "n": n, "step": step, **run_measured(cmd, out / f"{step}.log", env, args.step_timeout)}
        row["records_per_s"] = round(n / row["wall_s"], 1)
        if step == "pretrain-input" and row["rc"] == 0:
            child = json.loads((out / "pi.json").read_text())
            row.update(records_per_s=round(child["samples_per_s"], 1), setup_s=child["setup_s"])
        rows.append(row)
        print(_line(row), flush=True)
        if row["rc"] != 0:
            tail = (out / f"{step}.log").read_text(errors="replace")[-1500:]
            print(f"   {step} failed (exit {row['rc']}); end of its log:\n{tail}", file=sys.stderr, flush=True)
            if step in ("prepare", "embed"):
                print(f"   the later steps need {step}; skipping them for this size", file=sys.stderr)
                break
    return rows


# --------------------------------------------------------------------------------------------- reporting


def _line(row: dict) -> str:
    if row["step"] == "corpus":
        how = "reused" if row["reused"] else "written"
        return f"{row['format']:>9} {row['n']:>7} {'corpus':<15}{row['wall_s']:>9.1f}  ({how}; not a product step)"
    rc = "" if row["rc"] == 0 else f"  FAILED (exit {row['rc']})"
    return (
        f"{row['format']:>9} {row['n']:>7} {row['step']:<15}{row['wall_s']:>9.1f} {row['records_per_s']:>10.1f} "
        f"{row['maxrss_mb'] or 0:>10.0f} {row['anon_peak_mb']:>9.0f}{rc}"
    )


def exponents(rows: list[dict]) -> list[dict]:
    """Growth exponents of wall time and peak memory per format and step between consecutive sizes."""
    out = []
    keys = sorted(
        {(r["format"], r["step"]) for r in rows if r["step"] != "corpus"}, key=lambda k: (k[0], STEPS.index(k[1]))
    )
    for fmt, step in keys:
        mine = sorted(
            (r for r in rows if (r["format"], r["step"]) == (fmt, step) and r["rc"] == 0), key=lambda r: r["n"]
        )
        for a, b in itertools.pairwise(mine):
            item = {"format": fmt, "step": step, "n1": a["n"], "n2": b["n"]}
            for key in ("wall_s", "maxrss_mb", "anon_peak_mb"):
                value = growth_exponent(a["n"], a[key] or 0, b["n"], b[key] or 0)
                item[key] = None if value is None else round(value, 2)
            out.append(item)
    return out


def print_exponents(items: list[dict]) -> None:
    if not items:
        return
    print("\ngrowth exponents between consecutive sizes, log(v2/v1)/log(n2/n1): 0 flat, 1 linear, 2 quadratic")
    print(f"{'format':>9} {'step':<15}{'sizes':>15} {'wall':>6} {'maxrss':>7} {'anon':>6}")
    for e in items:
        fmt = [("-" if e[k] is None else f"{e[k]:.2f}") for k in ("wall_s", "maxrss_mb", "anon_peak_mb")]
        print(f"{e['format']:>9} {e['step']:<15}{e['n1']:>7}->{e['n2']:<7} {fmt[0]:>6} {fmt[1]:>7} {fmt[2]:>6}")


def disk_needed(plan: list[tuple[str, int]], keep: bool) -> int:
    """Bytes the run needs at its peak: every size's (``keep``) or the largest size's corpus and outputs."""
    sizes = [
        corpus.estimate_bytes(fmt, n) + n * windows_per_record(fmt) * (PREPARED_ROW_BYTES + OUTPUT_ROW_BYTES)
        for fmt, n in plan
    ]
    return int(sum(sizes) if keep else max(sizes, default=0))


def windows_per_record(fmt: str) -> float:
    """Mean 10-s windows per record of ``fmt``'s sources (Challenge records run 10-25 s)."""
    if fmt == "ptbxl":
        return 1.0
    import wfdb

    heads = [wfdb.rdheader(str(h.with_suffix(""))) for h in sorted(corpus.SOURCES[fmt].rglob("*.hea"))]
    return sum(math.ceil(h.sig_len / h.fs / 10.0) for h in heads) / len(heads)


def startup_seconds(env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, aclecg.cli"], env=env, cwd=REPO, check=False)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 5000, 21799], help="PTB-XL record counts")
    parser.add_argument(
        "--challenge", type=int, nargs="*", default=[20000], help="Challenge record counts (none: skip)"
    )
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    parser.add_argument("--workdir", type=Path, default=None, help="where corpora and outputs go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep every size's corpus and outputs in --workdir")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--prepare-workers", type=int, default=None, help="prepare --workers (default: the CLI's)")
    parser.add_argument("--batches", type=int, default=20, help="pretrain-input: batches timed (20)")
    parser.add_argument("--batch-size", type=int, default=128, help="pretrain-input: global batch size (128)")
    parser.add_argument("--trained-steps", type=int, default=20, help="trained arm: optimiser steps (20)")
    parser.add_argument("--step-timeout", type=float, default=3600.0, help="seconds before a step is stopped")
    parser.add_argument("--child-pretrain-input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_pretrain_input:
        result = pretrain_input(args.child_pretrain_input, args.batches, args.batch_size)
        args.child_result.write_text(json.dumps(result))
        return 0
    args.steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    if set(args.steps) - set(STEPS):
        parser.error(f"--steps: unknown {sorted(set(args.steps) - set(STEPS))}; choose from {', '.join(STEPS)}")
    plan = [("ptbxl", n) for n in sorted(set(args.sizes))] + [("challenge", n) for n in sorted(set(args.challenge))]
    for fmt, n in plan:
        if not 1 <= n <= corpus.MAX_RECORDS[fmt]:
            parser.error(f"{fmt} size {n} is outside 1..{corpus.MAX_RECORDS[fmt]}")
    if args.keep and args.workdir is None:
        parser.error("--keep needs --workdir (a temporary folder is always removed)")
    return run(plan, args)


def run(plan: list[tuple[str, int]], args: argparse.Namespace) -> int:
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="aclecg-bench-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    need = disk_needed(plan, args.keep)
    problem = corpus.free_space_problem(workdir, need, "this run")
    load0 = os.getloadavg()
    print(f"*** {corpus.WARNING} ***")
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; load average "
        f"{load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f} at the start: figures are "
        f"{'IDLE' if load0[0] < 0.3 else 'UNDER LOAD (not idle)'}"
    )
    print(
        f"work folder {workdir}: needs about {need / 1e9:.2f} GB, {shutil.disk_usage(workdir).free / 1e9:.1f} GB free"
    )
    if problem:
        print(problem, file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    startup = startup_seconds(env)
    print(f"startup (python -c 'import torch, aclecg.cli'): {startup:.2f} s, included in every wall time below")
    print(f"\n{'format':>9} {'n':>7} {'step':<15}{'wall s':>9} {'records/s':>10} {'maxrss MB':>10} {'anon MB':>9}")
    rows: list[dict] = []
    try:
        for fmt, n in plan:
            folder = workdir / f"{fmt}-{n}"
            rows += measure_size(fmt, n, folder, args)
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    growth = exponents(rows)
    print_exponents(growth)
    load1 = os.getloadavg()
    print(f"\nload average at the end {load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f}")
    if args.json:
        report = {
            "note": corpus.WARNING,
            "machine": platform.machine(),
            "cores": os.cpu_count(),
            "load_start": load0,
            "load_end": load1,
            "idle": load0[0] < 0.3,
            "startup_s": round(startup, 2),
            "rows": rows,
            "exponents": growth,
        }
        args.json.write_text(json.dumps(report, indent=1))
    return 1 if any(r.get("rc") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
