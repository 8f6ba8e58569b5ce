"""A figure of stacked plotly subplots drawn on the server as one SVG document (the Augmentations page's views).

:func:`subplots_svg` draws what :func:`aclecg.viz.augmentation_figure` builds (one column of subplots sharing the
time axis), from the figure itself, so the picture and the interactive chart are one drawing: the same traces,
R-peak marks, shapes (masked cycles, crop windows, time-out, the shift's seam or padding), subplot titles, notes
and legend. Every shape keeps its name (``data-name``) and every subplot title is a ``<text class="title">``, so a
reader of the SVG (a test, a screen reader) finds what a reader of the plotly layout finds.

It draws lines, markers (as triangles), rectangles and vertical lines, on axes referenced as ``x``/``x2``/... and
``y``/``y2``/... (data) or ``"y domain"`` (the subplot's height); nothing else plotly can draw. The user unit is a
tenth of a pixel of a ``width`` px wide figure, whose height is the figure's ``layout.height``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from aclecg.viz.paper_svg import _fill
from aclecg.viz.static import _document

__all__ = ["subplots_svg"]

#: SVG units per pixel; coordinates are written as integers of this unit.
U = 10
_LEGEND_PX, _AXIS_PX = 26, 34
_DASHES = {"dash": "60 40", "dot": "15 30", "dashdot": "60 30 15 30"}


def _plain(text: str | None) -> str:
    return html.escape(re.sub(r"<[^>]+>", "", str(text or "")))


@dataclass(frozen=True)
class _Band:
    """One subplot: its pixel box and its y data range."""

    top: float
    height: float
    y0: float
    y1: float

    def y(self, v: Any) -> np.ndarray:
        return self.top + (self.y1 - np.asarray(v, dtype=np.float64)) / (self.y1 - self.y0) * self.height

    def frac(self, f: float) -> float:
        return self.top + (1.0 - f) * self.height


@dataclass(frozen=True)
class _Frame:
    """The pixel frame: the plot area's left edge and width, the shared x range, and the subplots by axis suffix."""

    left: float
    width: float
    x0: float
    x1: float
    bands: dict[str, _Band]
    top: float
    height: float

    def x(self, v: Any) -> np.ndarray:
        return self.left + (np.asarray(v, dtype=np.float64) - self.x0) / (self.x1 - self.x0) * self.width


def _suffix(ref: str | None) -> str:
    """``"y3 domain"`` / ``"x3"`` / ``"y"`` -> ``"3"`` / ``"3"`` / ``""``."""
    return (ref or "").split(" ")[0][1:]


def _y_ranges(fig: go.Figure) -> dict[str, tuple[float, float]]:
    """Each subplot's y range: its traces' and data-referenced shapes' extent, padded by 5 % (as autorange)."""
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}

    def take(key: str, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        if values.size:
            lo[key] = min(lo.get(key, np.inf), float(values.min()))
            hi[key] = max(hi.get(key, -np.inf), float(values.max()))

    for tr in fig.data:
        take(_suffix(tr.yaxis), np.asarray(tr.y, dtype=np.float64))
    for sh in fig.layout.shapes:
        if sh.yref and "domain" not in sh.yref and sh.yref != "paper":
            take(_suffix(sh.yref), np.asarray([sh.y0, sh.y1], dtype=np.float64))
    out = {}
    for key in lo:
        pad = 0.05 * (hi[key] - lo[key]) or 1.0
        out[key] = (lo[key] - pad, hi[key] + pad)
    return out


def _frame(fig: go.Figure, width: float, top_px: float, height: float) -> _Frame:
    m = fig.layout.margin
    left, right, bottom = float(m.l or 0), float(m.r or 0), float(m.b or 0)
    plot_h = height - top_px - bottom - _AXIS_PX
    xs = np.concatenate([np.asarray(tr.x, dtype=np.float64) for tr in fig.data if tr.x is not None] or [np.zeros(1)])
    x0, x1 = float(np.nanmin(xs)), float(np.nanmax(xs))
    bands = {}
    for key, (y0, y1) in _y_ranges(fig).items():
        d0, d1 = fig.layout[f"yaxis{key}"].domain or (0.0, 1.0)
        bands[key] = _Band(top_px + (1 - d1) * plot_h, (d1 - d0) * plot_h, y0, y1)
    return _Frame(left, width - left - right, x0, x1 if x1 > x0 else x0 + 1, bands, top_px, plot_h)


def _u(v: np.ndarray | float) -> np.ndarray:
    return np.rint(np.asarray(v, dtype=np.float64) * U).astype(np.int64)


def _text(x: float, y: float, text: str, size: float, colour: str, anchor: str = "start", cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return (
        f'<text{c} x="{_u(x)}" y="{_u(y)}" font-size="{_u(size)}" text-anchor="{anchor}" {_fill(colour)}>'
        f"{_plain(text)}</text>"
    )


def _traces(fig: go.Figure, f: _Frame) -> Iterator[str]:
    for tr in fig.data:
        band = f.bands.get(_suffix(tr.yaxis))
        if band is None or tr.x is None:
            continue
        xs, ys = _u(f.x(tr.x)), _u(band.y(tr.y))
        name = f"<title>{_plain(tr.name)}</title>"
        if "lines" in (tr.mode or "lines"):
            d = "M" + " L".join(f"{x} {y}" for x, y in zip(xs.tolist(), ys.tolist()))
            w = _u(tr.line.width or 1.0)
            yield f'<path d="{d}" fill="none" {_fill(tr.line.color, "stroke")} stroke-width="{w}">{name}</path>'
        else:
            s = _u((tr.marker.size or 6) / 2)
            tris = "".join(f"M{x - s} {y - s}L{x + s} {y - s}L{x} {y + s}Z" for x, y in zip(xs.tolist(), ys.tolist()))
            yield f'<path d="{tris}" {_fill(tr.marker.color or "#333")}>{name}</path>'


def _shapes(fig: go.Figure, f: _Frame) -> Iterator[str]:
    for sh in fig.layout.shapes:
        band = f.bands.get(_suffix(sh.yref))
        if band is None:
            continue
        xa, xb = sorted(f.x([sh.x0, sh.x1]).tolist())
        if "domain" in (sh.yref or ""):
            ya, yb = band.frac(max(sh.y0, sh.y1)), band.frac(min(sh.y0, sh.y1))
        else:
            ya, yb = sorted(band.y([sh.y0, sh.y1]).tolist())
        line = sh.line
        stroke = ""
        if line is not None and (line.width or 0) > 0:
            dash = _DASHES.get(line.dash or "")
            stroke = f' {_fill(line.color or "#444", "stroke")} stroke-width="{_u(line.width)}"'
            stroke += f' stroke-dasharray="{dash}"' if dash else ""
        name = f' data-name="{_plain(sh.name)}"' if sh.name else ""
        if sh.type == "line":
            yield f'<line{name} x1="{_u(xa)}" y1="{_u(ya)}" x2="{_u(xb)}" y2="{_u(yb)}"{stroke}/>'
        else:
            fill = _fill(sh.fillcolor) if sh.fillcolor else 'fill="none"'
            yield (
                f'<rect{name} x="{_u(xa)}" y="{_u(ya)}" width="{_u(xb - xa)}" height="{_u(yb - ya)}" {fill}{stroke}/>'
            )


def _annotations(fig: go.Figure, f: _Frame) -> Iterator[str]:
    for note in fig.layout.annotations:
        size, colour = float(note.font.size or 12), note.font.color or "#222"
        anchor = {"left": "start", "right": "end"}.get(note.xanchor or "", "middle")
        if note.xref == "paper":  # a subplot title: above its subplot
            x = f.left + float(note.x) * f.width
            y = f.top + (1.0 - float(note.y)) * f.height - 5
            yield _text(x, y, note.text, size, colour, anchor, "title")
            continue
        band = f.bands.get(_suffix(note.yref))
        if band is None:
            continue
        x = float(f.x(note.x))
        y = band.frac(float(note.y)) if "domain" in (note.yref or "") else float(band.y(note.y))
        y += size if note.yanchor == "top" else 0.0
        if note.bgcolor:
            w = len(_plain(note.text)) * size * 0.58
            yield f'<rect x="{_u(x - 2)}" y="{_u(y - size)}" width="{_u(w + 4)}" height="{_u(size * 1.3)}" ' + (
                f"{_fill(note.bgcolor)}/>"
            )
        yield _text(x, y, note.text, size, colour, anchor, "note")


def _ticks(x0: float, x1: float) -> np.ndarray:
    """About six to ten round tick values between ``x0`` and ``x1``."""
    span = x1 - x0
    step = next((s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if span / s <= 10), span / 5)
    return np.arange(np.ceil(x0 / step) * step, x1 + 1e-9, step)


def _axis(fig: go.Figure, f: _Frame) -> Iterator[str]:
    """Vertical grid lines at the time ticks in every subplot, and the tick labels and axis title below."""
    bottom = f.top + f.height
    title = fig.layout[f"xaxis{len(f.bands) if len(f.bands) > 1 else ''}"].title.text or ""
    for t in _ticks(f.x0, f.x1):
        x = float(f.x(t))
        for band in f.bands.values():
            yield f'<line x1="{_u(x)}" y1="{_u(band.top)}" x2="{_u(x)}" y2="{_u(band.top + band.height)}" ' + (
                'stroke="#e6e9ef" stroke-width="10"/>'
            )
        yield _text(x, bottom + 14, f"{t:g}", 12, "#555", "middle")
    if title:
        yield _text(f.left + f.width / 2, bottom + 30, title, 13, "#333", "middle")


def _legend(fig: go.Figure, left: float) -> Iterator[str]:
    """One row at the top: a swatch and the name of every trace in the legend."""
    x = left + 4
    for tr in fig.data:
        if tr.showlegend is False or not tr.name:
            continue
        if "lines" in (tr.mode or "lines"):
            colour = tr.line.color
            yield f'<line x1="{_u(x)}" y1="{_u(13)}" x2="{_u(x + 22)}" y2="{_u(13)}" {_fill(colour, "stroke")} ' + (
                f'stroke-width="{_u(2)}"/>'
            )
        else:
            colour = tr.marker.color or "#333"
            yield f'<path d="M{_u(x + 6)} {_u(8)}L{_u(x + 16)} {_u(8)}L{_u(x + 11)} {_u(17)}Z" {_fill(colour)}/>'
        yield _text(x + 27, 17, tr.name, 12, "#333")
        x += 40 + len(str(tr.name)) * 7


def subplots_svg(fig: go.Figure, width: float = 1000.0, label: str = "") -> str:
    """The stacked-subplot figure ``fig`` as a standalone SVG document ``width`` px wide (it scales with its
    container), named ``label`` for screen readers."""
    height = float(fig.layout.height or 450)
    top = _LEGEND_PX + float(fig.layout.margin.t or 0)
    f = _frame(fig, width, top, height + _LEGEND_PX)
    w, h = _u(width), _u(height + _LEGEND_PX)
    parts = [
        *_document(float(w), float(h), label or "figure"),
        *_axis(fig, f),
        *_shapes(fig, f),
        *_traces(fig, f),
        *_annotations(fig, f),
        *_legend(fig, f.left),
        "</svg>",
    ]
    return "".join(parts)
