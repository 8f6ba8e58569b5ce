"""Representations: 2-D maps (fast UMAP or umap-learn, :mod:`aclecg.embed2d`) of a checkpoint's embeddings.

Embeddings and maps are cached on disk (``.cache/embeddings``, ``.cache/umap``), so a map is computed once.
Picking a point (click, box or lasso) shows that record's ECG.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from aclecg import umap_learn, viz
from aclecg.constraints import UMAP_METHODS
from aclecg.data.labels import describe_labels
from aclecg.embed2d import TRUST_K, place_points
from aclecg.leads import LEADS
from pages._common import (
    HOW_TO_CHECKPOINT,
    checkpoint_paths,
    dataset_paths,
    embed_windows,
    label_descriptions,
    open_dataset,
    umap_map,
    umap_map_cached,
    upload_box,
    user_errors,
)
from pages._similar import similar_ecgs

st.title("Representations")
ckpts = checkpoint_paths()
datasets = dataset_paths()
if not ckpts:
    st.info(HOW_TO_CHECKPOINT)
    st.stop()
if not datasets:
    st.info("No prepared dataset found. Run `python -m aclecg bundled`.")
    st.stop()

c1, c2, c3 = st.columns([2, 2, 1])
chosen_ds = c1.multiselect(
    "datasets (several = one joint map)", list(datasets), default=list(datasets)[:1], key="rep_datasets"
)
ck_a = c2.selectbox("checkpoint", list(ckpts), key="rep_ckpt")
compare = c3.toggle("compare two", key="rep_compare")
ck_b = (
    c2.selectbox("second checkpoint", [k for k in ckpts if k != ck_a] or [ck_a], key="rep_ckpt_b") if compare else None
)
if not chosen_ds:
    st.warning("Pick at least one dataset.")
    st.stop()


@st.cache_data
def joint_table(paths: tuple[str, ...], names: tuple[str, ...]) -> pd.DataFrame:
    """Records of several datasets, stacked (see :func:`aclecg.data.joint.stack_records`)."""
    from aclecg.data.joint import stack_records

    return stack_records({name: open_dataset(path) for name, path in zip(names, paths)})


names = tuple(chosen_ds)
paths = tuple(datasets[n] for n in names)
table = joint_table(paths, names)
label_sets = [c[len("labels_") :] for c in table.columns if c.startswith("labels_")]
c4, c5, c6, c7 = st.columns([3, 3, 3, 2])
umap_learn.warm_up()  # compile umap-learn's kernels in the background, once per server, before anyone asks
method = c7.radio(
    "method",
    list(UMAP_METHODS),
    key="rep_method",
    horizontal=True,
    help="fast: this package's torch UMAP layout, for exploring. umap-learn: umap-learn's own UMAP on "
    "the same features and parameters, for a figure in a paper.",
)
colour_choice = c4.selectbox(
    "colour by", [f"label: {s}" for s in label_sets] + ["dataset", "fold", "split", "sex", "age"], key="rep_colour"
)
n_neighbors = c5.slider("neighbours", 5, 50, 15, key="rep_k")
min_dist = c6.slider("min distance", 0.0, 0.99, 0.1, 0.01, key="rep_min_dist")
uploaded = upload_box(
    "rep", fs=open_dataset(paths[0]).fs, seconds=open_dataset(paths[0]).n_samples / open_dataset(paths[0]).fs
)

view = table.copy()
if colour_choice.startswith("label: "):
    col = f"labels_{colour_choice[len('label: ') :]}"
    raw = view[col].fillna("").astype(str)
    view["colour"] = np.where(raw.str.contains(";"), "multiple", np.where(raw == "", "(none)", raw))
    colour_col = "colour"
    hover_label = col
else:
    colour_col = colour_choice
    hover_label = f"labels_{label_sets[0]}" if label_sets else "record_id"
hover = ["dataset", "record_id", hover_label, "age", "sex", "fold"]


def draw(label: str, key: str) -> dict | None:
    """Compute (cached) and draw one checkpoint's map; returns the selection event."""
    with user_errors(f"{label}: "):
        note = st.empty()
        if (
            method == "umap-learn"
            and not umap_learn.is_warm()
            and not umap_map_cached(ckpts[label], paths, int(n_neighbors), float(min_dist), method)
        ):
            note.info(
                "umap-learn is warming up (numba compiles its kernels once per server, about 15-20 s); "
                "the map appears when it is done."
            )
        with st.spinner(f"{method} map…"):
            fitted = umap_map(
                ckpts[label], paths, n_neighbors=int(n_neighbors), min_dist=float(min_dist), method=method
            )
        note.empty()
        highlight = None
        if uploaded is not None:
            highlight = place_points(fitted, embed_windows(ckpts[label], uploaded.windows, uploaded.fs))
        fig = viz.embedding_scatter(
            fitted.coords,
            view,
            colour_col,
            hover,
            highlight=highlight,
            highlight_name=f"uploaded {uploaded.record_id}" if uploaded is not None else "",
            title=label,
        )
        event = st.plotly_chart(
            fig, width="stretch", key=key, on_select="rerun", selection_mode=("points", "box", "lasso")
        )
        trust = "–" if fitted.trustworthiness is None else f"{fitted.trustworthiness:.3f}"
        st.caption(
            f"Drawn with **{method}** ({'umap-learn UMAP' if method == 'umap-learn' else 'aclecg.embed2d'},"
            f" {int(n_neighbors)} neighbours, min_dist {float(min_dist):g}); trustworthiness at "
            f"k = {TRUST_K}: {trust}."
        )
        return event
    return None


if compare:
    left, right = st.columns(2)
    with left:
        events = [draw(ck_a, "rep_map_a")]
    with right:
        events.append(draw(ck_b, "rep_map_b"))
else:
    events = [draw(ck_a, "rep_map_a")]


def picked_rows(event) -> list[int]:
    if not event:
        return []
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    rows = []
    for p in points:
        custom = p.get("customdata")
        if isinstance(custom, (list, tuple)) and custom:
            rows.append(int(float(custom[0])))
    return rows


picked = list(dict.fromkeys(r for e in events for r in picked_rows(e)))  # in selection order, no repeats
st.subheader("Picked record")
if not picked:
    st.info("Click a point on the map (or draw a box or lasso around several) to see its ECG here.")
    st.stop()
pick_labels = (table["dataset"].astype(str) + " · " + table["record_id"].astype(str)).tolist()
if len(picked) > 1:
    st.caption(f"{len(picked)} points selected: choose one.")
row = st.selectbox("record", picked, format_func=lambda r: pick_labels[r], key=f"rep_pick_{hash(tuple(picked))}")
rec = table.iloc[row]
ds_path = datasets[rec["dataset"]]
ds = open_dataset(ds_path)
local = int(rec["row"])
descriptions = label_descriptions(ds_path)
st.markdown("; ".join(f"**{s}**: {describe_labels(rec.get(f'labels_{s}', ''), descriptions)}" for s in ds.label_sets))
st.plotly_chart(
    viz.ecg_paper_figure(
        np.asarray(ds.signals[local]),
        ds.fs,
        LEADS,
        layout="3x4",
        rpeaks=ds.rpeaks(local),
        units="z",
        title=f"{rec['dataset']} · {rec['record_id']} (prepared, z-scored)",
    ),
    width="stretch",
    key="rep_ecg",
)
similar_ecgs("rep", ds_path, row=local, label_set=next(iter(ds.label_sets), ""))
