"""Plotly figures for ACL-ECG Studio as pure functions: arrays and DataFrames in, ``go.Figure`` out.

Nothing here imports Streamlit, so every figure can be unit-tested and reused in notebooks or reports.

ECG paper convention (used by :func:`ecg_paper_figure`): the x axis is in millimetres of paper at
25 mm/s and the y axis in millimetres at 10 mm/mV, with a pink grid of 1 mm minor and 5 mm major squares,
so 1 small square is 40 ms x 0.1 mV and 1 large square is 200 ms x 0.5 mV. Leads are coloured by anatomical
region (:data:`aclecg.leads.REGION_COLOURS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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
LAYOUT_3X4: tuple[tuple[str, ...], ...] = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"),
                                           ("III", "aVF", "V3", "V6"))
ROW_HEIGHT_MM = 30.0


def lead_colour(lead: str, region_map: RegionMap | None = None) -> str:
    """Colour of a lead: its region's colour, or the aVR/"no region" grey."""
    region = (region_map or default_region_map()).region_of(lead)
    if region is None:
        return REGION_COLOURS["aVR"]
    return REGION_COLOURS.get(region, _fallback_colour(region))


def _fallback_colour(name: str) -> str:
    palette = ("#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
    return palette[sum(map(ord, name)) % len(palette)]


def _paper_axes(fig: go.Figure, width_mm: float, height_mm: float, row: int | None = None,
                col: int | None = None) -> None:
    """Pink ECG-paper grid on an axis pair in millimetres (gridlines, so thousands of shapes are not needed)."""
    kw = {} if row is None else {"row": row, "col": col}
    common = dict(showgrid=True, gridcolor=GRID_MAJOR_COLOUR, gridwidth=1, zeroline=False, showticklabels=False,
                  ticks="", minor=dict(dtick=GRID_MINOR_MM, showgrid=True, gridcolor=GRID_MINOR_COLOUR,
                                       gridwidth=0.5), fixedrange=False)
    # constrain="domain": keep the 1:1 mm aspect by shrinking the drawing area, never by widening the range
    fig.update_xaxes(range=[0, width_mm], dtick=GRID_MAJOR_MM, tick0=0, constrain="domain", **common, **kw)
    fig.update_yaxes(range=[-height_mm, 0], dtick=GRID_MAJOR_MM, tick0=0, scaleanchor="x", scaleratio=1,
                     constrain="domain", **common, **kw)


def _calibration_pulse(x0: float, baseline: float, mm_per_unit: float) -> tuple[list[float], list[float]]:
    """A 1 mV (or 1 unit), 200 ms square pulse drawn at the start of a row."""
    w = 0.2 * MM_PER_S
    h = mm_per_unit
    return ([x0, x0 + 1, x0 + 1, x0 + 1 + w, x0 + 1 + w, x0 + 2 + w],
            [baseline, baseline, baseline + h, baseline + h, baseline, baseline])


def ecg_paper_figure(signals: np.ndarray, fs: float, leads: Sequence[str] = LEADS, layout: str = "3x4",
                     rpeaks: np.ndarray | None = None, region_map: RegionMap | None = None,
                     units: str = "mV", title: str | None = None, rhythm_lead: str = "II",
                     gain_mm: float | None = None) -> go.Figure:
    """A 12-lead ECG drawn as printed: 25 mm/s, 10 mm/mV, pink mm grid.

    ``gain_mm`` is the vertical scale in mm per unit of ``signals``: 10 (the clinical 10 mm/mV) by default for
    ``units="mV"``, 2.5 mm per standard deviation for z-scored signals (``units="z"``), whose QRS spans many
    units.

    ``signals`` is ``(n_leads, T)`` in ``leads`` order. ``layout`` is ``"3x4"`` (three rows of four 2.5 s
    columns plus a full-length rhythm strip of ``rhythm_lead``) or ``"stacked"`` (one full-length row per lead).
    ``rpeaks`` (sample positions) are marked with triangles on the rhythm strip / every stacked row.
    Traces are named by lead and coloured by region; the layout's ``meta`` records the scale used.
    """
    x = np.asarray(signals, dtype=np.float64)
    lead_names = [canonical_lead(lead) for lead in leads]
    if x.ndim != 2 or x.shape[0] != len(lead_names):
        raise ValueError(f"signals must be (n_leads={len(lead_names)}, T), got shape {x.shape}")
    if layout not in ("3x4", "stacked"):
        raise ValueError(f"layout must be '3x4' or 'stacked', got {layout!r}")
    rmap = region_map or default_region_map()
    gain = float(gain_mm if gain_mm is not None else (MM_PER_MV if units == "mV" else 2.5))
    n_t = x.shape[1]
    seconds = n_t / fs
    t_mm = np.arange(n_t) / fs * MM_PER_S
    peaks = np.asarray(rpeaks if rpeaks is not None else [], dtype=np.int64)
    peaks = peaks[(peaks >= 0) & (peaks < n_t)]
    fig = go.Figure()
    margin_mm = 10.0  # room for the calibration pulse

    def add_segment(lead: str, start: int, stop: int, x_off: float, baseline: float, show_label: bool) -> None:
        i = lead_names.index(lead)
        seg = x[i, start:stop]
        fig.add_trace(go.Scatter(
            x=t_mm[start:stop] - t_mm[start] + x_off, y=baseline + seg * gain, mode="lines", name=lead,
            line=dict(color=lead_colour(lead, rmap), width=1.2), legendgroup=lead, showlegend=False,
            hovertemplate=f"{lead}<br>t=%{{customdata:.3f}} s<br>%{{text}}<extra></extra>",
            customdata=np.arange(start, stop) / fs, text=[f"{v:.2f} {units}" for v in seg]))
        if show_label:
            fig.add_annotation(x=x_off + 1, y=baseline + 8, text=f"<b>{lead}</b>", showarrow=False,
                               xanchor="left", font=dict(size=11, color=lead_colour(lead, rmap)))

    def add_peaks(start: int, stop: int, x_off: float, baseline: float, lead: str) -> None:
        sel = peaks[(peaks >= start) & (peaks < stop)]
        if sel.size == 0:
            return
        i = lead_names.index(lead)
        fig.add_trace(go.Scatter(x=t_mm[sel] - t_mm[start] + x_off, y=baseline + x[i, sel] * gain + 3,
                                 mode="markers", name="R-peak", marker=dict(symbol="triangle-down", size=7,
                                                                            color="#333"),
                                 showlegend=False, hovertemplate="R-peak %{customdata:.3f} s<extra></extra>",
                                 customdata=sel / fs))

    rows: list[tuple[float, str]] = []  # (baseline, calibration label) per row
    if layout == "3x4":
        n_cols = 4
        col_len = n_t // n_cols
        for r, row_leads in enumerate(LAYOUT_3X4):
            baseline = -(r + 0.6) * ROW_HEIGHT_MM
            rows.append((baseline, ""))
            for c, lead in enumerate(row_leads):
                if lead in lead_names:
                    add_segment(lead, c * col_len, (c + 1) * col_len, margin_mm + c * col_len / fs * MM_PER_S,
                                baseline, True)
        baseline = -(len(LAYOUT_3X4) + 0.6) * ROW_HEIGHT_MM
        rows.append((baseline, ""))
        if rhythm_lead in lead_names:
            add_segment(rhythm_lead, 0, n_t, margin_mm, baseline, True)
            add_peaks(0, n_t, margin_mm, baseline, rhythm_lead)
        height_mm = (len(LAYOUT_3X4) + 1.2) * ROW_HEIGHT_MM
        # column separators as in the printed layout
        for c in range(1, n_cols):
            xc = margin_mm + c * col_len / fs * MM_PER_S
            fig.add_shape(type="line", x0=xc, x1=xc, y0=-(len(LAYOUT_3X4)) * ROW_HEIGHT_MM, y1=-2,
                          line=dict(color="#444", width=1), name="column separator")
    else:
        row_h = 20.0
        for r, lead in enumerate(lead_names):
            baseline = -(r + 0.7) * row_h
            rows.append((baseline, ""))
            add_segment(lead, 0, n_t, margin_mm, baseline, True)
            add_peaks(0, n_t, margin_mm, baseline, lead)
        height_mm = (len(lead_names) + 0.4) * row_h
    for baseline, _ in rows:
        px_, py_ = _calibration_pulse(1.0, baseline, gain)
        fig.add_trace(go.Scatter(x=px_, y=py_, mode="lines", line=dict(color=TRACE_COLOUR, width=1.2),
                                 name="calibration", showlegend=False, hoverinfo="skip"))
    width_mm = margin_mm + seconds * MM_PER_S + 2
    _paper_axes(fig, width_mm, height_mm)
    for region, colour in REGION_COLOURS.items():  # a legend of region colours
        members = rmap.regions.get(region, ()) if region != "aVR" else tuple(
            lead for lead in LEADS if rmap.region_of(lead) is None)
        if members:
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=colour, width=3),
                                     name=f"{region if region != 'aVR' else 'no region'}: {', '.join(members)}"))
    unit_note = f"{gain:g} mm/mV" if units == "mV" else f"{gain:g} mm per SD (z-scored signal)"
    fig.update_layout(
        title=title, plot_bgcolor=PAPER_COLOUR, paper_bgcolor="white", margin=dict(l=10, r=10, t=40, b=10),
        height=int(max(320, height_mm * 4.2)), legend=dict(orientation="h", y=-0.02, yanchor="top"),
        meta={"mm_per_s": MM_PER_S, "mm_per_unit": gain, "units": units, "layout": layout},
        annotations=list(fig.layout.annotations) + [dict(
            xref="paper", yref="paper", x=1, y=1.0, yanchor="bottom", xanchor="right", showarrow=False,
            text=f"25 mm/s, {unit_note}", font=dict(size=11, color="#555"))])
    return fig


# ----------------------------------------------------------------------------------------------------------------
# augmentations
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class ViewMarks:
    """What an augmentation did to one view, in samples of the *original* record (for drawing)."""

    crop: tuple[int, int] | None = None  # window of the original that the view was resampled from
    masked: list[tuple[int, int]] = field(default_factory=list)  # masked spans in the view's own time axis
    masked_leads: list[str] | None = None  # None: all leads
    shift: int = 0  # samples, positive = later
    timeout: tuple[int, int] | None = None  # time-out span (baseline pipeline) in the view's time axis


def marks_from_info(info: Mapping, length: int, leads: Sequence[str] = LEADS) -> ViewMarks:
    """Read one sample's marks (batch index 0) from ``aclecg.augment``'s ``forward_with_info`` dict.

    Steps are read in pipeline order; spans (masked cycles, time-out) are expressed in the time axis of the
    final view, so a temporal shift after a mask moves the shaded spans with it (``length`` = samples).
    """
    marks = ViewMarks()
    for key, step in info.items():
        name = key.split(":", 1)[-1]
        applied = bool(np.asarray(_np(step.get("applied", True))).reshape(-1)[0])
        if not applied:
            continue
        if name in ("random_scale_crop", "random_resized_crop"):
            marks.crop = (int(_np(step["start"])[0]), int(_np(step["end"])[0]))
        elif name == "cardiac_cycle_mask":
            spans = _np(step["cycles"])[0]
            marks.masked = [(int(s), int(e)) for s, e in spans if s >= 0 and e > s]
            lead_mask = _np(step.get("lead_mask"))
            if lead_mask is not None and not lead_mask[0].all():
                marks.masked_leads = [lead for lead, m in zip(leads, lead_mask[0]) if m]
        elif name == "temporal_shift":
            marks.shift = int(_np(step["shift"])[0])
            # spans drawn on the final view move with the shift (circular: a span may wrap into two)
            marks.masked = _shift_spans(marks.masked, marks.shift, length)
            if marks.timeout:
                moved = _shift_spans([marks.timeout], marks.shift, length)
                marks.timeout = moved[0] if moved else None
        elif name == "time_out":
            s, e = (int(_np(step[k])[0]) for k in ("start", "end")) if "start" in step else (0, 0)
            if e > s:
                marks.timeout = (s, e)
    return marks


def _shift_spans(spans: Sequence[tuple[int, int]], shift: int, length: int) -> list[tuple[int, int]]:
    """Move ``[start, end)`` spans by ``shift`` samples circularly, splitting a span that wraps around."""
    out: list[tuple[int, int]] = []
    for s, e in spans:
        s2, e2 = s + shift, e + shift
        if s2 >= length or e2 <= 0:
            s2, e2 = s2 % length, (e2 - 1) % length + 1
        if s2 < 0:
            out += [(s2 + length, length), (0, e2)]
        elif e2 > length:
            out += [(s2, length), (0, e2 - length)]
        else:
            out.append((s2, e2))
    return [(a, b) for a, b in out if b > a]


def _np(value):
    if value is None:
        return None
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def augmentation_figure(original: np.ndarray, views: Sequence[tuple[str, np.ndarray, ViewMarks]], fs: float,
                        leads: Sequence[str] = LEADS, show_leads: Sequence[str] = ("II", "V2"),
                        region_map: RegionMap | None = None, rpeaks: np.ndarray | None = None) -> go.Figure:
    """Original record above its augmented views (one subplot each), for the leads in ``show_leads``.

    On each view, masked cardiac cycles are shaded (one rectangle per span, shape name ``"masked cycle"``),
    a time-out span is shaded (``"time-out"``); on the original, each view's crop window is outlined
    (``"crop window"``) and the shift is written in the view's title.
    """
    rmap = region_map or default_region_map()
    lead_names = [canonical_lead(lead) for lead in leads]
    show = [canonical_lead(lead) for lead in show_leads] or ["II"]
    x0 = np.asarray(original, dtype=np.float64)
    titles = ["original"] + [
        f"{name}" + (f" — shift {m.shift / fs:+.2f} s" if m.shift else "")
        + (f" — crop {m.crop[0] / fs:.2f}–{m.crop[1] / fs:.2f} s" if m.crop else "") for name, _, m in views]
    fig = make_subplots(rows=1 + len(views), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=titles)
    t = np.arange(x0.shape[1]) / fs
    offset = 4.0

    def draw(row: int, sig: np.ndarray, legend: bool) -> None:
        for k, lead in enumerate(show):
            i = lead_names.index(lead)
            fig.add_trace(go.Scatter(x=t, y=sig[i] - k * offset, mode="lines", name=lead, legendgroup=lead,
                                     showlegend=legend, line=dict(color=lead_colour(lead, rmap), width=1.1)),
                          row=row, col=1)

    draw(1, x0, True)
    if rpeaks is not None:
        peaks = np.asarray(rpeaks)
        peaks = peaks[(peaks >= 0) & (peaks < x0.shape[1])]
        i = lead_names.index(show[0])
        fig.add_trace(go.Scatter(x=t[peaks], y=x0[i, peaks] + 0.6, mode="markers", name="R-peak",
                                 marker=dict(symbol="triangle-down", size=7, color="#333")), row=1, col=1)
    palette = ("#ff7f0e", "#17becf", "#bcbd22", "#e377c2")
    for v, (name, sig, marks) in enumerate(views, start=2):
        draw(v, np.asarray(sig, dtype=np.float64), False)
        colour = palette[(v - 2) % len(palette)]
        for s, e in marks.masked:
            fig.add_vrect(x0=s / fs, x1=e / fs, fillcolor="rgba(120,120,120,0.28)", line_width=0,
                          name="masked cycle", row=v, col=1)
        if marks.timeout:
            fig.add_vrect(x0=marks.timeout[0] / fs, x1=marks.timeout[1] / fs, fillcolor="rgba(200,60,60,0.18)",
                          line_width=0, name="time-out", row=v, col=1)
        if marks.crop:
            fig.add_vrect(x0=marks.crop[0] / fs, x1=marks.crop[1] / fs, fillcolor="rgba(0,0,0,0)",
                          line=dict(color=colour, width=2, dash="dash"), name="crop window", row=1, col=1)
            fig.add_annotation(x=marks.crop[0] / fs, y=1, yref="y domain", xref="x", text=f"crop: {name}",
                               showarrow=False, xanchor="left", yanchor="bottom", font=dict(color=colour, size=10),
                               row=1, col=1)
    fig.update_xaxes(title_text="time (s)", row=1 + len(views), col=1)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(height=220 * (1 + len(views)), margin=dict(l=10, r=10, t=40, b=30),
                      legend=dict(orientation="h", y=1.04, yanchor="bottom"))
    return fig


def count_shapes(fig: go.Figure, name: str) -> int:
    """Number of layout shapes called ``name`` (for tests and summaries)."""
    return sum(1 for shape in fig.layout.shapes if shape.name == name)


# ----------------------------------------------------------------------------------------------------------------
# pipeline and region diagrams
# ----------------------------------------------------------------------------------------------------------------

PIPELINE_STEPS: tuple[tuple[str, str], ...] = (
    ("Unlabelled<br>12-lead ECGs", "PTB-XL, Challenge 2021,<br>CPSC2018"),
    ("Physio-AUG views", "scale crop · cycle mask<br>· shift"),
    ("Shared per-lead<br>encoder", "one 1-D ResNet<br>for every lead"),
    ("Region pooling", "septal · anterior ·<br>lateral · inferior"),
    ("Region + instance<br>contrastive loss", "intra-region consistency,<br>inter-region discrimination"),
    ("Frozen encoder", "embedding =<br>concatenated lead features"),
    ("Linear probe /<br>fine-tune", "macro AUROC, AUPRC<br>vs label fraction"),
)


def pipeline_diagram(steps: Sequence[tuple[str, str]] = PIPELINE_STEPS) -> go.Figure:
    """Left-to-right boxes and arrows of the ACL-ECG pipeline (pretraining above, evaluation after)."""
    fig = go.Figure()
    n = len(steps)
    colours = ["#e8f1fb", "#fdebd3", "#e6f4e6", "#f3e5f5", "#fde2e2", "#eeeeee", "#fff7cc"]
    w, gap = 1.0, 0.35
    for i, (head, sub) in enumerate(steps):
        x0 = i * (w + gap)
        fig.add_shape(type="rect", x0=x0, x1=x0 + w, y0=0, y1=1, line=dict(color="#555", width=1),
                      fillcolor=colours[i % len(colours)], name="step", layer="below")
        fig.add_annotation(x=x0 + w / 2, y=0.68, text=f"<b>{head}</b>", showarrow=False, font=dict(size=10))
        fig.add_annotation(x=x0 + w / 2, y=0.28, text=sub, showarrow=False, font=dict(size=9, color="#444"))
        if i < n - 1:
            fig.add_annotation(x=x0 + w + gap - 0.02, y=0.5, ax=x0 + w + 0.02, ay=0.5, xref="x", yref="y",
                               axref="x", ayref="y", showarrow=True, arrowhead=3, arrowsize=1.2, arrowwidth=1.5,
                               text="")
    total = n * w + (n - 1) * gap
    pre_end = 4 * (w + gap) + w
    fig.add_annotation(x=pre_end / 2, y=1.15, text="self-supervised pretraining (no labels)", showarrow=False,
                       font=dict(size=11, color="#1f77b4"))
    fig.add_annotation(x=(5 * (w + gap) + total) / 2, y=1.15, text="evaluation with labels", showarrow=False,
                       font=dict(size=11, color="#d62728"))
    fig.update_xaxes(visible=False, range=[-0.1, total + 0.1])
    fig.update_yaxes(visible=False, range=[-0.15, 1.3])
    fig.update_layout(height=190, margin=dict(l=5, r=5, t=5, b=5), plot_bgcolor="white", showlegend=False)
    return fig


#: Approximate precordial electrode positions on a schematic chest (x: patient's right -> left, y: up).
PRECORDIAL_POSITIONS: dict[str, tuple[float, float]] = {
    "V1": (-0.12, 0.05), "V2": (0.12, 0.05), "V3": (0.28, -0.12), "V4": (0.45, -0.25), "V5": (0.68, -0.25),
    "V6": (0.88, -0.25),
}
#: Hexaxial reference system: angle in degrees of each limb lead's positive pole (0 deg = patient's left,
#: positive angles downwards, as cardiologists draw it).
HEXAXIAL_ANGLES: dict[str, float] = {"I": 0.0, "II": 60.0, "III": 120.0, "aVR": -150.0, "aVL": -30.0,
                                     "aVF": 90.0}


def region_diagram(region_map: RegionMap | None = None) -> go.Figure:
    """Two panels: precordial electrodes on a chest sketch and the hexaxial limb-lead axes, coloured by region."""
    rmap = region_map or default_region_map()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("precordial leads (chest)", "limb leads (hexaxial)"))
    # chest outline and sternum
    theta = np.linspace(0, 2 * np.pi, 100)
    fig.add_trace(go.Scatter(x=1.15 * np.cos(theta) + 0.15, y=0.8 * np.sin(theta) - 0.1, mode="lines",
                             line=dict(color="#bbb"), hoverinfo="skip", showlegend=False), row=1, col=1)
    fig.add_trace(go.Scatter(x=[0, 0], y=[0.55, -0.35], mode="lines", line=dict(color="#ccc", width=6),
                             hoverinfo="skip", showlegend=False, name="sternum"), row=1, col=1)
    for lead, (px_, py_) in PRECORDIAL_POSITIONS.items():
        fig.add_trace(go.Scatter(x=[px_], y=[py_], mode="markers+text", text=[lead], textposition="top center",
                                 marker=dict(size=16, color=lead_colour(lead, rmap), line=dict(color="#333")),
                                 name=lead, showlegend=False,
                                 hovertemplate=f"{lead}: {rmap.region_of(lead) or 'no region'}<extra></extra>"),
                      row=1, col=1)
    for lead, angle in HEXAXIAL_ANGLES.items():
        a = np.deg2rad(angle)
        dx, dy = np.cos(a), -np.sin(a)
        colour = lead_colour(lead, rmap)
        fig.add_trace(go.Scatter(x=[-dx, dx], y=[-dy, dy], mode="lines", line=dict(color=colour, width=1, dash="dot"),
                                 hoverinfo="skip", showlegend=False), row=1, col=2)
        fig.add_trace(go.Scatter(x=[0, dx], y=[0, dy], mode="lines+markers+text", text=["", f"{lead} {angle:+.0f}°"],
                                 textposition="middle right" if dx >= 0 else "middle left",
                                 line=dict(color=colour, width=3), marker=dict(size=[0, 9], color=colour),
                                 name=lead, showlegend=False,
                                 hovertemplate=f"{lead}: {rmap.region_of(lead) or 'no region'}<extra></extra>"),
                      row=1, col=2)
    for region, members in rmap.regions.items():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers",
                                 marker=dict(size=12, color=REGION_COLOURS.get(region, _fallback_colour(region))),
                                 name=f"{region}: {', '.join(members)}"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_xaxes(range=[-1.1, 1.5], row=1, col=1)
    fig.update_yaxes(scaleanchor="x", scaleratio=1, row=1, col=1)
    fig.update_xaxes(range=[-1.8, 1.8], row=1, col=2)
    fig.update_yaxes(scaleanchor="x2", scaleratio=1, range=[-1.3, 1.3], row=1, col=2)
    fig.update_layout(height=380, margin=dict(l=5, r=5, t=40, b=5), plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.05))
    return fig


def cosine_similarity_matrix(features: np.ndarray) -> np.ndarray:
    """Mean over records of the cosine similarity between every pair of units: ``(N, U, D) -> (U, U)``."""
    f = np.asarray(features, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-12)
    return np.einsum("nud,nvd->uv", f, f) / f.shape[0]


def region_similarity(lead_features: np.ndarray, leads: Sequence[str], region_map: RegionMap,
                      centre: bool = False) -> tuple[np.ndarray, list[str], dict[str, float]]:
    """Region embeddings (mean of their leads' features) and their mean cosine similarity.

    With ``centre`` each lead's features first have their mean over records removed (post-ReLU features are
    all positive, which pushes raw cosines towards 1 and hides the structure).

    Returns ``(sim (R, R), region names, summary)`` where ``summary`` has ``within`` (mean cosine of lead
    pairs inside the same region) and ``across`` (lead pairs in different regions).
    """
    idx = region_map.indices(leads)
    names = list(idx)
    lead_features = np.asarray(lead_features, dtype=np.float64)
    if centre:
        lead_features = lead_features - lead_features.mean(axis=0, keepdims=True)
    region_feats = np.stack([np.asarray(lead_features)[:, members].mean(1) for members in idx.values()], axis=1)
    sim = cosine_similarity_matrix(region_feats)
    lead_sim = cosine_similarity_matrix(lead_features)
    owner = np.full(len(leads), -1)
    for r, members in enumerate(idx.values()):
        owner[members] = r
    same = (owner[:, None] == owner[None, :]) & (owner[:, None] >= 0) & ~np.eye(len(leads), dtype=bool)
    diff = (owner[:, None] != owner[None, :]) & (owner[:, None] >= 0) & (owner[None, :] >= 0)
    summary = {"within": float(lead_sim[same].mean()) if same.any() else float("nan"),
               "across": float(lead_sim[diff].mean()) if diff.any() else float("nan")}
    return sim, names, summary


def similarity_heatmap(sim: np.ndarray, names: Sequence[str], title: str = "") -> go.Figure:
    """Annotated heatmap of a similarity matrix (cosine, in [-1, 1])."""
    fig = go.Figure(go.Heatmap(z=sim, x=list(names), y=list(names), zmin=-1, zmax=1, colorscale="RdBu_r",
                               text=np.round(sim, 2), texttemplate="%{text}", hovertemplate="%{y} · %{x}: %{z:.3f}"
                               "<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=title, height=380, margin=dict(l=10, r=10, t=40, b=10))
    return fig


# ----------------------------------------------------------------------------------------------------------------
# embeddings, training curves, sweeps
# ----------------------------------------------------------------------------------------------------------------

def embedding_scatter(coords: np.ndarray, table: pd.DataFrame, colour: str, hover: Iterable[str] = (),
                      highlight: np.ndarray | None = None, highlight_name: str = "uploaded",
                      title: str = "") -> go.Figure:
    """2-D map of embeddings, one trace per value of ``table[colour]`` (numeric columns: one continuous trace).

    Each point's ``customdata[0]`` is its row position in ``table`` (for selection events); hover shows
    the ``hover`` columns. ``highlight`` (m, 2) adds star markers (e.g. an uploaded record).
    """
    xy = np.asarray(coords)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] != len(table):
        raise ValueError(f"coords must be (len(table)={len(table)}, 2), got {xy.shape}")
    hover = [h for h in hover if h in table.columns]
    custom = np.column_stack([np.arange(len(table))] + [table[h].astype(str).to_numpy() for h in hover]) \
        if len(table) else np.zeros((0, 1 + len(hover)))
    template = "<br>".join(f"{h}: %{{customdata[{i + 1}]}}" for i, h in enumerate(hover)) + "<extra></extra>"
    fig = go.Figure()
    values = table[colour] if colour in table.columns else pd.Series(["all"] * len(table))
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > 12:
        fig.add_trace(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers", customdata=custom,
                                   hovertemplate=template, name=colour,
                                   marker=dict(size=6, color=values, colorscale="Viridis", showscale=True,
                                               colorbar=dict(title=colour))))
    else:
        values = values.fillna("(none)").astype(str).replace("", "(none)")
        for value in sorted(values.unique(), key=lambda v: (-int((values == v).sum()), v)):
            sel = (values == value).to_numpy()
            fig.add_trace(go.Scattergl(x=xy[sel, 0], y=xy[sel, 1], mode="markers", name=str(value),
                                       customdata=custom[sel], hovertemplate=template, marker=dict(size=6)))
    if highlight is not None and len(highlight):
        hl = np.atleast_2d(highlight)
        fig.add_trace(go.Scatter(x=hl[:, 0], y=hl[:, 1], mode="markers", name=highlight_name,
                                 marker=dict(symbol="star", size=18, color="black", line=dict(color="gold", width=2))))
    fig.update_layout(title=title, height=520, margin=dict(l=10, r=10, t=40, b=10), dragmode="lasso",
                      legend=dict(itemsizing="constant"), xaxis=dict(title="UMAP 1"), yaxis=dict(title="UMAP 2"))
    return fig


def training_curves(metrics: pd.DataFrame) -> go.Figure:
    """Loss terms, learning rate and throughput against step (three stacked panels)."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07,
                        subplot_titles=("loss terms", "learning rate", "samples / s"))
    if metrics is None or metrics.empty or "step" not in metrics.columns:
        fig.add_annotation(text="no metrics yet", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
        fig.update_layout(height=520)
        return fig
    skip = {"step", "epoch", "epoch_float", "lr", "samples_per_s", "time", "wall", "timestamp", "phase", "world_size",
            "memory_mb", "rss_mb", "peak_gpu_memory_mb", "skipped_steps"}  # bookkeeping, not loss terms
    terms = [c for c in metrics.columns if c not in skip and pd.api.types.is_numeric_dtype(metrics[c])]
    terms = sorted(terms, key=lambda c: (c != "loss", c))
    for term in terms:
        fig.add_trace(go.Scatter(x=metrics["step"], y=metrics[term], mode="lines", name=term,
                                 line=dict(width=2.5 if term == "loss" else 1.3)), row=1, col=1)
    if "lr" in metrics.columns:
        fig.add_trace(go.Scatter(x=metrics["step"], y=metrics["lr"], mode="lines", name="lr",
                                 line=dict(color="#555")), row=2, col=1)
    if "samples_per_s" in metrics.columns:
        fig.add_trace(go.Scatter(x=metrics["step"], y=metrics["samples_per_s"], mode="lines", name="samples/s",
                                 line=dict(color="#2ca02c")), row=3, col=1)
    fig.update_xaxes(title_text="step", row=3, col=1)
    fig.update_yaxes(tickformat=".1e", row=2, col=1)
    fig.update_layout(height=620, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def sweep_figure(summary: pd.DataFrame, metric: str = "auroc", method_col: str = "method",
                 fraction_col: str = "label_fraction", mean_col: str = "mean", low_col: str = "ci_low",
                 high_col: str = "ci_high", metric_col: str | None = "metric", title: str | None = None
                 ) -> go.Figure:
    """Metric vs label fraction (log x) with a CI band per method.

    ``summary`` is long format: one row per (method, label fraction[, metric]) with a mean and CI bounds.
    When ``metric_col`` is present, rows with ``metric_col == metric`` are used; otherwise ``mean_col`` etc.
    already refer to ``metric``.
    """
    df = summary
    if metric_col and metric_col in df.columns:
        df = df[df[metric_col].astype(str).str.lower() == metric.lower()]
    fig = go.Figure()
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
               "#bcbd22", "#7f7f7f")
    for k, (method, part) in enumerate(sorted(df.groupby(method_col), key=lambda kv: str(kv[0]))):
        part = part.sort_values(fraction_col)
        colour = palette[k % len(palette)]
        dash = "dot" if str(method).lower() in ("supervised", "random", "random_init", "random-init") else "solid"
        error_y = None
        if low_col in part.columns and high_col in part.columns and len(part) == 1:
            # one fraction: an error bar, not a band (a one-point band draws as loose dots)
            error_y = dict(type="data", symmetric=False, color=colour,
                           array=(part[high_col] - part[mean_col]).to_numpy(),
                           arrayminus=(part[mean_col] - part[low_col]).to_numpy())
        elif low_col in part.columns and high_col in part.columns:
            xs = np.concatenate([part[fraction_col].to_numpy(), part[fraction_col].to_numpy()[::-1]])
            ys = np.concatenate([part[high_col].to_numpy(), part[low_col].to_numpy()[::-1]])
            fig.add_trace(go.Scatter(x=xs, y=ys, fill="toself", fillcolor=_with_alpha(colour, 0.15),
                                     line=dict(width=0), hoverinfo="skip", showlegend=False, legendgroup=str(method),
                                     name=f"{method} CI"))
        fig.add_trace(go.Scatter(x=part[fraction_col], y=part[mean_col], mode="lines+markers", name=str(method),
                                 legendgroup=str(method), line=dict(color=colour, dash=dash), error_y=error_y,
                                 hovertemplate=f"{method}<br>fraction %{{x}}<br>{metric} %{{y:.4f}}<extra></extra>"))
    fig.update_xaxes(type="log", title_text="label fraction")
    label = metric.lower().removeprefix("macro_").upper()
    fig.update_yaxes(title_text=f"macro {label}")
    fig.update_layout(title=title or f"macro {label} vs label fraction", height=430,
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def _with_alpha(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
