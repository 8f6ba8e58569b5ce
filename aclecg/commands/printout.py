"""``python -m aclecg printout``: a record's 12-lead page at true scale (A4 / Letter landscape, 25 mm/s, 5 / 10 /
20 mm/mV) as PDF or PNG, with its measurements and the not-for-diagnosis line in the header; the Explorer's
"Download PDF / PNG" buttons write the same page."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aclecg.errors import ConfigError

EPILOG = """examples:
  # a prepared record (ids as the app shows them; ID:K for a later window), A4, 10 mm/mV
  python -m aclecg printout --data .cache/prepared/ptbxl --record 12 --out record-12.pdf

  # an ECG file (WFDB .hea with its signal file, a folder or a .zip) on Letter paper at 20 mm/mV, as PNG
  python -m aclecg printout --upload path/to/JS00001.hea --paper Letter --gain 20 --out JS00001.png

Print at 100 % ("actual size", not "fit to page") to keep 1 mm squares. The values in the header are
algorithmic estimates, not a diagnosis.
"""


def register(sub: Any) -> None:
    from aclecg.constraints import PAPER_SIZES_MM
    from aclecg.constraints import PRINT_GAINS as GAINS

    p = sub.add_parser(
        "printout",
        help="a record's 12-lead page at true scale (PDF or PNG, A4 or Letter, 25 mm/s)",
        description="Draw a record as the 3x4 + rhythm-strip print on a 1 mm / 5 mm grid at 25 mm/s and the "
        "chosen gain, page size A4 or Letter landscape, with its record id and measurements (HR, PR, QRS, "
        "QT/QTc) in the header. The raw record in mV is drawn when its files are available, else the prepared "
        "(z-scored) signal, which the header says.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, help="prepared dataset folder (written by `prepare`)")
    p.add_argument("--record", help="record id in --data (ID or ID:K for window K)")
    p.add_argument("--upload", type=Path, help="a WFDB .hea (signal file beside it), a folder of them or a .zip")
    p.add_argument("--out", type=Path, required=True, help="output file: .pdf or .png")
    p.add_argument("--paper", choices=tuple(PAPER_SIZES_MM), default="A4", help="page size, landscape (default A4)")
    p.add_argument("--gain", type=float, choices=GAINS, default=10.0, help="mm per mV: 5, 10 or 20 (default 10)")
    p.add_argument("--dpi", type=int, default=300, help="PNG resolution in dots per inch (default 300)")
    p.set_defaults(func=run)


def _record(args: argparse.Namespace) -> tuple[Any, float, str, str, Any]:
    """``(signals, fs, units, record id, measurement)`` of the record the arguments name."""
    from aclecg.measure import measure_record

    if args.upload is not None:
        from aclecg.upload import read_upload_path

        rec = read_upload_path(args.upload)
        return rec.raw_mv, rec.raw_fs, "mV", str(rec.record_id), measure_record(rec.raw_mv, rec.raw_fs)
    from aclecg.data import PreparedDataset
    from aclecg.data.raw import display_window
    from aclecg.measure.dataset import measure_row, row_of_record

    ds = PreparedDataset(args.data)
    row = row_of_record(ds, args.record)
    signals, fs, units = display_window(ds, row)
    return signals, fs, units, f"{ds.name} {args.record}", measure_row(ds, row)


def run(args: argparse.Namespace) -> int:
    from aclecg import atomicio
    from aclecg.viz.printout import printout_bytes, printout_figure

    if (args.upload is None) == (args.data is None) or (args.data is not None and args.record is None):
        raise ConfigError("give --data PREPARED --record ID, or --upload PATH (one of them)")
    if args.upload is not None and args.record is not None:
        raise ConfigError("--record goes with --data, not with --upload")
    fmt = args.out.suffix.lower().lstrip(".")
    if fmt not in ("pdf", "png"):
        raise ConfigError(f"--out must end in .pdf or .png, got {args.out.name!r}")
    if not 50 <= args.dpi <= 1200:
        raise ConfigError(f"--dpi must be in [50, 1200], got {args.dpi}")
    signals, fs, units, record_id, measurement = _record(args)
    fig = printout_figure(
        signals, fs, record_id=record_id, measurement=measurement, gain=args.gain, paper=args.paper, units=units
    )
    atomicio.write_bytes(args.out, printout_bytes(fig, fmt, dpi=args.dpi))
    print(f"written {args.out} ({args.paper} landscape, 25 mm/s, {args.gain:g} mm/mV; print at 100 %)")
    return 0
