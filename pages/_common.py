"""Helpers shared by the Streamlit pages: cached access to the library, error display, uploads.

Pages stay thin: they lay out widgets and call these helpers, which call ``aclecg``. Everything slow is
cached (``st.cache_resource`` for open objects, ``st.cache_data`` / disk for arrays). Library errors
(:class:`aclecg.errors.AclEcgError`) are shown with ``st.error`` and their message, never as a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import streamlit as st

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from aclecg.errors import AclEcgError  # noqa: E402

HOW_TO_CHECKPOINT = (
    "No checkpoint yet. Make one on the **Pretraining** page (e.g. method `acl_ecg`, preset `cpu-quick`), or "
    "from a terminal: `python -m aclecg pretrain --preset cpu-quick --method acl_ecg --data bundled:ptbxl "
    "--run-dir runs/acl-quick`. Its `encoder.pt` then appears here.")


def checkpoints_root() -> Path:
    """Shipped checkpoints: ``$ACLECG_CHECKPOINTS`` or ``<repo>/checkpoints``."""
    return Path(os.environ.get("ACLECG_CHECKPOINTS", REPO / "checkpoints"))


def umap_cache() -> Path:
    """On-disk cache of 2-D maps: ``$ACLECG_UMAP_CACHE`` or ``<repo>/.cache/umap``."""
    from aclecg.runtime import cache_root

    return Path(os.environ.get("ACLECG_UMAP_CACHE", cache_root() / "umap"))


def runs_root() -> Path:
    from aclecg import jobs

    return Path(os.environ.get("ACLECG_RUNS", jobs.DEFAULT_RUNS_ROOT))


@contextlib.contextmanager
def user_errors(prefix: str = "") -> Iterator[None]:
    """Show an :class:`AclEcgError` (and a few predictable errors) as ``st.error`` with its message."""
    try:
        yield
    except AclEcgError as exc:
        st.error(f"{prefix}{exc}")
    except (ValueError, KeyError, OSError) as exc:  # bad input reaching library code (e.g. a region map)
        st.error(f"{prefix}{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------- datasets

@st.cache_resource(show_spinner="Preparing the bundled datasets (first start only)…")
def bundled_datasets() -> dict[str, str]:
    """Prepared bundled datasets (prepared once, then reused): name -> folder."""
    from aclecg.data import ensure_bundled

    return {name: str(path) for name, path in ensure_bundled().items()}


def dataset_paths() -> dict[str, str]:
    """Every prepared dataset the app can show: the bundled ones plus those under ``$ACLECG_DATA``."""
    from aclecg.data import available_datasets

    out: dict[str, str] = {}
    try:
        out.update(bundled_datasets())
    except AclEcgError as exc:
        st.error(f"Bundled data could not be prepared: {exc}")
    extra = os.environ.get("ACLECG_DATA", "")
    for root in filter(None, extra.split(os.pathsep)):
        for path in available_datasets(root):
            out.setdefault(path.name, str(path))
    return out


@st.cache_resource
def open_dataset(path: str):
    from aclecg.data import PreparedDataset

    return PreparedDataset(path)


@st.cache_data
def label_descriptions(dataset_path: str) -> dict[str, str]:
    """Class name -> words, from PTB-XL's ``scp_statements.csv`` and the Challenge SNOMED-CT table."""
    from aclecg.data.bundled import BUNDLED

    out: dict[str, str] = {
        "NORM": "normal ECG", "MI": "myocardial infarction", "STTC": "ST/T change", "CD": "conduction disturbance",
        "HYP": "hypertrophy"}
    ds = open_dataset(dataset_path)
    fmt = ds.manifest.get("format")
    if fmt == "ptbxl":
        candidates = [BUNDLED["ptbxl"][1] / "scp_statements.csv"]
        raw = ds.manifest.get("input_dir") or ds.manifest.get("source_dir")
        if raw:
            candidates.insert(0, Path(raw) / "scp_statements.csv")
        for path in candidates:
            if path.is_file():
                table = pd.read_csv(path, index_col=0)
                out.update({str(k).strip(): str(v) for k, v in table["description"].items()})
                break
    from aclecg.data.snomed import snomed_table

    for row in snomed_table().values():
        out.setdefault(row["abbreviation"], row["name"])
    out.setdefault("CRBBB|RBBB", "right bundle branch block")
    out.setdefault("PAC|SVPB", "premature atrial contraction")
    out.setdefault("PVC|VPB", "premature ventricular contraction")
    out.setdefault("CLBBB|LBBB", "left bundle branch block")
    return out


def describe_labels(text: str, descriptions: dict[str, str]) -> str:
    """``"NORM;MI"`` -> ``"NORM (normal ECG); MI (myocardial infarction)"``."""
    labels = [lab for lab in str(text or "").split(";") if lab]
    if not labels:
        return "(none)"
    return "; ".join(f"{lab} ({descriptions[lab]})" if lab in descriptions else lab for lab in labels)


@st.cache_resource
def _reader_items(fmt: str, raw_dir: str):
    from aclecg.data import make_reader

    reader = make_reader(fmt, raw_dir)
    items, _ = reader.locate()
    return reader, {item.source: item for item in items}


def raw_window_mv(dataset_path: str, row: int) -> tuple[np.ndarray, float] | None:
    """The raw record behind a prepared row, in mV at its own rate, cut to the row's window; None if the raw
    files are not available (only the bundled datasets' raw folders are known)."""
    from aclecg.data.bundled import BUNDLED

    ds = open_dataset(dataset_path)
    name = ds.manifest.get("dataset")
    entry = BUNDLED.get(str(name)) or BUNDLED.get(Path(dataset_path).name)
    if entry is None:
        return None
    fmt, raw_dir = entry
    if not Path(raw_dir).is_dir():
        return None
    rec = ds.records.iloc[row]
    reader, items = _reader_items(fmt, str(raw_dir))
    item = items.get(str(rec["source"]))
    if item is None:
        return None
    record = reader.read(item)
    start_s = float(rec.get("start", 0)) / ds.fs
    a = int(round(start_s * record.fs))
    b = a + int(round(float(ds.manifest.get("seconds", ds.n_samples / ds.fs)) * record.fs))
    return record.signals[:, a:b], float(record.fs)


# ---------------------------------------------------------------------------------------------- checkpoints

def checkpoint_paths() -> dict[str, str]:
    """Shipped checkpoints (``checkpoints/*/encoder.pt``) and finished runs' ``encoder.pt``: label -> path."""
    from aclecg.checkpoint import list_checkpoints

    out: dict[str, str] = {}
    for root, tag in ((checkpoints_root(), "shipped"), (runs_root(), "run")):
        # newest first; shipped ones (checkpoints/NAME/encoder.pt, not the rotations' encoders below
        # checkpoints/rotations/) by name, ACL-ECG first (the default pick)
        found = list_checkpoints(root, recursive=tag == "run")
        if tag == "shipped":
            found.sort(key=lambda p: (p.parent.name != "acl_ecg", p.parent.name))
        for path in found:
            if path.parent.name == "checkpoints":
                continue  # intermediate training checkpoints of a run
            out[f"{path.parent.name} ({tag})"] = str(path)
    return out


@st.cache_resource(show_spinner="Loading checkpoint…")
def load_source(path: str):
    from aclecg.evaluate import load_source as _load

    return _load(path, device="cpu")


@st.cache_data(show_spinner="Computing embeddings (cached on disk)…")
def dataset_embeddings(checkpoint: str, dataset_path: str) -> np.ndarray:
    from aclecg.evaluate import cached_embeddings

    emb, _ = cached_embeddings(load_source(checkpoint), open_dataset(dataset_path), device="cpu",
                               cache_dir=umap_cache().parent / "embeddings")
    return emb


@st.cache_resource(show_spinner="Computing the 2-D map (cached on disk)…")
def umap_map(checkpoint: str, dataset_paths_: tuple[str, ...], n_neighbors: int = 15, min_dist: float = 0.1,
             metric: str = "euclidean", method: str = "fast"):
    """A fitted :class:`aclecg.embed2d.Map2D` of the embeddings of one or several datasets (stacked)."""
    from aclecg.embed2d import UMAPConfig, cached_map

    emb = np.concatenate([dataset_embeddings(checkpoint, p) for p in dataset_paths_])
    return cached_map(emb, umap_cache(), UMAPConfig(n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                                                    method=method))


def umap_map_cached(checkpoint: str, dataset_paths_: tuple[str, ...], n_neighbors: int, min_dist: float,
                    method: str) -> bool:
    """Whether that map is already on disk (so drawing it waits for nothing)."""
    from aclecg.embed2d import UMAPConfig, cache_key

    emb = np.concatenate([dataset_embeddings(checkpoint, p) for p in dataset_paths_])
    key = cache_key(emb, UMAPConfig(n_neighbors=n_neighbors, min_dist=min_dist, method=method))
    return (umap_cache() / f"umap_{key}.npz").is_file()


def embed_windows(checkpoint: str, windows: np.ndarray) -> np.ndarray:
    """Embeddings of preprocessed windows ``(W, 12, T)`` (e.g. an upload) with a checkpoint's encoder."""
    import torch

    from aclecg.leads import LEADS

    src = load_source(checkpoint)
    idx = [list(LEADS).index(lead) for lead in src.leads]
    with torch.no_grad():
        return src.encoder(torch.from_numpy(np.ascontiguousarray(windows[:, idx], dtype=np.float32))).embedding.numpy()


# ---------------------------------------------------------------------------------------------- uploads

def upload_box(key: str, fs: float = 100.0, seconds: float = 10.0):
    """File uploader for WFDB records (or a zip); returns an :class:`aclecg.upload.UploadedRecord` or None.

    The staged record lives in ``st.session_state`` so every page sees the same upload.
    """
    from aclecg import upload

    with st.expander("Upload your own ECG (WFDB .hea + .dat/.mat, or a .zip)", expanded=False):
        files = st.file_uploader("WFDB files", type=["hea", "dat", "mat", "zip"], accept_multiple_files=True,
                                 key=f"{key}_files",
                                 help=f"At most {upload.MAX_UPLOAD_BYTES // 2**20} MB in total. Files are checked "
                                      "and written only to a fresh temporary folder.")
        if files:
            sig = tuple((f.name, f.size) for f in files)
            if st.session_state.get("upload_sig") != sig:
                st.session_state.pop("upload_record", None)
                if st.session_state.get("upload_folder"):  # the previous upload's staging folder is not needed
                    upload.discard(Path(st.session_state.pop("upload_folder")))
                    st.session_state.pop("upload_names", None)
                try:
                    rejected: list[tuple[str, str]] = []
                    folder = upload.stage_upload([(f.name, f.getvalue()) for f in files], rejected=rejected)
                    st.session_state["upload_rejected"] = rejected
                    names = upload.list_records(folder)
                    st.session_state["upload_folder"] = str(folder)
                    st.session_state["upload_names"] = names
                    st.session_state["upload_sig"] = sig
                except AclEcgError as exc:
                    st.error(f"Upload rejected: {exc}")
                    return None
            for name, reason in st.session_state.get("upload_rejected", []):
                st.warning(f"Left out {name}: {reason}")
        names = st.session_state.get("upload_names")
        if not names:
            return None
        choice = st.selectbox("uploaded record", names, key=f"{key}_record") if len(names) > 1 else names[0]
        cache_key = (st.session_state["upload_folder"], choice, fs, seconds)
        rec = st.session_state.get("upload_record")
        if rec is None or rec[0] != cache_key:
            try:
                loaded = upload.load_uploaded_record(Path(st.session_state["upload_folder"]), choice, fs=fs,
                                                     seconds=seconds)
            except AclEcgError as exc:
                st.error(f"Upload could not be read: {exc}")
                return None
            st.session_state["upload_record"] = (cache_key, loaded)
        loaded = st.session_state["upload_record"][1]
        st.caption(f"Uploaded {loaded.record_id}: {loaded.raw_fs:g} Hz, {loaded.raw_mv.shape[1] / loaded.raw_fs:.1f} s, "
                   f"{len(loaded.windows)} window(s) after preprocessing.")
        use = st.toggle("show the uploaded record", value=True, key=f"{key}_use")
        return loaded if use else None
