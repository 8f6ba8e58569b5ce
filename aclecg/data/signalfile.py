"""``signals.npy`` written in one pass: float32 windows streamed to disk and hashed, the row count set at the end."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from aclecg.leads import LEADS

__all__ = ["NPY_HEADER_BYTES", "SignalWriter"]


#: bytes reserved for the ``signals.npy`` header: the shape is known only at the end, and the header is rewritten in
#: place then (NPY 1.0: magic, version, a 2-byte length and a Python-literal dict padded with spaces to a multiple of
#: 64, so any row count up to 19 digits fits)
NPY_HEADER_BYTES = 128


def _npy_header(rows: int, n_leads: int, n_samples: int) -> bytes:
    """The NPY 1.0 header of a C-order little-endian float32 array of shape (rows, n_leads, n_samples)."""
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {n_leads}, {n_samples}), }}"
    body = text.ljust(NPY_HEADER_BYTES - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")


class SignalWriter:
    """Streams float32 windows into ``signals.npy`` once (hashing them); the header gets its row count at the end.

    One pass: the data is written once, so disk use and memory are the output's size, not twice it."""

    def __init__(self, folder: Path, n_samples: int):
        self.path = folder / "signals.npy"
        self.handle = open(self.path, "wb")
        self.handle.write(_npy_header(0, len(LEADS), n_samples))
        self.sha = hashlib.sha256()
        self.rows = 0
        self.n_samples = n_samples

    def append(self, windows: np.ndarray) -> None:
        data = np.ascontiguousarray(windows, dtype="<f4").tobytes()
        self.handle.write(data)
        self.sha.update(data)
        self.rows += windows.shape[0]

    def finish(self) -> Path:
        self.handle.seek(0)
        self.handle.write(_npy_header(self.rows, len(LEADS), self.n_samples))
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return self.path
