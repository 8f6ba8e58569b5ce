"""ACL-ECG Studio: the Streamlit app (``streamlit run app.py``).

This file sets up navigation over the pages in ``pages/`` and renders the Home page. Pages are thin: they
lay out widgets and call :mod:`aclecg`; figures come from :mod:`aclecg.viz`.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import streamlit as st

from aclecg.app_pages import app_pages

APP_ICON = Path(str(files("aclecg") / "icon.png"))  # shipped as package data

# The app's project folder is the checkout holding this file, whatever the working directory: shipped checkpoints,
# runs, caches and published results are found there (see aclecg.paths). Streamlit puts this folder on sys.path.
os.environ.setdefault("ACLECG_HOME", str(Path(__file__).resolve().parent))

#: (file, title, icon, URL path) of each page after Home, from the pages registry (aclecg.app_pages).
PAGES = [(page.file, page.title, page.icon or None, page.url_path) for page in app_pages()]


def home() -> None:
    st.title("ACL-ECG Studio")
    with st.spinner("Starting: loading the library (PyTorch) and the datasets; a few seconds on a cold start…"):
        from aclecg import jobs, paths, viz
        from pages._common import (
            HOW_TO_CHECKPOINT,
            checkpoint_paths,
            dataset_paths,
            open_dataset,
            runs_root,
            user_errors,
        )

    st.markdown(
        "**ACL-ECG** (anatomy-aware contrastive learning, Liu, Wu & Yuan, *Sensors* 2026, "
        "[10.3390/s26031080](https://doi.org/10.3390/s26031080)) learns 12-lead ECG representations without "
        "labels. Two *Physio-AUG* views of each record (random scale crop, masking of whole cardiac cycles, "
        "temporal shift — the rhythm is kept) pass through one encoder shared by every lead. Lead features are "
        "pooled into the **septal, anterior, lateral and inferior** regions, and a region-level contrastive loss "
        "(same region across views close, different regions apart) is added to an instance-level one. The frozen "
        "encoder is then judged by a linear probe or fine-tuning at several label fractions. Where the paper "
        "gives no detail (region map, loss form, hyper-parameters) this project uses documented reconstructions."
    )
    st.image(viz.pipeline_diagram(), width="stretch")

    col_data, col_models = st.columns(2)
    with col_data:
        st.subheader("Prepared datasets")
        rows: list[dict] = []
        label_rows: list[dict] = []
        with user_errors():
            for name, path in dataset_paths().items():
                ds = open_dataset(path)
                label_counts = {s: len(c) for s, c in ds.label_sets.items()}
                label_rows += [{"dataset": name, "label set": s, "classes": n} for s, n in label_counts.items()]
                rows.append(
                    {
                        "dataset": name,
                        "records (windows)": len(ds),
                        "patients": ds.records["patient_id"].nunique(),
                        "fs (Hz)": ds.fs,
                        "seconds": ds.n_samples / ds.fs,
                        "label sets": len(label_counts),
                    }
                )
        if rows:
            st.dataframe(rows, hide_index=True, width="stretch")
            # the label sets as rows of their own (a joined list in one cell was cut off)
            st.dataframe(label_rows, hide_index=True, width="stretch")
        else:
            st.info("No prepared dataset. Run `python -m aclecg bundled` or `python -m aclecg prepare`.")
    with col_models:
        st.subheader("Runs and checkpoints")
        with user_errors():
            runs = jobs.list_runs(runs_root())
            if runs:
                st.dataframe(
                    [
                        {
                            "run": r.name,
                            "kind": r.kind,
                            "state": r.state,
                            "method": r.method or "–",  # a sweep has checkpoints, not one method
                            "progress": f"step {r.step}/{r.total_steps}"
                            if r.kind == "pretrain" and r.total_steps
                            else "–",
                        }
                        for r in runs
                    ],
                    hide_index=True,
                    width="stretch",
                    height="content",
                )
            else:
                st.info("No runs yet — start one on the **Pretraining** page.")
            ckpts = checkpoint_paths()
            if ckpts:
                root = paths.project_root()
                st.dataframe(
                    [
                        {"checkpoint": k, "path": str(Path(v).relative_to(root)) if Path(v).is_relative_to(root) else v}
                        for k, v in ckpts.items()
                    ],
                    hide_index=True,
                    width="stretch",
                    height="content",  # every checkpoint, not the first ten and a scrollbar
                )
            else:
                st.info(HOW_TO_CHECKPOINT)
    st.subheader("Device")
    from aclecg.training.devices import machine_summary

    st.write(machine_summary())
    st.caption("Augmentations run in PyTorch, batched, on any device (see docs/augmentations.md).")


def main() -> None:
    from pages._access import session_actor, sidebar_status

    # a local image: a ":material/..." page icon makes the browser fetch the favicon from a font host
    st.set_page_config(page_title="ACL-ECG Studio", page_icon=str(APP_ICON), layout="wide")
    from pages._layout import apply_layout_css

    apply_layout_css()  # columns wrap, buttons never cut, the sidebar narrower on a tablet (pages/_layout.py)
    sidebar_status(session_actor())  # read-only and why, or who launches runs from this session
    pages = [st.Page(home, title="Home", icon=":material/home:", default=True)]
    pages += [st.Page(path, title=title, icon=icon, url_path=url) for path, title, icon, url in PAGES]
    st.navigation(pages).run()


main()
