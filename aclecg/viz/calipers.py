"""Time and amplitude calipers on the ECG paper: two clicked points -> interval, the rate it implies and the
amplitude difference.

A click on :func:`aclecg.viz.paper.ecg_paper_figure` comes back in paper millimetres (x at 25 mm/s from the left
edge, y at the figure's gain, negative downwards). :func:`locate` turns it into the lead, the record time in
seconds and the amplitude in the signal's unit, from the panels the figure records in ``layout.meta["panels"]``
and its gain (``meta["mm_per_unit"]``): in the 3x4 print each column is a different 2.5 s of the record, so the
same x means a different time in each column. :func:`measure` gives Δt (ms), 60000/Δt (bpm) and Δ amplitude;
:func:`draw` adds the caliper to the figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from aclecg.errors import DataError

__all__ = ["CaliperPoint", "CaliperReading", "clickable", "draw", "locate", "measure"]

CALIPER_COLOUR = "#1f5fbf"
#: Name of the invisible marker trace a click lands on.
TARGET_NAME = "caliper target"
#: How many of its markers that trace draws (``marker.maxdisplayed``; plotly's 0 would mean all of them).
TARGET_DRAWN = 1


@dataclass(frozen=True)
class CaliperPoint:
    """One caliper end: where it was clicked on the paper (``x_mm``, ``y_mm``) and what that means for its lead."""

    lead: str
    t_s: float
    value: float
    x_mm: float
    y_mm: float


@dataclass(frozen=True)
class CaliperReading:
    """Between two caliper ends: ``dt_ms`` (>= 0), ``rate_bpm`` (60000 / Δt; ``None`` for Δt = 0), ``d_value``
    (second minus first, in ``units``) and whether both ends lie on the same lead."""

    dt_ms: float
    rate_bpm: float | None
    d_value: float
    units: str
    same_lead: bool

    def text(self) -> str:
        """One line, e.g. ``Δt 800 ms · 75 bpm · ΔmV +1.20 mV``."""
        rate = "–" if self.rate_bpm is None else f"{self.rate_bpm:.0f} bpm"
        line = f"Δt {self.dt_ms:.0f} ms · {rate} · Δ{self.units} {self.d_value:+.2f} {self.units}"
        return line if self.same_lead else line + " (two different leads)"


def _panels(meta: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    panels = meta.get("panels") if isinstance(meta, Mapping) else None
    if not panels:
        raise DataError("the figure records no lead panels (layout.meta['panels']); draw it with ecg_paper_figure")
    return panels


def locate(x_mm: float, y_mm: float, meta: Mapping[str, Any]) -> CaliperPoint:
    """The lead, time (s) and amplitude (signal units) under a point ``(x_mm, y_mm)`` of a paper figure whose
    ``layout.meta`` is ``meta``: the panel spanning ``x_mm`` whose baseline is nearest ``y_mm``.

    Raises :class:`DataError` for a point left or right of every panel, or a non-finite coordinate."""
    if not (math.isfinite(float(x_mm)) and math.isfinite(float(y_mm))):
        raise DataError(f"caliper point must be finite paper millimetres, got ({x_mm!r}, {y_mm!r})")
    gain = float(meta.get("mm_per_unit", 0) or 0)
    speed = float(meta.get("mm_per_s", 0) or 0)
    if gain <= 0 or speed <= 0:
        raise DataError("the figure records no paper speed and gain (meta 'mm_per_s', 'mm_per_unit')")
    spanning = [p for p in _panels(meta) if p["x0"] - 1e-9 <= x_mm <= p["x1"] + 1e-9]
    if not spanning:
        raise DataError(f"x = {x_mm:.1f} mm lies outside every lead's trace")
    panel = min(spanning, key=lambda p: abs(y_mm - p["baseline"]))
    return CaliperPoint(
        lead=str(panel["lead"]),
        t_s=float(panel["t0"]) + (x_mm - panel["x0"]) / speed,
        value=(y_mm - panel["baseline"]) / gain,
        x_mm=float(x_mm),
        y_mm=float(y_mm),
    )


def measure(a: CaliperPoint, b: CaliperPoint, units: str = "mV") -> CaliperReading:
    """Δt in ms between ``a`` and ``b`` (absolute), the rate it implies (60000/Δt bpm) and ``b - a`` in amplitude."""
    dt_ms = abs(b.t_s - a.t_s) * 1000.0
    rate = 60000.0 / dt_ms if dt_ms > 1e-9 else None
    return CaliperReading(
        dt_ms=dt_ms, rate_bpm=rate, d_value=b.value - a.value, units=units, same_lead=a.lead == b.lead
    )


def draw(fig: go.Figure, points: Sequence[CaliperPoint], reading: CaliperReading | None = None) -> go.Figure:
    """Add the caliper to ``fig`` (in place, returned): a marker at each end, a vertical tick through each end and
    a line joining them, labelled with the reading. Shapes are named ``"caliper"``."""
    if not points:
        return fig
    ys = [p.y_mm for p in points]
    top, bottom = max(ys) + 6, min(ys) - 6
    for p in points:
        fig.add_shape(
            type="line",
            x0=p.x_mm,
            x1=p.x_mm,
            y0=bottom,
            y1=top,
            line=dict(color=CALIPER_COLOUR, width=1.5, dash="dot"),
            name="caliper",
        )
    fig.add_trace(
        go.Scatter(
            x=[p.x_mm for p in points],
            y=ys,
            mode="markers+lines" if len(points) == 2 else "markers",
            marker=dict(size=9, color=CALIPER_COLOUR, symbol="circle-open", line=dict(width=2)),
            line=dict(color=CALIPER_COLOUR, width=1.5),
            name="caliper",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    if reading is not None and len(points) == 2:
        fig.add_annotation(
            x=(points[0].x_mm + points[1].x_mm) / 2,
            y=top,
            text=reading.text(),
            showarrow=False,
            yanchor="bottom",
            font=dict(size=11, color=CALIPER_COLOUR),
            bgcolor="rgba(255,255,255,0.85)",
            name="caliper reading",
        )
    return fig


def clickable(fig: go.Figure, max_points_per_s: float = 100.0) -> go.Figure:
    """Make the leads of a paper figure clickable for calipers (in place, returned).

    A click selects a data point only on a trace with markers (plotly selects no point of a lines-only trace),
    so the leads get one invisible marker trace named :data:`TARGET_NAME` over all of them, thinned to at most
    ``max_points_per_s`` points a second of paper (25 mm) of each lead, which takes over the hover label (the
    lead's name is its ``text``); the lines themselves stop answering the mouse.

    Plotly hovers, clicks and selects on the trace's data, not on drawn markers, so the trace draws
    :data:`TARGET_DRAWN` of its markers (``marker.maxdisplayed``): thousands of invisible SVG markers made the
    paper chart's first draw in a new browser several times slower, and every redraw after it."""
    panels = {str(p["lead"]) for p in _panels(fig.layout.meta or {})}
    xs: list[Any] = []
    ys: list[Any] = []
    data: list[Any] = []
    names: list[str] = []
    template = None
    for trace in fig.data:
        if trace.name not in panels or trace.mode != "lines" or trace.x is None:
            continue
        n = len(trace.x)
        per_s = (n - 1) / max((trace.x[-1] - trace.x[0]) / float(fig.layout.meta["mm_per_s"]), 1e-9) if n > 1 else 1
        step = max(1, int(round(per_s / max_points_per_s)))
        xs.append(np.asarray(trace.x[::step], dtype=np.float64))
        ys.append(np.asarray(trace.y[::step], dtype=np.float64))
        data.append(None if trace.customdata is None else np.asarray(trace.customdata[::step]))
        names += [str(trace.name)] * len(xs[-1])
        template = template or _target_template(trace.hovertemplate, str(trace.name))
        trace.hoverinfo, trace.hovertemplate = "skip", None
    if not xs:
        return fig
    fig.add_trace(
        go.Scatter(
            x=np.concatenate(xs),
            y=np.concatenate(ys),
            customdata=None if any(d is None for d in data) else np.concatenate(data),
            text=names,
            mode="markers",
            name=TARGET_NAME,
            marker=dict(size=6, opacity=0, color=CALIPER_COLOUR, maxdisplayed=TARGET_DRAWN),
            selected=dict(marker=dict(opacity=0)),
            unselected=dict(marker=dict(opacity=0)),
            hovertemplate=template,
            showlegend=False,
        )
    )
    return fig


def _target_template(template: str | None, lead: str) -> str | None:
    """A lead trace's hover template for the shared target trace: the lead's name becomes the point's ``text``."""
    if not template:
        return None
    return template.replace(lead, "%{text}", 1) if template.startswith(lead) else template
