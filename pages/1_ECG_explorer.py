"""ECG explorer: pick a dataset and record, see its 12 leads on ECG paper (3x4 + rhythm strip, or stacked), its
measurements, calipers, one lead enlarged, and a true-scale PDF / PNG of the page."""

from __future__ import annotations

import numpy as np
import streamlit as st

from aclecg import viz
from aclecg.data.labels import describe_labels, row_choices, split_labels
from aclecg.data.raw import display_window
from aclecg.leads import LEADS
from aclecg.measure import Measurement
from pages._attribution import region_attribution
from pages._common import (
    dataset_paths,
    label_descriptions,
    open_dataset,
    upload_box,
    user_errors,
)
from pages._explorer_tools import (
    GAINS,
    caliper_chart,
    enlarged_lead,
    measurements,
    printout_downloads,
    row_measurement,
    upload_measurement,
)
from pages._similar import similar_ecgs

st.title("ECG explorer")
datasets = dataset_paths()
if not datasets:
    st.info("No prepared dataset found. Run `python -m aclecg bundled`.")
    st.stop()

#: Pixels per paper millimetre: the 10 s print (262 mm) then fills the page's wide right column.
PX_PER_MM = 3.9

left, right = st.columns([1, 4])
with left:
    name = st.selectbox("dataset", list(datasets), key="explorer_dataset")
    ds = open_dataset(datasets[name])
    records = ds.records
    label_set = st.selectbox("label set", list(ds.label_sets), key="explorer_label_set")
    descriptions = label_descriptions(datasets[name])
    classes = ds.label_sets[label_set]
    options = {(f"{c} — {descriptions[c]}" if c in descriptions else c): c for c in classes}
    chosen = [options[o] for o in st.multiselect("filter by label", list(options), key="explorer_labels")]
    query = st.text_input("search record id", key="explorer_query", placeholder="e.g. 12 or JS000")
    mask = np.ones(len(records), dtype=bool)
    if chosen:
        col = records[f"labels_{label_set}"].fillna("")
        mask &= col.apply(lambda s: any(c in split_labels(s) for c in chosen)).to_numpy()
    if query.strip():
        mask &= records["record_id"].astype(str).str.contains(query.strip(), case=False, regex=False).to_numpy()
    rows = np.flatnonzero(mask)
    st.caption(f"{rows.size} of {len(records)} windows match")
    if rows.size == 0:
        st.warning("No record matches the filter.")
        st.stop()
    row_of = row_choices(records, rows)
    choices = list(row_of)
    if st.session_state.get("explorer_record") not in row_of:
        st.session_state["explorer_record"] = choices[0]

    def _show_record() -> None:  # choosing a record shows it, even while an upload is loaded
        st.session_state["explorer_use"] = False

    def _step(by: int) -> None:
        here = choices.index(st.session_state["explorer_record"])
        st.session_state["explorer_record"] = choices[(here + by) % len(choices)]
        _show_record()

    prev_col, next_col = st.columns(2)
    prev_col.button("◀ previous", on_click=_step, args=(-1,), key="explorer_prev", width="stretch")
    next_col.button("next ▶", on_click=_step, args=(1,), key="explorer_next", width="stretch")
    row = row_of[st.selectbox("record", choices, key="explorer_record", on_change=_show_record)]
    layout = st.radio("layout", ["3x4 + rhythm strip", "stacked 12-lead"], key="explorer_layout")
    gain = st.selectbox(
        "gain", GAINS, index=GAINS.index(10.0), key="explorer_gain", format_func=lambda g: f"{g:g} mm/mV"
    )
    show_peaks = st.checkbox("mark R-peaks", value=True, key="explorer_peaks")
    colours = st.radio(
        "traces",
        ["black", "region colours"],
        key="explorer_colours",
        horizontal=True,
        help="black is the clinical print; region colours show the anatomical lead regions",
    )
    source = st.radio(
        "signal",
        ["raw record (mV)", "prepared (z-scored)"],
        key="explorer_source",
        help="Prepared signals are filtered and z-scored per lead; the clinical grid is meant for mV.",
    )
    interactive = st.toggle(
        "calipers and zoom",
        key="explorer_calipers",
        help="Draw the ECG as an interactive chart: click two points on a trace to measure the interval, rate and "
        "amplitude between them; drag to zoom. Off, the print is drawn on the server, which opens faster.",
    )

uploaded = None
with right:
    uploaded = upload_box("explorer", fs=ds.fs, seconds=ds.n_samples / ds.fs)

with right:
    lay = "3x4" if layout.startswith("3x4") else "stacked"
    with user_errors():
        if uploaded is not None:
            sig, fs, units = uploaded.raw_mv, uploaded.raw_fs, "mV"
            if source.startswith("prepared"):
                sig, fs, units = uploaded.windows[0], uploaded.fs, "z"
            all_peaks = uploaded.rpeaks[0] * (fs / uploaded.fs)
            sig = sig[:, : int(round(10 * fs))]
            title = f"uploaded {uploaded.record_id}"
            record_id = str(uploaded.record_id)
            lab_text = "; ".join(f"{k}: {', '.join(v)}" for k, v in uploaded.labels.items() if v) or "(no labels)"
            m = upload_measurement(uploaded.raw_mv[:, : int(round(10 * uploaded.raw_fs))], uploaded.raw_fs)
        else:
            rec = records.iloc[row]
            if source.startswith("raw"):
                sig, fs, units = display_window(ds, int(row))
                if units != "mV":
                    st.info(
                        "The raw record is not available for this dataset: showing the prepared (z-scored) "
                        "signal; amplitudes are in standard deviations, not mV."
                    )
            else:
                sig, fs, units = np.asarray(ds.signals[row]), ds.fs, "z"
            all_peaks = ds.rpeaks(int(row)) * (fs / ds.fs)
            title = f"{name} · record {rec['record_id']}"
            record_id = f"{name} {rec['record_id']}"
            lab_text = describe_labels(rec[f"labels_{label_set}"], descriptions)
            m = Measurement(**row_measurement(datasets[name], int(row)))
        gain_mm = gain if units == "mV" else gain / 4  # z-scored: 2.5 mm per SD at the standard gain
        peaks = np.round(all_peaks).astype(int)
        fig = viz.ecg_paper_figure(
            sig,
            fs,
            LEADS,
            layout=lay,
            rpeaks=peaks if show_peaks else None,
            units=units,
            title=title,
            colours="black" if colours == "black" else "region",
            px_per_mm=PX_PER_MM,
            gain_mm=gain_mm,
        )
        measurements(m)
        st.markdown(f"**Labels ({label_set if uploaded is None else 'from header'}):** {lab_text}")
        if uploaded is None:
            meta = records.iloc[row]
            st.caption(
                f"patient {meta['patient_id']} · age {meta['age']} · sex {meta['sex'] or '?'} · "
                f"fold {meta['fold']} ({meta['split']}) · source `{meta['source']}`"
            )
        if interactive:
            caliper_chart("explorer", fig, (title, lay, gain, source), units)
        else:  # drawn on the server: the page opens without loading the chart library (docs/app.md)
            st.image(viz.paper_svg(fig), width="stretch")
        printout_downloads("explorer", sig, fs, units, record_id, m, gain)
        if st.toggle("enlarge one lead, with its measurements marked", key="explorer_zoom"):
            enlarged_lead("explorer", sig, fs, peaks, m, units, gain_mm)

with right:
    similar_ecgs("explorer", datasets[name], row=int(row), upload=uploaded, label_set=label_set)

with right:
    region_attribution("explorer", datasets[name], row=int(row), upload=uploaded, label_set=label_set)
