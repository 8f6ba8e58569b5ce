"""The 12-lead page as printed, at true scale: A4 or Letter landscape, 25 mm/s, 5 / 10 / 20 mm/mV, as PDF or PNG.

The figure is laid out in millimetres: its size is the paper's, and the grid's axes map one data unit to one
millimetre of paper, so printed at 100 % (no "fit to page") a small square is 1 mm and a large one 5 mm, as on an
electrocardiograph's print. The header holds the record id, the measurements (HR, PR, QRS, QT/QTc) and
:data:`NOT_FOR_DIAGNOSIS`. Drawn with matplotlib's object API (no pyplot, no global state), so it is safe in the
app's threads.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from aclecg.constraints import PAPER_SIZES_MM, PRINT_GAINS
from aclecg.errors import ConfigError
from aclecg.leads import LEADS, canonical_lead
from aclecg.viz.paper import LAYOUT_3X4, MARGIN_MM, MM_PER_MV, MM_PER_S, Z_MM_PER_SD, paper_panels

if TYPE_CHECKING:  # matplotlib loads at the first print, not with the Explorer page (0.3-0.5 s of import)
    from matplotlib.figure import Figure

__all__ = [
    "FORMATS",
    "GAINS",
    "NOT_FOR_DIAGNOSIS",
    "PAPER_SIZES_MM",
    "measurement_line",
    "printout_bytes",
    "printout_figure",
]

#: Landscape page sizes (width, height) in mm.
GAINS: tuple[float, ...] = PRINT_GAINS
FORMATS: tuple[str, ...] = ("pdf", "png")
NOT_FOR_DIAGNOSIS = "Not for diagnostic use: algorithmic estimates"
MM_PER_INCH = 25.4
#: Seconds of the record printed (4 columns of 2.5 s, and the rhythm strip).
SECONDS = 10.0
HEADER_MM, TOP_MM, BOTTOM_MM = 24.0, 6.0, 8.0
MINOR_COLOUR, MAJOR_COLOUR = "#f6b8c0", "#e0607a"


def _value(v: float | None, unit: str) -> str:
    return "–" if v is None else f"{v:.0f} {unit}"


def measurement_line(measurement: Any) -> str:
    """``HR 72 bpm · PR 160 ms · QRS 92 ms · QT 388 ms · QTc 412 ms (Bazett) / 404 ms (Fridericia)`` from an
    :class:`aclecg.measure.Measurement` (``None``: a line saying none were made)."""
    if measurement is None:
        return "No measurements"
    m = measurement
    return (
        f"HR {_value(m.hr_bpm, 'bpm')} · PR {_value(m.pr_ms, 'ms')} · QRS {_value(m.qrs_ms, 'ms')} · "
        f"QT {_value(m.qt_ms, 'ms')} · QTc {_value(m.qtc_bazett_ms, 'ms')} (Bazett) / "
        f"{_value(m.qtc_fridericia_ms, 'ms')} (Fridericia)"
    )


def _check(signals: np.ndarray, fs: float, leads: Sequence[str], gain: float, paper: str) -> np.ndarray:
    if paper not in PAPER_SIZES_MM:
        raise ConfigError(f"paper must be one of {', '.join(PAPER_SIZES_MM)}, got {paper!r}")
    if not np.isfinite(gain) or not 1.0 <= gain <= 40.0:
        raise ConfigError(f"gain must be in [1, 40] mm/mV (5, 10 or 20 are usual), got {gain!r}")
    if not np.isfinite(fs) or fs <= 0:
        raise ConfigError(f"fs must be a positive sampling rate, got {fs!r}")
    x = np.asarray(signals, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(leads) or x.shape[1] < 4:
        raise ConfigError(f"signals must be (leads={len(leads)}, samples), got shape {x.shape}")
    return np.nan_to_num(x[:, : int(round(SECONDS * fs))])


def _grid(ax: Any, width: float, height: float) -> None:
    """1 mm and 5 mm lines over ``[0, width] x [0, height]`` (data units are mm)."""
    from matplotlib.collections import LineCollection

    for step, colour, lw in ((1, MINOR_COLOUR, 0.25), (5, MAJOR_COLOUR, 0.6)):
        xs = np.arange(0.0, width + 1e-9, step)
        ys = np.arange(0.0, height + 1e-9, step)
        segs = [[(x, 0.0), (x, height)] for x in xs] + [[(0.0, y), (width, y)] for y in ys]
        ax.add_collection(LineCollection(segs, colors=colour, linewidths=lw, zorder=1 + (step == 5), gid=f"grid{step}"))


def printout_figure(
    signals: np.ndarray,
    fs: float,
    leads: Sequence[str] = LEADS,
    record_id: str = "",
    measurement: Any = None,
    gain: float = MM_PER_MV,
    paper: str = "A4",
    units: str = "mV",
) -> Figure:
    """The 3x4 + lead II rhythm strip page of ``signals (leads, samples)`` at ``fs`` Hz (the first 10 s), at
    ``gain`` mm per ``units`` (mV; a z-scored signal is drawn at ``gain`` / 4 mm per SD), on ``paper`` ("A4" or
    "Letter", landscape). ``measurement`` (an :class:`aclecg.measure.Measurement`) fills the header."""
    from matplotlib.figure import Figure

    names = [canonical_lead(lead) for lead in leads]
    x = _check(signals, float(fs), names, float(gain), paper)
    mm_per_unit = float(gain) if units == "mV" else float(gain) / MM_PER_MV * Z_MM_PER_SD
    page_w, page_h = PAPER_SIZES_MM[paper]
    grid_w = 5.0 * np.ceil((MARGIN_MM + SECONDS * MM_PER_S) / 5.0)
    grid_h = 5.0 * np.floor((page_h - TOP_MM - HEADER_MM - BOTTOM_MM) / 5.0)
    left, bottom = round((page_w - grid_w) / 2.0), BOTTOM_MM
    fig = Figure(figsize=(page_w / MM_PER_INCH, page_h / MM_PER_INCH))
    ax = fig.add_axes((left / page_w, bottom / page_h, grid_w / page_w, grid_h / page_h))
    ax.set_xlim(0.0, grid_w)
    ax.set_ylim(0.0, grid_h)
    ax.set_axis_off()
    ax.set_gid("ecg-grid")
    _grid(ax, grid_w, grid_h)
    panels, _ = paper_panels(x.shape[1], float(fs), names, "3x4")
    rows = sorted({p.baseline for p in panels}, reverse=True)
    row_h = grid_h / (len(LAYOUT_3X4) + 1)
    t_mm = np.arange(x.shape[1]) / fs * MM_PER_S
    for p in panels:
        base = grid_h - (rows.index(p.baseline) + 0.6) * row_h
        seg = x[names.index(p.lead), p.start : p.stop]
        ax.plot(
            t_mm[p.start : p.stop] - t_mm[p.start] + p.x0, base + seg * mm_per_unit, color="black", lw=0.6, zorder=3
        )
        ax.text(p.x0 + 1, base + 0.3 * row_h, p.lead, fontsize=8, fontweight="bold", zorder=4)
        if p.start > 0:  # the column change, as an electrocardiograph marks it
            ax.plot([p.x0, p.x0], [base - 4, base + 4], color="black", lw=0.8, zorder=3)
    for k in range(len(rows)):
        base = grid_h - (k + 0.6) * row_h
        w = 0.2 * MM_PER_S
        ax.plot(
            [1, 2, 2, 2 + w, 2 + w, 3 + w],
            [base, base, base + mm_per_unit, base + mm_per_unit, base, base],
            color="black",
            lw=0.8,
            zorder=3,
        )
    unit = "mV" if units == "mV" else "SD (z-scored signal)"
    ax.text(
        1,
        grid_h - 0.6 * row_h - 1.5,
        f"{gain:g} mm/mV" if units == "mV" else f"{mm_per_unit:g} mm/SD",
        fontsize=6,
        va="top",
        zorder=4,
        gid="calibration label",
    )
    top = 1.0 - TOP_MM / page_h
    fig.text(left / page_w, top, f"Record {record_id}", fontsize=12, fontweight="bold", va="top")
    fig.text((left + grid_w) / page_w, top, f"25 mm/s · {gain:g} mm/mV", fontsize=10, va="top", ha="right")
    fig.text(left / page_w, top - 7.5 / page_h, measurement_line(measurement), fontsize=9, va="top")
    fig.text(
        left / page_w, top - 13.5 / page_h, NOT_FOR_DIAGNOSIS, fontsize=9, va="top", color="#b00020", fontweight="bold"
    )
    if units != "mV":
        fig.text(
            left / page_w,
            top - 18.5 / page_h,
            f"Amplitudes in {unit}: the prepared signal, not mV.",
            fontsize=7,
            va="top",
        )
    return fig


def printout_bytes(fig: Figure, fmt: str = "pdf", dpi: int = 300) -> bytes:
    """``fig`` (from :func:`printout_figure`) as PDF or PNG bytes, page size unchanged (no cropping); the PNG
    records ``dpi`` so that printing it at 100 % keeps the scale."""
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    buf = io.BytesIO()
    title = fig.texts[0].get_text() if fig.texts else "ECG"
    metadata = {"Title": title, "Subject": NOT_FOR_DIAGNOSIS} if fmt == "pdf" else {"Title": title}
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata, facecolor="white")
    return buf.getvalue()
