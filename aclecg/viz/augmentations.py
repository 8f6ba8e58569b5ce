"""What an augmentation did to a record, drawn: crop windows, masked cycles, the shift, view by view."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aclecg.leads import LEADS, RegionMap, canonical_lead, default_region_map
from aclecg.viz.paper import lead_colour


@dataclass
class ViewMarks:
    """What an augmentation did to one view, in samples of the *original* record (for drawing)."""

    crop: tuple[int, int] | None = None  # window of the original that the view was resampled from
    masked: list[tuple[int, int]] = field(default_factory=list)  # masked spans in the view's own time axis
    masked_leads: list[str] | None = None  # None: all leads
    shift: int = 0  # samples, positive = later
    timeout: tuple[int, int] | None = None  # time-out span (baseline pipeline) in the view's time axis
    outside: list[tuple[int, int]] = field(default_factory=list)  # zeroed outside a rate-keeping crop (view axis)
    n_cycles: int = 0  # cardiac cycles masked (a cycle split in two by a circular shift still counts once)
    shift_mode: str | None = None  # the temporal shift's mode ("circular", "zero", "edge"), None: no shift

    def shift_marks(self, length: int) -> tuple[int | None, tuple[int, int] | None]:
        """``(seam, padding)`` of the shift in the view's samples: a circular shift's seam (where the record's end
        meets its start), or the padded span of a zero/edge shift; ``None`` where there is none."""
        if not self.shift or self.shift_mode is None:
            return None, None
        if self.shift_mode == "circular":
            return self.shift % length, None
        return None, (0, min(self.shift, length)) if self.shift > 0 else (max(length + self.shift, 0), length)


def marks_from_info(
    info: Mapping, length: int, leads: Sequence[str] = LEADS, shift_mode: str = "circular"
) -> ViewMarks:
    """Read one sample's marks (batch index 0) from ``aclecg.augment``'s ``forward_with_info`` dict.

    Steps are read in pipeline order; spans (masked cycles, time-out) are expressed in the time axis of the
    final view, so a temporal shift after a mask moves the shaded spans with it (``length`` = samples).
    ``shift_mode`` is the temporal shift's mode, for marking its seam or padding.
    """
    marks = ViewMarks()
    for key, step in info.items():
        name = key.split(":", 1)[-1]
        applied = bool(np.asarray(_np(step.get("applied", True))).reshape(-1)[0])
        if not applied:
            continue
        if name in ("random_scale_crop", "random_resized_crop"):
            marks.crop = (int(_np(step["start"])[0]), int(_np(step["end"])[0]))
            if not bool(np.asarray(_np(step.get("resampled", True))).reshape(-1)[0]):  # the window kept its rate
                marks.outside = [(a, b) for a, b in ((0, marks.crop[0]), (marks.crop[1], length)) if b > a]
        elif name == "cardiac_cycle_mask":
            spans = _np(step["cycles"])[0]
            marks.masked = [(int(s), int(e)) for s, e in spans if s >= 0 and e > s]
            marks.n_cycles = len(marks.masked)
            lead_mask = _np(step.get("lead_mask"))
            if lead_mask is not None and not lead_mask[0].all():
                marks.masked_leads = [lead for lead, m in zip(leads, lead_mask[0]) if m]
        elif name == "temporal_shift":
            marks.shift = int(_np(step["shift"])[0])
            marks.shift_mode = shift_mode
            # spans drawn on the final view move with the shift (circular: a span may wrap into two; zero/edge:
            # what is shifted out of the window is gone, nothing wraps into the padding)
            marks.masked = shift_spans(marks.masked, marks.shift, length, shift_mode)
            if shift_mode != "circular":
                marks.n_cycles = len(marks.masked)  # cycles pushed out of the view are no longer in it
            if marks.timeout:
                moved = shift_spans([marks.timeout], marks.shift, length, shift_mode)
                marks.timeout = moved[0] if moved else None
            marks.outside = shift_spans(marks.outside, marks.shift, length, shift_mode)
        elif name == "time_out":
            s, e = (int(_np(step[k])[0]) for k in ("start", "end")) if "start" in step else (0, 0)
            if e > s:
                marks.timeout = (s, e)
    return marks


def shift_spans(
    spans: Sequence[tuple[int, int]], shift: int, length: int, mode: str = "circular"
) -> list[tuple[int, int]]:
    """Move ``[start, end)`` spans by ``shift`` samples as a temporal shift in ``mode`` moves the signal.

    ``"circular"`` wraps: a span crossing the end continues at the start (two pieces). ``"zero"`` and ``"edge"``
    pad the vacated samples: a span is cut where it leaves the window, and one shifted out entirely is gone.

    >>> shift_spans([(90, 100)], 5, 100), shift_spans([(90, 100)], 5, 100, "zero")
    ([(95, 100), (0, 5)], [(95, 100)])
    >>> shift_spans([(2, 8)], -10, 100, "edge")
    []
    """
    if mode != "circular":
        moved = [(max(s + shift, 0), min(e + shift, length)) for s, e in spans]
        return [(a, b) for a, b in moved if b > a]
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


#: Colour of each view (its title and its crop box on the original), in view order.
VIEW_COLOURS = ("#e66100", "#008b8b", "#b8860b", "#e7298a")  # none is a region colour of the traces
MASK_FILL = "rgba(120,120,120,0.30)"


@dataclass(frozen=True)
class _Drawing:
    """What every layer of an augmentation figure needs: the sampling rate, the time axis (s), the leads of the
    signals and those shown (canonical names), the region map and the vertical distance between shown leads."""

    fs: float
    t: np.ndarray
    lead_names: list[str]
    show: list[str]
    rmap: RegionMap
    offset: float = 4.0


def augmentation_figure(
    original: np.ndarray,
    views: Sequence[tuple[str, np.ndarray, ViewMarks]],
    fs: float,
    leads: Sequence[str] = LEADS,
    show_leads: Sequence[str] = ("II", "V2"),
    region_map: RegionMap | None = None,
    rpeaks: np.ndarray | None = None,
) -> go.Figure:
    """Original record above its augmented views (one subplot each), for the leads in ``show_leads``.

    On each view, masked cardiac cycles are shaded (shape name ``"masked cycle"``): across the whole view when
    every lead is masked, else only over the shown leads that are (one rectangle per span and lead). A time-out
    span is shaded (``"time-out"``), and so is what a rate-keeping crop zeroed (``"outside the crop"``); a circular
    shift's seam is a dotted line (``"shift seam"``) and a zero/edge
    shift's padding is hatched (``"shift padding"``). On the original, each view's crop window is outlined in the
    view's colour (``"crop window"``), with its label on its own line so labels of several views never overlap;
    each view's title has the same colour.
    """
    x0 = np.asarray(original, dtype=np.float64)
    show = [canonical_lead(lead) for lead in show_leads] or ["II"]
    d = _Drawing(
        fs,
        np.arange(x0.shape[1]) / fs,
        [canonical_lead(lead) for lead in leads],
        show,
        region_map or default_region_map(),
    )
    titles = ["original"] + [_view_title(name, m, fs, show) for name, _, m in views]
    fig = make_subplots(rows=1 + len(views), cols=1, shared_xaxes=True, vertical_spacing=0.06, subplot_titles=titles)
    # Shapes and annotations are collected as dicts and set once: plotly's add_vrect/add_shape re-validate every
    # earlier shape on each call (15 ms each here).
    shapes: list[dict] = []
    notes: list[dict] = []
    _add_leads(fig, d, 1, x0, True)
    if rpeaks is not None:
        _add_rpeaks(fig, d, x0, rpeaks)
    length = x0.shape[1]
    for v, (name, sig, marks) in enumerate(views, start=2):
        _add_leads(fig, d, v, np.asarray(sig, dtype=np.float64), False)
        colour = VIEW_COLOURS[(v - 2) % len(VIEW_COLOURS)]
        fig.layout.annotations[v - 1].font.color = colour  # the view's subplot title
        shapes += _view_shapes(d, v, marks, length)
        if marks.crop:
            shape, note = _crop_marks(d, v, name, marks.crop, colour)
            shapes.append(shape)
            notes.append(note)
    fig.update_xaxes(title_text="time (s)", row=1 + len(views), col=1)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(
        shapes=shapes,
        annotations=list(fig.layout.annotations) + notes,
        height=220 * (1 + len(views)),
        margin=dict(l=10, r=10, t=40, b=30),
        legend=dict(orientation="h", y=1.04, yanchor="bottom"),
    )
    return fig


def _view_title(name: str, m: ViewMarks, fs: float, show: Sequence[str]) -> str:
    """A view's subplot title: its name, shift, crop window and masked leads not shown."""
    if m.shift and m.shift_mode:
        shift = f" — shift {m.shift / fs:+.2f} s ({m.shift_mode})"
    else:
        shift = f" — shift {m.shift / fs:+.2f} s" if m.shift else ""
    crop = f" — crop {m.crop[0] / fs:.2f}–{m.crop[1] / fs:.2f} s" if m.crop else ""
    hidden = ""
    if m.masked_leads is not None and m.masked and not set(map(canonical_lead, m.masked_leads)) & set(show):
        hidden = f" — masked leads not shown ({', '.join(m.masked_leads)})"
    return f"{name}" + shift + crop + hidden


def _shape(row: int, name: str, x0: float, x1: float, y: tuple[float, float] | None = None, **style: object) -> dict:
    """A shape on subplot ``row`` (1-based; its axes are x, y, then x2, y2, ...): over the subplot's whole
    height, or from ``y[0]`` to ``y[1]`` in data units; ``style`` includes ``type`` when it is not a rect."""
    suffix = "" if row == 1 else str(row)
    y0, y1 = (0.0, 1.0) if y is None else y
    yref = f"y{suffix}" + (" domain" if y is None else "")
    return dict(type="rect", xref=f"x{suffix}", yref=yref, x0=x0, x1=x1, y0=y0, y1=y1, name=name) | style


def _add_leads(fig: go.Figure, d: _Drawing, row: int, sig: np.ndarray, legend: bool) -> None:
    """The shown leads of ``sig`` on subplot ``row``, one below the other."""
    for k, lead in enumerate(d.show):
        i = d.lead_names.index(lead)
        fig.add_trace(
            go.Scatter(
                x=d.t,
                y=sig[i] - k * d.offset,
                mode="lines",
                name=lead,
                legendgroup=lead,
                showlegend=legend,
                line=dict(color=lead_colour(lead, d.rmap), width=1.1),
            ),
            row=row,
            col=1,
        )


def _add_rpeaks(fig: go.Figure, d: _Drawing, x0: np.ndarray, rpeaks: np.ndarray) -> None:
    """Triangles over the R-peaks of the original's first shown lead."""
    peaks = np.asarray(rpeaks)
    peaks = peaks[(peaks >= 0) & (peaks < x0.shape[1])]
    i = d.lead_names.index(d.show[0])
    fig.add_trace(
        go.Scatter(
            x=d.t[peaks],
            y=x0[i, peaks] + 0.6,
            mode="markers",
            name="R-peak",
            marker=dict(symbol="triangle-down", size=7, color="#333"),
        ),
        row=1,
        col=1,
    )


def _view_shapes(d: _Drawing, v: int, marks: ViewMarks, length: int) -> list[dict]:
    """The shapes on view subplot ``v``: masked cycles, what the crop zeroed, the time-out, the shift's seam or
    padding."""
    fs, shapes = d.fs, []
    masked_rows = (
        [k for k, lead in enumerate(d.show) if lead in set(map(canonical_lead, marks.masked_leads))]
        if marks.masked_leads is not None
        else None
    )
    for s, e in marks.masked:
        if masked_rows is None:
            shapes.append(_shape(v, "masked cycle", s / fs, e / fs, fillcolor=MASK_FILL, line=dict(width=0)))
        for k in masked_rows or ():
            y = (-k * d.offset - d.offset / 2, -k * d.offset + d.offset / 2)
            shapes.append(_shape(v, "masked cycle", s / fs, e / fs, y, fillcolor=MASK_FILL, line=dict(width=0)))
    for s, e in marks.outside:
        fill = "rgba(120,120,120,0.16)"
        shapes.append(_shape(v, "outside the crop", s / fs, e / fs, fillcolor=fill, line=dict(width=0)))
    if marks.timeout:
        s, e = marks.timeout
        shapes.append(_shape(v, "time-out", s / fs, e / fs, fillcolor="rgba(200,60,60,0.18)", line=dict(width=0)))
    seam, padding = marks.shift_marks(length)
    if seam is not None:
        line = dict(color="#444", width=1.5, dash="dot")
        shapes.append(_shape(v, "shift seam", seam / fs, seam / fs, type="line", line=line))
    if padding is not None and padding[1] > padding[0]:
        s, e = padding
        shapes.append(_shape(v, "shift padding", s / fs, e / fs, fillcolor="rgba(90,90,200,0.12)", line=dict(width=0)))
    return shapes


def _crop_marks(d: _Drawing, v: int, name: str, crop: tuple[int, int], colour: str) -> tuple[dict, dict]:
    """View ``v``'s crop window outlined on the original, and its label (on the view's own line)."""
    shape = _shape(
        1,
        "crop window",
        crop[0] / d.fs,
        crop[1] / d.fs,
        fillcolor="rgba(0,0,0,0)",
        line=dict(color=colour, width=2, dash="dash"),
    )
    note = dict(
        x=crop[0] / d.fs,
        y=0.98 - 0.14 * (v - 2),
        yref="y domain",
        xref="x",
        text=f"crop: {name}",
        showarrow=False,
        xanchor="left",
        yanchor="top",
        bgcolor="rgba(255,255,255,0.8)",
        font=dict(color=colour, size=11),
    )
    return shape, note


def count_shapes(fig: go.Figure, name: str) -> int:
    """Number of layout shapes called ``name`` (for tests and summaries)."""
    return sum(1 for shape in fig.layout.shapes if shape.name == name)
