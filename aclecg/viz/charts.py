"""Charts of results: 2-D embedding maps, training curves, label-fraction sweeps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

#: Categorical colours that stay distinct from each other (Okabe & Ito's colour-blind-safe set, then Tableau's):
#: set on every trace, so a host theme (Streamlit's shades of blue) cannot make two categories look alike.
CATEGORY_COLOURS = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#D55E00",
    "#56B4E9",
    "#F0E442",
    "#000000",
    "#8c564b",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def category_colours(n: int) -> list[str]:
    """``n`` different colours for ``n`` categories, never one twice: :data:`CATEGORY_COLOURS` first, then plotly's
    Dark24, Light24 and Alphabet sets, then colours spread round the hue circle (golden-angle steps).

    >>> len(set(category_colours(80))) == 80
    True
    """
    from colorsys import hsv_to_rgb

    from plotly.colors import qualitative

    out: list[str] = []
    for colour in (*CATEGORY_COLOURS, *qualitative.Dark24, *qualitative.Light24, *qualitative.Alphabet):
        if colour.lower() not in {c.lower() for c in out}:
            out.append(colour)
    k = 0
    while len(out) < n:
        r, g, b = hsv_to_rgb((k * 0.618034) % 1.0, 0.55 + 0.4 * ((k // 7) % 2), 0.85 - 0.3 * ((k // 3) % 2))
        colour = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
        if colour not in out:
            out.append(colour)
        k += 1
    return out[: max(n, 0)]


def column_title(column: str) -> str:
    """How a table column reads in a hover or legend: ``labels_superdiagnostic`` -> ``labels (superdiagnostic)``."""
    if column.startswith("labels_"):
        return f"labels ({column[len('labels_') :]})"
    return column.replace("_", " ")


#: Maps with up to this many points are drawn as SVG (``go.Scatter``), larger ones with WebGL (``go.Scattergl``).
#: A WebGL redraw costs about 1 s more per map in a browser without GPU rendering (headless Chromium here:
#: switching the Representations map method took 1.1-2.0 s with WebGL and 0.4-0.8 s with SVG, 1008 points,
#: benchmarks/results-2026-12-03b-browser.txt); SVG's cost grows with the number of points, WebGL's hardly.
SVG_MAX_POINTS = 2000


def embedding_scatter(
    coords: np.ndarray,
    table: pd.DataFrame,
    colour: str,
    hover: Iterable[str] = (),
    highlight: np.ndarray | None = None,
    highlight_name: str = "uploaded",
    title: str = "",
    marks: Mapping[str, tuple[np.ndarray, str]] | None = None,
) -> go.Figure:
    """2-D map of embeddings, one trace per value of ``table[colour]`` (numeric columns: one continuous trace).

    Each point's ``customdata[0]`` is its row position in ``table`` (for selection events); hover shows
    the ``hover`` columns. ``highlight`` (m, 2) adds star markers (e.g. an uploaded record). ``marks``:
    ``{name: (xy, kind)}`` more marked points, ``kind`` a key of :data:`MARKS` (as :func:`aclecg.viz.embedding_map`).
    """
    xy = np.asarray(coords)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] != len(table):
        raise ValueError(f"coords must be (len(table)={len(table)}, 2), got {xy.shape}")
    custom, template = _hover_data(table, hover)
    kind = "scatter" if len(table) <= SVG_MAX_POINTS else "scattergl"
    # traces and layout as plain dicts, validated once by go.Figure: add_trace and update_layout validate again
    # at every call (a fifth of the Representations page's script time)
    traces: list[dict] = []
    values = table[colour] if colour in table.columns else pd.Series(["all"] * len(table))
    if is_continuous(values):
        traces.append(
            dict(
                type=kind,
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                customdata=custom,
                hovertemplate=template,
                name=colour,
                marker=dict(
                    size=6,
                    color=values,
                    colorscale="Viridis",
                    showscale=True,
                    colorbar=dict(title=column_title(colour)),
                ),
            )
        )
    else:
        traces += _category_traces(kind, xy, values, custom, template)
    marked = dict(marks or {})
    if highlight is not None and len(highlight):
        marked = {highlight_name: (highlight, "upload"), **marked}
    for name, (mxy, kind) in marked.items():
        hl = np.atleast_2d(mxy)
        traces.append(dict(type="scatter", x=hl[:, 0], y=hl[:, 1], mode="markers", name=name, marker=MARKS[kind]))
    return go.Figure(
        data=traces,
        layout=dict(
            title=title,
            height=520,
            margin=dict(l=10, r=10, t=40, b=10),
            # pan by dragging, so a single click selects the point under it (a lasso drag mode swallows clicks);
            # box and lasso stay one toolbar click away
            dragmode="pan",
            clickmode="event+select",
            legend=dict(itemsizing="constant"),
            xaxis=dict(title="UMAP 1"),
            yaxis=dict(title="UMAP 2"),
        ),
    )


#: The marker of a marked point on a plotly map, by kind: an uploaded record, a record found by its id.
MARKS = {
    "upload": dict(symbol="star", size=18, color="black", line=dict(color="gold", width=2)),
    "found": dict(symbol="diamond", size=16, color="crimson", line=dict(color="white", width=2)),
}


def is_continuous(values: pd.Series) -> bool:
    """Whether a map colours ``values`` on a continuous scale (numbers of more than 12 values), not by category."""
    return bool(pd.api.types.is_numeric_dtype(values) and values.nunique() > 12)


def _hover_data(table: pd.DataFrame, hover: Iterable[str]) -> tuple[np.ndarray, str]:
    """``(customdata, hovertemplate)`` of a map's points: each row's position, then its ``hover`` columns (those
    of ``table``) as text."""
    hover = [h for h in hover if h in table.columns]
    custom = (
        np.column_stack([np.arange(len(table))] + [table[h].astype(str).to_numpy() for h in hover])
        if len(table)
        else np.zeros((0, 1 + len(hover)))
    )
    template = "<br>".join(f"{column_title(h)}: %{{customdata[{i + 1}]}}" for i, h in enumerate(hover))
    return custom, template + "<extra></extra>"


def category_levels(values: pd.Series) -> tuple[np.ndarray, list[str], list[str]]:
    """A map's colour groups: each row's label (missing and empty ones as ``"(none)"``), the labels largest first
    (ties by name), and their colours (:func:`category_colours`: none repeated however many labels). The plotly
    and the Vega-Lite maps both colour by these.

    >>> category_levels(pd.Series(["b", "a", None, "b", ""]))[1:]
    (['(none)', 'b', 'a'], ['#0072B2', '#E69F00', '#009E73'])
    """
    labels = values.fillna("(none)").astype(str).replace("", "(none)").to_numpy()
    names, counts = np.unique(labels, return_counts=True)
    order = [str(names[k]) for k in sorted(range(len(names)), key=lambda k: (-int(counts[k]), names[k]))]
    return labels, order, category_colours(len(order))


def _category_traces(kind: str, xy: np.ndarray, values: pd.Series, custom: np.ndarray, template: str) -> list[dict]:
    """One trace per category of ``values`` (:func:`category_levels`), the largest first."""
    labels, order, colours = category_levels(values)
    traces = []
    for rank, name in enumerate(order):
        sel = labels == name
        traces.append(
            dict(
                type=kind,
                x=xy[sel, 0],
                y=xy[sel, 1],
                mode="markers",
                name=name,
                customdata=custom[sel],
                hovertemplate=template,
                marker=dict(size=6, color=colours[rank]),
            )
        )
    return traces


def training_curves(metrics: pd.DataFrame, terms: Sequence[str] = ("loss",)) -> go.Figure:
    """Loss terms, learning rate and throughput against step (three stacked panels).

    ``terms`` are the loss terms to plot, normally the method's declared ``LOSS_TERMS``
    (:func:`aclecg.methods.loss_terms`); columns of ``metrics`` not named there (bookkeeping such as memory,
    world size or epoch) are never drawn as losses.
    """
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        subplot_titles=("loss terms", "learning rate", "samples / s"),
    )
    if metrics is None or metrics.empty or "step" not in metrics.columns:
        fig.add_annotation(text="no metrics yet", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
        fig.update_layout(height=520)
        return fig
    terms = [c for c in dict.fromkeys(terms) if c in metrics.columns and pd.api.types.is_numeric_dtype(metrics[c])]
    terms = sorted(terms, key=lambda c: (c != "loss", c))
    for term in terms:
        fig.add_trace(
            go.Scatter(
                x=metrics["step"],
                y=metrics[term],
                mode="lines",
                name=term,
                line=dict(width=2.5 if term == "loss" else 1.3),
            ),
            row=1,
            col=1,
        )
    if "lr" in metrics.columns:
        fig.add_trace(
            go.Scatter(x=metrics["step"], y=metrics["lr"], mode="lines", name="lr", line=dict(color="#555")),
            row=2,
            col=1,
        )
    if "samples_per_s" in metrics.columns:
        fig.add_trace(
            go.Scatter(
                x=metrics["step"],
                y=metrics["samples_per_s"],
                mode="lines",
                name="samples/s",
                line=dict(color="#2ca02c"),
            ),
            row=3,
            col=1,
        )
    fig.update_xaxes(title_text="step", row=3, col=1)
    fig.update_yaxes(tickformat=".1e", row=2, col=1)
    fig.update_layout(height=620, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def compared_loss_curves(curves: dict[str, pd.DataFrame], term: str = "loss") -> go.Figure:
    """One loss term of several runs on one chart (one line per run, named by run), against step.

    Runs whose metrics lack ``term`` are left out; an empty chart says so."""
    fig = go.Figure()
    colours = category_colours(max(len(curves), 1))
    for (name, metrics), colour in zip(curves.items(), colours):
        if metrics is None or metrics.empty or not {"step", term} <= set(metrics.columns):
            continue
        fig.add_trace(go.Scatter(x=metrics["step"], y=metrics[term], mode="lines", name=name, line=dict(color=colour)))
    if not fig.data:
        fig.add_annotation(text=f"no {term} logged yet", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
    fig.update_layout(
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        title=dict(text=f"{term} of the chosen runs", x=0.0, xanchor="left"),
        xaxis=dict(title="step"),
        yaxis=dict(title=term),
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0.0),
    )
    return fig


#: Colours of the methods of a sweep, in the order of their names (then :func:`category_colours`' others).
SWEEP_PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)


@dataclass(frozen=True)
class SweepSeries:
    """One method's line on a sweep chart: its mean per label fraction (sorted), its CI bounds where the summary
    has them, its colour and whether it is drawn dotted (the supervised and random-init references)."""

    name: str
    colour: str
    dotted: bool
    fraction: np.ndarray
    mean: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None


# long: each parameter names a column of the summary table, a public option of the chart
def sweep_series(
    summary: pd.DataFrame,
    metric: str = "auroc",
    method_col: str = "method",
    fraction_col: str = "label_fraction",
    mean_col: str = "mean",
    low_col: str = "ci_low",
    high_col: str = "ci_high",
    metric_col: str | None = "metric",
) -> list[SweepSeries]:
    """What a sweep chart draws, one :class:`SweepSeries` per method in name order: read by the plotly chart
    (:func:`sweep_figure`) and the SVG one (:func:`aclecg.viz.static.sweep_svg`).

    ``summary`` is long format: one row per (method, label fraction[, metric]) with a mean and CI bounds.
    When ``metric_col`` is present, rows with ``metric_col == metric`` are used; otherwise ``mean_col`` etc.
    already refer to ``metric``.
    """
    df = summary
    if metric_col and metric_col in df.columns:
        df = df[df[metric_col].astype(str).str.lower() == metric.lower()]
    groups = sorted(df.groupby(method_col), key=lambda kv: str(kv[0]))
    palette = SWEEP_PALETTE
    colours = [*palette, *[c for c in category_colours(len(groups) + len(palette)) if c not in palette]]
    has_ci = low_col in df.columns and high_col in df.columns
    out = []
    for k, (method, part) in enumerate(groups):
        part = part.sort_values(fraction_col)
        name = str(method)
        out.append(
            SweepSeries(
                name=name,
                colour=colours[k],
                dotted=name.lower() in ("supervised", "random", "random_init", "random-init"),
                fraction=part[fraction_col].to_numpy(dtype=np.float64),
                mean=part[mean_col].to_numpy(dtype=np.float64),
                low=part[low_col].to_numpy(dtype=np.float64) if has_ci else None,
                high=part[high_col].to_numpy(dtype=np.float64) if has_ci else None,
            )
        )
    return out


def sweep_title(metric: str, title: str | None = None) -> tuple[str, str]:
    """(the chart's title, the y axis's title) of a sweep chart of ``metric``."""
    label = metric.lower().removeprefix("macro_").upper()
    return title or f"macro {label} vs label fraction", f"macro {label}"


def sweep_figure(summary: pd.DataFrame, metric: str = "auroc", title: str | None = None, **columns: Any) -> go.Figure:
    """Metric vs label fraction (log x) with a CI band per method: the series :func:`sweep_series` reads from
    ``summary`` with the column names in ``columns`` (``method_col``, ``fraction_col``, ``mean_col``, ``low_col``,
    ``high_col``, ``metric_col``)."""
    fig = go.Figure()
    for series in sweep_series(summary, metric, **columns):
        _add_sweep_method(fig, series, metric)
    chart_title, y_title = sweep_title(metric, title)
    fig.update_xaxes(type="log", title_text="label fraction")
    fig.update_yaxes(title_text=y_title)
    fig.update_layout(title=chart_title, height=430, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def _add_sweep_method(fig: go.Figure, s: SweepSeries, metric: str) -> None:
    """One method's mean line, with its CI as a band (or an error bar where it has one fraction)."""
    error_y = None
    if s.low is not None and s.high is not None and len(s.fraction) == 1:
        # one fraction: an error bar, not a band (a one-point band draws as loose dots)
        error_y = dict(type="data", symmetric=False, color=s.colour, array=s.high - s.mean, arrayminus=s.mean - s.low)
    elif s.low is not None and s.high is not None:
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([s.fraction, s.fraction[::-1]]),
                y=np.concatenate([s.high, s.low[::-1]]),
                mode="lines",  # an area: plotly's default mode would add a marker at every corner
                fill="toself",
                fillcolor=_with_alpha(s.colour, 0.15),
                line=dict(width=0),
                hoverinfo="skip",
                showlegend=False,
                legendgroup=s.name,
                name=f"{s.name} CI",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=s.fraction,
            y=s.mean,
            mode="lines+markers",
            name=s.name,
            legendgroup=s.name,
            line=dict(color=s.colour, dash="dot" if s.dotted else "solid"),
            error_y=error_y,
            hovertemplate=f"{s.name}<br>fraction %{{x}}<br>{metric} %{{y:.4f}}<extra></extra>",
        )
    )


def _with_alpha(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
