"""Hostile inputs for the upload tests: a MAT-5 file that crashes scipy's reader, and misbehaving functions.

The functions are module-level so :mod:`aclecg.sandbox` can run them in its child by name.
"""

from __future__ import annotations

import os
import signal
import struct
import time
import zlib

MI_INT8, MI_INT32, MI_UINT32, MI_DOUBLE, MI_MATRIX, MI_COMPRESSED = 1, 5, 6, 9, 14, 15
MI_RESERVED = 10  # a data type number the MAT-5 format leaves unused


def _element(data_type: int, payload: bytes) -> bytes:
    """A MAT-5 data element: tag (type, byte count) and the payload padded to 8 bytes."""
    return struct.pack("<II", data_type, len(payload)) + payload + b"\0" * (-len(payload) % 8)


def mat5(values: list[float], name: bytes = b"val", real_type: int = MI_DOUBLE, compressed: bool = True) -> bytes:
    """A MAT-5 file holding one 1 x n double matrix ``name``; ``real_type`` is the real part's declared data type.

    With ``real_type=MI_RESERVED`` the matrix header declares its numbers as data type 10, which scipy's reader
    (scipy.io.loadmat) looks up in a table that has no entry for it: it crashes with SIGSEGV.
    """
    header = b"MATLAB 5.0 MAT-file, written by the aclecg upload tests".ljust(116, b" ")
    header += b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    body = _element(MI_UINT32, struct.pack("<II", 6, 0))  # array flags: class double
    body += _element(MI_INT32, struct.pack("<ii", 1, len(values)))
    body += _element(MI_INT8, name)
    body += _element(real_type, struct.pack(f"<{len(values)}d", *values))
    matrix = _element(MI_MATRIX, body)
    if not compressed:
        return header + matrix
    return header + _element(MI_COMPRESSED, zlib.compress(matrix))


def hostile_mat() -> bytes:
    """The crashing file: a compressed matrix whose numbers are declared with the reserved data type 10."""
    return mat5([1.0, 2.0, 3.0], real_type=MI_RESERVED)


# ---------------------------------------------------------------------------------------------- sandbox targets


def crash_segv(*_args: object) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def crash_abort(*_args: object) -> None:
    os.abort()


def fail_naming_the_folder(folder: str, *_args: object) -> None:
    """A parser error that quotes the staging folder's absolute path, as a library's OSError text does."""
    from aclecg.errors import DataError

    raise DataError(f"cannot open '{folder}/JS00001.mat' (see {folder})")


def allocate(megabytes: int) -> int:
    """Touch ``megabytes`` of memory in 64 MB blocks, as a decompression bomb would."""
    blocks = [bytearray(64 << 20) for _ in range(max(1, megabytes // 64))]
    return len(blocks)


def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def echo(value: object) -> object:
    return value


def fail_with(kind: str) -> None:
    from aclecg.errors import DataError

    if kind == "data":
        raise DataError("x.hea: the header is broken")
    raise RuntimeError("boom\nsecond line")


def big_result(megabytes: int) -> bytes:
    import numpy as np

    return np.zeros(megabytes << 20, dtype=np.uint8)  # type: ignore[return-value]
