"""The "Which region drives the prediction?" panel of the Explorer: occlusion attribution of a probe's scores.

A button runs :func:`aclecg.analysis.attribution_eval.explain` with the checkpoint's cached linear probe
(:func:`aclecg.analysis.attribution_eval.cached_probe`). The result stays in ``st.session_state`` (keyed by query,
checkpoint, fill and label set), so choosing another class redraws only the figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from aclecg import viz
from aclecg.data.raw import display_window
from aclecg.leads import LEADS, RegionMap, default_region_map
from pages._common import (
    checkpoint_paths,
    embeddings_cache,
    label_descriptions,
    load_source,
    open_dataset,
    user_errors,
)
from pages._layout import paper_chart

PX_PER_MM = 3.6


@st.cache_resource(show_spinner="Fitting the linear probe (once per checkpoint, dataset and label set)…")
def _probe(checkpoint: str, dataset_path: str, label_set: str):
    from aclecg.analysis.attribution_eval import cached_probe

    return cached_probe(load_source(checkpoint), open_dataset(dataset_path), label_set, cache_dir=embeddings_cache())


@st.cache_data(show_spinner=False)
def _probe_records(dataset_path: str, label_set: str) -> int:
    from aclecg.analysis.attribution_eval import probe_training_records

    return probe_training_records(open_dataset(dataset_path), label_set)


def probe_warning(dataset_path: str, label_set: str) -> None:
    """The probe's training-record count, and a warning when it is too small to trust."""
    from aclecg.analysis.attribution_eval import FEW_PROBE_RECORDS

    n = _probe_records(dataset_path, label_set)
    if n < FEW_PROBE_RECORDS:
        st.warning(
            f"The probe behind this explanation was fit on only {n} training records ({label_set} labels of this "
            f"dataset; under {FEW_PROBE_RECORDS}): its scores, and so these bars, may change a lot with other "
            "records. Read them as a rough hint."
        )
    else:
        st.caption(f"Probe fit on {n} training records ({label_set} labels of this dataset).")


def session_region_map() -> RegionMap:
    """The region map edited on the Lead regions page in this browser session (the default map until then)."""
    stored = st.session_state.get("region_map")
    try:
        return RegionMap.from_dict(stored) if stored else default_region_map()
    except (ValueError, TypeError):
        return default_region_map()


def _query_window(dataset_path: str, row: int | None, upload: Any) -> np.ndarray:
    if upload is not None:
        return np.asarray(upload.windows[:1], dtype=np.float32)
    return np.asarray(open_dataset(dataset_path).signals[int(row or 0) : int(row or 0) + 1], dtype=np.float32)


def _grid(dataset_path: str, row: int | None, upload: Any, highlight: tuple[str, ...], title: str):
    if upload is not None:
        sig, fs, units = upload.raw_window(), upload.raw_fs, "mV"
    else:
        sig, fs, units = display_window(open_dataset(dataset_path), int(row or 0))
    return viz.ecg_paper_figure(
        sig,
        fs,
        LEADS,
        layout="3x4",
        units=units,
        title=title,
        colours="black",
        px_per_mm=PX_PER_MM,
        highlight=highlight,
    )


@st.fragment  # its buttons and pickers rerun this panel only, not the whole Explorer
def region_attribution(
    key: str, dataset_path: str, row: int | None = None, upload: Any = None, label_set: str = ""
) -> None:
    """Lay out the panel for one query: a dataset row or an uploaded record (probe fitted on the dataset)."""
    ckpts = checkpoint_paths()
    st.subheader("Which region drives the prediction?")
    if not ckpts:
        st.caption("No checkpoint to explain yet: pretrain one on the Pretraining page.")
        return
    ds = open_dataset(dataset_path)
    label_set = label_set or next(iter(ds.label_sets), "")
    c1, c2, c3 = st.columns([3, 1, 1])
    ckpt = c1.selectbox("explain checkpoint", list(ckpts), key=f"{key}_attr_ckpt")
    fill = c2.selectbox(
        "occlusion fill",
        ["zero", "median"],
        key=f"{key}_attr_fill",
        help="hidden leads are set to 0 or to each lead's median (the Physio-AUG cycle mask's fills)",
    )
    query = ("upload", upload.record_id) if upload is not None else ("row", int(row or 0))
    state_key = f"{key}_attr_result"
    rmap = session_region_map()
    want = (dataset_path, query, ckpt, fill, label_set, str(rmap.to_dict()))
    c3.write("")  # align the button with the inputs
    if c3.button("Explain by region", key=f"{key}_attr_go", width="stretch"):
        with user_errors(), st.spinner("Occluding each region and lead…"):
            from aclecg.analysis.attribution_eval import explain

            probe = _probe(ckpts[ckpt], dataset_path, label_set)
            attr = explain(
                load_source(ckpts[ckpt]),
                probe,
                _query_window(dataset_path, row, upload),
                ds.leads,
                ds.fs,
                fill=fill,
                region_map=rmap,
            )
            st.session_state[state_key] = (want, attr.table(0))
    stored = st.session_state.get(state_key)
    if not stored or stored[0] != want:
        st.caption(
            f"A linear probe on the checkpoint's embeddings ({label_set} labels of this dataset's training folds) "
            f"scores this ECG; each lead region ({', '.join(rmap.regions)}; edit them on the Lead regions page), "
            "then each lead, is hidden in turn and the fall of "
            "every class score is shown. It tells what this model relies on, not where the disease is: leads are "
            "correlated, and III, aVR, aVL and aVF follow from I and II."
        )
        return
    table = stored[1]
    probe_warning(dataset_path, label_set)
    scores = table.drop_duplicates("class").set_index("class")["score"]
    descriptions = label_descriptions(dataset_path)
    classes = list(scores.sort_values(ascending=False).index)
    pick = st.radio(
        "class",
        classes,
        format_func=lambda c: (
            f"{c} ({descriptions.get(c, c)}) {scores[c]:.2f}" if c in descriptions else f"{c} {scores[c]:.2f}"
        ),
        horizontal=True,
        key=f"{key}_attr_class",
    )
    with user_errors():
        effects = viz.region_effects(table, pick)
        top = viz.strongest_region(effects)
        leads = rmap.regions.get(top, ()) if top else ()
        left, right = st.columns(2)
        left.plotly_chart(viz.attribution_bars(table, pick), width="stretch", key=f"{key}_attr_bars")
        right.plotly_chart(
            viz.region_effect_diagram(effects, rmap, class_name=pick), width="stretch", key=f"{key}_attr_diagram"
        )
        title = (
            f"shaded: the {top} leads, largest {pick} drop ({effects[top]:+.3f})" if top else f"no region lowers {pick}"
        )
        paper_chart(_grid(dataset_path, row, upload, tuple(leads), title), f"{key}_attr_grid")
