"""Make a full-size raw dataset for the scale benchmark by cloning the bundled REAL records.

    *** SYNTHETIC CORPUS: for speed and memory measurements only, NEVER for reported results. ***

Every clone is a bundled record (PTB-XL ``records100`` or the Challenge 2021 ``.hea`` + ``.mat`` records) with a
per-clone gain (0.9-1.1), a circular time shift of up to half a second and light Gaussian noise (0.01 mV), under a
new record id and patient id, written in the dataset's original on-disk format, so that ``aclecg prepare`` reads it
exactly as it reads a full download:

* ``--format ptbxl``: ``records100/NNNNN/NNNNN_lr.hea`` + ``.dat`` (WFDB format 16, the header text of the source
  record with the new name, first values and checksums), a ``ptbxl_database.csv`` (the source's row with the new
  ``ecg_id``, ``patient_id`` and file names; ``strat_fold`` rotated by the clone's generation, so all ten folds are
  filled and a patient keeps one fold) and ``scp_statements.csv`` copied. Up to 21,799 records (PTB-XL's size).
* ``--format challenge``: ``training/<source database>/gK/<name>.hea`` + ``.mat`` (MAT-4, ``val`` int16, 500 Hz,
  the layout the Challenge files and :mod:`aclecg.data.matfile` use), ``#Dx:`` labels kept. Up to 20,000 records.

The ``.hea``/``.dat`` bytes are exactly what ``wfdb.wrsamp`` writes for the same samples (checked in
``tests/test_bench_scale.py``) but written directly, about 30x faster than ``wrsamp``. Writing streams one record at
a time (the sources, 24 MB for PTB-XL, are held in memory), so time and memory are linear in the number of records.
The corpus is written to ``<out>.partial`` and renamed when complete; ``.scale-corpus.json`` marks it (and lets
the benchmark reuse it). The free disk space is checked against an estimate before anything is written.

    python benchmarks/make_scale_corpus.py --format ptbxl --records 21799 --out /tmp/scale/ptbxl-raw
    python benchmarks/make_scale_corpus.py --format challenge --records 20000 --out /tmp/scale/challenge-raw
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from aclecg.data import BUNDLED_RAW_DIR

WARNING = "SYNTHETIC CLONES of the bundled real records: for speed/memory benchmarks only, never for reported results"
MARKER = ".scale-corpus.json"
VERSION = 1
MAX_RECORDS = {"ptbxl": 21799, "challenge": 20000}
SOURCES = {"ptbxl": BUNDLED_RAW_DIR / "ptb-xl", "challenge": BUNDLED_RAW_DIR / "challenge-2021"}
HEADER_BYTES = 900  # a generous .hea size (the bundled ones are 500-800 bytes)
CSV_ROW_BYTES = 400
NOISE_MV = 0.01
MAT4_INT16 = 30  # MAT-4 type: little-endian, int16, full numeric matrix


@dataclass
class Source:
    """One bundled record: header text lines, digital samples ``(n, leads)``, per-lead ADC gain and baseline."""

    stem: str
    folder: str  # the Challenge source database (``cpsc_2018``) or ""
    lines: list[str]
    newline: str
    digital: np.ndarray
    gain: np.ndarray
    baseline: np.ndarray
    fs: float
    row: list[str] | None = None  # PTB-XL: its row of ptbxl_database.csv


def _load(path: Path, folder: str = "", row: list[str] | None = None) -> Source:
    """A bundled record read as stored (format 16, or MAT-4 int16 behind a 24-byte header)."""
    header = wfdb.rdheader(str(path))
    if set(header.fmt) != {"16"}:
        raise SystemExit(f"{path}: signal format {header.fmt} is not 16; the corpus maker copies format 16 only")
    signal_file = path.parent / header.file_name[0]
    offset = int((header.byte_offset or [0])[0] or 0)
    if signal_file.suffix == ".mat" and struct.unpack("<i", signal_file.read_bytes()[:4])[0] != MAT4_INT16:
        raise SystemExit(f"{signal_file}: not a little-endian int16 MAT-4 file")
    digital = np.fromfile(signal_file, dtype="<i2", offset=offset).reshape(-1, header.n_sig)
    text = path.with_suffix(".hea").read_bytes().decode("ascii")
    return Source(
        stem=path.name,
        folder=folder,
        lines=text.splitlines(),
        newline="\r\n" if "\r\n" in text else "\n",
        digital=digital,
        gain=np.asarray(header.adc_gain, dtype=np.float64),
        baseline=np.asarray(header.baseline, dtype=np.float64),
        fs=float(header.fs),
        row=row,
    )


def load_sources(fmt: str, limit: int | None = None) -> tuple[list[Source], list[str]]:
    """The first ``limit`` (default all) bundled records of ``fmt`` in a fixed order, and (PTB-XL) the columns."""
    root = SOURCES[fmt]
    if fmt == "ptbxl":
        with open(root / "ptbxl_database.csv", newline="") as fh:
            reader = csv.reader(fh)
            columns = next(reader)
            rows = list(reader)
        lr = columns.index("filename_lr")
        return [_load(root / row[lr], row=row) for row in rows[:limit]], columns
    headers = sorted(root.rglob("*.hea"))[:limit]
    return [_load(h.with_suffix(""), folder=h.parent.name) for h in headers], []


def perturb(source: Source, rng: np.random.Generator) -> np.ndarray:
    """The source's samples with a gain of 0.9-1.1, a circular shift of up to fs/2 samples and 0.01 mV noise."""
    d = source.digital.astype(np.float64) - source.baseline
    d *= rng.uniform(0.9, 1.1)
    d = np.roll(d, int(rng.integers(-int(source.fs) // 2, int(source.fs) // 2 + 1)), axis=0)
    d += rng.normal(0.0, 1.0, d.shape) * (NOISE_MV * source.gain)
    d += source.baseline
    return np.clip(np.rint(d), -32767, 32767).astype("<i2")  # -32768 is format 16's "no sample"


def header_text(source: Source, name: str, signal_file: str, digital: np.ndarray, signed: bool) -> str:
    """The source's header with the record name, signal file, first values and checksums of ``digital``."""
    sums = digital.astype(np.int64).sum(axis=0) % 65536
    out: list[str] = []
    lead = -1  # -1: the record line comes next
    for line in source.lines:
        tokens = line.split()
        if not tokens or line.startswith("#"):
            out.append(line)
        elif lead < 0:
            out.append(" ".join([name, *tokens[1:]]))
            lead = 0
        else:
            check = int(sums[lead]) - (65536 if signed and sums[lead] > 32767 else 0)
            out.append(" ".join([signal_file, *tokens[1:5], str(int(digital[0, lead])), str(check), *tokens[7:]]))
            lead += 1
    return source.newline.join(out) + source.newline


def _write_ptbxl(sources: list[Source], columns: list[str], n: int, out: Path, seed: int, progress: bool) -> None:
    root = SOURCES["ptbxl"]
    shutil.copyfile(root / "scp_statements.csv", out / "scp_statements.csv")
    col = {name: columns.index(name) for name in ("ecg_id", "patient_id", "strat_fold", "filename_lr", "filename_hr")}
    with open(out / "ptbxl_database.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for i in range(n):
            source, generation = sources[i % len(sources)], i // len(sources)
            ecg_id = i + 1
            folder = f"{ecg_id // 1000 * 1000:05d}"
            stem = f"{ecg_id:05d}"
            digital = perturb(source, np.random.default_rng([seed, i]))
            target = out / "records100" / folder
            target.mkdir(parents=True, exist_ok=True)
            (target / f"{stem}_lr.hea").write_text(header_text(source, f"{stem}_lr", f"{stem}_lr.dat", digital, False))
            digital.tofile(target / f"{stem}_lr.dat")
            assert source.row is not None
            row = list(source.row)
            row[col["ecg_id"]] = str(ecg_id)
            row[col["patient_id"]] = f"{int(float(row[col['patient_id']])) + 100000 * generation}.0"
            row[col["strat_fold"]] = str((int(row[col["strat_fold"]]) - 1 + generation) % 10 + 1)
            row[col["filename_lr"]] = f"records100/{folder}/{stem}_lr"
            row[col["filename_hr"]] = f"records500/{folder}/{stem}_hr"
            writer.writerow(row)
            _tick(progress, i, n)


def _write_challenge(sources: list[Source], n: int, out: Path, seed: int, progress: bool) -> None:
    width = max(5, len(str(n)))
    for i in range(n):
        source = sources[i % len(sources)]
        prefix = source.stem.rstrip("0123456789")
        name = f"{prefix}{i + 1:0{width}d}"
        target = out / "training" / source.folder / f"g{i // 1000 + 1}"
        target.mkdir(parents=True, exist_ok=True)
        digital = perturb(source, np.random.default_rng([seed, i]))
        (target / f"{name}.hea").write_text(header_text(source, name, f"{name}.mat", digital, True))
        rows, cols = digital.shape[1], digital.shape[0]
        with open(target / f"{name}.mat", "wb") as fh:  # MAT-4: type, rows, cols, imagf, name length, name, data
            fh.write(struct.pack("<5i", MAT4_INT16, rows, cols, 0, 4) + b"val\x00")
            fh.write(digital.tobytes())  # (samples, leads) C order = (leads, samples) Fortran order
        _tick(progress, i, n)


def _tick(progress: bool, i: int, n: int) -> None:
    if progress and (i + 1) % max(1, n // 10) == 0:
        print(f"  ... {i + 1}/{n} records written", file=sys.stderr, flush=True)


def estimate_bytes(fmt: str, n: int) -> int:
    """Disk bytes of an ``n``-record corpus (the clones cycle through the sources, so this is their mean size)."""
    sizes = [_blocks(p.stat().st_size) for p in SOURCES[fmt].rglob("*") if p.suffix in (".dat", ".mat")]
    per_record = sum(sizes) / len(sizes) + _blocks(HEADER_BYTES) + (CSV_ROW_BYTES if fmt == "ptbxl" else 0)
    return int(per_record * n) + (1 << 20)


def _blocks(size: int, block: int = 4096) -> int:
    """``size`` rounded up to whole file-system blocks (a 700-byte header takes 4 KiB of disk)."""
    return -(-size // block) * block


def free_space_problem(folder: Path, need: int, what: str) -> str | None:
    """A one-line refusal when ``folder``'s file system has less than ``need`` bytes free (plus 10 %), else None."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need * 1.1:
        return (
            f"{folder}: {what} needs about {need / 1e9:.2f} GB but only {free / 1e9:.2f} GB are free there; "
            "choose another --workdir/--out or free some space"
        )
    return None


def is_corpus(out: Path, fmt: str, n: int, seed: int, max_sources: int | None = None) -> bool:
    """Whether ``out`` holds a finished corpus of exactly these parameters."""
    try:
        marker = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    mine = (VERSION, fmt, n, seed, max_sources)
    return tuple(marker.get(k) for k in ("version", "format", "records", "seed", "max_sources")) == mine


def make_corpus(
    fmt: str, n: int, out: Path, seed: int = 0, progress: bool = False, max_sources: int | None = None
) -> dict:
    """Write (or reuse) an ``n``-record synthetic corpus of ``fmt`` in ``out``; returns its marker plus timing.

    ``max_sources`` clones only the first that many bundled records (default: all of them)."""
    if fmt not in MAX_RECORDS:
        raise SystemExit(f"--format must be one of {', '.join(MAX_RECORDS)}, got {fmt!r}")
    if not 1 <= n <= MAX_RECORDS[fmt]:
        raise SystemExit(f"--records for {fmt} must be 1..{MAX_RECORDS[fmt]}, got {n}")
    out = Path(out)
    if is_corpus(out, fmt, n, seed, max_sources):
        return {**json.loads((out / MARKER).read_text()), "reused": True, "seconds": 0.0}
    if out.exists():
        raise SystemExit(f"{out}: exists and is not a {fmt} scale corpus of {n} records; remove it or choose another")
    problem = free_space_problem(out.parent, estimate_bytes(fmt, n), f"a {n}-record {fmt} corpus")
    if problem:
        raise SystemExit(problem)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by a killed run of this script
    partial.mkdir(parents=True)
    t0 = time.perf_counter()
    sources, columns = load_sources(fmt, min(n, max_sources or n))
    if fmt == "ptbxl":
        _write_ptbxl(sources, columns, n, partial, seed, progress)
    else:
        _write_challenge(sources, n, partial, seed, progress)
    (partial / "SYNTHETIC-README.txt").write_text(WARNING + "\n")
    marker = {"format": fmt, "records": n, "seed": seed, "version": VERSION, "max_sources": max_sources}
    marker.update(sources=len(sources), note=WARNING)
    (partial / MARKER).write_text(json.dumps(marker, indent=1))
    partial.rename(out)
    return {**marker, "reused": False, "seconds": round(time.perf_counter() - t0, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True, choices=sorted(MAX_RECORDS))
    parser.add_argument(
        "--records", type=int, required=True, help="number of records (ptbxl <= 21799, challenge <= 20000)"
    )
    parser.add_argument("--out", type=Path, required=True, help="corpus folder to write (must not exist)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", type=int, default=None, help="clone only the first K bundled records")
    args = parser.parse_args()
    print(f"*** {WARNING} ***", file=sys.stderr)
    print(f"estimated size: {estimate_bytes(args.format, args.records) / 1e9:.2f} GB", file=sys.stderr)
    done = make_corpus(args.format, args.records, args.out, args.seed, progress=True, max_sources=args.sources)
    print(json.dumps(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
