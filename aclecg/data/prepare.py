"""``prepare``: read a raw dataset, preprocess every record and write a memory-mapped cache atomically.

Pipeline per record (see docs/data.md): read + check -> resample to ``fs`` (``resample_poly``) -> zero-phase
Butterworth band-pass -> R-peaks on the whole filtered record -> cut into non-overlapping windows of
``seconds`` -> z-score per window and lead -> append to ``signals.npy``. Records that cannot be used are
listed with a reason (or abort the run with ``strict=True``).

The cache is written into a hidden temporary sibling folder and renamed into place at the very end, so an
interrupted run never leaves a folder that looks like a valid prepared dataset (:mod:`aclecg.data.staging`: SIGTERM
and Ctrl-C remove it, a later run removes one left by a killed process, a failing write is one ``StorageError``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from aclecg import contract
from aclecg.data import challenge, cpsc2018, ptbxl  # noqa: F401  (the built-in readers register themselves)
from aclecg.data.base import READERS, Reader, RecordItem
from aclecg.data.labels import join_labels, split_labels
from aclecg.data.limits import MAX_FS_HZ, max_samples
from aclecg.data.preprocess import MIN_FRACTION, bandpass, cut_windows, plan_windows, resample, zscore
from aclecg.data.records import Skipped
from aclecg.data.rpeaks import detect_rpeaks
from aclecg.data.signalfile import SignalWriter
from aclecg.data.splits import patient_stratified_folds, split_of
from aclecg.data.staging import (
    OWNER,
    exit_on_sigterm,
    held_sigterm,
    new_temporary,
    remove_stale,
    sigterm_raises,
    storage_error,
    trash_name,
)
from aclecg.errors import AclEcgError, ConfigError, DataError
from aclecg.leads import LEADS

FORMAT_VERSION = 1


@dataclass(frozen=True)
class PrepareConfig:
    """Preprocessing parameters (stored in the manifest under ``preprocessing``)."""

    fs: float = 100.0
    seconds: float = 10.0
    band_hz: tuple[float, float] = (0.5, 40.0)
    filter_order: int = 2
    min_fraction: float = MIN_FRACTION
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.fs <= MAX_FS_HZ:
            raise ConfigError(f"fs must be positive and at most {MAX_FS_HZ:g} Hz, got {self.fs}")
        if not self.seconds > 0:
            raise ConfigError(f"seconds must be positive, got {self.seconds}")
        if not 0 < self.band_hz[0] < self.band_hz[1]:
            raise ConfigError(f"band must satisfy 0 < low < high, got {self.band_hz}")

    @property
    def n_samples(self) -> int:
        return int(round(self.fs * self.seconds))

    def contract(self) -> contract.Contract:
        """The preprocessing contract of windows prepared with these parameters (recorded in the manifest)."""
        return contract.Contract(
            fs=self.fs,
            n_samples=self.n_samples,
            seconds=self.seconds,
            band_hz=contract.effective_band(self.band_hz, self.fs),
            filter_order=self.filter_order,
            leads=LEADS,
        )


@dataclass
class Processed:
    """The windows of one record, ready to append to the cache."""

    item_index: int
    windows: np.ndarray  # float32 (W, 12, T)
    starts: list[int]
    n_valid: list[int]
    rpeaks: list[np.ndarray]
    fs_original: float
    seconds_original: float
    age: float
    sex: str
    warnings: list[str] = field(default_factory=list)


def make_reader(fmt: str, input_dir: str | Path, fs: float = 100.0) -> Reader:
    """The reader for ``fmt`` (a format registered in :data:`aclecg.data.base.READERS`, spelt exactly)."""
    if fmt not in READERS.names():
        raise ConfigError(f"unknown format {fmt!r}; expected one of {', '.join(READERS.names())}")
    return READERS.get(fmt).open(input_dir, fs=fs)


def process_record(reader: Reader, item: RecordItem, index: int, cfg: PrepareConfig) -> Processed | Skipped:
    """Read and preprocess one record; a :class:`Skipped` when it is malformed or too short."""
    try:
        record = reader.read(item)
    except DataError as exc:
        msg = str(exc)
        return Skipped(item.source, msg.split(": ", 1)[1] if msg.startswith(item.source + ": ") else msg)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0][:160]
        return Skipped(item.source, f"could not be read: unexpected {type(exc).__name__} ({first})")
    if not np.isfinite(record.signals).all():
        return Skipped(item.source, "signal has non-finite samples (NaN or infinite; a gain of 0 or NaN?)")
    if record.fs < cfg.fs - 1e-9:
        return Skipped(item.source, f"sampling rate {record.fs:g} Hz is below the target {cfg.fs:g} Hz")
    if record.fs > MAX_FS_HZ or record.n_samples > max_samples(record.fs):  # the readers check the header first
        return Skipped(item.source, f"{record.n_samples} samples at {record.fs:g} Hz are over the limits; refused")
    try:
        x = resample(record.signals, record.fs, cfg.fs)
    except DataError as exc:
        return Skipped(item.source, str(exc))
    x = bandpass(x, cfg.fs, *cfg.band_hz, order=cfg.filter_order)
    T = cfg.n_samples
    windows = plan_windows(x.shape[1], T, cfg.min_fraction)
    if not windows:
        return Skipped(
            item.source,
            f"record is {record.seconds:.2f} s long, shorter than "
            f"{cfg.min_fraction:.0%} of the {cfg.seconds:g} s window",
        )
    peaks = detect_rpeaks(x, cfg.fs)
    n_valid = np.array([w.n_valid for w in windows])
    data = zscore(cut_windows(x, windows, T), n_valid).astype(np.float32)
    per_window = [peaks[(peaks >= w.start) & (peaks < w.start + w.n_valid)] - w.start for w in windows]
    return Processed(
        index,
        data,
        [w.start for w in windows],
        n_valid.tolist(),
        per_window,
        record.fs,
        record.seconds,
        record.age,
        record.sex,
        record.warnings,
    )


_WORKER: tuple[Reader, PrepareConfig] | None = None


def _init_worker(reader: Reader, cfg: PrepareConfig) -> None:
    global _WORKER
    _WORKER = (reader, cfg)
    exit_on_sigterm()


def _work(job: tuple[int, RecordItem]) -> Processed | Skipped:
    reader, cfg = _WORKER  # type: ignore[misc]
    return process_record(reader, job[1], job[0], cfg)


#: fewer records than this are prepared in this process: starting a pool of spawned workers costs more than it saves
MIN_ITEMS_PER_POOL = 32


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the platform tells, else ``os.cpu_count()``)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return max(1, len(affinity(0)) if affinity is not None else os.cpu_count() or 1)


def _results(
    reader: Reader, items: list[RecordItem], cfg: PrepareConfig, workers: int
) -> Iterator[Processed | Skipped]:
    workers = min(workers, usable_cpus())
    if workers <= 1 or len(items) < MIN_ITEMS_PER_POOL:
        for i, item in enumerate(items):
            yield process_record(reader, item, i, cfg)
        return
    # spawn, not fork: a forked child inherits the parent's locks (torch's and other libraries' thread pools,
    # loggers) in whatever state the parent's threads held them, and can wait on one forever.
    ctx = get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(reader, cfg)) as pool:
        yield from pool.imap(_work, list(enumerate(items)), chunksize=8)


def _fold_assignment(items: list[RecordItem], key: str, seed: int) -> tuple[list[int], str]:
    """Official folds when every record has one, else folds stratified by label set ``key``."""
    official = [item.fold for item in items if item.fold is not None]
    if len(official) == len(items):
        return [int(fold) for fold in official], "official"
    folds = patient_stratified_folds(
        [it.patient_id for it in items], [it.labels.get(key, []) for it in items], seed=seed
    )
    return folds.tolist(), f"patient-wise stratified by {key} (seed {seed})"


def _label_counts(records: pd.DataFrame, label_sets: dict[str, list[str]]) -> tuple[dict, dict]:
    labels, protocols = {}, {}
    for name, classes in label_sets.items():
        col = records[f"labels_{name}"].fillna("")
        sets = [split_labels(s) for s in col]
        counts = Counter(lab for labs in sets for lab in labs)
        labels[name] = {cls: int(counts.get(cls, 0)) for cls in classes}
        sizes = np.array([len(s) for s in sets])
        protocols[name] = {"multilabel": int((sizes >= 1).sum()), "singlelabel": int((sizes == 1).sum())}
    return labels, protocols


def _publish(tmp: Path, output: Path) -> None:
    """Move the finished ``tmp`` folder to ``output``, replacing an older prepared dataset there."""
    (tmp / OWNER).unlink(missing_ok=True)
    if output.exists():
        if output.is_dir() and not any(output.iterdir()):
            output.rmdir()
        elif not (output / "manifest.json").is_file():
            raise DataError(f"{output}: exists and is not a prepared dataset; refusing to overwrite it")
        else:
            trash = trash_name(output)
            with held_sigterm():  # never stopped between the two renames
                os.replace(output, trash)
                os.replace(tmp, output)
            shutil.rmtree(trash, ignore_errors=True)
            return
    os.replace(tmp, output)


# long: keyword options, one per ``prepare`` flag (the public API the command line and the app call)
def prepare_dataset(
    input_dir: str | Path,
    output_dir: str | Path,
    fmt: str,
    *,
    fs: float = 100.0,
    seconds: float = 10.0,
    band_hz: tuple[float, float] = (0.5, 40.0),
    strict: bool = False,
    name: str | None = None,
    workers: int = 0,
    seed: int = 0,
    progress: bool = True,
    extra_manifest: dict | None = None,
) -> dict:
    """Prepare a raw dataset into ``output_dir``; return the manifest.

    Raises :class:`DataError` for an unusable input folder and, with ``strict=True``, for the first
    malformed record (message names its file). Without ``strict``, malformed records are skipped and listed
    in the manifest's ``skipped`` (also printed as a summary).
    """
    cfg = PrepareConfig(
        fs=float(fs), seconds=float(seconds), band_hz=(float(band_hz[0]), float(band_hz[1])), seed=int(seed)
    )
    output = Path(output_dir).expanduser().resolve()
    reader = make_reader(fmt, input_dir, cfg.fs)
    started = time.time()
    items, skipped = reader.locate()
    skipped = list(skipped)
    if strict and skipped:
        raise DataError(skipped[0].message())
    label_sets = reader.label_sets()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(output)
        tmp = new_temporary(output)
    except OSError as exc:
        raise storage_error(exc, output.parent) from None
    try:
        with sigterm_raises():
            job = _Job(reader, items, skipped, label_sets, cfg, fmt, strict, workers, progress, name or reader.dataset)
            manifest = _write(tmp, job)
            manifest["prepare_seconds"] = round(time.time() - started, 2)
            if extra_manifest:
                manifest.update(extra_manifest)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            _publish(tmp, output)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, AclEcgError):
            raise
        raise storage_error(exc, output.parent) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


@dataclass
class _Job:
    """One ``prepare`` run: the reader and its located records, the parameters, how to run."""

    reader: Reader
    items: list[RecordItem]
    skipped: list[Skipped]
    label_sets: dict[str, list[str]]
    cfg: PrepareConfig
    fmt: str
    strict: bool
    workers: int
    progress: bool
    dataset: str


@dataclass
class _Kept:
    """What the records kept so far add up to: one ``records.csv`` row per window, its R-peaks, the warnings."""

    rows: list[dict] = field(default_factory=list)
    peaks: list[np.ndarray] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    records: int = 0


#: Columns of ``records.csv``; the ``labels_<set>`` columns go between ``sex`` and ``window``.
_HEAD_COLUMNS = ("record_id", "patient_id", "fold", "split", "source", "age", "sex")
_TAIL_COLUMNS = ("window", "start", "n_valid", "fs_original", "seconds_original")


def _write(tmp: Path, job: _Job) -> dict:
    """Read and preprocess every record into ``tmp`` (signals, records.csv, R-peaks); return the manifest."""
    folds, fold_source = _fold_assignment(job.items, job.reader.stratify_by, job.cfg.seed)
    writer = SignalWriter(tmp, job.cfg.n_samples)
    kept = _read_records(job, folds, writer)
    writer.finish()
    columns = [*_HEAD_COLUMNS, *[f"labels_{n}" for n in job.label_sets], *_TAIL_COLUMNS]
    records = pd.DataFrame(kept.rows, columns=columns)
    records.to_csv(tmp / "records.csv", index=False)
    counts_per_row = np.array([len(p) for p in kept.peaks], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts_per_row)]).astype(np.int64)
    flat = np.concatenate(kept.peaks).astype(np.int32) if kept.peaks else np.zeros(0, dtype=np.int32)
    np.save(tmp / "rpeaks.npy", flat)
    np.save(tmp / "rpeak_offsets.npy", offsets)
    writer.sha.update((tmp / "records.csv").read_bytes())
    job.skipped.sort(key=lambda s: s.file)
    return _manifest(job, kept, records, int(flat.size), fold_source, writer.sha.hexdigest())


def _read_records(job: _Job, folds: list[int], writer: SignalWriter) -> _Kept:
    """Process every record (in worker processes when asked), appending windows to ``writer`` in record order."""
    kept = _Kept()
    bar = tqdm(
        total=len(job.items), desc=f"prepare {job.dataset}", unit="rec", disable=not job.progress, file=sys.stderr
    )
    try:
        for result in _results(job.reader, job.items, job.cfg, job.workers):
            bar.update(1)
            if isinstance(result, Skipped):
                if job.strict:
                    raise DataError(result.message())
                job.skipped.append(result)
                continue
            kept.records += 1
            kept.warnings.extend(result.warnings)
            writer.append(result.windows)
            kept.peaks.extend(p.astype(np.int32) for p in result.rpeaks)
            kept.rows.extend(_rows_of(result, job.items[result.item_index], folds[result.item_index], job.label_sets))
    finally:
        bar.close()
    return kept


def _rows_of(result: Processed, item: RecordItem, fold: int, label_sets: dict[str, list[str]]) -> list[dict]:
    """The ``records.csv`` rows of one record's windows."""
    base = {
        "record_id": item.record_id,
        "patient_id": item.patient_id,
        "fold": fold,
        "split": split_of(fold),
        "source": item.source,
        "age": result.age,
        "sex": result.sex,
    }
    labels = {f"labels_{n}": join_labels(item.labels.get(n, [])) for n in label_sets}
    return [
        {
            **base,
            **labels,
            "window": k,
            "start": start,
            "n_valid": n_valid,
            "fs_original": result.fs_original,
            "seconds_original": round(result.seconds_original, 3),
        }
        for k, (start, n_valid) in enumerate(zip(result.starts, result.n_valid))
    ]


def _manifest(job: _Job, kept: _Kept, records: pd.DataFrame, n_rpeaks: int, fold_source: str, digest: str) -> dict:
    cfg, skipped = job.cfg, job.skipped
    label_counts, protocols = _label_counts(records, job.label_sets)
    folds_count = Counter(records["fold"].tolist())
    return {
        "format_version": FORMAT_VERSION,
        "dataset": job.dataset,
        "format": job.fmt,
        "fs": cfg.fs,
        "seconds": cfg.seconds,
        "n_samples": cfg.n_samples,
        "leads": list(LEADS),
        "label_sets": job.label_sets,
        "preprocessing": {
            **{k: v for k, v in asdict(cfg).items() if k not in ("fs", "seconds")},
            "resample": "scipy.signal.resample_poly",
            "filter": f"Butterworth band-pass order {cfg.filter_order}, zero-phase (sosfiltfilt), "
            f"{cfg.band_hz[0]:g}-{min(cfg.band_hz[1], 0.45 * cfg.fs):g} Hz",
            "windows": "non-overlapping; remainder >= min_fraction zero-padded, shorter dropped",
            "normalisation": "z-score per row (window) and lead over its real samples",
            "rpeaks": "aclecg.data.rpeaks.detect_rpeaks on the filtered record (samples within the row)",
            "folds": fold_source,
            "source_root": str(job.reader.root),
        },
        "counts": {
            "records_found": kept.records + len(skipped),
            "records_kept": kept.records,
            "records_skipped": len(skipped),
            "rows": int(len(records)),
            "patients": int(records["patient_id"].nunique()),
            "folds": {str(k): int(folds_count.get(k, 0)) for k in range(1, 11)},
            "splits": {s: int((records["split"] == s).sum()) for s in ("train", "val", "test")},
            "rpeaks": n_rpeaks,
            "labels": label_counts,
            "protocols": protocols,
        },
        "contract": cfg.contract().to_dict(),
        "skipped": [s.to_dict() for s in skipped],
        "warnings": kept.warnings,
        "fingerprint": digest,
    }


def summary_lines(manifest: dict, max_skipped: int = 20) -> list[str]:
    """Human-readable summary of a manifest (used by the ``prepare`` and ``info`` commands)."""
    c = manifest["counts"]
    lines = [
        f"{manifest['dataset']} ({manifest['format']}): {c['records_kept']} of {c['records_found']} records "
        f"kept, {c['rows']} rows of {manifest['seconds']:g} s at {manifest['fs']:g} Hz, "
        f"{c['patients']} patients, {c['records_skipped']} skipped",
        "folds 1-10: "
        + ", ".join(str(c["folds"][str(k)]) for k in range(1, 11))
        + f"  (train {c['splits']['train']}, val {c['splits']['val']}, test {c['splits']['test']})",
    ]
    for name, classes in manifest["label_sets"].items():
        prot = c["protocols"][name]
        lines.append(
            f"label set {name} ({len(classes)} classes): multilabel keeps {prot['multilabel']}, "
            f"singlelabel keeps {prot['singlelabel']}"
        )
    for s in manifest["skipped"][:max_skipped]:
        lines.append(f"skipped {s['file']}: {s['reason']}")
    if len(manifest["skipped"]) > max_skipped:
        lines.append(f"... and {len(manifest['skipped']) - max_skipped} more skipped (see manifest.json)")
    for w in manifest.get("warnings", [])[:max_skipped]:
        lines.append(f"warning {w}")
    return lines
