"""Teaching diagrams: the ACL-ECG pipeline and the anatomical lead regions (chest and hexaxial views)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aclecg.leads import REGION_COLOURS, RegionMap, default_region_map
from aclecg.viz.paper import fallback_colour
from aclecg.viz.paper import lead_colour as _region_colour

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
        fig.add_shape(
            type="rect",
            x0=x0,
            x1=x0 + w,
            y0=0,
            y1=1,
            line=dict(color="#555", width=1),
            fillcolor=colours[i % len(colours)],
            name="step",
            layer="below",
        )
        fig.add_annotation(
            x=x0 + w / 2, y=0.68, text=f"<b>{head}</b>", showarrow=False, font=dict(size=13, color="#111")
        )
        fig.add_annotation(x=x0 + w / 2, y=0.28, text=sub, showarrow=False, font=dict(size=12, color="#222"))
        if i < n - 1:
            fig.add_annotation(
                x=x0 + w + gap - 0.02,
                y=0.5,
                ax=x0 + w + 0.02,
                ay=0.5,
                xref="x",
                yref="y",
                axref="x",
                ayref="y",
                showarrow=True,
                arrowhead=3,
                arrowsize=1.2,
                arrowwidth=1.5,
                text="",
            )
    total = n * w + (n - 1) * gap
    pre_end = 4 * (w + gap) + w
    fig.add_annotation(
        x=pre_end / 2,
        y=1.15,
        text="self-supervised pretraining (no labels)",
        showarrow=False,
        font=dict(size=11, color="#1f77b4"),
    )
    fig.add_annotation(
        x=(5 * (w + gap) + total) / 2,
        y=1.15,
        text="evaluation with labels",
        showarrow=False,
        font=dict(size=11, color="#d62728"),
    )
    fig.update_xaxes(visible=False, range=[-0.1, total + 0.1])
    fig.update_yaxes(visible=False, range=[-0.15, 1.3])
    fig.update_layout(height=230, margin=dict(l=5, r=5, t=5, b=5), plot_bgcolor="white", showlegend=False)
    return fig


#: Approximate precordial electrode positions on a schematic chest (x: patient's right -> left, y: up).
PRECORDIAL_POSITIONS: dict[str, tuple[float, float]] = {
    "V1": (-0.12, 0.05),
    "V2": (0.12, 0.05),
    "V3": (0.28, -0.12),
    "V4": (0.45, -0.25),
    "V5": (0.68, -0.25),
    "V6": (0.88, -0.25),
}
#: Hexaxial reference system: angle in degrees of each limb lead's positive pole (0 deg = patient's left,
#: positive angles downwards, as cardiologists draw it).
HEXAXIAL_ANGLES: dict[str, float] = {"I": 0.0, "II": 60.0, "III": 120.0, "aVR": -150.0, "aVL": -30.0, "aVF": 90.0}


def region_diagram(
    region_map: RegionMap | None = None, colour_of: Callable[[str], str] | None = None, legend: bool = True
) -> go.Figure:
    """Two panels: precordial electrodes on a chest sketch and the hexaxial limb-lead axes, coloured by region.

    ``colour_of(lead)`` overrides the region colours (e.g. an attribution's effect); ``legend=False`` drops the
    region legend.
    """
    rmap = region_map or default_region_map()

    def lead_colour(lead: str, _rmap: RegionMap) -> str:
        return colour_of(lead) if colour_of is not None else _region_colour(lead, _rmap)

    fig = make_subplots(rows=1, cols=2, subplot_titles=("precordial leads (chest)", "limb leads (hexaxial)"))
    # chest outline and sternum
    theta = np.linspace(0, 2 * np.pi, 100)
    fig.add_trace(
        go.Scatter(
            x=1.15 * np.cos(theta) + 0.15,
            y=0.8 * np.sin(theta) - 0.1,
            mode="lines",
            line=dict(color="#bbb"),
            hoverinfo="skip",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 0],
            y=[0.55, -0.35],
            mode="lines",
            line=dict(color="#ccc", width=6),
            hoverinfo="skip",
            showlegend=False,
            name="sternum",
        ),
        row=1,
        col=1,
    )
    for lead, (px_, py_) in PRECORDIAL_POSITIONS.items():
        fig.add_trace(
            go.Scatter(
                x=[px_],
                y=[py_],
                mode="markers+text",
                text=[lead],
                textposition="top center",
                marker=dict(size=16, color=lead_colour(lead, rmap), line=dict(color="#333")),
                name=lead,
                showlegend=False,
                hovertemplate=f"{lead}: {rmap.region_of(lead) or 'no region'}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    for lead, angle in HEXAXIAL_ANGLES.items():
        a = np.deg2rad(angle)
        dx, dy = np.cos(a), -np.sin(a)
        colour = lead_colour(lead, rmap)
        fig.add_trace(
            go.Scatter(
                x=[-dx, dx],
                y=[-dy, dy],
                mode="lines",
                line=dict(color=colour, width=1, dash="dot"),
                hoverinfo="skip",
                showlegend=False,
            ),
            row=1,
            col=2,
        )
        fig.add_trace(
            go.Scatter(
                x=[0, dx],
                y=[0, dy],
                mode="lines+markers+text",
                text=["", f"{lead} {angle:+.0f}°"],
                textposition="middle right" if dx >= 0 else "middle left",
                line=dict(color=colour, width=3),
                marker=dict(size=[0, 9], color=colour),
                name=lead,
                showlegend=False,
                hovertemplate=f"{lead}: {rmap.region_of(lead) or 'no region'}<extra></extra>",
            ),
            row=1,
            col=2,
        )
    for region, members in rmap.regions.items() if legend else ():
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker=dict(size=12, color=REGION_COLOURS.get(region, fallback_colour(region))),
                name=f"{region}: {', '.join(members)}",
            )
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_xaxes(range=[-1.1, 1.5], row=1, col=1)
    fig.update_yaxes(scaleanchor="x", scaleratio=1, row=1, col=1)
    fig.update_xaxes(range=[-1.8, 1.8], row=1, col=2)
    fig.update_yaxes(scaleanchor="x2", scaleratio=1, range=[-1.3, 1.3], row=1, col=2)
    fig.update_layout(
        height=380, margin=dict(l=5, r=5, t=40, b=5), plot_bgcolor="white", legend=dict(orientation="h", y=-0.05)
    )
    return fig
