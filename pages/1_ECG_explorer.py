"""ECG explorer: pick a dataset and record, see its 12 leads on ECG paper (3x4 + rhythm strip, or stacked)."""

from __future__ import annotations


import numpy as np
import streamlit as st

from aclecg import viz
from aclecg.leads import LEADS
from pages._common import (dataset_paths, describe_labels, label_descriptions, open_dataset,
                           raw_window_mv, upload_box, user_errors)

st.title("ECG explorer")
datasets = dataset_paths()
if not datasets:
    st.info("No prepared dataset found. Run `python -m aclecg bundled`.")
    st.stop()

left, right = st.columns([1, 3])
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
    ids = records["record_id"].astype(str).to_numpy()
    win = records["window"].to_numpy() if "window" in records else np.zeros(len(records), dtype=int)
    row_of = {ids[i] + (f" · window {win[i]}" if win[i] else ""): int(i) for i in rows[:5000]}
    row = row_of[st.selectbox("record", list(row_of), key="explorer_record")]
    layout = st.radio("layout", ["3x4 + rhythm strip", "stacked 12-lead"], key="explorer_layout")
    show_peaks = st.checkbox("mark R-peaks", value=True, key="explorer_peaks")
    source = st.radio("signal", ["raw record (mV)", "prepared (z-scored)"], key="explorer_source",
                      help="Prepared signals are filtered and z-scored per lead; the clinical grid is meant for mV.")

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
                    st.info("The raw record is not available for this dataset: showing the prepared (z-scored) "
                            "signal; amplitudes are in standard deviations, not mV.")
                sig, fs, units = np.asarray(ds.signals[row]), ds.fs, "z"
            peaks = ds.rpeaks(int(row)) * (fs / ds.fs) if show_peaks else None
            title = f"{name} · record {rec['record_id']}"
            lab_text = describe_labels(rec[f"labels_{label_set}"], descriptions)
        fig = viz.ecg_paper_figure(sig, fs, LEADS, layout=lay,
                                   rpeaks=None if peaks is None else np.round(peaks).astype(int), units=units,
                                   title=title)
        st.markdown(f"**Labels ({label_set if uploaded is None else 'from header'}):** {lab_text}")
        if uploaded is None:
            meta = records.iloc[row]
            st.caption(f"patient {meta['patient_id']} · age {meta['age']} · sex {meta['sex'] or '?'} · "
                       f"fold {meta['fold']} ({meta['split']}) · source `{meta['source']}`")
        st.plotly_chart(fig, width="stretch", key="explorer_chart")
