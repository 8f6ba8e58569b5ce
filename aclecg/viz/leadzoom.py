"""One lead, large, with its measurements marked: the R-peaks, and for every beat the P onset, the QRS (shaded,
onset to offset) and the QT (QRS onset to T end, a bracket under the trace), from the median-beat boundaries of
:func:`aclecg.measure.measure_record` (ms from the R-peak, placed at each detected R-peak)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from aclecg.viz.paper import MARGIN_MM, MM_PER_S, ecg_paper_figure, top_left_note

__all__ = ["MARK_COLOURS", "lead_zoom_figure"]

#: Colours of the marks, by shape name.
MARK_COLOURS = {"P onset": "#2a9d8f", "QRS": "#e76f51", "T end": "#6a4c93", "QT": "#6a4c93"}


def _beats_marks(
    peaks: np.ndarray, fs: float, points: Mapping[str, float | None], low: float, high: float
) -> list[dict]:
    """Shapes for each R-peak (sample positions relative to the drawn window, at ``fs``)."""

    def x_of(r: int, ms: float) -> float:
        return MARGIN_MM + (r + ms / 1000.0 * fs) / fs * MM_PER_S

    shapes: list[dict] = []
    q_on, q_off, t_off, p_on = (points.get(k) for k in ("qrs_on", "qrs_off", "t_off", "p_on"))
    for r in peaks:
        if q_on is not None and q_off is not None:
            shapes.append(
                dict(
                    type="rect",
                    x0=x_of(r, q_on),
                    x1=x_of(r, q_off),
                    y0=low,
                    y1=high,
                    fillcolor="rgba(231, 111, 81, 0.18)",
                    line=dict(width=0),
                    layer="below",
                    name="QRS",
                )
            )
        for name, ms in (("P onset", p_on), ("T end", t_off)):
            if ms is not None:
                x = x_of(r, ms)
                shapes.append(
                    dict(
                        type="line",
                        x0=x,
                        x1=x,
                        y0=low,
                        y1=high,
                        line=dict(color=MARK_COLOURS[name], width=1.2, dash="dash"),
                        name=name,
                    )
                )
        if q_on is not None and t_off is not None:
            y = low + 1.5
            shapes.append(
                dict(
                    type="line",
                    x0=x_of(r, q_on),
                    x1=x_of(r, t_off),
                    y0=y,
                    y1=y,
                    line=dict(color=MARK_COLOURS["QT"], width=2),
                    name="QT",
                )
            )
    return shapes


def lead_zoom_figure(
    signal: np.ndarray,
    fs: float,
    lead: str,
    rpeaks: np.ndarray | None = None,
    points: Mapping[str, float | None] | None = None,
    units: str = "mV",
    gain_mm: float | None = None,
    px_per_mm: float = 8.0,
) -> go.Figure:
    """``signal (T,)`` of one ``lead`` on the paper grid, drawn ``px_per_mm`` pixels a millimetre (about twice the
    12-lead print), with each R-peak (sample positions at ``fs``) and, where ``points`` (the lead's boundaries in ms
    from the R-peak: ``p_on``, ``qrs_on``, ``qrs_off``, ``t_off``) are known, the P onset, QRS and QT of every beat.
    Marks are shapes named ``"P onset"``, ``"QRS"``, ``"T end"`` and ``"QT"``."""
    x = np.asarray(signal, dtype=np.float64).reshape(1, -1)
    peaks = np.asarray(rpeaks if rpeaks is not None else [], dtype=np.int64)
    peaks = peaks[(peaks >= 0) & (peaks < x.shape[1])]
    fig = ecg_paper_figure(
        x,
        fs,
        [lead],
        layout="stacked",
        rpeaks=peaks,
        units=units,
        gain_mm=gain_mm,
        colours="black",
        px_per_mm=px_per_mm,
        title=f"lead {lead}, enlarged",
    )
    y_range = fig.layout.yaxis.range
    low, high = float(y_range[0]) + 0.5, float(y_range[1]) - 0.5
    marks = _beats_marks(peaks, fs, points or {}, low, high)
    fig.update_layout(shapes=list(fig.layout.shapes) + marks)
    legend = [name for name in MARK_COLOURS if any(s["name"] == name for s in marks)]
    if legend:
        text = " · ".join(f"<span style='color:{MARK_COLOURS[n]}'>{n}</span>" for n in legend)
        fig.add_annotation(**top_left_note(text, dict(size=11)))
    return fig
