"""The Representations map as a Vega-Lite chart (altair): a point picked by a click, several by a box.

A new browser draws a Vega-Lite chart about 0.7 s sooner than its first plotly chart (docs/app.md, "page
timings": the floor), so the page opens on this map; the plotly map (:func:`aclecg.viz.embedding_scatter`: zoom,
lasso) is one switch away. Both draw the same points in the same colours (one per category, the largest first,
:func:`aclecg.viz.charts.category_levels`; a numeric column of more than 12 values on the viridis scale), hover the same
columns, mark an uploaded record with a star and a found one with a diamond.

Selections: ``pick`` (a click on a point; shift-click adds one) and ``box`` (a drag draws a rectangle).
:func:`map_selection` turns the event Streamlit returns into the picked points' positions in the map's table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from aclecg.viz.charts import SVG_MAX_POINTS, category_levels, column_title, is_continuous

__all__ = ["MAP_SELECTIONS", "embedding_map", "map_selection"]

#: The map's selection parameters (``st.altair_chart(..., on_select="rerun", selection_mode=MAP_SELECTIONS)``).
MAP_SELECTIONS = ("pick", "box")
#: An SVG path of a five-pointed star in Vega's unit square (the upload's mark, as plotly's "star").
_STAR = "M0,-1L0.24,-0.33L0.95,-0.31L0.38,0.12L0.59,0.81L0,0.4L-0.59,0.81L-0.38,0.12L-0.95,-0.31L-0.24,-0.33Z"


def _points(xy: np.ndarray, table: pd.DataFrame, hover: list[str], colour: Any) -> pd.DataFrame:
    """The chart's data: position in ``table``, coordinates, colour value and hover columns (``h0``, ``h1``, ...:
    field names without the dots and brackets Vega reads as paths)."""
    data = {"pos": np.arange(len(table)), "x": xy[:, 0], "y": xy[:, 1], "c": np.asarray(colour)}
    data |= {f"h{k}": table[h].astype(str).to_numpy() for k, h in enumerate(hover)}
    return pd.DataFrame(data)


def _marker(xy: np.ndarray | None, name: str, shape: str, fill: str, stroke: str, size: int) -> Any:
    """A layer of a few marked points (an upload, a found record), named in its tooltip."""
    import altair as alt

    if xy is None or not len(xy):
        return None
    hl = np.atleast_2d(np.asarray(xy, dtype=np.float64))
    data = pd.DataFrame({"x": hl[:, 0], "y": hl[:, 1], "what": [name] * len(hl)})
    mark = alt.Chart(data).mark_point(shape=shape, filled=True, fill=fill, stroke=stroke, strokeWidth=2, size=size)
    return mark.encode(x="x:Q", y="y:Q", tooltip=[alt.Tooltip("what:N", title="marked")])


def embedding_map(
    coords: np.ndarray,
    table: pd.DataFrame,
    colour: str,
    hover: Iterable[str] = (),
    title: str = "",
    marks: Mapping[str, tuple[np.ndarray | None, str]] | None = None,
    legend: str = "",
) -> Any:
    """The 2-D map of ``coords`` ``(len(table), 2)`` coloured by ``table[colour]``, as an altair chart.

    ``hover``: the columns a point's tooltip shows. ``marks``: ``{name: (xy, kind)}`` extra points drawn on top,
    ``kind`` ``"upload"`` (a black star) or ``"found"`` (a crimson diamond). ``legend``: the colour legend's title
    (default: the column's). Small maps draw as SVG (a browser
    test can click a point); above :data:`aclecg.viz.charts.SVG_MAX_POINTS` points, on a canvas.
    """
    import altair as alt

    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] != len(table):
        raise ValueError(f"coords must be (len(table)={len(table)}, 2), got {xy.shape}")
    shown = [h for h in hover if h in table.columns]
    values = table[colour] if colour in table.columns else pd.Series(["all"] * len(table))
    legend_title = legend or column_title(colour)
    groups: Any = values
    if is_continuous(values):
        colour_enc = alt.Color("c:Q", scale=alt.Scale(scheme="viridis"), title=legend_title)
    else:
        groups, order, colours = category_levels(values)
        colour_enc = alt.Color("c:N", scale=alt.Scale(domain=order, range=colours), title=legend_title)
    pick = alt.selection_point(name="pick", fields=["pos"], on="click", clear="dblclick")
    box = alt.selection_interval(name="box", encodings=["x", "y"])
    tooltip = [alt.Tooltip(f"h{k}:N", title=column_title(h)) for k, h in enumerate(shown)]
    points = (
        alt.Chart(_points(xy, table, shown, groups))
        .mark_circle(size=36)
        .encode(
            x=alt.X("x:Q", title="UMAP 1", scale=alt.Scale(zero=False)),
            y=alt.Y("y:Q", title="UMAP 2", scale=alt.Scale(zero=False)),
            color=colour_enc,
            opacity=alt.condition(pick & box, alt.value(0.85), alt.value(0.2)),
            tooltip=tooltip,
        )
        .add_params(pick, box)
    )
    styles = {"upload": (_STAR, "black", "gold", 420), "found": ("diamond", "crimson", "white", 260)}
    layers = [points] + [
        layer for name, (mxy, kind) in (marks or {}).items() if (layer := _marker(mxy, name, *styles[kind])) is not None
    ]
    renderer = "svg" if len(table) <= SVG_MAX_POINTS else "canvas"
    return (
        alt.layer(*layers)
        .properties(title=title, height=520, usermeta={"embedOptions": {"renderer": renderer}})
        .configure_legend(orient="right")
    )


def map_selection(event: Any, coords: np.ndarray) -> list[int]:
    """Positions in the map (rows of ``coords``) of the points a selection ``event`` picked: the clicked points,
    then those inside the box, in order and without repeats. Anything malformed picks nothing."""
    try:
        selection = event["selection"]
    except (KeyError, TypeError, IndexError):
        return []
    if not isinstance(selection, Mapping):
        return []
    xy = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    out: list[int] = []
    picked = selection.get("pick")
    for p in picked if isinstance(picked, list) else []:
        try:
            out.append(int(float(p["pos"])))
        except (KeyError, TypeError, ValueError):
            continue
    try:
        box = selection["box"]
        (x0, x1), (y0, y1) = sorted(map(float, box["x"])), sorted(map(float, box["y"]))
    except (KeyError, TypeError, ValueError, IndexError):
        pass
    else:
        inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
        out += np.flatnonzero(inside).tolist()
    return [p for p in dict.fromkeys(out) if 0 <= p < len(xy)]
