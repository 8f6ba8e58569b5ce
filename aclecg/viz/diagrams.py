"""Teaching diagrams: the ACL-ECG pipeline and the anatomical lead regions (chest and hexaxial views)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aclecg.leads import RegionMap, default_region_map
from aclecg.viz.paper import lead_colour as _region_colour
from aclecg.viz.paper import region_colour

PIPELINE_STEPS: tuple[tuple[str, str], ...] = (
    ("Unlabelled\n12-lead ECGs", "PTB-XL, Challenge 2021,\nCPSC2018"),
    ("Physio-AUG views", "scale crop · cycle mask\n· shift"),
    ("Shared per-lead\nencoder", "one 1-D ResNet\nfor every lead"),
    ("Region pooling", "septal · anterior ·\nlateral · inferior"),
    ("Region + instance\ncontrastive loss", "same region close,\nother regions apart"),
    ("Frozen encoder", "embedding = the\nlead features joined"),
    ("Linear probe /\nfine-tune", "macro AUROC, AUPRC\nvs label fraction"),
)
#: How many of :data:`PIPELINE_STEPS` are pretraining (the rest is evaluation with labels).
PRETRAINING_STEPS = 5
_STEP_FILLS = ("#e8f1fb", "#fdebd3", "#e6f4e6", "#f3e5f5", "#fde2e2", "#eeeeee", "#fff7cc")


def _svg_lines(text: str, x: float, y: float, size: int, weight: str = "normal") -> str:
    """``text`` (lines split at newlines) centred on ``x``, the block's middle at ``y``, as one SVG <text>."""
    lines = text.split("\n")
    first = y - (len(lines) - 1) * size * 0.6
    spans = "".join(
        f'<tspan x="{x:g}" y="{first + i * size * 1.2:g}">{html.escape(line)}</tspan>' for i, line in enumerate(lines)
    )
    return f'<text font-size="{size}" font-weight="{weight}" text-anchor="middle" fill="#111">{spans}</text>'


def pipeline_diagram(steps: Sequence[tuple[str, str]] = PIPELINE_STEPS, pretraining: int = PRETRAINING_STEPS) -> str:
    """Left-to-right boxes and arrows of the ACL-ECG pipeline, as an SVG document (``st.image`` draws it).

    The first ``pretraining`` steps are bracketed as self-supervised pretraining, the rest as evaluation. An SVG,
    not a plotly figure: the app's Home page then opens without loading plotly's JavaScript.
    """
    w, gap, h, top = 190, 36, 130, 40
    width = len(steps) * w + (len(steps) - 1) * gap
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width + 4} {top + h + 6}" '
        'font-family="sans-serif" role="img" aria-label="ACL-ECG pipeline">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker></defs>',
    ]
    for i, (head, sub) in enumerate(steps):
        x0 = 2 + i * (w + gap)
        parts.append(
            f'<rect class="step" x="{x0}" y="{top}" width="{w}" height="{h}" rx="8" '
            f'fill="{_STEP_FILLS[i % len(_STEP_FILLS)]}" stroke="#555"/>'
        )
        parts.append(_svg_lines(head, x0 + w / 2, top + h * 0.3, 18, "bold"))
        parts.append(_svg_lines(sub, x0 + w / 2, top + h * 0.73, 16))
        if i < len(steps) - 1:
            y = top + h / 2
            parts.append(
                f'<line x1="{x0 + w + 4}" y1="{y}" x2="{x0 + w + gap - 4}" y2="{y}" stroke="#333" '
                'stroke-width="2" marker-end="url(#arrow)"/>'
            )
    for label, first, last, colour in (
        ("self-supervised pretraining (no labels)", 0, pretraining - 1, "#1f4e9c"),
        ("evaluation with labels", pretraining, len(steps) - 1, "#a4161a"),
    ):
        if first > last:
            continue
        x0, x1 = 2 + first * (w + gap), 2 + last * (w + gap) + w
        parts.append(
            f'<path d="M {x0} {top - 6} V {top - 12} H {x1} V {top - 6}" fill="none" stroke="{colour}"/>'
            f'<text x="{(x0 + x1) / 2:g}" y="{top - 18}" font-size="17" text-anchor="middle" '
            f'fill="{colour}">{html.escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


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
#: Half the x range of the hexaxial panel (axes of length 1): the rest holds the leads' labels.
HEXAXIAL_HALF_WIDTH = 2.3


def region_diagram(
    region_map: RegionMap | None = None, colour_of: Callable[[str], str] | None = None, legend: bool = True
) -> go.Figure:
    """Two panels: precordial electrodes on a chest sketch and the hexaxial limb-lead axes, coloured by region.

    ``colour_of(lead)`` overrides the region colours (e.g. an attribution's effect); ``legend=False`` drops the
    region legend.
    """
    rmap = region_map or default_region_map()

    def lead_colour(lead: str) -> str:
        return colour_of(lead) if colour_of is not None else _region_colour(lead, rmap)

    fig = make_subplots(rows=1, cols=2, subplot_titles=("precordial leads (chest)", "limb leads (hexaxial)"))
    _add_chest(fig, rmap, lead_colour)
    _add_hexaxial(fig, rmap, lead_colour)
    for region, members in rmap.regions.items() if legend else ():
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker=dict(size=12, color=region_colour(region)),
                name=f"{region}: {', '.join(members)}",
            )
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_xaxes(range=[-1.1, 1.5], row=1, col=1)
    fig.update_yaxes(scaleanchor="x", scaleratio=1, row=1, col=1)
    # room for the labels beside the axes' ends: "aVR -150°" (left) and "aVL -30°" (right) are 9 characters wide
    fig.update_xaxes(range=[-HEXAXIAL_HALF_WIDTH, HEXAXIAL_HALF_WIDTH], row=1, col=2)
    fig.update_yaxes(scaleanchor="x2", scaleratio=1, range=[-1.3, 1.3], row=1, col=2)
    fig.update_layout(
        height=380, margin=dict(l=5, r=5, t=40, b=5), plot_bgcolor="white", legend=dict(orientation="h", y=-0.05)
    )
    return fig


#: The sternum on the chest sketch: (x0, y0, x1, y1).
STERNUM = (0.0, 0.55, 0.0, -0.35)


def chest_outline(n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The chest sketch's outline (an ellipse around the electrodes): x and y of ``n`` points, closed."""
    theta = np.linspace(0, 2 * np.pi, n)
    return 1.15 * np.cos(theta) + 0.15, 0.8 * np.sin(theta) - 0.1


def hexaxial_end(angle: float) -> tuple[float, float]:
    """The positive pole of a limb lead's axis of length 1 (y up: a positive angle points down)."""
    a = np.deg2rad(angle)
    return float(np.cos(a)), float(-np.sin(a))


def _add_chest(fig: go.Figure, rmap: RegionMap, lead_colour: Callable[[str], str]) -> None:
    """The left panel: a chest outline, the sternum and the six precordial electrodes."""
    cx, cy = chest_outline()
    fig.add_trace(
        go.Scatter(
            x=cx,
            y=cy,
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
            x=[STERNUM[0], STERNUM[2]],
            y=[STERNUM[1], STERNUM[3]],
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
                marker=dict(size=16, color=lead_colour(lead), line=dict(color="#333")),
                name=lead,
                showlegend=False,
                hovertemplate=f"{lead}: {rmap.region_of(lead) or 'no region'}<extra></extra>",
            ),
            row=1,
            col=1,
        )


def _add_hexaxial(fig: go.Figure, rmap: RegionMap, lead_colour: Callable[[str], str]) -> None:
    """The right panel: each limb lead's axis (dotted through the centre) and its positive half, labelled."""
    for lead, angle in HEXAXIAL_ANGLES.items():
        dx, dy = hexaxial_end(angle)
        colour = lead_colour(lead)
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
                cliponaxis=False,  # a label past the axis range is drawn, not cut ("aVR -150°", "aVL -30°")
                line=dict(color=colour, width=3),
                marker=dict(size=[0, 9], color=colour),
                name=lead,
                showlegend=False,
                hovertemplate=f"{lead}: {rmap.region_of(lead) or 'no region'}<extra></extra>",
            ),
            row=1,
            col=2,
        )
