"""``python -m aclecg overlap``: the records of one prepared dataset that duplicate records of another."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXAMPLES = """examples:
  # which Challenge 2021 records are PTB-XL records (HR00001 is PTB-XL record 1, at 500 Hz)
  python -m aclecg overlap data-cache/challenge .cache/prepared/ptbxl --out overlap.csv

  # only the test fold 10 of PTB-XL against pretraining data; exit 1 when any record is shared
  python -m aclecg overlap .cache/prepared/ptbxl data-cache/challenge --a-folds 10 --fail-on-overlap

Both datasets are brought to a common rate (the lower one, or --fs) and their common leads; every record of A is
fingerprinted (log band powers per lead), the nearest fingerprints of B are retrieved and each candidate pair is
confirmed by the normalised cross-correlation within +-MAX_LAG s on the full signals, leaving EDGE s out at both
ends of a window. Pairs whose mean lead correlation reaches --threshold are printed (and written with --out:
a_record_id, b_record_id, r, lag_s, a_fold, b_fold, a_row, b_row, a_window, b_window). See docs/data.md.
"""


def _folds(text: str | None, option: str) -> list[int] | None:
    from aclecg.errors import ConfigError

    if text is None:
        return None
    folds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            folds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
        except ValueError:
            raise ConfigError(f"{option}: expected fold numbers like 9,10 or 1-8, got {text!r}") from None
    return folds


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "overlap",
        help="records of dataset A that duplicate records of dataset B (leakage check across datasets)",
        description="Find the records of prepared dataset A that duplicate records of prepared dataset B, after "
        "resampling to a common rate: a spectral fingerprint index proposes candidates, the normalised "
        "cross-correlation over small lags confirms them.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("a", metavar="A", help="prepared dataset folder whose records are looked up")
    p.add_argument("b", metavar="B", help="prepared dataset folder searched for copies of them")
    p.add_argument("--out", default=None, help="CSV of the pairs to write (atomically)")
    p.add_argument("--threshold", type=float, default=0.95, help="least mean lead correlation (default 0.95)")
    p.add_argument("--fs", type=float, default=None, help="common rate in Hz (default the lower of the two)")
    p.add_argument("--leads", default=None, help="comma-separated leads to compare (default every common lead)")
    p.add_argument("--max-lag", type=float, default=0.5, help="largest shift searched, seconds (default 0.5)")
    p.add_argument("--edge", type=float, default=1.0, help="left out at both window ends, seconds (default 1)")
    p.add_argument("-k", "--candidates", type=int, default=5, help="candidates confirmed per record (default 5)")
    p.add_argument("--a-folds", default=None, help="only A's records in these folds (e.g. 10 or 9,10 or 1-8)")
    p.add_argument("--b-folds", default=None, help="only B's records in these folds")
    p.add_argument("--workers", type=int, default=1, help="threads for the matrix products and FFTs (default 1)")
    p.add_argument("--show", type=int, default=20, help="pairs printed (default 20; all are in --out)")
    p.add_argument("--fail-on-overlap", action="store_true", help="exit 1 when any pair is found")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from aclecg.atomicio import write_text
    from aclecg.data import PreparedDataset
    from aclecg.errors import ConfigError
    from aclecg.overlap import OverlapConfig, find_overlap

    leads = tuple(x.strip() for x in args.leads.split(",") if x.strip()) if args.leads is not None else None
    cfg = OverlapConfig(
        threshold=args.threshold,
        fs=args.fs,
        leads=leads,
        max_lag_s=args.max_lag,
        edge_s=args.edge,
        candidates=args.candidates,
        workers=args.workers,
    )
    cfg.check()
    if args.out and Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out}: is a folder; name the CSV file to write")
    a, b = PreparedDataset(args.a), PreparedDataset(args.b)
    a_folds, b_folds = _folds(args.a_folds, "--a-folds"), _folds(args.b_folds, "--b-folds")
    rows_a = np.flatnonzero(np.isin(a.folds, a_folds)) if a_folds is not None else None
    rows_b = np.flatnonzero(np.isin(b.folds, b_folds)) if b_folds is not None else None
    for ds, rows, option, folds in ((a, rows_a, "--a-folds", a_folds), (b, rows_b, "--b-folds", b_folds)):
        if rows is not None and not rows.size:
            held = ", ".join(map(str, sorted(set(ds.folds.tolist()))))
            asked = ", ".join(map(str, folds or []))
            raise ConfigError(f"{option}: {ds.path} has no record in fold(s) {asked} (its folds: {held})")
    say = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    result = find_overlap(a, b, cfg, rows_a=rows_a, rows_b=rows_b, progress=say)
    pairs = result.pairs
    if args.out:
        write_text(args.out, pairs.to_csv(index=False))
    if len(pairs) and args.show > 0:
        print(pairs.head(args.show).to_string(index=False))
        if len(pairs) > args.show:
            print(f"... {len(pairs) - args.show} more pair(s)" + (f" in {args.out}" if args.out else ""))
    print(result.summary() + (f"; pairs written to {args.out}" if args.out else ""))
    return 1 if args.fail_on_overlap and len(pairs) else 0
