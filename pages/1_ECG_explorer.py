"""ECG explorer: pick a dataset and record, see its 12 leads on ECG paper (3x4 + rhythm strip, or stacked)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from aclecg import viz
from aclecg.data.labels import describe_labels, row_choices
from aclecg.data.rpeaks import rhythm_summary
from aclecg.leads import LEADS
from pages._attribution import region_attribution
from pages._common import (
    dataset_paths,
    label_descriptions,
    open_dataset,
    raw_window_mv,
    upload_box,
    user_errors,
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
        mask &= col.apply(lambda s: any(c in s.split(";") for c in chosen)).to_numpy()
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

    def _step(by: int) -> None:
        here = choices.index(st.session_state["explorer_record"])
        st.session_state["explorer_record"] = choices[(here + by) % len(choices)]

    prev_col, next_col = st.columns(2)
    prev_col.button("◀ previous", on_click=_step, args=(-1,), key="explorer_prev", width="stretch")
    next_col.button("next ▶", on_click=_step, args=(1,), key="explorer_next", width="stretch")
    row = row_of[st.selectbox("record", choices, key="explorer_record")]
    layout = st.radio("layout", ["3x4 + rhythm strip", "stacked 12-lead"], key="explorer_layout")
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
            peaks = uploaded.rpeaks[0] * (fs / uploaded.fs) if show_peaks else None
            sig = sig[:, : int(round(10 * fs))]
            title = f"uploaded {uploaded.record_id}"
            lab_text = "; ".join(f"{k}: {', '.join(v)}" for k, v in uploaded.labels.items() if v) or "(no labels)"
        else:
            rec = records.iloc[row]
            raw = raw_window_mv(datasets[name], int(row)) if source.startswith("raw") else None
            if raw is not None:
                sig, fs = raw
                units = "mV"
            else:
                if source.startswith("raw"):
                    st.info(
                        "The raw record is not available for this dataset: showing the prepared (z-scored) "
                        "signal; amplitudes are in standard deviations, not mV."
                    )
                sig, fs, units = np.asarray(ds.signals[row]), ds.fs, "z"
            peaks = ds.rpeaks(int(row)) * (fs / ds.fs) if show_peaks else None
            title = f"{name} · record {rec['record_id']}"
            lab_text = describe_labels(rec[f"labels_{label_set}"], descriptions)
        fig = viz.ecg_paper_figure(
            sig,
            fs,
            LEADS,
            layout=lay,
            rpeaks=None if peaks is None else np.round(peaks).astype(int),
            units=units,
            title=title,
            colours="black" if colours == "black" else "region",
            px_per_mm=PX_PER_MM,
        )
        if uploaded is not None:
            beats, beats_fs, classes_here = uploaded.rpeaks[0], uploaded.fs, set()
        else:
            beats, beats_fs = ds.rpeaks(int(row)), ds.fs
            classes_here = set(filter(None, str(rec[f"labels_{label_set}"]).split(";")))
        rhythm = rhythm_summary(beats, beats_fs, classes_here)
        if rhythm["hr_bpm"] is not None:
            st.markdown(
                f"**Heart rate {rhythm['hr_bpm']:.0f} bpm · RR {rhythm['rr_s']:.2f} s** "
                f"(median of {rhythm['n_beats'] - 1} intervals from the detected R-peaks)"
            )
        if rhythm["note"]:
            st.caption(
                f"Rhythm figures: {rhythm['note']}. Other intervals (PR, QRS, QT) are not measured here: "
                "they need a delineation this app does not do reliably."
            )
        st.markdown(f"**Labels ({label_set if uploaded is None else 'from header'}):** {lab_text}")
        if uploaded is None:
            meta = records.iloc[row]
            st.caption(
                f"patient {meta['patient_id']} · age {meta['age']} · sex {meta['sex'] or '?'} · "
                f"fold {meta['fold']} ({meta['split']}) · source `{meta['source']}`"
            )
        st.plotly_chart(fig, width="stretch", key="explorer_chart")

with right:
    similar_ecgs("explorer", datasets[name], row=int(row), upload=uploaded, label_set=label_set)

with right:
    region_attribution("explorer", datasets[name], row=int(row), upload=uploaded, label_set=label_set)
