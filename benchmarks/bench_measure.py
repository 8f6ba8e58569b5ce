"""Measurement accuracy and speed: aclecg.measure against NeuroKit2 (when installed) on synthetic ECGs with known
intervals, and both R-peak detectors on the bundled PTB-XL records (plausibility and agreement; PTB-XL ships no
interval annotations).

    .venv/bin/python benchmarks/bench_measure.py [--n 40] [--records 200] [--neurokit]

NeuroKit2 is not a dependency; ``--neurokit`` needs it importable (e.g. ``pip install --target /tmp/nk2
neurokit2`` and ``PYTHONPATH=/tmp/nk2``). Its delineation runs on lead II (``ecg_clean`` -> ``ecg_peaks`` ->
``ecg_delineate(method="dwt")``), intervals as the median over beats.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from aclecg.measure import measure_record, synthetic_ecg

FIELDS = ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms")


def cases(n: int, fs: float):
    for seed in range(n):
        rng = np.random.default_rng(1000 + seed)
        wide = seed % 4 == 3
        hr = rng.uniform(45, 120)
        qrs = rng.uniform(120, 180) if wide else rng.uniform(70, 115)
        qt = 410 * np.sqrt(60 / hr) + rng.uniform(-30, 50) + (40 if wide else 0)
        kw = dict(hr_bpm=hr, pr_ms=rng.uniform(120, 260), qrs_ms=qrs, qt_ms=qt, wide=wide)
        kw.update(noise_mv=rng.uniform(0, 0.04), wander_mv=rng.uniform(0, 0.2), rr_jitter=rng.uniform(0, 0.05))
        x, truth = synthetic_ecg(fs=fs, seed=seed, **kw)
        yield x, truth, wide


def neurokit_measure(x: np.ndarray, fs: float) -> dict:
    import neurokit2 as nk

    lead = nk.ecg_clean(x[1], sampling_rate=fs)
    _, info = nk.ecg_peaks(lead, sampling_rate=fs)
    peaks = np.asarray(info["ECG_R_Peaks"])
    out = {k: None for k in FIELDS}
    if peaks.size < 3:
        return out
    out["hr_bpm"] = 60.0 / np.median(np.diff(peaks) / fs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _, w = nk.ecg_delineate(lead, peaks, sampling_rate=fs, method="dwt")
        except Exception:  # a failure is a missing measurement here
            return out
    g = {k: np.asarray(v, dtype=float) for k, v in w.items()}

    def med(a, b):
        d = (g[b] - g[a]) * 1000 / fs
        d = d[np.isfinite(d)]
        return float(np.median(d)) if d.size else None

    out.update(pr_ms=med("ECG_P_Onsets", "ECG_R_Onsets"), qrs_ms=med("ECG_R_Onsets", "ECG_R_Offsets"))
    out["qt_ms"] = med("ECG_R_Onsets", "ECG_T_Offsets")
    return out


def errors(rows: list[tuple[dict, object]]) -> dict:
    out = {}
    for f in FIELDS:
        err = [m[f] - getattr(t, f) for m, t in rows if m[f] is not None]
        e = np.abs(err)
        out[f] = (
            len(err),
            float(np.median(err)) if err else np.nan,
            np.median(e) if err else np.nan,
            np.percentile(e, 95) if err else np.nan,
        )
    return out


def synthetic(n: int, use_nk: bool) -> None:
    for fs in (500.0, 100.0):
        for label, wide_only in (("all", None), ("wide QRS", True)):
            ours, nk_rows, t_ours, t_nk = [], [], [], []
            for x, truth, wide in cases(n, fs):
                if wide_only and not wide:
                    continue
                t0 = time.perf_counter()
                ours.append((measure_record(x, fs).summary(), truth))
                t_ours.append(time.perf_counter() - t0)
                if use_nk:
                    t0 = time.perf_counter()
                    nk_rows.append((neurokit_measure(x, fs), truth))
                    t_nk.append(time.perf_counter() - t0)
            for name, rows, times in (("aclecg", ours, t_ours), ("neurokit2", nk_rows, t_nk)):
                if not rows:
                    continue
                print(
                    f"synthetic fs={fs:g} {label:8s} {name:9s} n={len(rows):3d} time/record median "
                    f"{1000 * np.median(times):6.1f} ms"
                )
                for f, (k, bias, mae, p95) in errors(rows).items():
                    print(
                        f"    {f:7s} measured {k:3d}  bias {bias:+7.1f}  median |err| {mae:6.1f}  p95 |err| {p95:6.1f}"
                    )


#: PTB-XL statements with an interval criterion: (label set, class, field, threshold) — the share of those records
#: measured at or above the threshold is a consistency check against PTB-XL's own diagnoses.
LABEL_CHECKS = (
    ("diagnostic", "CLBBB", "qrs_ms", 120.0),
    ("diagnostic", "CRBBB", "qrs_ms", 120.0),
    ("diagnostic", "1AVB", "pr_ms", 200.0),
    ("diagnostic", "LNGQT", "qtc_bazett_ms", 450.0),
)


def _quantiles(values: list, field: str) -> str:
    v = np.array([x for x in values if x is not None], dtype=float)
    if not v.size:
        return f"{field} n=0"
    p5, p50, p95 = np.percentile(v, [5, 50, 95])
    return f"{field} n={v.size} median {p50:.0f} [p5 {p5:.0f}, p95 {p95:.0f}]"


def ptbxl(n: int, use_nk: bool) -> None:
    from aclecg.data import ensure_bundled
    from aclecg.data.cache import PreparedDataset

    ds = PreparedDataset(ensure_bundled(["ptbxl"], progress=False)["ptbxl"])
    rows = np.random.default_rng(0).permutation(len(ds))[:n]
    rhythm = ds.records["labels_rhythm"].astype(str).to_numpy()
    groups: dict[str, list] = {"SR": [], "AFIB": []}
    hr_pairs = []
    for i in rows:
        m = measure_record(np.asarray(ds.signals[i]), ds.fs)
        tag = "AFIB" if "AFIB" in rhythm[i] else "SR" if rhythm[i] == "SR" else None
        if tag:
            groups[tag].append(m)
        if use_nk and m.hr_bpm is not None:
            hr_pairs.append((m.hr_bpm, neurokit_measure(np.asarray(ds.signals[i], dtype=float), ds.fs)["hr_bpm"]))
    print(f"PTB-XL: {n} of {len(ds)} bundled records (seeded draw)")
    for tag, ms in groups.items():
        print(f"  {tag} records: {len(ms)}; P wave found in {np.mean([m.pr_ms is not None for m in ms]):.0%}")
        for f in ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms"):
            print("    " + _quantiles([getattr(m, f) for m in ms], f))
    for label_set, cls, field, thr in LABEL_CHECKS:
        labels = ds.records[f"labels_{label_set}"].astype(str).str.split(";")
        picked = [i for i, ls in enumerate(labels) if cls in ls]
        vals = [getattr(measure_record(np.asarray(ds.signals[i]), ds.fs), field) for i in picked]
        got = np.array([v for v in vals if v is not None], dtype=float)
        share = float((got >= thr).mean()) if got.size else float("nan")
        print(
            f"  all {len(picked)} {cls} records: {field} measured {got.size}, median {np.median(got):.0f}, "
            f">= {thr:g}: {share:.0%}"
        )
    if hr_pairs:
        a = np.array([(p, q if q is not None else np.nan) for p, q in hr_pairs])
        d = np.abs(a[:, 0] - a[:, 1])
        print(
            f"  HR aclecg vs neurokit2 (lead II): n={len(d)}, |diff| median {np.nanmedian(d):.1f}, "
            f"share > 5 bpm {np.nanmean(d > 5):.1%}, neurokit2 no rate {np.isnan(d).mean():.1%}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="synthetic records per sampling rate")
    ap.add_argument("--records", type=int, default=200, help="bundled PTB-XL records (0: skip)")
    ap.add_argument("--neurokit", action="store_true", help="also run NeuroKit2 (must be importable)")
    args = ap.parse_args()
    synthetic(args.n, args.neurokit)
    if args.records:
        ptbxl(args.records, args.neurokit)


if __name__ == "__main__":
    main()
