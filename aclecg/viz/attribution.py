"""Figures of an occlusion attribution (:mod:`aclecg.analysis.attribution`): bars per region and lead, and the
lead-region diagram coloured by effect.

Both read the long table of :meth:`aclecg.analysis.attribution.Attribution.table`
(columns ``unit``, ``kind``, ``class``,
``score``, ``drop``); a positive drop means the occluded leads supported the class.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from aclecg.leads import RegionMap, default_region_map
from aclecg.viz.diagrams import region_diagram

#: Diverging scale of the bars and the effect diagram: blue (occlusion raises the score) - white - red (it lowers it).
EFFECT_SCALE = "RdBu_r"
#: Height of the bar chart (pixels); its title starts below the toolbars' band.
BARS_HEIGHT = 370


def _one_class(table: pd.DataFrame, class_name: str) -> pd.DataFrame:
    rows = table[table["class"] == class_name]
    if rows.empty:
        raise ValueError(f"class {class_name!r} is not in the attribution table ({sorted(table['class'].unique())})")
    return rows


def effect_colour(drop: float, limit: float) -> str:
    """The colour of a score drop on :data:`EFFECT_SCALE` (red: the score falls, blue: it rises, white: no change),
    the same in the bars and the region diagram."""
    return str(sample_colorscale(EFFECT_SCALE, [0.5 + 0.5 * max(-1.0, min(1.0, float(drop) / limit))])[0])


def attribution_bars(table: pd.DataFrame, class_name: str, title: str | None = None) -> go.Figure:
    """Two bar charts of one class's score drop: a bar per region and a bar per lead, named on the axis and
    coloured by the sign and size of the drop as in :func:`region_effect_diagram` (red: the score falls)."""
    rows = _one_class(table, class_name)
    regions, leads = rows[rows["kind"] == "region"], rows[rows["kind"] == "lead"]
    score = float(rows["score"].iloc[0])
    # the scale of the region diagram (its regions' largest drop), so a region's bar has its diagram colour
    limit = max([abs(float(v)) for v in regions["drop"] if np.isfinite(v)] + [1e-6])
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.38, 0.62],
        subplot_titles=("occluded region", "occluded lead"),
        shared_yaxes=True,
    )
    for col, part, name in ((1, regions, "region"), (2, leads, "lead")):
        fig.add_trace(
            go.Bar(
                x=part["unit"],
                y=part["drop"],
                marker=dict(color=[effect_colour(d, limit) for d in part["drop"]], line=dict(color="#555", width=1)),
                name=name,
                hovertemplate="%{x}: score drop %{y:+.3f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.update_yaxes(title_text=f"drop of the {class_name} score", row=1, col=1)
    text = title or f"{class_name} score {score:.3f}: its drop when leads are hidden"
    fig.update_layout(
        # the title sits below the band where Streamlit's and plotly's toolbars appear (top right, ~40 px)
        title=dict(
            text=f"{text}<br><sup>red: the score falls · blue: it rises</sup>",
            x=0.01,
            xanchor="left",
            y=1 - 48 / BARS_HEIGHT,
            yanchor="top",
        ),
        showlegend=False,
        height=BARS_HEIGHT,
        margin=dict(l=10, r=10, t=118, b=10),
        plot_bgcolor="white",
        meta={"class": class_name, "score": score},
    )
    return fig


def region_effects(table: pd.DataFrame, class_name: str) -> dict[str, float]:
    """``{region: drop}`` of one class (regions only)."""
    rows = _one_class(table, class_name)
    rows = rows[rows["kind"] == "region"]
    return {str(u): float(d) for u, d in zip(rows["unit"], rows["drop"])}


def region_effect_diagram(
    effects: Mapping[str, float], region_map: RegionMap | None = None, class_name: str = ""
) -> go.Figure:
    """The lead-region diagram with every lead coloured by its region's effect (red: the score falls)."""
    rmap = region_map or default_region_map()
    limit = max([abs(float(v)) for v in effects.values()] + [1e-6])

    def colour(lead: str) -> str:
        region = rmap.region_of(lead)
        if region is None or region not in effects:
            return "#dddddd"
        return effect_colour(effects[region], limit)

    fig = region_diagram(rmap, colour_of=colour, legend=False)
    for note, short in zip(fig.layout.annotations, ("precordial", "limb (hexaxial)")):
        note.text = short  # the panel is half a page column: the full subplot titles would run off its edge
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker=dict(
                colorscale=EFFECT_SCALE,
                cmin=-limit,
                cmax=limit,
                color=[0.0],
                showscale=True,
                colorbar=dict(title=dict(text="score drop"), thickness=12, len=0.8),
            ),
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.update_layout(
        title=dict(
            text=f"{class_name + ' ' if class_name else ''}score drop by region<br><sup>red: the score falls</sup>",
            x=0.01,
            xanchor="left",
            y=1 - 48 / 380,
            yanchor="top",
        ),
        showlegend=False,
        height=380,
        margin=dict(l=5, r=5, t=110, b=5),
    )
    fig.layout.meta = {"effects": {k: float(v) for k, v in effects.items()}}
    return fig


def strongest_region(effects: Mapping[str, float]) -> str | None:
    """The region whose occlusion lowers the score most (``None`` when no region lowers it)."""
    if not effects:
        return None
    region, value = max(effects.items(), key=lambda kv: kv[1])
    return region if np.isfinite(value) and value > 0 else None
