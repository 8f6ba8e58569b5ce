"""The ECG on paper: the clinical 3x4 + rhythm-strip print (or stacked leads) on a millimetre grid.

Convention: the x axis is in millimetres of paper at 25 mm/s and the y axis in millimetres at 10 mm/mV, with a
pink grid of 1 mm minor and 5 mm major squares, so 1 small square is 40 ms x 0.1 mV and 1 large square is
200 ms x 0.5 mV. Leads are coloured by anatomical region (:data:`aclecg.leads.REGION_COLOURS`).
"""

from __future__ import annotations

from collections.abc import Sequence

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


def lead_colour(lead: str, region_map: RegionMap | None = None) -> str:
    """Colour of a lead: its region's colour, or the aVR/"no region" grey."""
    region = (region_map or default_region_map()).region_of(lead)
    if region is None:
        return REGION_COLOURS["aVR"]
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
    Traces are named by lead and coloured by region; the layout's ``meta`` records the scale used.
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
    rmap = region_map or default_region_map()
    marked = {canonical_lead(lead) for lead in highlight}

    def colour_of(lead: str) -> str:
        return lead_colour(lead, rmap) if colours == "region" else TRACE_COLOUR

    gain = float(gain_mm if gain_mm is not None else (MM_PER_MV if units == "mV" else 2.5))
    n_t = x.shape[1]
    seconds = n_t / fs
    t_mm = np.arange(n_t) / fs * MM_PER_S
    peaks = np.asarray(rpeaks if rpeaks is not None else [], dtype=np.int64)
    peaks = peaks[(peaks >= 0) & (peaks < n_t)]
    # Traces, shapes and annotations are collected as plain dicts and validated once, by go.Figure at the end:
    # adding them one by one re-validates every earlier shape and annotation each time.
    traces: list[dict] = []
    shapes: list[dict] = []
    annotations: list[dict] = []
    margin_mm = 10.0  # room for the calibration pulse

    def add_segment(
        lead: str, start: int, stop: int, x_off: float, baseline: float, show_label: bool, half_mm: float = 14.0
    ) -> None:
        i = lead_names.index(lead)
        seg = x[i, start:stop]
        if lead in marked:
            shapes.append(
                dict(
                    type="rect",
                    x0=x_off,
                    x1=x_off + (stop - start) / fs * MM_PER_S,
                    y0=baseline - half_mm,
                    y1=baseline + half_mm,
                    fillcolor="rgba(255, 196, 0, 0.28)",
                    line=dict(width=0),
                    layer="below",
                    name="highlighted lead",
                )
            )
        traces.append(
            dict(
                type="scatter",
                x=t_mm[start:stop] - t_mm[start] + x_off,
                y=baseline + seg * gain,
                mode="lines",
                name=lead,
                line=dict(color=colour_of(lead), width=1.2),
                legendgroup=lead,
                showlegend=False,
                hovertemplate=f"{lead}<br>t=%{{customdata[0]:.3f}} s<br>%{{customdata[1]:.2f}} {units}<extra></extra>",
                customdata=np.column_stack([np.arange(start, stop) / fs, seg]),
            )
        )
        if show_label:
            annotations.append(
                dict(
                    x=x_off + 1,
                    y=baseline + 8,
                    text=f"<b>{lead}</b>",
                    showarrow=False,
                    xanchor="left",
                    font=dict(size=11, color=colour_of(lead)),
                )
            )

    def add_peaks(start: int, stop: int, x_off: float, baseline: float, lead: str) -> None:
        sel = peaks[(peaks >= start) & (peaks < stop)]
        if sel.size == 0:
            return
        i = lead_names.index(lead)
        traces.append(
            dict(
                type="scatter",
                x=t_mm[sel] - t_mm[start] + x_off,
                y=baseline + x[i, sel] * gain + 3,
                mode="markers",
                name="R-peak",
                marker=dict(symbol="triangle-down", size=7, color="#333"),
                showlegend=False,
                hovertemplate="R-peak %{customdata:.3f} s<extra></extra>",
                customdata=sel / fs,
            )
        )

    rows: list[tuple[float, str]] = []  # (baseline, calibration label) per row
    if layout == "3x4":
        n_cols = 4
        col_len = n_t // n_cols
        for r, row_leads in enumerate(LAYOUT_3X4):
            baseline = -(r + 0.6) * ROW_HEIGHT_MM
            rows.append((baseline, ""))
            for c, lead in enumerate(row_leads):
                if lead in lead_names:
                    add_segment(
                        lead, c * col_len, (c + 1) * col_len, margin_mm + c * col_len / fs * MM_PER_S, baseline, True
                    )
        baseline = -(len(LAYOUT_3X4) + 0.6) * ROW_HEIGHT_MM
        rows.append((baseline, ""))
        if rhythm_lead in lead_names:
            add_segment(rhythm_lead, 0, n_t, margin_mm, baseline, True)
            add_peaks(0, n_t, margin_mm, baseline, rhythm_lead)
        height_mm = (len(LAYOUT_3X4) + 1.2) * ROW_HEIGHT_MM
        # column separators as in the printed layout
        for c in range(1, n_cols):
            xc = margin_mm + c * col_len / fs * MM_PER_S
            shapes.append(
                dict(
                    type="line",
                    x0=xc,
                    x1=xc,
                    y0=-(len(LAYOUT_3X4)) * ROW_HEIGHT_MM,
                    y1=-2,
                    line=dict(color="#444", width=1),
                    name="column separator",
                )
            )
    else:
        row_h = 20.0
        for r, lead in enumerate(lead_names):
            baseline = -(r + 0.7) * row_h
            rows.append((baseline, ""))
            add_segment(lead, 0, n_t, margin_mm, baseline, True, half_mm=row_h / 2 - 0.5)
            add_peaks(0, n_t, margin_mm, baseline, lead)
        height_mm = (len(lead_names) + 0.4) * row_h
    for baseline, _ in rows:
        px_, py_ = _calibration_pulse(1.0, baseline, gain)
        traces.append(
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
    width_mm = margin_mm + seconds * MM_PER_S + 2
    xaxis, yaxis = _paper_axes(width_mm, height_mm)
    for region, colour in REGION_COLOURS.items() if colours == "region" else ():  # a legend of region colours
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
    unit_note = f"{gain:g} mm/mV" if units == "mV" else f"{gain:g} mm per SD (z-scored signal)"
    layout_spec = dict(
        title=title,
        xaxis=xaxis,
        yaxis=yaxis,
        shapes=shapes,
        plot_bgcolor=PAPER_COLOUR,
        paper_bgcolor="white",
        margin=dict(l=10, r=10, t=40, b=70 if colours == "region" else 10),
        height=int(max(320, height_mm * px_per_mm + (110 if colours == "region" else 50))),
        legend=dict(orientation="h", y=-0.02, yanchor="top"),
        meta={"mm_per_s": MM_PER_S, "mm_per_unit": gain, "units": units, "layout": layout},
        annotations=annotations
        + [
            dict(
                xref="paper",
                yref="paper",
                x=1,
                y=1.0,
                yanchor="bottom",
                xanchor="right",
                showarrow=False,
                text=f"25 mm/s, {unit_note}",
                font=dict(size=11, color="#555"),
            )
        ],
    )
    return go.Figure(data=traces, layout=layout_spec)
