"""The ECG paper figure drawn on the server as one SVG document: the page's first paint without a chart library.

:func:`paper_svg` takes the figure :func:`aclecg.viz.ecg_paper_figure` builds, so the static print and the
interactive chart (calipers, zoom) are one drawing: the same traces, R-peak marks, calibration pulses, column
separators, shaded leads, labels, scale note, title and region legend. The SVG's user unit is a tenth of a
millimetre of paper; the mm grid is two ``<pattern>`` fills (not hundreds of lines), and every trace is one
``<path>`` whose coordinates are formatted by NumPy as whole tenths of a millimetre.

A browser draws it as an image (``st.image`` on the Explorer), in a few milliseconds and without loading plotly,
whose first chart costs a new browser most of a second (docs/app.md, "page timings").
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from aclecg.viz.paper import GRID_MAJOR_COLOUR, GRID_MAJOR_MM, GRID_MINOR_COLOUR, GRID_MINOR_MM, PAPER_COLOUR

#: SVG user units per millimetre of paper (coordinates are written as integers of this unit).
UNITS_PER_MM = 10
#: Pixels per millimetre the figure's font and line sizes are read at: the print is drawn narrower than the
#: interactive chart (about 2.8 px/mm in a 1280 px window), so its text is drawn a little larger.
FONT_PX_PER_MM = 3.0
_TITLE_MM, _LEGEND_MM = 9.0, 8.0


def _rgba(colour: str) -> tuple[str, float]:
    """``rgba(r, g, b, a)`` -> (``rgb(r,g,b)``, a); any other CSS colour is returned with opacity 1."""
    m = re.fullmatch(r"\s*rgba\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*\)\s*", colour or "")
    if m is None:
        return colour or "none", 1.0
    r, g, b, a = m.groups()
    return f"rgb({r},{g},{b})", float(a)


def _fill(colour: str, attr: str = "fill") -> str:
    rgb, alpha = _rgba(colour)
    return f'{attr}="{rgb}"' + (f' {attr}-opacity="{alpha:g}"' if alpha < 1 else "")


def _u(mm: float | np.ndarray) -> Any:
    """Millimetres -> whole SVG units."""
    return np.rint(np.asarray(mm, dtype=np.float64) * UNITS_PER_MM).astype(np.int64)


def _path_data(x: Any, y: Any) -> str:
    """``M x0 y0 L x1 y1 …`` of a polyline in paper mm (y up), broken at missing values."""
    xs = np.asarray([np.nan if v is None else v for v in x] if not isinstance(x, np.ndarray) else x, dtype=np.float64)
    ys = np.asarray([np.nan if v is None else v for v in y] if not isinstance(y, np.ndarray) else y, dtype=np.float64)
    keep = np.isfinite(xs) & np.isfinite(ys)
    if not keep.any():
        return ""
    idx = np.flatnonzero(keep)
    starts = np.r_[True, np.diff(idx) > 1]  # a gap in the kept samples starts a new sub-path
    cmd = np.where(starts, "M", "L")
    pts = np.char.add(np.char.add(_u(xs[idx]).astype(str), " "), _u(-ys[idx]).astype(str))
    return " ".join(np.char.add(cmd, pts).tolist())


def _text(x: float, y: float, text: str, size_px: float, colour: str, anchor: str = "start", bold: bool = False) -> str:
    plain = re.sub(r"<[^>]+>", "", str(text))
    weight = ' font-weight="bold"' if bold or "<b>" in str(text) else ""
    return (
        f'<text x="{x}" y="{y}" font-size="{_u(size_px / FONT_PX_PER_MM)}" text-anchor="{anchor}" '
        f"{_fill(colour)}{weight}>{html.escape(plain)}</text>"
    )


def _traces(fig: go.Figure) -> tuple[list[str], list[tuple[str, str]]]:
    """SVG of the traces (lines and R-peak triangles) and the legend's (colour, name) entries."""
    out, legend = [], []
    for tr in fig.data:
        if tr.x is None or all(v is None for v in tr.x):
            if tr.showlegend is not False and tr.name:
                legend.append((tr.line.color, tr.name))
            continue
        if "lines" in (tr.mode or ""):
            width = _u((tr.line.width or 1.2) / FONT_PX_PER_MM)
            stroke = f'fill="none" {_fill(tr.line.color or "#111", "stroke")} stroke-width="{width}"'
            out.append(_named_path(_path_data(tr.x, tr.y), f'{stroke} stroke-linejoin="round"', tr.name))
        elif "markers" in (tr.mode or ""):
            s = max(1, int(_u((tr.marker.size or 7) / FONT_PX_PER_MM / 2)))
            xs, ys = _u(np.asarray(tr.x, dtype=np.float64)), _u(-np.asarray(tr.y, dtype=np.float64))
            tris = " ".join(f"M{x - s} {y - s}L{x + s} {y - s}L{x} {y + s}Z" for x, y in zip(xs, ys))
            out.append(_named_path(tris, _fill(tr.marker.color or "#333"), tr.name))
    return out, legend


def _named_path(d: str, attrs: str, name: str | None) -> str:
    """A ``<path>`` with a tooltip (``<title>``) naming what it draws (a lead, "R-peak", "calibration")."""
    return f'<path d="{d}" {attrs}><title>{html.escape(str(name or ""))}</title></path>'


def _rect(x: float, y: float, w: float, h: float, fill: str) -> str:
    """A rectangle given in mm (SVG's y, down)."""
    return f'<rect x="{_u(x)}" y="{_u(y)}" width="{_u(w)}" height="{_u(h)}" {fill}/>'


def _grid(name: str, step_mm: float, colour: str, width: int) -> str:
    """A ``<pattern>`` of one grid cell: its right and bottom edges, so the fill draws every line once."""
    n = _u(step_mm)
    line = f'fill="none" {_fill(colour, "stroke")} stroke-width="{width}"'
    cell = f'<pattern id="{name}" width="{n}" height="{n}" patternUnits="userSpaceOnUse">'
    return f'{cell}<path d="M{n} 0V{n}H0" {line}/></pattern>'


def _shapes(fig: go.Figure, below: bool) -> list[str]:
    out = []
    for sh in fig.layout.shapes:
        if (sh.layer == "below") != below:
            continue
        if sh.type == "rect":
            x0, x1 = sorted((sh.x0, sh.x1))
            y0, y1 = sorted((-sh.y0, -sh.y1))
            out.append(_rect(x0, y0, x1 - x0, y1 - y0, _fill(sh.fillcolor or "none")))
        elif sh.type == "line":
            width = _u((sh.line.width or 1) / FONT_PX_PER_MM)
            out.append(
                f'<line x1="{_u(sh.x0)}" y1="{_u(-sh.y0)}" x2="{_u(sh.x1)}" y2="{_u(-sh.y1)}" '
                f'{_fill(sh.line.color or "#444", "stroke")} stroke-width="{width}"/>'
            )
    return out


def _annotations(fig: go.Figure, x0: float, note_y: float) -> list[str]:
    """The lead labels and the calibration label (data coordinates); the scale note (``xref="paper"``) goes above
    the paper at its left edge, at ``note_y`` mm (SVG's y, down)."""
    out = []
    for note in fig.layout.annotations:
        size, colour = note.font.size or 12, note.font.color or "#333"
        if note.xref == "paper":  # the scale note: above the paper, at its left edge
            out.append(_text(_u(x0), _u(note_y), note.text, size, colour))
            continue
        y = -note.y + (size / FONT_PX_PER_MM * 0.8 if note.yanchor == "top" else size / FONT_PX_PER_MM * 0.35)
        anchor = {"left": "start", "right": "end"}.get(note.xanchor or "", "middle")
        out.append(_text(_u(note.x), _u(y), note.text, size, colour, anchor))
    return out


def paper_svg(fig: go.Figure) -> str:
    """The paper figure ``fig`` (from :func:`aclecg.viz.ecg_paper_figure`) as a standalone SVG document."""
    meta: Mapping[str, Any] = fig.layout.meta or {}
    if not meta.get("mm_per_s"):
        raise ValueError("paper_svg draws figures made by ecg_paper_figure (their layout.meta has mm_per_s)")
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    width, height = float(x1 - x0), float(y1 - y0)
    traces, legend = _traces(fig)
    top = _TITLE_MM
    bottom = _LEGEND_MM if legend else 1.0
    view = f"{_u(x0)} {_u(-y1 - top)} {_u(width)} {_u(height + top + bottom)}"
    paper = (x0, -y1, width, height)
    title, band_y = _title(fig), -y1 - top / 2 + 1.5  # the band above the paper: the scale note and the title
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{view}" font-family="sans-serif" '
        f'role="img" aria-label="{html.escape(title or "ECG on paper")}">',
        "<defs>",
        _grid("mm", GRID_MINOR_MM, GRID_MINOR_COLOUR, 1),
        _grid("mm5", GRID_MAJOR_MM, GRID_MAJOR_COLOUR, 2),
        f'<clipPath id="paper">{_rect(*paper, "")}</clipPath>',
        "</defs>",
        _rect(x0, -y1 - top, width, height + top + bottom, 'fill="white"'),
        _rect(*paper, f'fill="{PAPER_COLOUR}"'),
        *_shapes(fig, below=True),
        _rect(*paper, 'fill="url(#mm)"'),
        _rect(*paper, 'fill="url(#mm5)"'),
        '<g clip-path="url(#paper)">',  # as plotly clips traces at the axes: a tall QRS stays on the paper
        *_shapes(fig, below=False),
        *traces,
        "</g>",
        *_annotations(fig, x0, band_y),
    ]
    if title:
        parts.append(_text(_u(x0 + width / 2), _u(band_y), title, 15, "#222", "middle"))
    parts += _legend(legend, x0, -y0 + bottom * 0.65)
    parts.append("</svg>")
    return "".join(parts)


def _title(fig: go.Figure) -> str:
    return re.sub(r"<[^>]+>", "", str(fig.layout.title.text or "")) if fig.layout.title else ""


def _legend(entries: list[tuple[str, str]], x0: float, y_mm: float) -> list[str]:
    """The region legend: a colour swatch and its name per entry, in one row under the paper."""
    out, x = [], x0 + 2.0
    for colour, name in entries:
        out.append(
            f'<line x1="{_u(x)}" y1="{_u(y_mm - 1)}" x2="{_u(x + 5)}" y2="{_u(y_mm - 1)}" '
            f'{_fill(colour, "stroke")} stroke-width="{_u(0.8)}"/>'
        )
        out.append(_text(_u(x + 6.5), _u(y_mm), name, 12, "#333"))
        x += 8.5 + len(name) * 12 / FONT_PX_PER_MM * 0.55
    return out
