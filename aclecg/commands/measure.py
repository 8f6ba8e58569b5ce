"""``python -m aclecg measure``: heart rate, RR variability, PR, QRS, QT and QTc of a record, a dataset or an
upload; and, with ``--preservation``, how much each augmentation changes them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aclecg.errors import ConfigError

EPILOG = """examples:
  # one prepared record (the ids of records.csv, as the app shows them; ID:K for a later window)
  python -m aclecg measure --data .cache/prepared/ptbxl --record 12 --format table

  # an ECG file: a WFDB .hea with its signal file, a folder of them or a .zip (measured at its own rate, in mV)
  python -m aclecg measure --upload path/to/JS00001.hea

  # every record of a prepared dataset, cached under <cache>/measurements (key: data fingerprint + code version)
  python -m aclecg measure --data .cache/prepared/ptbxl --out measurements.csv

  # rhythm preservation of the augmentations (writes the .md table and a .csv beside it)
  nice -n 10 python -m aclecg measure --preservation --data .cache/prepared/ptbxl \\
      --out docs/results/rhythm-preservation.md

Values are algorithmic estimates from a median beat, not a diagnosis.
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "measure",
        help="measure heart rate, PR, QRS, QT/QTc (record, dataset, upload) or augmentations' rhythm preservation",
        description="Delineate P, QRS and T on a median beat and report heart rate, RR variability, PR, QRS, QT "
        "and QTc (Bazett, Fridericia) as JSON or a table. Algorithmic estimates, not a diagnosis.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, help="prepared dataset folder (written by `prepare`)")
    p.add_argument("--record", help="record id in --data (ID or ID:K for window K); without it: every record")
    p.add_argument("--upload", type=Path, help="a WFDB .hea (signal file beside it), a folder of them or a .zip")
    p.add_argument("--format", choices=("json", "table"), default="json", help="output format (default json)")
    p.add_argument("--out", type=Path, help="also write the result to this file (.json, .csv or .md)")
    p.add_argument("--refresh", action="store_true", help="measure a dataset again even if cached")
    p.add_argument("--preservation", action="store_true", help="measure how each augmentation changes the values")
    p.add_argument("--records", type=int, help="--preservation: records drawn from --data (default all)")
    p.add_argument("--views", type=int, default=2, help="--preservation: views per record (default 2)")
    p.add_argument("--seed", type=int, default=0, help="--preservation: seed of the draws and views (default 0)")
    p.set_defaults(func=run)


def _write(path: Path, text: str) -> None:
    from aclecg import atomicio

    atomicio.write_text(path, text)
    print(f"written {path}")


def _table(title: str, m: Any) -> str:
    from aclecg.measure import DISCLAIMER
    from aclecg.measure.delineate import NAMES

    def v(value: float | None, unit: str = "ms") -> str:
        return "–" if value is None else f"{value:g} {unit}"

    lines = [
        title,
        f"  heart rate  {v(m.hr_bpm, 'bpm')}  (median RR {v(m.rr_ms)}, SDNN {v(m.rr_sdnn_ms)}, "
        f"RMSSD {v(m.rr_rmssd_ms)}; {m.n_beats} beats, {m.n_beats_used} in the median beat)",
        f"  PR          {v(m.pr_ms)}",
        f"  QRS         {v(m.qrs_ms)}",
        f"  QT          {v(m.qt_ms)}  (QTc Bazett {v(m.qtc_bazett_ms)}, Fridericia {v(m.qtc_fridericia_ms)})",
        "",
        "  boundaries, ms from the median beat's R-peak:",
        "  " + f"{'lead':>6}" + "".join(f"{n:>9}" for n in NAMES),
    ]
    for lead, pts in [("all", m.points), *m.leads.items()]:
        lines.append(
            "  " + f"{lead:>6}" + "".join(f"{'–' if pts.get(n) is None else f'{pts[n]:.0f}':>9}" for n in NAMES)
        )
    lines += ["", *(f"  note: {n}" for n in m.notes), f"  {DISCLAIMER}"]
    return "\n".join(lines)


def _single(args: argparse.Namespace) -> int:
    from aclecg.measure import measure_record

    if args.upload is not None:
        from aclecg.upload import read_upload_path

        rec = read_upload_path(args.upload)
        m = measure_record(rec.raw_mv, rec.raw_fs)
        source = {"upload": str(args.upload), "record_id": rec.record_id, "fs": rec.raw_fs, "units": "mV"}
    else:
        from aclecg.data import PreparedDataset
        from aclecg.measure.dataset import measure_row, row_of_record

        ds = PreparedDataset(args.data)
        row = row_of_record(ds, args.record)
        m = measure_row(ds, row)
        source = {"data": str(args.data), "record_id": args.record, "row": row, "fs": ds.fs}
    payload = {"source": source, **m.as_dict()}
    title = ", ".join(f"{k} {v}" for k, v in source.items())
    text = _table(title, m) if args.format == "table" else json.dumps(payload)
    print(text)
    if args.out:
        _write(args.out, json.dumps(payload, indent=1) if args.out.suffix.lower() == ".json" else text + "\n")
    return 0


def _dataset(args: argparse.Namespace) -> int:
    from aclecg.measure import DISCLAIMER
    from aclecg.measure.dataset import measure_dataset

    table, path = measure_dataset(args.data, refresh=args.refresh, progress=True)
    fields = ["hr_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms"]
    stats = {f: table[f].describe(percentiles=[0.05, 0.5, 0.95]).to_dict() for f in fields}
    if args.format == "table":
        print(f"{len(table)} records of {args.data}, cached at {path}")
        for f, s in stats.items():
            print(
                f"  {f:18s} measured {int(s['count']):5d}  median {s['50%']:7.1f}  5-95 % {s['5%']:.1f}-{s['95%']:.1f}"
            )
        print(f"  {DISCLAIMER}")
    else:
        print(json.dumps({"records": len(table), "cache": str(path), "summary": stats, "disclaimer": DISCLAIMER}))
    if args.out:
        _write(args.out, table.to_csv(index=False))
    return 0


def _preservation(args: argparse.Namespace) -> int:
    from aclecg import __version__
    from aclecg.data import PreparedDataset
    from aclecg.measure.dataset import code_version
    from aclecg.measure.preservation import preservation_study, summarise, to_markdown
    from aclecg.paths import published_root

    if args.views < 1 or args.views > 16:
        raise ConfigError(f"--views must be in [1, 16], got {args.views}")
    if args.records is not None and args.records < 1:
        raise ConfigError(f"--records must be at least 1, got {args.records}")
    ds = PreparedDataset(args.data)
    deltas = preservation_study(ds, n_records=args.records, views=args.views, seed=args.seed, progress=True)
    summary = summarise(deltas)
    n = int(deltas["row"].nunique())
    command = "aclecg measure --preservation --data DATA" + (f" --records {args.records}" if args.records else "")
    command += f" --views {args.views} --seed {args.seed}"
    meta = {
        "command": command,
        "version": __version__,
        "code_version": code_version(),
        "dataset": ds.name,
        "fingerprint": ds.fingerprint,
        "n_records": n,
        "n_total": len(ds),
        "fs": ds.fs,
        "views": args.views,
        "seed": args.seed,
    }
    text = to_markdown(summary, meta)
    out = args.out or published_root() / "rhythm-preservation.md"
    print(text if args.format == "table" else summary.to_json(orient="records"))
    _write(out, text)
    _write(out.with_suffix(".csv"), summary.to_csv(index=False, float_format="%.4g"))
    return 0


def run(args: argparse.Namespace) -> int:
    chosen = [name for name in ("record", "upload") if getattr(args, name) is not None]
    if args.preservation:
        if args.data is None or chosen:
            raise ConfigError("--preservation needs --data (a prepared dataset) and neither --record nor --upload")
        return _preservation(args)
    if args.upload is not None:
        if args.data is not None or args.record is not None:
            raise ConfigError("--upload measures a file: give it without --data and --record")
        return _single(args)
    if args.data is None:
        raise ConfigError("give --data PREPARED (with --record ID for one record) or --upload PATH")
    return _single(args) if args.record is not None else _dataset(args)
