"""Rhythm preservation, measured: how much each augmentation moves a record's heart rate, RR, QRS and QT.

Each augmentation (a Physio-AUG step, the Physio-AUG preset, a baseline step or preset, and ``none`` as a control)
is applied to every sampled record of a prepared dataset, ``views`` times with seeds ``seed .. seed + views - 1``
(the same seeds for every augmentation). The original and every view are measured the same way
(:func:`aclecg.measure.measure_record`: R-peaks detected afresh, so a view is judged on what it shows, not on the
R-peaks the augmentation carried), and the absolute change of each value is summarised per augmentation: median,
95th percentile and the share of views whose heart rate moves by more than :data:`HR_MOVE_BPM`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from aclecg.augment import PRESETS, build_augmentation
from aclecg.data.cache import PreparedDataset
from aclecg.errors import ConfigError
from aclecg.measure.core import DISCLAIMER, Measurement, measure_record

__all__ = [
    "AUGMENTATIONS_MEASURED",
    "HR_MOVE_BPM",
    "compare_views",
    "preservation_study",
    "published_table",
    "summarise",
    "to_markdown",
]
#: The committed table's file name under :func:`aclecg.paths.published_root` (``docs/results``).
TABLE_NAME = "rhythm-preservation"

#: A view "moves" the heart rate when it differs from the original's by more than this (bpm).
HR_MOVE_BPM = 5.0
#: The values compared: measurement field -> (column label, unit).
COMPARED: dict[str, tuple[str, str]] = {
    "hr_bpm": ("HR", "bpm"),
    "rr_ms": ("RR", "ms"),
    "qrs_ms": ("QRS", "ms"),
    "qt_ms": ("QT", "ms"),
}
#: (label, what it is, spec) of every augmentation measured, in table order.
AUGMENTATIONS_MEASURED: tuple[tuple[str, str, Any], ...] = (
    ("none", "control: the record itself", "none"),
    ("physio", "Physio-AUG preset: crop -> cycle mask -> shift", "physio"),
    ("physio_v1", "Physio-AUG as made before 2026-12-05 (its crop resampled)", "physio_v1"),
    ("random_scale_crop", "Physio-AUG step, scale [0.5, 1], rate kept", [PRESETS["physio"][0]]),
    ("cardiac_cycle_mask", "Physio-AUG step, 1-2 RR cycles, all leads", [PRESETS["physio"][1]]),
    ("temporal_shift", "Physio-AUG step, circular, up to one RR", [PRESETS["physio"][2]]),
    ("standard", "baseline preset: resized crop -> time-out", "standard"),
    ("random_resized_crop", "baseline step, scale [0.5, 1]", [PRESETS["standard"][0]]),
    ("time_out", "baseline step, 0-50 % zeroed", [PRESETS["standard"][1]]),
    ("gaussian_noise", "baseline step, sigma 0.01-0.1", [{"name": "gaussian_noise"}]),
    ("amplitude_scale", "baseline step, x 0.8-1.2", [{"name": "amplitude_scale"}]),
    ("baseline_wander", "baseline step, 0.05-0.5 Hz", [{"name": "baseline_wander"}]),
    ("lead_dropout", "baseline step, each lead p = 0.2", [{"name": "lead_dropout"}]),
)


def _delta(before: Measurement, after: Measurement) -> dict[str, float]:
    out = {}
    for name in COMPARED:
        a, b = getattr(before, name), getattr(after, name)
        out[name] = float(b - a) if a is not None and b is not None else math.nan
    return out


def compare_views(
    original: np.ndarray, views: Sequence[np.ndarray], fs: float, names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Measure ``original`` and each view ``(L, T)``; per view a dict with ``view``, the values before and after
    (``<field>_before`` / ``<field>_after`` for HR, RR, QRS, QT) and ``line``, e.g.
    ``"view 1: HR 64 -> 64 bpm, QRS 92 -> 92 ms, QT 380 -> 376 ms"``."""
    base = measure_record(original, fs)
    out = []
    for k, view in enumerate(views):
        name = names[k] if names else f"view {k + 1}"
        m = measure_record(view, fs)
        row: dict[str, Any] = {"view": name}
        parts = []
        for field, (label, unit) in COMPARED.items():
            a, b = getattr(base, field), getattr(m, field)
            row[f"{field}_before"], row[f"{field}_after"] = a, b
            if field != "rr_ms":
                parts.append(f"{label} {'–' if a is None else f'{a:.0f}'} -> {'–' if b is None else f'{b:.0f}'} {unit}")
        row["line"] = f"{name}: " + ", ".join(parts)
        out.append(row)
    return out


def _crop_fraction(info: dict[str, Any]) -> np.ndarray | None:
    for key, part in info.items():
        if key.split(":", 1)[-1] in ("random_scale_crop", "random_resized_crop") and "fraction" in part:
            return part["fraction"].double().numpy()
    return None


def _views(spec: Any, x: Any, peaks: Any, fs: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch of views ``(N, L, T)`` and the crop fraction per view (``nan`` without a crop)."""
    import torch

    aug = build_augmentation(spec, fs=fs)
    with torch.no_grad():
        y, info = aug.forward_with_info(x, peaks, generator=torch.Generator().manual_seed(seed))
    frac = _crop_fraction(info)
    return y.numpy(), frac if frac is not None else np.full(x.shape[0], np.nan)


def preservation_study(
    dataset: PreparedDataset,
    n_records: int | None = None,
    views: int = 2,
    seed: int = 0,
    augmentations: Sequence[tuple[str, str, Any]] = AUGMENTATIONS_MEASURED,
    progress: bool = False,
) -> pd.DataFrame:
    """Per view, the change of each compared value (view minus original; ``nan`` where either is unmeasurable).

    ``n_records`` records are drawn without replacement with ``seed`` (all when ``None`` or larger). Columns:
    ``augmentation``, ``row``, ``view``, ``crop_fraction``, ``<field>_before`` and ``d_<field>`` per compared field.
    """
    import torch
    from tqdm.auto import tqdm

    if views < 1 or (n_records is not None and n_records < 1):
        raise ConfigError(f"views ({views}) and records ({n_records}) must be at least 1")
    rows = np.random.default_rng(seed).permutation(len(dataset))
    rows = np.sort(rows if n_records is None else rows[:n_records])
    x_np = np.asarray(dataset.signals[rows], dtype=np.float32)
    x = torch.from_numpy(x_np)
    peaks = torch.from_numpy(np.asarray(dataset.rpeaks_padded(rows, max_peaks=64))).long()
    fs = dataset.fs
    before = [measure_record(x_np[i], fs) for i in tqdm(range(len(rows)), desc="originals", disable=not progress)]
    out: list[dict[str, Any]] = []
    jobs = [(label, spec, k) for label, _, spec in augmentations for k in range(views)]
    for label, spec, k in tqdm(jobs, desc="augmentations x views", disable=not progress):
        y, frac = _views(spec, x, peaks, fs, seed + k)
        for i in range(len(rows)):
            after = measure_record(y[i], fs)
            entry: dict[str, Any] = {"augmentation": label, "row": int(rows[i]), "view": k, "crop_fraction": frac[i]}
            entry.update({f"{f}_before": getattr(before[i], f) for f in COMPARED})
            entry.update({f"d_{f}": v for f, v in _delta(before[i], after).items()})
            out.append(entry)
    return pd.DataFrame(out)


def summarise(
    deltas: pd.DataFrame, augmentations: Sequence[tuple[str, str, Any]] = AUGMENTATIONS_MEASURED
) -> pd.DataFrame:
    """Per augmentation: views, median and 95th percentile of ``|change|`` per field, the share of views whose HR
    moves by more than :data:`HR_MOVE_BPM`, the share not measurable, and for crops the median of
    ``HR_view / HR_original`` against the kept fraction."""
    what = {label: desc for label, desc, _ in augmentations}
    table = []
    for label, group in deltas.groupby("augmentation", sort=False):
        row: dict[str, Any] = {"augmentation": label, "what": what.get(str(label), ""), "views": len(group)}
        for field in COMPARED:
            d = group[f"d_{field}"].abs().dropna()
            row[f"{field}_median"] = float(d.median()) if len(d) else math.nan
            row[f"{field}_p95"] = float(d.quantile(0.95)) if len(d) else math.nan
        d_hr = group["d_hr_bpm"].dropna()
        row["hr_moved_share"] = float((d_hr.abs() > HR_MOVE_BPM).mean()) if len(d_hr) else math.nan
        measurable = group[[f"{f}_before" for f in COMPARED]].notna().all(axis=1)
        lost = group[[f"d_{f}" for f in COMPARED]].isna().any(axis=1) & measurable
        row["unmeasurable_share"] = float(lost.sum() / max(int(measurable.sum()), 1))
        crop = group.dropna(subset=["crop_fraction", "d_hr_bpm"])
        if len(crop):
            ratio = (crop["hr_bpm_before"] + crop["d_hr_bpm"]) / crop["hr_bpm_before"]
            row["hr_ratio_over_fraction"] = float((ratio / crop["crop_fraction"]).median())
        else:
            row["hr_ratio_over_fraction"] = math.nan
        table.append(row)
    return pd.DataFrame(table)


def _fmt(value: float, digits: int = 0, pct: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{100 * value:.{digits}f} %" if pct else f"{value:.{digits}f}"


def to_markdown(summary: pd.DataFrame, meta: dict[str, Any]) -> str:
    """The committed table (``docs/results/rhythm-preservation.md``): how it was made, then one row per
    augmentation."""
    lines = [
        "# Rhythm preservation of the augmentations, measured",
        "",
        f"Written by `{meta['command']}` (aclecg {meta['version']}, measurement code {meta['code_version']}).",
        f"Data: {meta['dataset']} (fingerprint {meta['fingerprint'][:16]}), {meta['n_records']} of "
        f"{meta['n_total']} records at {meta['fs']:g} Hz, {meta['views']} view(s) per record and augmentation, "
        f"seeds {meta['seed']}..{meta['seed'] + meta['views'] - 1}.",
        "",
        "Each view and its original are measured alike (`aclecg.measure.measure_record`, R-peaks detected afresh);",
        "the cells are the median / 95th percentile of |view - original|. *HR moved* is the share of views whose",
        f"heart rate moves by more than {HR_MOVE_BPM:g} bpm; *lost* the share of views where a value measurable on",
        "the original could not be measured; *HR ratio / f* the median of (view HR / original HR) / kept fraction f",
        "for the crops: 1 when the rate scales with the crop (resampling a window of f T samples to T), 1/f (about",
        "1.3 for f in [0.5, 1]) when the crop keeps the rate.",
        f"{DISCLAIMER}",
        "",
        "| augmentation | what | views | HR \\|Δ\\| bpm (median / p95) | HR moved > 5 bpm | RR \\|Δ\\| ms | "
        "QRS \\|Δ\\| ms | QT \\|Δ\\| ms | lost | HR ratio / f |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.to_dict("records"):
        cells = [
            f"`{r['augmentation']}`",
            r["what"],
            str(r["views"]),
            f"{_fmt(r['hr_bpm_median'], 1)} / {_fmt(r['hr_bpm_p95'], 1)}",
            _fmt(r["hr_moved_share"], 1, pct=True),
            *(f"{_fmt(r[f'{f}_median'])} / {_fmt(r[f'{f}_p95'])}" for f in ("rr_ms", "qrs_ms", "qt_ms")),
            _fmt(r["unmeasurable_share"], 1, pct=True),
            _fmt(r["hr_ratio_over_fraction"], 2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def published_table() -> pd.DataFrame | None:
    """The committed summary (``<published root>/rhythm-preservation.csv``) with readable column names, or
    ``None`` when there is none or it cannot be read."""
    from aclecg.paths import published_root

    path = published_root() / f"{TABLE_NAME}.csv"
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    names = {"hr_moved_share": f"HR moved > {HR_MOVE_BPM:g} bpm", "unmeasurable_share": "lost"}
    for field, (label, unit) in COMPARED.items():
        names[f"{field}_median"] = f"{label} |Δ| median ({unit})"
        names[f"{field}_p95"] = f"{label} |Δ| p95 ({unit})"
    return table.rename(columns=names)
