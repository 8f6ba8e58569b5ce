"""Lead regions: the anatomical grouping of leads, an editable region map, and region-embedding similarity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from aclecg import viz
from aclecg.analysis.similarity import region_similarity, sample_lead_features
from aclecg.leads import LEADS, RegionMap, default_region_map
from pages._common import HOW_TO_CHECKPOINT, checkpoint_paths, dataset_paths, load_source, open_dataset, user_errors

#: Widths the two pictures are drawn at (at most their column's width on a narrow screen).
DIAGRAM_PX, HEATMAP_PX = 860, 560

st.title("Lead regions")
st.markdown(
    "ACL-ECG pools the features of leads that look at the same wall of the left ventricle: **septal** "
    "(V1–V2), **anterior** (V3–V4), **lateral** (I, aVL, V5–V6) and **inferior** (II, III, aVF); aVR "
    "belongs to none. Edit the map below to try another grouping (it is validated as you type). A valid map is "
    "kept for this browser session and used by **Explain by region** on the ECG explorer and by the similarity "
    "below; it does not change how checkpoints were trained."
)


def _table(rmap: RegionMap) -> pd.DataFrame:
    return pd.DataFrame({"region": list(rmap.regions), "leads": [", ".join(v) for v in rmap.regions.values()]})


def parse_table(table: pd.DataFrame) -> RegionMap:
    """Editor rows -> :class:`RegionMap` (raises ``ValueError`` with the offending lead or region)."""
    mapping: dict[str, list[str]] = {}
    for i, rec in enumerate(table.fillna("").to_dict("records")):
        region = str(rec.get("region", "")).strip()
        leads = [x.strip() for x in str(rec.get("leads", "")).replace(";", ",").split(",") if x.strip()]
        if not region and not leads:
            continue
        if not region:
            raise ValueError(f"row {i + 1}: region name is empty")
        if region in mapping:
            raise ValueError(f"region {region!r} appears twice")
        mapping[region] = leads
    return RegionMap.from_dict(mapping)


if "regions_editor" not in st.session_state:  # opening the page: edit the session's map (the default at first)
    st.session_state["regions_base"] = st.session_state.get("region_map") or default_region_map().to_dict()
if st.button("Reset to the default map", key="regions_reset"):
    st.session_state["regions_base"] = default_region_map().to_dict()
    st.session_state.pop("regions_editor", None)
edited = st.data_editor(
    _table(RegionMap.from_dict(st.session_state["regions_base"])),
    num_rows="dynamic",
    hide_index=True,
    key="regions_editor",
    column_config={
        "region": st.column_config.TextColumn("region", required=True),
        "leads": st.column_config.TextColumn("leads (comma-separated)"),
    },
)
rmap = default_region_map()
try:
    rmap = parse_table(edited)
    unassigned = [lead for lead in LEADS if rmap.region_of(lead) is None]
    st.success(
        f"Valid map with {len(rmap.regions)} regions"
        + (f"; leads in no region: {', '.join(unassigned)}" if unassigned else "")
    )
except ValueError as exc:
    st.error(f"Invalid region map: {exc}. Showing the default map instead.")
st.session_state["region_map"] = rmap.to_dict()
# drawn on the server as SVG pictures: the page opens without loading the chart library (docs/app.md)
st.image(viz.region_diagram_svg(rmap), width=DIAGRAM_PX)

st.subheader("Similarity of region embeddings")
ckpts = checkpoint_paths()
datasets = dataset_paths()
if not ckpts:
    st.info(HOW_TO_CHECKPOINT)
    st.stop()
c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
ck_label = c1.selectbox("checkpoint", list(ckpts), key="regions_ckpt")
ds_name = c2.selectbox("dataset", list(datasets), key="regions_dataset")
n_total = len(open_dataset(datasets[ds_name]))  # the sample cannot be larger than the dataset
hi = min(512, n_total)
if hi > 8:
    step = 8 if hi >= 64 else 1
    n_records = c3.slider("records sampled", 8, hi, min(128, hi), step, key=f"regions_n_{ds_name}")
else:
    n_records = hi
    c3.caption(f"all {hi} records")
centre = c4.checkbox(
    "centre features",
    value=True,
    key="regions_centre",
    help="Subtract each lead's mean feature over the sampled records before the cosine.",
)


@st.cache_data(show_spinner="Encoding a sample of records…")
def lead_features(checkpoint: str, dataset_path: str, n: int) -> tuple[np.ndarray, list[str]]:
    """Per-lead features ``(n, L, D)`` of the records
    :func:`aclecg.analysis.similarity.sample_region_similarity` samples."""
    src = load_source(checkpoint)
    return sample_lead_features(src, open_dataset(dataset_path), n), list(src.leads)


with user_errors():
    feats, enc_leads = lead_features(ckpts[ck_label], datasets[ds_name], int(n_records))
    if len(rmap.indices(enc_leads)) < 2:
        st.warning("The map needs at least two regions with leads the encoder uses.")
    else:
        sim, names, summary = region_similarity(feats, enc_leads, rmap, centre=centre)
        m1, m2, m3 = st.columns(3)
        m1.metric("within-region lead similarity", f"{summary['within']:.3f}")
        m2.metric("across-region lead similarity", f"{summary['across']:.3f}")
        m3.metric("records", feats.shape[0])
        st.image(
            viz.similarity_heatmap(sim, names, f"mean cosine similarity of region embeddings ({ck_label}, {ds_name})"),
            width=HEATMAP_PX,
        )
        st.caption(
            "A region embedding is the mean of its leads' features; the matrix averages the cosine "
            "similarity over the sampled records. ACL-ECG's region objective aims for high within-region "
            "and lower across-region similarity."
        )
