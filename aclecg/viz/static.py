"""Static figures drawn on the server as SVG documents (``st.image`` draws them; ``aclecg regions --out`` writes
one): the lead-region diagram and the similarity heatmap of the Lead regions page, and the sweep charts of the
Label-fraction sweeps page.

Both are pictures to read, not to explore: as SVG the page opens without loading plotly, whose first chart costs
a new browser most of a second (docs/app.md, "page timings"). The diagram's geometry (electrode positions, the
chest outline, the hexaxial axes) is :mod:`aclecg.viz.diagrams`', shared with the plotly diagram that the
Explorer's region attribution colours by effect.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import numpy as np
from plotly.colors import get_colorscale, sample_colorscale

from aclecg.leads import RegionMap, default_region_map
from aclecg.viz.charts import SweepSeries, sweep_title
from aclecg.viz.diagrams import (
    HEXAXIAL_ANGLES,
    HEXAXIAL_HALF_WIDTH,
    PRECORDIAL_POSITIONS,
    STERNUM,
    chest_outline,
    hexaxial_end,
)
from aclecg.viz.paper import lead_colour as _region_colour
from aclecg.viz.paper import region_colour

#: Pixels (SVG units) per unit of the diagram's coordinates, and each panel's (x, y) ranges.
_SCALE = 120.0
_CHEST = ((-1.1, 1.5), (-1.0, 0.8))
_HEX = ((-HEXAXIAL_HALF_WIDTH, HEXAXIAL_HALF_WIDTH), (-1.3, 1.3))


def _text(
    x: float, y: float, text: str, size: float, anchor: str = "middle", fill: str = "#222", bold: bool = False
) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" text-anchor="{anchor}" fill="{fill}"{weight}>'
        f"{html.escape(text)}</text>"
    )


def _document(width: float, height: float, label: str) -> list[str]:
    """The opening of a ``width`` x ``height`` SVG document named ``label`` (for screen readers), on white."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" '
        f'role="img" aria-label="{html.escape(label)}">',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
    ]


_Coords = Sequence[float] | np.ndarray


class _Panel:
    """Maps a panel's data coordinates (y up) to SVG units: ``x0`` is the panel's left edge, ``top`` its top."""

    def __init__(self, x0: float, top: float, ranges: tuple[tuple[float, float], tuple[float, float]]) -> None:
        (self.xlo, self.xhi), (self.ylo, self.yhi) = ranges
        self.x0, self.top = x0, top

    @property
    def width(self) -> float:
        return (self.xhi - self.xlo) * _SCALE

    @property
    def height(self) -> float:
        return (self.yhi - self.ylo) * _SCALE

    def at(self, x: float, y: float) -> tuple[float, float]:
        return self.x0 + (x - self.xlo) * _SCALE, self.top + (self.yhi - y) * _SCALE

    def line(self, x: _Coords, y: _Coords, colour: str, width: float, dash: bool = False) -> str:
        pts = " ".join("{:.1f},{:.1f}".format(*self.at(a, b)) for a, b in zip(x, y))
        extra = ' stroke-dasharray="2 4"' if dash else ""
        return f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="{width:g}"{extra}/>'


def region_diagram_svg(region_map: RegionMap | None = None, colour_of: Callable[[str], str] | None = None) -> str:
    """The lead regions as an SVG document: the precordial electrodes on a chest sketch (left) and the hexaxial
    limb-lead axes (right), each lead in its region's colour (``colour_of(lead)`` overrides), with a legend naming
    each region's leads. The same drawing as :func:`aclecg.viz.region_diagram`, without plotly."""
    rmap = region_map or default_region_map()

    def colour(lead: str) -> str:
        return colour_of(lead) if colour_of is not None else _region_colour(lead, rmap)

    chest = _Panel(10, 40, _CHEST)
    hexa = _Panel(chest.x0 + chest.width + 40, 40, _HEX)
    height = 40 + max(chest.height, hexa.height)
    legend_y = height + 24
    width = hexa.x0 + hexa.width + 10
    parts = [
        *_document(width, legend_y + 16, "lead regions: chest and hexaxial views"),
        _text(chest.x0 + chest.width / 2, 24, "precordial leads (chest)", 17),
        _text(hexa.x0 + hexa.width / 2, 24, "limb leads (hexaxial)", 17),
        chest.line(*chest_outline(), "#bbb", 2),
        chest.line([STERNUM[0], STERNUM[2]], [STERNUM[1], STERNUM[3]], "#ccc", 8),
    ]
    for lead, (x, y) in PRECORDIAL_POSITIONS.items():
        cx, cy = chest.at(x, y)
        region = rmap.region_of(lead) or "no region"
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="10" fill="{colour(lead)}" stroke="#333">'
            f"<title>{html.escape(f'{lead}: {region}')}</title></circle>"
        )
        parts.append(_text(cx, cy - 16, lead, 15))
    for lead, angle in HEXAXIAL_ANGLES.items():
        dx, dy = hexaxial_end(angle)
        parts.append(hexa.line([-dx, dx], [-dy, dy], colour(lead), 1.5, dash=True))
        parts.append(hexa.line([0, dx], [0, dy], colour(lead), 4))
        ex, ey = hexa.at(dx, dy)
        parts.append(f'<circle cx="{ex:.1f}" cy="{ey:.1f}" r="6" fill="{colour(lead)}"/>')
        right = dx >= 0
        parts.append(
            _text(ex + (12 if right else -12), ey + 5, f"{lead} {angle:+.0f}°", 15, "start" if right else "end")
        )
    parts += _legend(rmap, 10, legend_y)
    parts.append("</svg>")
    return "".join(parts)


def _legend(rmap: RegionMap, x: float, y: float) -> list[str]:
    """One swatch and "region: leads" per region of the map, in one row."""
    out = []
    for region, members in rmap.regions.items():
        label = f"{region}: {', '.join(members)}"
        out.append(f'<circle cx="{x + 7:.1f}" cy="{y - 5:.1f}" r="7" fill="{region_colour(region)}"/>')
        out.append(_text(x + 20, y, label, 15, "start"))
        x += 40 + 8.2 * len(label)
    return out


def similarity_heatmap(sim: np.ndarray, names: Sequence[str], title: str = "") -> str:
    """A similarity matrix (cosine, in [-1, 1]) as an annotated heatmap: one cell per pair, coloured on the
    RdBu scale reversed (red: similar, blue: opposite), its value written in it."""
    s = np.asarray(sim, dtype=np.float64)
    n = len(names)
    if s.shape != (n, n):
        raise ValueError(f"sim must be ({n}, {n}) for {n} names, got shape {s.shape}")
    cell, left = 90.0, 120.0
    top = (56.0 if title else 20.0) + 26.0  # the title, then the column names
    values = np.clip((np.nan_to_num(s, nan=0.0) + 1.0) / 2.0, 0.0, 1.0)
    colours = sample_colorscale(get_colorscale("RdBu_r"), values.ravel().tolist())
    width, height = left + n * cell + 10, top + n * cell + 10
    parts = _document(width, height, title or "similarity heatmap")
    if title:
        parts.append(_text(10, 30, title, 17, "start"))
    for i, name in enumerate(names):
        parts.append(_text(left - 8, top + (i + 0.5) * cell + 5, str(name), 15, "end"))
        parts.append(_text(left + (i + 0.5) * cell, top - 10, str(name), 15))
        for j in range(n):
            x, y = left + j * cell, top + i * cell
            v = s[i, j]
            ink = "white" if abs(v) > 0.6 else "#111"
            parts.append(
                f'<rect x="{x:.0f}" y="{y:.0f}" width="{cell:.0f}" height="{cell:.0f}" fill="{colours[i * n + j]}">'
                f"<title>{html.escape(f'{name} · {names[j]}: {v:.3f}')}</title></rect>"
            )
            parts.append(_text(x + cell / 2, y + cell / 2 + 6, "–" if not np.isfinite(v) else f"{v:.2f}", 17, fill=ink))
    parts.append("</svg>")
    return "".join(parts)


def _nice_ticks(lo: float, hi: float, target: int = 5) -> np.ndarray:
    """About ``target`` round values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    span = max(hi - lo, 1e-9)
    raw = span / target
    power = 10.0 ** np.floor(np.log10(raw))
    step = power * min((m for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw), default=10.0)
    return np.arange(np.ceil(lo / step) * step, hi + step * 1e-6, step)


def sweep_svg(series: Sequence[SweepSeries], metric: str, title: str | None = None) -> str:
    """A sweep chart as an SVG document: each series' mean against the label fraction (log axis, ticked at the
    fractions run), its CI as a band (an error bar at a single fraction), the references dotted, a legend below.
    The same series as :func:`aclecg.viz.sweep_figure`, from :func:`aclecg.viz.charts.sweep_series`."""
    chart_title, y_title = sweep_title(metric, title)
    width, left, right, top, plot_h = 640.0, 70.0, 20.0, 44.0, 300.0
    rows = [list(series[i : i + 3]) for i in range(0, len(series), 3)]  # the legend: three entries a row
    height = top + plot_h + 56 + 24 * len(rows)
    fr = np.concatenate([s.fraction for s in series]) if series else np.array([0.1, 1.0])
    ys = np.concatenate([v for s in series for v in (s.mean, s.low, s.high) if v is not None] or [np.array([0.5])])
    ys = ys[np.isfinite(ys)] if np.isfinite(ys).any() else np.array([0.5])
    pad = max(float(ys.max() - ys.min()) * 0.08, 0.005)
    ylo, yhi = float(ys.min()) - pad, float(ys.max()) + pad
    xlo, xhi = np.log10(fr[fr > 0].min()) - 0.12, np.log10(fr[fr > 0].max()) + 0.12
    plot_w = width - left - right

    def at(f: np.ndarray, v: np.ndarray) -> np.ndarray:
        x = left + (np.log10(f) - xlo) / (xhi - xlo) * plot_w
        return np.column_stack([x, top + (yhi - v) / (yhi - ylo) * plot_h])

    def points(xy: np.ndarray) -> str:
        return " ".join(f"{a:.1f},{b:.1f}" for a, b in xy)

    parts = [
        *_document(width, height, chart_title),
        _text(10, 26, chart_title, 17, "start"),
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    ticks = _nice_ticks(ylo, yhi)
    for v, y in zip(ticks, at(np.ones_like(ticks), ticks)[:, 1]):
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        parts.append(_text(left - 6, y + 5, f"{v:.3g}", 13, "end"))
    fractions = np.unique(fr[fr > 0])
    for f, x in zip(fractions, at(fractions, np.full_like(fractions, ylo))[:, 0]):
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#e3e3e3"/>')
        parts.append(_text(x, top + plot_h + 18, f"{f * 100:g} %", 13))
    parts.append(_text(left + plot_w / 2, top + plot_h + 40, "label fraction", 14))
    parts.append(
        f'<text transform="translate(18 {top + plot_h / 2:.0f}) rotate(-90)" font-size="14" text-anchor="middle" '
        f'fill="#222">{html.escape(y_title)}</text>'
    )
    for s in series:
        parts += _sweep_line(s, at, points)
    for r, row in enumerate(rows):
        y = top + plot_h + 68 + 24 * r
        for c, s in enumerate(row):
            x = 10 + c * (width - 20) / 3
            dash = ' stroke-dasharray="3 3"' if s.dotted else ""
            swatch = f'x1="{x:.0f}" y1="{y - 5}" x2="{x + 24:.0f}" y2="{y - 5}"'
            parts.append(f'<line {swatch} stroke="{s.colour}" stroke-width="2.5"{dash}/>')
            parts.append(_text(x + 30, y, s.name, 13, "start"))
    parts.append("</svg>")
    return "".join(parts)


def _sweep_line(
    s: SweepSeries, at: Callable[[np.ndarray, np.ndarray], np.ndarray], points: Callable[[np.ndarray], str]
) -> list[str]:
    """One series: its CI band (or error bar), its line and its points, each point titled with its value."""
    out = []
    keep = np.isfinite(s.mean) & (s.fraction > 0)
    f, m = s.fraction[keep], s.mean[keep]
    if s.low is not None and s.high is not None and keep.any():
        lo, hi = s.low[keep], s.high[keep]
        if len(f) == 1:
            (x, y_hi), (_, y_lo) = at(f, hi)[0], at(f, lo)[0]
            bar = (
                f"M{x - 5:.1f} {y_hi:.1f}H{x + 5:.1f}M{x:.1f} {y_hi:.1f}V{y_lo:.1f}M{x - 5:.1f} {y_lo:.1f}H{x + 5:.1f}"
            )
            out.append(f'<path d="{bar}" stroke="{s.colour}" stroke-width="1.5" fill="none"/>')
        else:
            band = np.vstack([at(f, hi), at(f[::-1], lo[::-1])])
            out.append(f'<polygon points="{points(band)}" fill="{s.colour}" fill-opacity="0.15"/>')
    xy = at(f, m)
    dash = ' stroke-dasharray="4 4"' if s.dotted else ""
    out.append(f'<polyline points="{points(xy)}" fill="none" stroke="{s.colour}" stroke-width="2"{dash}/>')
    for (x, y), frac, v in zip(xy, f, m):
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{s.colour}">'
            f"<title>{html.escape(f'{s.name}, {frac * 100:g} %: {v:.4f}')}</title></circle>"
        )
    return out
