"""The "Similar ECGs" panel shared by the Explorer and the Representations pages.

A button runs :func:`aclecg.analysis.neighbours.similar_records` on a checkpoint's cached index of one prepared dataset.
The result stays in ``st.session_state`` (keyed by query, checkpoint and k), so picking a neighbour to compare
redraws only the two grids.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from aclecg import viz
from aclecg.data.labels import describe_labels
from aclecg.data.raw import display_window
from aclecg.leads import LEADS
from pages._common import (
    checkpoint_paths,
    embed_windows,
    embeddings_cache,
    label_descriptions,
    load_source,
    open_dataset,
    user_errors,
)
from pages._layout import paper_chart

#: Grid scale of the side-by-side comparison: two 10 s prints fill a wide page.
PX_PER_MM = 2.3


@st.cache_resource(show_spinner="Building the similarity index (once per checkpoint and dataset)…")
def _index(checkpoint: str, dataset_path: str):
    from aclecg.analysis.neighbours import cached_index

    return cached_index(load_source(checkpoint), open_dataset(dataset_path), cache_dir=embeddings_cache())


def _record_vector(checkpoint: str, dataset_path: str, row: int) -> np.ndarray:
    from aclecg.evaluation import cached_embeddings

    emb, _ = cached_embeddings(load_source(checkpoint), open_dataset(dataset_path), cache_dir=embeddings_cache())
    return np.asarray(emb[row], dtype=np.float32)


@st.cache_resource(max_entries=64, show_spinner=False)
def _record_figure(dataset_path: str, row: int, title: str):
    """A record of a dataset on the paper grid (raw mV when the raw record is readable, else prepared)."""
    sig, fs, units = display_window(open_dataset(dataset_path), row)
    return viz.ecg_paper_figure(
        sig, fs, LEADS, layout="3x4", units=units, title=title, colours="black", px_per_mm=PX_PER_MM
    )


@st.fragment  # its buttons and pickers rerun this panel only, not the whole Explorer
def similar_ecgs(key: str, dataset_path: str, row: int | None = None, upload: Any = None, label_set: str = "") -> None:
    """Lay out the panel for one query: a dataset row, or an uploaded record (``upload``, searched against it)."""
    ckpts = checkpoint_paths()
    st.subheader("Similar ECGs")
    if not ckpts:
        st.caption("No checkpoint to search with yet: pretrain one on the Pretraining page.")
        return
    ds = open_dataset(dataset_path)
    c1, c2, c3 = st.columns([3, 1, 1])
    ckpt = c1.selectbox("search with checkpoint", list(ckpts), key=f"{key}_sim_ckpt")
    k = int(c2.number_input("how many", 1, 20, 5, key=f"{key}_sim_k"))
    query = ("upload", upload.record_id) if upload is not None else ("row", int(row or 0))
    state_key = f"{key}_sim_result"
    want = (dataset_path, query, ckpt, k, label_set)
    c3.write("")  # align the button with the inputs
    if c3.button("Find similar ECGs", key=f"{key}_sim_go", width="stretch"):
        with user_errors(), st.spinner("Searching…"):
            index = _index(ckpts[ckpt], dataset_path)
            if upload is not None:
                vector, exclude = embed_windows(ckpts[ckpt], upload.windows[:1], upload.fs)[0], None
            else:
                vector, exclude = _record_vector(ckpts[ckpt], dataset_path, int(row or 0)), int(row or 0)
            from aclecg.analysis.neighbours import similar_records

            found = similar_records(index, ds.records, vector, k=k, exclude_row=exclude, label_set=label_set or None)
            st.session_state[state_key] = (want, found)
    stored = st.session_state.get(state_key)
    if not stored or stored[0] != want:
        st.caption(
            f"The {k} records of this dataset nearest to this ECG in the checkpoint's embedding space "
            "(cosine similarity of standardised embeddings; exact search)."
        )
        return
    found = stored[1]
    descriptions = label_descriptions(dataset_path)
    shown = found.assign(labels=[describe_labels(v, descriptions) for v in found.get("labels", [""] * len(found))])
    st.dataframe(
        shown[["rank", "record_id", "similarity", "labels"]],
        hide_index=True,
        width="stretch",
        column_config={"similarity": st.column_config.NumberColumn("similarity", format="%.3f")},
    )
    ranks = shown["rank"].tolist()
    pick = st.radio(
        "compare with",
        ranks,
        format_func=lambda r: f"#{r} {shown['record_id'].iloc[r - 1]}",
        horizontal=True,
        key=f"{key}_sim_pick",
    )
    hit = shown.iloc[int(pick) - 1]
    left, right = st.columns(2)
    with left, user_errors():
        if upload is not None:
            paper_chart(
                viz.ecg_paper_figure(
                    upload.raw_window(),
                    upload.raw_fs,
                    LEADS,
                    layout="3x4",
                    units="mV",
                    title=f"query: uploaded {upload.record_id}",
                    colours="black",
                    px_per_mm=PX_PER_MM,
                ),
                f"{key}_sim_query",
            )
        else:
            title = f"query: {ds.records['record_id'].iloc[int(row or 0)]}"
            paper_chart(_record_figure(dataset_path, int(row or 0), title), f"{key}_sim_query")
    with right, user_errors():
        title = f"#{int(hit['rank'])} {hit['record_id']} · similarity {float(hit['similarity']):.3f}"
        paper_chart(_record_figure(dataset_path, int(hit["row"]), title), f"{key}_sim_hit")
        st.caption(hit["labels"] or "(no labels)")
