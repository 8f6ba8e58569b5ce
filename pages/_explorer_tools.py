"""The Explorer's viewer tools as Streamlit widgets over ``aclecg``: the measurements line, the paper chart with
calipers (two clicks -> Δt, rate, ΔmV), the enlarged lead, and the true-scale PDF / PNG downloads."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from aclecg.errors import DataError
from aclecg.measure import DISCLAIMER, Measurement, measure_record
from aclecg.viz import calipers
from aclecg.viz.leadzoom import lead_zoom_figure
from aclecg.viz.printout import GAINS, PAPER_SIZES_MM, measurement_line, printout_bytes, printout_figure
from pages._layout import paper_chart

__all__ = ["GAINS", "caliper_chart", "enlarged_lead", "measurements", "printout_downloads", "row_measurement"]


@st.cache_data(show_spinner=False, max_entries=256)
def row_measurement(dataset_path: str, row: int) -> dict:
    """The measurement of a prepared row (as ``aclecg measure --record``), as plain data for the cache."""
    from aclecg.measure.dataset import measure_row
    from pages._common import open_dataset

    return asdict(measure_row(open_dataset(dataset_path), row))


def upload_measurement(raw_mv: np.ndarray, fs: float) -> Measurement:
    return measure_record(raw_mv, fs)


def measurements(m: Measurement) -> None:
    """The HR / PR / QRS / QT / QTc line under the title, with the disclaimer and the measuring notes."""

    def v(value: float | None, unit: str) -> str:
        return "–" if value is None else f"{value:.0f} {unit}"

    line = measurement_line(m).split(" · ", 1)[1]  # PR, QRS, QT and QTc as the printout's header has them
    st.markdown(f"**Heart rate {v(m.hr_bpm, 'bpm')} · RR {v(m.rr_ms, 'ms')}** · {line}")
    notes = "; ".join(m.notes)
    st.caption(f"{DISCLAIMER}" + (f" ({notes})" if notes else ""))


def _state(key: str) -> dict:
    return st.session_state.setdefault(f"{key}_caliper", {"signature": None, "points": []})


def _on_click(key: str) -> None:
    """A click (a selected point) on the chart: it becomes the next caliper end (a third click starts anew)."""
    event = st.session_state.get(f"{key}_chart")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    meta = st.session_state.get(f"{key}_meta")
    if not points or not meta:
        return
    state = _state(key)
    try:
        p = calipers.locate(float(points[-1]["x"]), float(points[-1]["y"]), meta)
    except (DataError, KeyError, TypeError, ValueError):
        return
    state["points"] = [*(state["points"] if len(state["points"]) < 2 else []), asdict(p)]


def caliper_chart(key: str, fig: go.Figure, signature: object, units: str) -> None:
    """``fig`` (a paper figure) with calipers: a click on a trace sets an end; with two ends the caliper is drawn
    and Δt, the rate 60000/Δt and the amplitude difference are shown. ``signature`` names what is drawn (record,
    layout, gain): the calipers are cleared when it changes."""
    state = _state(key)
    if state["signature"] != signature:
        state.update(signature=signature, points=[])
    st.session_state[f"{key}_meta"] = dict(fig.layout.meta) if fig.layout.meta else None
    ends = [calipers.CaliperPoint(**p) for p in state["points"]]
    reading = calipers.measure(ends[0], ends[1], units) if len(ends) == 2 else None
    calipers.draw(calipers.clickable(fig), ends, reading)
    left, right = st.columns([4, 1])
    if reading is not None:
        left.markdown(f"**Calipers:** {reading.text()}")
    elif ends:
        left.markdown(f"**Calipers:** first end on {ends[0].lead} at {ends[0].t_s:.3f} s; click a second point.")
    else:
        left.caption("Calipers: click two points on a trace to measure the time (and rate) and amplitude between them.")
    if right.button("clear calipers", key=f"{key}_clear", disabled=not ends):
        state["points"] = []
        st.rerun()
    paper_chart(  # the figure's height follows its width: its rows fill it at any screen size
        fig,
        f"{key}_chart",
        on_select=lambda: _on_click(key),
        selection_mode="points",
        config={"displaylogo": False},
    )


def enlarged_lead(
    key: str, sig: np.ndarray, fs: float, peaks: np.ndarray, m: Measurement, units: str, gain: float
) -> None:
    """One lead large, for a chosen stretch of the record, with its R-peaks, P onset, QRS and QT marked."""
    from aclecg.leads import LEADS

    c1, c2, c3 = st.columns([1, 1, 2])
    lead = c1.selectbox("lead", LEADS, index=LEADS.index("II"), key=f"{key}_zoom_lead")
    seconds = sig.shape[1] / fs
    span = c2.radio("seconds shown", [2.5, 5.0, 10.0], horizontal=True, key=f"{key}_zoom_span")
    span = min(span, seconds)
    start = c3.slider("from (s)", 0.0, max(seconds - span, 0.0), 0.0, step=0.5, key=f"{key}_zoom_start")
    lo, hi = int(round(start * fs)), int(round((start + span) * fs))
    sel = peaks[(peaks >= lo) & (peaks < hi)] - lo
    fig = lead_zoom_figure(
        sig[LEADS.index(lead), lo:hi],
        fs,
        lead,
        sel,
        m.leads.get(lead) or m.points,
        units=units,
        gain_mm=gain,
        px_per_mm=min(14.0, 1100.0 / (span * 25.0 + 12.0)),
    )
    st.plotly_chart(fig, width="stretch", key=f"{key}_zoom_chart")
    pts = m.leads.get(lead) or {}
    if not pts or pts.get("qrs_on") is None:
        st.caption(f"No boundaries were found in {lead}: only its R-peaks are marked.")


def printout_downloads(
    key: str, sig: np.ndarray, fs: float, units: str, record_id: str, m: Measurement | None, gain: float
) -> None:
    """PDF and PNG of the 12-lead page at true scale (drawn when a button is pressed)."""
    cols = st.columns([1, 1, 1, 2])
    paper = cols[0].radio("paper", list(PAPER_SIZES_MM), horizontal=True, key=f"{key}_paper")
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"ecg_{record_id}_{gain:g}mm")

    def render(fmt: str):
        def make() -> bytes:
            fig = printout_figure(sig, fs, record_id=record_id, measurement=m, gain=gain, paper=paper, units=units)
            return printout_bytes(fig, fmt)

        return make

    for col, fmt, mime in ((cols[1], "pdf", "application/pdf"), (cols[2], "png", "image/png")):
        col.download_button(
            f"Download {fmt.upper()}",
            data=render(fmt),
            file_name=f"{stem}_{paper}.{fmt}",
            mime=mime,
            key=f"{key}_download_{fmt}",
            on_click="ignore",
        )
    cols[3].caption(f"{paper} landscape, 25 mm/s, {gain:g} mm/mV. Print at 100 % (actual size) for 1 mm squares.")
