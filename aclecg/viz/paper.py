"""The ECG on paper: the clinical 3x4 + rhythm-strip print (or stacked leads) on a millimetre grid.

Convention: the x axis is in millimetres of paper at 25 mm/s and the y axis in millimetres at 10 mm/mV, with a
pink grid of 1 mm minor and 5 mm major squares, so 1 small square is 40 ms x 0.1 mV and 1 large square is
200 ms x 0.5 mV. Leads are coloured by anatomical region (:data:`aclecg.leads.REGION_COLOURS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from aclecg.leads import LEADS, REGION_COLOURS, RegionMap, canonical_lead, default_region_map

#: Paper speed and gain of the standard clinical ECG print.
MM_PER_S = 25.0
MM_PER_MV = 10.0
GRID_MINOR_MM = 1.0
GRID_MAJOR_MM = 5.0
GRID_MINOR_COLOUR = "rgba(255, 160, 170, 0.35)"
GRID_MAJOR_COLOUR = "rgba(235, 90, 110, 0.6)"
PAPER_COLOUR = "#fff5f6"
TRACE_COLOUR = "#111111"

#: Rows of the standard 3x4 print (each column shows 2.5 s of its lead); a lead II rhythm strip follows.
LAYOUT_3X4: tuple[tuple[str, ...], ...] = (
    ("I", "aVR", "V1", "V4"),
    ("II", "aVL", "V2", "V5"),
    ("III", "aVF", "V3", "V6"),
)
ROW_HEIGHT_MM = 30.0
#: Height of a stacked row, and the room left of the traces for the calibration pulse (mm).
STACKED_ROW_MM = 20.0
MARGIN_MM = 10.0
#: Default gain of z-scored (prepared) signals: mm per standard deviation.
Z_MM_PER_SD = 2.5


def lead_colour(lead: str, region_map: RegionMap | None = None) -> str:
    """Colour of a lead: its region's colour, or the aVR/"no region" grey."""
    region = (region_map or default_region_map()).region_of(lead)
    if region is None:
        return REGION_COLOURS["aVR"]
    return region_colour(region)


def region_colour(region: str) -> str:
    """Colour of a region: its own (:data:`aclecg.leads.REGION_COLOURS`), or a fixed one picked by its name."""
    return REGION_COLOURS.get(region, fallback_colour(region))


def fallback_colour(name: str) -> str:
    palette = ("#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
    return palette[sum(map(ord, name)) % len(palette)]


def _paper_axes(width_mm: float, height_mm: float) -> tuple[dict, dict]:
    """Layout of the x and y axes: a pink ECG-paper grid in millimetres (gridlines, not thousands of shapes)."""
    common = dict(
        showgrid=True,
        gridcolor=GRID_MAJOR_COLOUR,
        gridwidth=1,
        zeroline=False,
        showticklabels=False,
        ticks="",
        minor=dict(dtick=GRID_MINOR_MM, showgrid=True, gridcolor=GRID_MINOR_COLOUR, gridwidth=0.5),
        fixedrange=False,
        dtick=GRID_MAJOR_MM,
        tick0=0,
        # constrain="domain": keep the 1:1 mm aspect by shrinking the drawing area, never by widening the range
        constrain="domain",
    )
    return dict(range=[0, width_mm], **common), dict(range=[-height_mm, 0], scaleanchor="x", scaleratio=1, **common)


def _calibration_pulse(x0: float, baseline: float, mm_per_unit: float) -> tuple[list[float], list[float]]:
    """A 1 mV (or 1 unit), 200 ms square pulse drawn at the start of a row."""
    w = 0.2 * MM_PER_S
    h = mm_per_unit
    return (
        [x0, x0 + 1, x0 + 1, x0 + 1 + w, x0 + 1 + w, x0 + 2 + w],
        [baseline, baseline, baseline + h, baseline + h, baseline, baseline],
    )


@dataclass(frozen=True)
class Panel:
    """Where one lead's stretch of signal sits on the paper: samples ``start:stop`` of ``lead`` drawn from
    ``x0`` to ``x1`` mm with its zero on ``baseline`` mm (y is negative downwards)."""

    lead: str
    x0: float
    x1: float
    baseline: float
    start: int
    stop: int

    def as_meta(self, fs: float) -> dict:
        """Plain JSON for a figure's ``layout.meta["panels"]`` (``t0`` is the time of ``x0`` in seconds)."""
        return {
            "lead": self.lead,
            "x0": self.x0,
            "x1": self.x1,
            "baseline": self.baseline,
            "t0": self.start / fs,
        }


def row_scale(gain: float, units: str = "mV") -> float:
    """How much taller than standard a row is drawn at ``gain`` mm per unit (1 up to the standard gain)."""
    standard = MM_PER_MV if units == "mV" else Z_MM_PER_SD
    return max(1.0, float(gain) / standard)


def paper_panels(
    n_t: int, fs: float, leads: Sequence[str], layout: str, rhythm_lead: str = "II", scale: float = 1.0
) -> tuple[list[Panel], float]:
    """The panels of a ``layout`` (``"3x4"`` or ``"stacked"``) print of ``n_t`` samples of ``leads`` at ``fs``, and
    the paper height in mm. Rows are ``scale`` times the standard height (taller for a larger gain)."""
    names = [canonical_lead(lead) for lead in leads]
    panels: list[Panel] = []
    if layout == "3x4":
        row_h = ROW_HEIGHT_MM * scale
        col_len = n_t // 4
        for r, row_leads in enumerate(LAYOUT_3X4):
            baseline = -(r + 0.6) * row_h
            for c, lead in enumerate(row_leads):
                if lead in names:
                    x0 = MARGIN_MM + c * col_len / fs * MM_PER_S
                    panels.append(
                        Panel(lead, x0, x0 + col_len / fs * MM_PER_S, baseline, c * col_len, (c + 1) * col_len)
                    )
        if rhythm_lead in names:
            baseline = -(len(LAYOUT_3X4) + 0.6) * row_h
            panels.append(Panel(rhythm_lead, MARGIN_MM, MARGIN_MM + n_t / fs * MM_PER_S, baseline, 0, n_t))
        return panels, (len(LAYOUT_3X4) + 1.2) * row_h
    row_h = STACKED_ROW_MM * scale
    for r, lead in enumerate(names):
        panels.append(Panel(lead, MARGIN_MM, MARGIN_MM + n_t / fs * MM_PER_S, -(r + 0.7) * row_h, 0, n_t))
    return panels, (len(names) + 0.4) * row_h


# long: each parameter is a public drawing option of the print (callers pass them by keyword)
def ecg_paper_figure(
    signals: np.ndarray,
    fs: float,
    leads: Sequence[str] = LEADS,
    layout: str = "3x4",
    rpeaks: np.ndarray | None = None,
    region_map: RegionMap | None = None,
    units: str = "mV",
    title: str | None = None,
    rhythm_lead: str = "II",
    gain_mm: float | None = None,
    colours: str = "region",
    px_per_mm: float = 4.2,
    highlight: Sequence[str] = (),
) -> go.Figure:
    """A 12-lead ECG drawn as printed: 25 mm/s, 10 mm/mV, pink mm grid.

    ``colours`` is ``"region"`` (each lead in its anatomical region's colour, with a legend) or ``"black"`` (the
    clinical print). ``px_per_mm`` sets the figure's height, and so its width (grid cells are square): about
    ``width_px / 262`` fills ``width_px`` with a 10 s 3x4 print.

    ``gain_mm`` is the vertical scale in mm per unit of ``signals``: 10 (the clinical 10 mm/mV) by default for
    ``units="mV"``, 2.5 mm per standard deviation for z-scored signals (``units="z"``), whose QRS spans many
    units.

    ``signals`` is ``(n_leads, T)`` in ``leads`` order. ``layout`` is ``"3x4"`` (three rows of four 2.5 s
    columns plus a full-length rhythm strip of ``rhythm_lead``) or ``"stacked"`` (one full-length row per lead).
    ``rpeaks`` (sample positions) are marked with triangles on the rhythm strip / every stacked row.
    Traces are named by lead and coloured by region; the layout's ``meta`` records the scale used and the lead
    panels (:class:`Panel`, for :mod:`aclecg.viz.calipers`); the first calibration pulse is labelled with the gain
    (an annotation named ``"calibration label"``) and rows grow with a gain above the standard one.
    ``highlight`` leads get a shaded panel behind their traces (shapes named ``"highlighted lead"``).
    """
    x = np.asarray(signals, dtype=np.float64)
    lead_names = [canonical_lead(lead) for lead in leads]
    if x.ndim != 2 or x.shape[0] != len(lead_names):
        raise ValueError(f"signals must be (n_leads={len(lead_names)}, T), got shape {x.shape}")
    if layout not in ("3x4", "stacked"):
        raise ValueError(f"layout must be '3x4' or 'stacked', got {layout!r}")
    if colours not in ("region", "black"):
        raise ValueError(f"colours must be 'region' or 'black', got {colours!r}")
    gain = float(gain_mm if gain_mm is not None else (MM_PER_MV if units == "mV" else Z_MM_PER_SD))
    if not np.isfinite(gain) or gain <= 0:
        raise ValueError(f"gain_mm must be a positive number of mm per {units}, got {gain_mm!r}")
    n_t = x.shape[1]
    peaks = np.asarray(rpeaks if rpeaks is not None else [], dtype=np.int64)
    scale = row_scale(gain, units)
    d = _PaperDrawing(
        x=x,
        fs=fs,
        lead_names=lead_names,
        layout=layout,
        units=units,
        gain=gain,
        scale=scale,
        region_colours=colours == "region",
        rmap=region_map or default_region_map(),
        marked=frozenset(canonical_lead(lead) for lead in highlight),
        peaks=peaks[(peaks >= 0) & (peaks < n_t)],
    )
    panels, height_mm = paper_panels(n_t, fs, lead_names, layout, rhythm_lead, scale)
    layers = _Layers()
    for panel in panels:
        _add_segment(d, layers, panel)
        if layout == "stacked" or panel.stop - panel.start == n_t:  # the rhythm strip / every stacked row
            _add_peaks(d, layers, panel)
    if layout == "3x4":
        _add_column_separators(d, layers)
    _add_calibration(d, layers, panels)
    if d.region_colours:
        layers.traces += _region_legend(d.rmap)
    return go.Figure(data=layers.traces, layout=_paper_layout(d, layers, panels, height_mm, title, px_per_mm))


@dataclass(frozen=True)
class _PaperDrawing:
    """What every layer of :func:`ecg_paper_figure` reads: the signals (``(n_leads, T)``) and their lead names,
    the layout, units and gain (mm per unit), the rows' scale, whether leads take region colours, the region map,
    the highlighted leads and the R-peaks inside the record."""

    x: np.ndarray
    fs: float
    lead_names: list[str]
    layout: str
    units: str
    gain: float
    scale: float
    region_colours: bool
    rmap: RegionMap
    marked: frozenset[str]
    peaks: np.ndarray

    @property
    def t_mm(self) -> np.ndarray:
        """Each sample's position on the paper (mm from the first sample)."""
        return np.arange(self.x.shape[1]) / self.fs * MM_PER_S

    def colour_of(self, lead: str) -> str:
        return lead_colour(lead, self.rmap) if self.region_colours else TRACE_COLOUR


@dataclass
class _Layers:
    """Traces, shapes and annotations, collected as plain dicts and validated once, by go.Figure at the end:
    adding them one by one re-validates every earlier shape and annotation each time."""

    traces: list[dict] = field(default_factory=list)
    shapes: list[dict] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)


def _add_segment(d: _PaperDrawing, layers: _Layers, panel: Panel) -> None:
    """One panel's trace and lead label, with a shaded panel behind a highlighted lead."""
    lead, start, stop, x_off, baseline = panel.lead, panel.start, panel.stop, panel.x0, panel.baseline
    seg = d.x[d.lead_names.index(lead), start:stop]
    if lead in d.marked:
        half_mm = (ROW_HEIGHT_MM / 2 - 1 if d.layout == "3x4" else STACKED_ROW_MM / 2 - 0.5) * d.scale
        layers.shapes.append(
            dict(
                type="rect",
                x0=x_off,
                x1=panel.x1,
                y0=baseline - half_mm,
                y1=baseline + half_mm,
                fillcolor="rgba(255, 196, 0, 0.28)",
                line=dict(width=0),
                layer="below",
                name="highlighted lead",
            )
        )
    t_mm = d.t_mm
    layers.traces.append(
        dict(
            type="scatter",
            x=t_mm[start:stop] - t_mm[start] + x_off,
            y=baseline + seg * d.gain,
            mode="lines",
            name=lead,
            line=dict(color=d.colour_of(lead), width=1.2),
            legendgroup=lead,
            showlegend=False,
            hovertemplate=f"{lead}<br>t=%{{customdata[0]:.3f}} s<br>%{{customdata[1]:.2f}} {d.units}<extra></extra>",
            customdata=np.column_stack([np.arange(start, stop) / d.fs, seg]),
        )
    )
    layers.annotations.append(
        dict(
            x=x_off + 1,
            y=baseline + 8 * min(d.scale, 1.5),
            text=f"<b>{lead}</b>",
            showarrow=False,
            xanchor="left",
            font=dict(size=11, color=d.colour_of(lead)),
        )
    )


def _add_peaks(d: _PaperDrawing, layers: _Layers, panel: Panel) -> None:
    """Triangles over the R-peaks inside one panel."""
    start, stop, x_off, baseline = panel.start, panel.stop, panel.x0, panel.baseline
    sel = d.peaks[(d.peaks >= start) & (d.peaks < stop)]
    if sel.size == 0:
        return
    i = d.lead_names.index(panel.lead)
    t_mm = d.t_mm
    layers.traces.append(
        dict(
            type="scatter",
            x=t_mm[sel] - t_mm[start] + x_off,
            y=baseline + d.x[i, sel] * d.gain + 3,
            mode="markers",
            name="R-peak",
            marker=dict(symbol="triangle-down", size=7, color="#333"),
            showlegend=False,
            hovertemplate="R-peak %{customdata:.3f} s<extra></extra>",
            customdata=sel / d.fs,
        )
    )


def _add_column_separators(d: _PaperDrawing, layers: _Layers) -> None:
    """The lines between the four columns of a 3x4 print, as on the printed layout."""
    col_len = d.x.shape[1] // 4
    for c in range(1, 4):
        xc = MARGIN_MM + c * col_len / d.fs * MM_PER_S
        layers.shapes.append(
            dict(
                type="line",
                x0=xc,
                x1=xc,
                y0=-(len(LAYOUT_3X4)) * ROW_HEIGHT_MM * d.scale,
                y1=-2,
                line=dict(color="#444", width=1),
                name="column separator",
            )
        )


def _add_calibration(d: _PaperDrawing, layers: _Layers, panels: Sequence[Panel]) -> None:
    """A calibration pulse at the start of every row; the first one says which gain it stands for."""
    unit_label = f"{d.gain:g} mm/mV" if d.units == "mV" else f"{d.gain:g} mm/SD"
    for k, baseline in enumerate(sorted({p.baseline for p in panels}, reverse=True)):
        px_, py_ = _calibration_pulse(1.0, baseline, d.gain)
        layers.traces.append(
            dict(
                type="scatter",
                x=px_,
                y=py_,
                mode="lines",
                line=dict(color=TRACE_COLOUR, width=1.2),
                name="calibration",
                showlegend=False,
                hoverinfo="skip",
            )
        )
        if k == 0:
            layers.annotations.append(
                dict(
                    x=0.5,
                    y=baseline - 2,
                    text=unit_label,
                    showarrow=False,
                    xanchor="left",
                    yanchor="top",
                    font=dict(size=9, color=TRACE_COLOUR),
                    name="calibration label",
                )
            )


def _region_legend(rmap: RegionMap) -> list[dict]:
    """Empty traces whose legend entries name each region's colour and leads ("no region" for aVR's grey)."""
    traces = []
    for region, colour in REGION_COLOURS.items():
        members = (
            rmap.regions.get(region, ())
            if region != "aVR"
            else tuple(lead for lead in LEADS if rmap.region_of(lead) is None)
        )
        if members:
            traces.append(
                dict(
                    type="scatter",
                    x=[None],
                    y=[None],
                    mode="lines",
                    line=dict(color=colour, width=3),
                    name=f"{region if region != 'aVR' else 'no region'}: {', '.join(members)}",
                )
            )
    return traces


def top_left_note(text: str, font: dict) -> dict:
    """An annotation just above a figure's plot area, at its left edge (where the plot toolbar is not)."""
    return dict(
        xref="paper", yref="paper", x=0, y=1.0, yanchor="bottom", xanchor="left", showarrow=False, text=text, font=font
    )


def _paper_layout(
    d: _PaperDrawing, layers: _Layers, panels: Sequence[Panel], height_mm: float, title: str | None, px_per_mm: float
) -> dict:
    """The figure's layout: the paper grid, the shapes and annotations, the scale note and the ``meta``."""
    width_mm = MARGIN_MM + d.x.shape[1] / d.fs * MM_PER_S + 2
    xaxis, yaxis = _paper_axes(width_mm, height_mm)
    unit_note = f"{d.gain:g} mm/mV" if d.units == "mV" else f"{d.gain:g} mm per SD (z-scored signal)"
    # top left, clear of the plot toolbar (top right), in the text size of the page
    scale_note = dict(name="scale note", **top_left_note(f"25 mm/s, {unit_note}", dict(size=14, color="#333")))
    return dict(
        title=dict(text=title, x=0.5, xanchor="center") if title else None,  # the scale note takes the left
        xaxis=xaxis,
        yaxis=yaxis,
        shapes=layers.shapes,
        plot_bgcolor=PAPER_COLOUR,
        paper_bgcolor="white",
        margin=dict(l=10, r=10, t=40, b=70 if d.region_colours else 10),
        height=int(max(320, height_mm * px_per_mm + (110 if d.region_colours else 50))),
        legend=dict(orientation="h", y=-0.02, yanchor="top"),
        meta={
            "mm_per_s": MM_PER_S,
            "mm_per_unit": d.gain,
            "units": d.units,
            "layout": d.layout,
            "panels": [p.as_meta(d.fs) for p in panels],
        },
        annotations=layers.annotations + [scale_note],
    )
