"""Peak memory and validation share of one trained-arm cell, before and after streaming and the validation cap.

    .venv/bin/python benchmarks/bench_trained_memory.py [--sizes 1000,5000] [--steps 100] [--val-cap 256]

For each size a synthetic prepared dataset is written (crude synthetic ECGs of :mod:`aclecg.augment.synthetic` with
class-dependent tones, z-scored; 12 x 1000 at 100 Hz; five classes; record ``i`` in fold ``i % 10 + 1``, fold 9
validates and fold 10 is scored, so the validation fold is a tenth of the data as in PTB-XL). One ``reference_cnn``
cell (fraction 1.0, one learning rate, ``--steps`` steps, the default validation schedule) then runs twice, each in
a fresh subprocess that reports its own peak RSS (``resource.getrusage``):

* ``before``: what ``train_arm`` did until 2026-12: the whole training and validation subsets read into memory
  through the memory mapping (the old ``read_signals``, which also leaves the pages it touched in the process's
  resident set), then ``torch.from_numpy``; every validation on the whole fold; the test fold read at once;
* ``after``: today's ``train_arm``: batches read from the cache file, validation on at most ``--val-cap`` records
  during training and on the whole fold once at the best step, test predictions in chunks of 256.

It prints, per size and side: peak RSS, its growth over the process's RSS before the cell (the signal memory), the
cell's time, the validation time (every call of ``aclecg.classifier.validate_model``) and its share of the cell.
Last, from the ``after`` run's measured cost of a training step and of validating one record (timed separately in
a batch of 256, the size of the default cap and of the whole fold's prediction chunks), it projects the
validation share of a cell at 21,799 records (PTB-XL; validation fold 2,183 records) for runs that stop at 200,
400 and 1000 steps and for the full 2000.

The machine must be otherwise idle for the times to mean anything; ``--sizes 21799`` also works (about 1 GiB of
cache on disk and, before, about 1.7 GB of RSS), but run it only on a machine you have to yourself.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
PREVALENCE = (0.45, 0.25, 0.24, 0.22, 0.12)
PTBXL_RECORDS, PTBXL_VAL = 21799, 2183


def write_dataset(folder: Path, n: int, chunk: int = 500) -> None:
    """A prepared dataset of ``n`` synthetic records that :class:`aclecg.data.PreparedDataset` opens."""
    import pandas as pd
    import torch

    from aclecg.augment.synthetic import make_synthetic_batch
    from aclecg.leads import LEADS

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    y = rng.random((n, len(CLASSES))) < np.array(PREVALENCE)
    signals = np.lib.format.open_memmap(folder / "signals.npy", mode="w+", dtype="<f4", shape=(n, 12, 1000))
    gen = torch.Generator().manual_seed(0)
    t = np.arange(1000) / 100.0
    peaks: list[np.ndarray] = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        x, r = make_synthetic_batch(stop - start, generator=gen)
        x = x.numpy()
        for c in range(len(CLASSES)):  # each class adds a tone to two leads: learnable, not trivial
            tone = (0.08 * np.sin(2 * np.pi * (1.5 + c) * t)).astype(np.float32)
            x[:, 2 * c : 2 * c + 2] += y[start:stop, c, None, None] * tone
        x = (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + 1e-6)
        signals[start:stop] = x
        peaks.extend(row[row >= 0].astype(np.int32) for row in r.numpy())
    signals.flush()
    del signals
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in peaks])]).astype(np.int64)
    np.save(folder / "rpeaks.npy", np.concatenate(peaks))
    np.save(folder / "rpeak_offsets.npy", offsets)
    fold = np.arange(n) % 10 + 1
    pd.DataFrame(
        {
            "record_id": [f"s{i}" for i in range(n)],
            "patient_id": [f"p{i}" for i in range(n)],
            "fold": fold,
            "split": np.where(fold <= 8, "train", np.where(fold == 9, "val", "test")),
            "source": "synthetic",
            "labels_super": [";".join(c for c, v in zip(CLASSES, row) if v) for row in y],
        }
    ).to_csv(folder / "records.csv", index=False)
    manifest = {
        "format_version": 1,
        "dataset": "synthetic",
        "format": "synthetic",
        "fs": 100.0,
        "seconds": 10.0,
        "n_samples": 1000,
        "leads": list(LEADS),
        "label_sets": {"super": list(CLASSES)},
        "preprocessing": {},
        "counts": {"rows": n},
        "skipped": [],
        "fingerprint": f"synthetic-{n}",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _old_read_signals(dataset, indices: np.ndarray, lead_idx: list[int]) -> np.ndarray:
    """``aclecg.classifier.read_signals`` before 2026-12: fancy indexing of the memory-mapped array."""
    order = np.argsort(indices, kind="stable")
    block = np.asarray(dataset.signals[indices[order]], dtype=np.float32)[:, lead_idx]
    out = np.empty_like(block)
    out[order] = block
    return out


def _rss_mb() -> float:
    """Current resident set size (Linux /proc; else the peak so far)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _peak_mb()


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def child(side: str, data_dir: str, steps: int, val_cap: int) -> dict:
    """Run one reference_cnn cell on ``side``'s code path in this process; return its measurements."""
    import torch

    from aclecg import classifier, evaluation, lrsearch
    from aclecg.data import PreparedDataset
    from aclecg.evaluation.finetune import train_arm
    from aclecg.evaluation.task import CellTask
    from aclecg.models import resolve_encoder_config
    from aclecg.reference_cnn import build_reference_cnn

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    dataset = PreparedDataset(data_dir)
    keep, y, _ = dataset.labels("super")
    split = dataset.records["split"].to_numpy()[keep]
    train_pos, val_pos, test_pos = (np.flatnonzero(split == s) for s in ("train", "val", "test"))
    cfg = evaluation.EvalConfig(max_steps=steps, patience=10 * steps, lr_grid=(1e-3,), val_cap=val_cap, device="cpu")
    timer = {"seconds": 0.0, "calls": 0, "records": 0}
    real = classifier.validate_model

    def timed(model, x_val, y_val, protocol, dev):
        start = time.perf_counter()
        try:
            return real(model, x_val, y_val, protocol, dev)
        finally:
            timer["seconds"] += time.perf_counter() - start
            timer["calls"] += 1
            timer["records"] += len(x_val)

    classifier.validate_model = timed
    rss_before = _rss_mb()
    start = time.perf_counter()
    if side == "before":
        lead_idx = list(range(12))
        x_tr = torch.from_numpy(_old_read_signals(dataset, keep[train_pos], lead_idx))
        x_va = torch.from_numpy(_old_read_signals(dataset, keep[val_pos], lead_idx))
        fit = lrsearch.fit_with_lr_grid(
            lambda: build_reference_cnn(12, len(CLASSES), seed=0),
            x_tr,
            y[train_pos],
            x_va,
            y[val_pos],
            "multilabel",
            cfg.lr_grid,
            max_steps=cfg.max_steps,
            eval_every=cfg.eval_every,
            dense=(cfg.dense_every, cfg.dense_until),
            patience=cfg.patience,
            batch_size=cfg.batch_size,
            device="cpu",
            show_progress=False,
        )
        t_test = time.perf_counter()
        x_te = torch.from_numpy(_old_read_signals(dataset, keep[test_pos], lead_idx))
        assert fit.model is not None and fit.log is not None  # a fresh search trains every rate
        classifier.predict_scores(fit.model, x_te, "multilabel", device="cpu")
        steps_run, val = fit.log.steps_run, fit.log.best_criterion
    else:
        ref_cfg = resolve_encoder_config("small", leads=list(dataset.leads))
        task = CellTask(
            dataset,
            keep,
            y,
            train_pos,
            val_pos,
            test_pos,
            "multilabel",
            0,
            cfg,
            cfg.lr_grid,
            torch.device("cpu"),
            ref_cfg,
        )
        result = train_arm("reference_cnn", None, task, "bench", show_progress=False)
        t_test = time.perf_counter()  # the test prediction is inside train_arm: counted as training here
        steps_run, val = result["details"]["steps_run"], result["details"]["val"]
    end = time.perf_counter()
    peak = _peak_mb()  # before the calibration below
    classifier.validate_model = real
    calib = keep[np.resize(val_pos, 256)]  # the cost of validating a record, in one batch of 256 as at scale
    x_cal = torch.from_numpy(classifier.read_signals(dataset, calib, list(range(12))))
    net, y_cal = build_reference_cnn(12, len(CLASSES), seed=0), y[np.resize(val_pos, 256)]
    real(net, x_cal, y_cal, "multilabel", torch.device("cpu"))
    t0 = time.perf_counter()
    for _ in range(3):
        real(net, x_cal, y_cal, "multilabel", torch.device("cpu"))
    return {
        "side": side,
        "records": len(dataset),
        "n_train": len(train_pos),
        "n_val": len(val_pos),
        "steps_run": steps_run,
        "val": val,
        "cell_s": end - start,
        "test_s": end - t_test,
        "val_s": timer["seconds"],
        "val_calls": timer["calls"],
        "val_records": timer["records"],
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "record_s_at_256": (time.perf_counter() - t0) / (3 * 256),
    }


def _projection(after: dict, val_cap: int) -> list[str]:
    """Validation share at PTB-XL's size from the measured costs of a training step and of validating a record
    (in a batch of 256, as the whole fold and the default cap are validated)."""
    from aclecg.classifier import validation_due
    from aclecg.evaluation import EvalConfig

    d = EvalConfig()
    t_record = after["record_s_at_256"]
    t_step = (after["cell_s"] - after["val_s"] - after["test_s"]) / max(after["steps_run"], 1)
    capped = min(PTBXL_VAL, val_cap) if val_cap > 0 else PTBXL_VAL
    lines = [
        f"projection to {PTBXL_RECORDS} records (validation fold {PTBXL_VAL}), from this run's "
        f"{t_step * 1000:.0f} ms a training step and {t_record * 1000:.2f} ms a validated record:"
    ]
    for stop in (200, 400, 1000, d.max_steps):
        evals = 1 + sum(validation_due(s, stop, d.eval_every, d.dense_every, d.dense_until) for s in range(1, stop + 1))
        train = stop * t_step
        full = evals * PTBXL_VAL * t_record
        cap = (evals * capped + (PTBXL_VAL if capped < PTBXL_VAL else 0)) * t_record
        lines.append(
            f"  run of {stop:4d} steps ({evals:3d} validations): validation / training "
            f"whole fold {full / train:6.1%}, capped at {val_cap} {cap / train:6.1%}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000", help="comma-separated record counts (default %(default)s)")
    parser.add_argument("--steps", type=int, default=100, help="step budget of the cell (default %(default)s)")
    parser.add_argument("--val-cap", type=int, default=None, help="validation cap (default: EvalConfig's)")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.val_cap is None:
        from aclecg.evaluation import EvalConfig

        args.val_cap = EvalConfig().val_cap
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.steps, args.val_cap)))
        return
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.steps} steps, cap {args.val_cap}")
    after: dict = {}
    for n in (int(s) for s in args.sizes.split(",") if s.strip()):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / f"synthetic{n}"
            write_dataset(folder, n)
            for side in ("before", "after"):
                cmd = [sys.executable, __file__, "--child", side, str(folder), "--steps", str(args.steps)]
                out = subprocess.run(cmd + ["--val-cap", str(args.val_cap)], check=True, capture_output=True, text=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(
                    f"{n:6d} records {side:6s}: peak RSS {r['peak_rss_mb']:7.0f} MB "
                    f"(+{r['peak_rss_mb'] - r['rss_before_mb']:5.0f} MB during the cell), cell {r['cell_s']:6.1f} s, "
                    f"validation {r['val_s']:5.1f} s = {r['val_s'] / r['cell_s']:5.1%} "
                    f"({r['val_calls']} calls, {r['val_records']} records; val fold {r['n_val']}), "
                    f"{r['steps_run']} steps, val {r['val']:.3f}"
                )
                after = r if side == "after" else after
    print("\n".join(_projection(after, args.val_cap)))


if __name__ == "__main__":
    main()
