"""Representations: 2-D maps (fast UMAP or umap-learn, :mod:`aclecg.analysis.embed2d`) of a checkpoint's embeddings.

Embeddings and maps are cached on disk (``.cache/embeddings``, ``.cache/umap``) and in the server (keyed by what
changes a map, see ``pages/_maps.py``), so a map is computed once. Above
:data:`aclecg.analysis.record_map.MAX_MAP_POINTS` records a map shows a fixed stratified sample. The map is a
Vega-Lite chart (click a point, drag a box); "zoom and lasso" draws it with plotly. Picking points or typing a
record id shows that record's ECG.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from aclecg import viz
from aclecg.analysis import record_map, umap_learn
from aclecg.analysis.embed2d import TRUST_K
from aclecg.constraints import UMAP_METHODS
from aclecg.data.labels import describe_labels, label_colours
from aclecg.leads import LEADS
from pages import _maps
from pages._common import (
    HOW_TO_CHECKPOINT,
    checkpoint_paths,
    dataset_paths,
    label_descriptions,
    open_dataset,
    upload_box,
    user_errors,
)
from pages._layout import paper_chart
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


@st.cache_resource  # one shared frame, not a copy per rerun: the page only reads it (``view`` is its copy)
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
    view["colour"] = label_colours(view[col])
    colour_col = "colour"
    hover_label = col
else:
    colour_col = colour_choice
    hover_label = f"labels_{label_sets[0]}" if label_sets else "record_id"
hover = ["dataset", "record_id", hover_label, "age", "sex", "fold"]
find = st.text_input(
    "find a record by id",
    key="rep_find",
    placeholder="e.g. 17 or JS00001",
    help="Any record of the chosen datasets, also one the map's sample leaves out (it is placed on the map).",
)
found = record_map.find_record(table, find)
if find.strip() and found is None:
    st.warning(f"No record {find.strip()!r} in {', '.join(names)}.")
zoomable = st.toggle(
    "zoom and lasso",
    key="rep_zoom",
    help="the map as a plotly chart: zoom, pan, box and lasso (loads the chart library)",
)
cap = int(record_map.MAX_MAP_POINTS)
params = (int(n_neighbors), float(min_dist), str(method))


def picked_positions(event, n: int) -> list[int]:
    """Positions in the map of the points selected on the plotly map (``customdata[0]`` of each point)."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    positions = []
    for p in points:
        custom = p.get("customdata")
        if isinstance(custom, (list, tuple)) and custom and 0 <= int(float(custom[0])) < n:
            positions.append(int(float(custom[0])))
    return positions


def plotly_map(coords: np.ndarray, shown: pd.DataFrame, label: str, marks: dict, key: str) -> list[int]:
    """The plotly map (zoom, pan, box and lasso); the positions of the points picked on it."""
    fig = viz.embedding_scatter(coords, shown, colour_col, hover, title=label, marks=marks)
    event = st.plotly_chart(fig, width="stretch", key=key, on_select="rerun", selection_mode=("points", "box", "lasso"))
    return picked_positions(event, len(shown))


def draw(label: str, key: str) -> list[int]:
    """Compute (cached) and draw one checkpoint's map; the record table rows picked on it."""
    with user_errors(f"{label}: "):
        digest, fingerprints = _maps.identity(ckpts[label], paths)
        inp = _maps.map_input(ckpts[label], digest, paths, fingerprints, cap)
        note = st.empty()
        if method == "umap-learn" and not umap_learn.is_warm() and not _maps.on_disk(inp, *params):
            note.info(
                "umap-learn is warming up (numba compiles its kernels once per server, about 15-20 s); "
                "the map appears when it is done."
            )
        with st.spinner(f"{method} map of {len(inp.rows):,} points…"):
            fitted = _maps.fitted_map(ckpts[label], digest, paths, fingerprints, cap, *params)
        note.empty()
        marks: dict[str, tuple[np.ndarray, str]] = {}
        if uploaded is not None:
            xy = _maps.upload_position(ckpts[label], fitted, uploaded)
            marks[f"uploaded {uploaded.record_id}"] = (np.atleast_2d(xy), "upload")
        if found is not None:
            local = (names.index(str(table["dataset"].iloc[found])), int(table["row"].iloc[found]))
            xy = _maps.found_position(ckpts[label], digest, paths, fingerprints, cap, params, found, local)
            marks[f"record {table['record_id'].iloc[found]}"] = (xy, "found")
        shown = view.iloc[inp.rows].reset_index(drop=True)
        if zoomable:
            positions = plotly_map(fitted.coords, shown, label, marks, key)
        else:  # Vega-Lite: a new browser draws it sooner than a plotly chart
            chart = viz.embedding_map(
                fitted.coords, shown, colour_col, hover, title=label, marks=marks, legend=colour_choice
            )
            event = st.altair_chart(
                chart, width="stretch", key=f"{key}_v", on_select="rerun", selection_mode=list(viz.MAP_SELECTIONS)
            )
            positions = viz.map_selection(event, fitted.coords)
        known = fitted.trustworthiness is not None and np.isfinite(fitted.trustworthiness)
        trust = f"{fitted.trustworthiness:.3f}" if known else "– (too few points)"
        search = ""
        if fitted.knn == "approximate" and fitted.knn_recall is not None:
            search = f"; approximate neighbour search, {fitted.knn_recall:.1%} of the exact neighbours found"
        st.caption(
            f"Drawn with **{method}** ({'umap-learn UMAP' if method == 'umap-learn' else 'aclecg.analysis.embed2d'},"
            f" {int(n_neighbors)} neighbours, min_dist {float(min_dist):g}); trustworthiness at "
            f"k = {TRUST_K}: {trust}{search}. {inp.caption()}"
        )
        return [int(inp.rows[p]) for p in positions]
    return []


if compare:
    left, right = st.columns(2)
    with left:
        drawn = [draw(ck_a, "rep_map_a")]
    with right:
        drawn.append(draw(ck_b, "rep_map_b"))
else:
    drawn = [draw(ck_a, "rep_map_a")]


from_map = [r for rows in drawn for r in rows]
picked = list(dict.fromkeys(([found] if found is not None else []) + from_map))  # in order, no repeats
st.subheader("Picked record")
if not picked:
    st.info(
        "Click a point on the map (or drag a box around several; a lasso with **zoom and lasso**), or type a "
        "record id, to see its ECG."
    )
    st.stop()
pick_labels = (table["dataset"].astype(str) + " · " + table["record_id"].astype(str)).tolist()
if len(picked) > 1:
    st.caption(f"{len(picked)} records picked: choose one.")
row = st.selectbox("record", picked, format_func=lambda r: pick_labels[r], key=f"rep_pick_{hash(tuple(picked))}")
rec = table.iloc[row]
ds_path = datasets[rec["dataset"]]
ds = open_dataset(ds_path)
local = int(rec["row"])
descriptions = label_descriptions(ds_path)
st.markdown("; ".join(f"**{s}**: {describe_labels(rec.get(f'labels_{s}', ''), descriptions)}" for s in ds.label_sets))
paper_chart(
    viz.ecg_paper_figure(
        np.asarray(ds.signals[local]),
        ds.fs,
        LEADS,
        layout="3x4",
        rpeaks=ds.rpeaks(local),
        units="z",
        title=f"{rec['dataset']} · {rec['record_id']} (prepared, z-scored)",
    ),
    key="rep_ecg",
)
similar_ecgs("rep", ds_path, row=local, label_set=next(iter(ds.label_sets), ""))
