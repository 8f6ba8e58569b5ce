"""Helpers shared by the Streamlit pages: cached access to the library, error display, uploads.

Pages stay thin: they lay out widgets and call these helpers, which call ``aclecg``. Everything slow is
cached (``st.cache_resource`` for open objects, ``st.cache_data`` / disk for arrays). Library errors
(:class:`aclecg.errors.AclEcgError`) are shown with ``st.error`` and their message, never as a traceback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import streamlit as st

from aclecg import paths
from aclecg.errors import AclEcgError

HOW_TO_CHECKPOINT = (
    "No checkpoint yet. Make one on the **Pretraining** page (e.g. method `acl_ecg`, preset `cpu-quick`), or "
    "from a terminal: `python -m aclecg pretrain --preset cpu-quick --method acl_ecg --data bundled:ptbxl "
    "--run-dir runs/acl-quick`. Its `encoder.pt` then appears here."
)


def checkpoints_root() -> Path:
    """Shipped checkpoints: ``$ACLECG_CHECKPOINTS`` or ``<project>/checkpoints``."""
    return paths.checkpoints_root()


def umap_cache() -> Path:
    """On-disk cache of 2-D maps, the command line's too (:func:`aclecg.paths.umap_cache_dir`)."""
    return paths.umap_cache_dir()


def embeddings_cache() -> Path:
    """On-disk cache of embeddings, the command line's too (:func:`aclecg.paths.embeddings_cache_dir`)."""
    return paths.embeddings_cache_dir()


def runs_root() -> Path:
    return paths.runs_root()


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
    """Class name -> words (see :func:`aclecg.data.labels.label_descriptions`)."""
    from aclecg.data.labels import label_descriptions as _descriptions

    return _descriptions(open_dataset(dataset_path).manifest)


# ---------------------------------------------------------------------------------------------- checkpoints


def checkpoint_paths() -> dict[str, str]:
    """Shipped checkpoints, finished runs' encoders and registered encoders: label -> path (the default pick first)."""
    from aclecg.checkpoint import discover_checkpoints

    found = discover_checkpoints(checkpoints_root(), runs_root(), paths.encoders_root())
    return {label: str(path) for label, path in found.items()}


@st.cache_resource(show_spinner="Loading checkpoint…")
def load_source(path: str):
    from aclecg.evaluation import load_source as _load

    return _load(path, device="cpu")


def embed_windows(checkpoint: str, windows: np.ndarray, fs: float = 100.0) -> np.ndarray:
    """Embeddings of preprocessed windows ``(W, 12, T)`` at ``fs`` (e.g. an upload), checked against the checkpoint."""
    from aclecg.evaluation import encode_windows
    from aclecg.leads import LEADS

    return encode_windows(load_source(checkpoint), windows, fs, LEADS, name=Path(checkpoint).parent.name)


# ---------------------------------------------------------------------------------------------- uploads


def _new_upload_session():
    from aclecg.upload_session import UploadSession

    return UploadSession()


try:  # one upload store per browser session, closed (staged files removed) when the session ends
    _session_uploads = st.cache_resource(scope="session", on_release=lambda store: store.close(), show_spinner=False)(
        _new_upload_session
    )
except TypeError:  # a Streamlit without session-scoped resources: session state (cleaned when it is collected)

    def _session_uploads():
        if "upload_session" not in st.session_state:
            st.session_state["upload_session"] = _new_upload_session()
        return st.session_state["upload_session"]


def upload_box(key: str, fs: float = 100.0, seconds: float = 10.0):
    """File uploader for WFDB records (or a zip); returns an :class:`aclecg.upload.UploadedRecord` or None.

    The upload lives in the session's :class:`aclecg.upload_session.UploadSession`, so every page sees the same
    one; it is parsed in a sandboxed child process, and its staged files go when it is rejected or replaced, or the
    session ends.
    """
    from aclecg import sandbox, upload
    from aclecg.upload_session import PARSE_PRELOAD

    store = _session_uploads()
    sandbox.warm_up(PARSE_PRELOAD)  # the parser's process waits ready before the first file arrives
    with st.expander("Upload your own ECG (WFDB .hea + .dat/.mat, or a .zip)", expanded=False):
        files = st.file_uploader(
            "WFDB files",
            type=["hea", "dat", "mat", "zip"],
            accept_multiple_files=True,
            key=f"{key}_files",
            help=f"At most {upload.MAX_UPLOAD_BYTES // 2**20} MB in total. Files are checked, written only to a "
            "fresh temporary folder and read in a separate, limited process.",
        )
        if files:  # without files here, the upload made on another page (if any) is shown
            signature = tuple((f.file_id, f.name, f.size) for f in files)
            if signature != store.signature:  # a new upload is shown, even if the last one was switched off
                st.session_state[f"{key}_use"] = True
            store.offer(signature, lambda: [(f.name, f.getvalue()) for f in files])
            for name, reason in store.left_out:
                st.warning(f"Left out {name}: {reason}")
        loaded = None
        if store.names:
            many = len(store.names) > 1
            choice = st.selectbox("uploaded record", store.names, key=f"{key}_record") if many else store.names[0]
            with st.spinner("Reading the upload…"):
                loaded = store.record(choice, fs=fs, seconds=seconds)
        if store.error:
            if files:
                st.error(store.error)
            return None
        if loaded is None:
            return None
        st.caption(
            f"Uploaded {loaded.record_id}: {loaded.raw_fs:g} Hz, {loaded.raw_mv.shape[1] / loaded.raw_fs:.1f} s, "
            f"{len(loaded.windows)} window(s) after preprocessing."
        )
        st.session_state.setdefault(f"{key}_use", True)  # navigating the records switches it off (the Explorer)
        use = st.toggle("show the uploaded record", key=f"{key}_use")
        return loaded if use else None
