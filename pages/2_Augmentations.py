"""Augmentations: a record beside its Physio-AUG views (and a baseline view), with every parameter on a slider.

The same record and seed always give the same views: view ``k`` uses ``torch.Generator().manual_seed(seed + k)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from aclecg import viz
from aclecg.augment import build_augmentation
from aclecg.augment.teach import TEACHING_STEPS, step_views
from aclecg.constraints import CYCLE_WINDOWS, MASK_FILLS, SHIFT_MODES
from aclecg.data.labels import row_choices
from aclecg.leads import LEADS, REGIONS
from aclecg.measure import DISCLAIMER
from aclecg.measure.preservation import compare_views, published_table
from pages._common import dataset_paths, open_dataset, upload_box, user_errors

st.title("Augmentations")
st.caption(
    "Physio-AUG (ACL-ECG): random scale crop → cardiac-cycle mask → temporal shift. Parameters are a "
    "documented reconstruction (the paper does not publish them)."
)
datasets = dataset_paths()
if not datasets:
    st.info("No prepared dataset found. Run `python -m aclecg bundled`.")
    st.stop()

if "aug_seed" not in st.session_state:
    st.session_state["aug_seed"] = 0


def _new_sample() -> None:
    st.session_state["aug_seed"] = int(st.session_state["aug_seed"]) + 1


def physio_views(spec: list[dict], x: torch.Tensor, peaks: torch.Tensor, seed: int) -> list[tuple]:
    """``n_views`` Physio-AUG views, view ``k`` drawn with seed ``seed + k``."""
    physio = build_augmentation(spec, fs=ds.fs)
    views = []
    for k in range(n_views):
        y, info = physio.forward_with_info(x, peaks, generator=torch.Generator().manual_seed(seed + k))
        marks = viz.marks_from_info(info, x.shape[-1], LEADS, shift_mode=shift_mode)
        views.append((f"Physio-AUG view {k + 1}", y[0].numpy(), marks))
    return views


def teaching_views(spec: list[dict], x: torch.Tensor, peaks: torch.Tensor, seed: int, mode: str) -> list[tuple]:
    """The step picker, why each step shown keeps the rhythm, and one view per step up to the chosen one."""
    labels = [f"step {k + 1}: {s.title}" for k, s in enumerate(TEACHING_STEPS)]
    chosen = st.radio("step", labels, horizontal=True, key="aug_teach_step")
    upto = labels.index(chosen) + 1
    for k, step in enumerate(TEACHING_STEPS[:upto]):
        line = f"**Step {k + 1} · {step.title}.** {step.why}"
        if k + 1 == upto:
            st.markdown(line)
        else:
            st.caption(line.replace("**", ""))
    views = []
    for k, (y, info) in enumerate(step_views(spec, x, peaks, seed, upto, fs=ds.fs)):
        title = " + ".join(s.title for s in TEACHING_STEPS[: k + 1])
        views.append((f"step {k + 1}: {title}", y[0].numpy(), viz.marks_from_info(info, x.shape[-1], LEADS, mode)))
    return views


controls, figure = st.columns([1, 3])
with controls:
    name = st.selectbox("dataset", list(datasets), key="aug_dataset")
    ds = open_dataset(datasets[name])
    row_of = row_choices(ds.records)
    record = st.selectbox("record id", list(row_of), key="aug_record", help="the same ids as the ECG explorer's")
    row = row_of[record]
    st.number_input("seed", min_value=0, max_value=2**31 - 1, step=1, key="aug_seed")
    st.button("new sample", on_click=_new_sample, key="aug_new")
    n_views = st.slider("Physio-AUG views", 1, 3, 2, key="aug_views")
    baseline = st.checkbox(
        "baseline view",
        value=True,
        key="aug_baseline",
        help="add a view of the baseline pipeline: random resized crop + time-out",
    )
    show = st.multiselect("leads shown", LEADS, default=["II", "V2", "V5"], key="aug_leads")
    st.markdown("**Random scale crop**")
    crop = st.slider("fraction of the length kept", 0.05, 1.0, (0.5, 1.0), 0.05, key="aug_crop")
    st.markdown("**Cardiac-cycle mask**")
    cycles = st.slider("cycles masked", 0, 6, (1, 2), key="aug_cycles")
    window = st.selectbox("cycle window", list(CYCLE_WINDOWS), key="aug_window")
    scope = st.selectbox("leads masked", ["all", "random_region", *REGIONS], key="aug_scope")
    fill = st.selectbox("fill", list(MASK_FILLS), key="aug_fill")
    st.markdown("**Temporal shift**")
    shift_rr = st.checkbox("at most one RR interval", value=True, key="aug_shift_rr")
    shift_s = st.slider("max shift (s)", 0.0, 3.0, 0.8, 0.1, key="aug_shift_s", disabled=shift_rr)
    shift_mode = st.selectbox("shift mode", list(SHIFT_MODES), key="aug_shift_mode")
    st.markdown("**Baseline time-out**")
    timeout = st.slider("fraction zeroed", 0.0, 1.0, (0.0, 0.5), 0.05, key="aug_timeout", disabled=not baseline)

with figure:
    uploaded = upload_box("aug", fs=ds.fs, seconds=ds.n_samples / ds.fs)
    spec = [
        # Physio-AUG's crop keeps the record's rate (zeroes outside its window), as the "physio" preset
        {"name": "random_scale_crop", "scale": list(crop), "resample": False},
        {"name": "cardiac_cycle_mask", "n_cycles": list(cycles), "window": window, "scope": scope, "fill": fill},
        {"name": "temporal_shift", "max_shift": "rr" if shift_rr else float(shift_s), "mode": shift_mode},
    ]
    with user_errors():
        if uploaded is not None:
            x_np, peaks_np, title = uploaded.windows[0], uploaded.rpeaks_padded()[0], f"uploaded {uploaded.record_id}"
        else:
            x_np, peaks_np = np.asarray(ds.signals[row]), ds.rpeaks_padded([row])[0]
            title = f"{name} · record {record}"
        x = torch.from_numpy(np.array(x_np, dtype=np.float32))[None]
        peaks = torch.from_numpy(peaks_np.astype(np.int64))[None]
        seed = int(st.session_state["aug_seed"])
        teaching = st.toggle(
            "teaching mode: one step at a time",
            key="aug_teach",
            help="Crop, then mask, then shift, with the same seed: each step's view is the previous one plus one step",
        )
        views = teaching_views(spec, x, peaks, seed, shift_mode) if teaching else physio_views(spec, x, peaks, seed)
        if baseline and not teaching:
            std = build_augmentation(
                [{"name": "random_resized_crop", "scale": list(crop)}, {"name": "time_out", "fraction": list(timeout)}],
                fs=ds.fs,
            )
            y, info = std.forward_with_info(x, peaks, generator=torch.Generator().manual_seed(seed + 100))
            views.append(("baseline view", y[0].numpy(), viz.marks_from_info(info, x.shape[-1], LEADS)))
        fig = viz.augmentation_figure(
            x_np, views, ds.fs, LEADS, show_leads=show or ["II"], rpeaks=peaks_np[peaks_np >= 0]
        )
        st.markdown(
            f"**{title}** · seed {seed} · shaded: masked cardiac cycles (grey, over the masked leads), "
            "time-out (red), a zero/edge shift's padding (blue); dotted line: a circular shift's seam; "
            "dashed boxes on the original: each view's crop window, in the view's colour."
        )
        if st.toggle("interactive chart", key="aug_interactive", help="zoom and hover (loads the chart library)"):
            st.plotly_chart(fig, width="stretch", key="aug_chart")
        else:  # drawn on the server: the page opens without loading plotly
            st.image(viz.subplots_svg(fig, label=title), width="stretch")
        summary = [
            {
                "view": v[0],
                "crop (s)": f"{v[2].crop[0] / ds.fs:.2f}–{v[2].crop[1] / ds.fs:.2f}" if v[2].crop else "–",
                "masked cycles": v[2].n_cycles,
                "shift (s)": round(v[2].shift / ds.fs, 2),
                "masked leads": ", ".join(v[2].masked_leads) if v[2].masked_leads else "all",
            }
            for v in views
        ]
        st.markdown(viz.markdown_table(pd.DataFrame(summary)))
        st.markdown(
            "**Measured on the original and each view** (heart rate from the R-peaks, QRS and QT from the median beat)"
        )
        for change in compare_views(x_np, [v[1] for v in views], ds.fs, names=[v[0] for v in views]):
            st.markdown(change["line"])
        st.caption(DISCLAIMER)

with st.expander("Rhythm preservation of each augmentation, measured on the bundled PTB-XL records"):
    table = published_table()
    if table is None:
        st.info("No table yet: run `python -m aclecg measure --preservation --data .cache/prepared/ptbxl`.")
    else:
        st.markdown(viz.markdown_table(table))
        st.caption(
            "|change| of each view against its original: median and 95th percentile; share of views whose "
            "heart rate moves by more than 5 bpm (docs/results/rhythm-preservation.md)."
        )
