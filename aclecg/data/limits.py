"""Limits on what a dataset file may declare, checked before anything is allocated or read.

A header, a label table or a MATLAB file is read only when it is a regular file inside the input folder and
within these sizes; a record is read only when its header declares a rate and a length within them. Each limit
is far above what the supported datasets hold (PTB-XL: 10 s at 100/500 Hz; Challenge 2021: at most 30 min at
257 Hz (INCART) and 1000 Hz for PTB; CPSC 2018: at most 144 s at 500 Hz), so a real record never meets one.
"""

from __future__ import annotations

#: Highest sampling rate a record may declare (Hz).
MAX_FS_HZ = 10_000.0
#: Longest record (seconds at its declared rate).
MAX_SECONDS = 30 * 60.0
#: Most samples a record may hold over all its leads (12 leads of 1,000,000 samples: 33 min at 500 Hz).
MAX_VALUES = 12_000_000
#: Most signals (leads) a header may list.
MAX_SIGNALS = 64
#: Largest WFDB header file (bytes); real ones are about 1-2 KB.
MAX_HEADER_BYTES = 256 * 1024
#: Largest label table (``ptbxl_database.csv``, ``scp_statements.csv``, ``REFERENCE.csv``); PTB-XL's is ~6 MB.
MAX_TABLE_BYTES = 128 * 1024 * 1024
#: Largest byte offset a WFDB signal line may give (the Challenge's MATLAB files use 24).
MAX_BYTE_OFFSET = 64 * 1024
#: Largest MATLAB file, and the most bytes all its compressed elements may decompress to.
MAX_MAT_BYTES = 8 * MAX_VALUES + 1024 * 1024
#: A compressed MATLAB element may expand to at most this many times its size (or 1 MiB, whichever is more).
MAX_COMPRESSION_RATIO = 100


def max_samples(fs: float) -> int:
    """Most samples per lead a record at ``fs`` Hz may hold (:data:`MAX_SECONDS`, at most 1,000,000)."""
    return int(min(MAX_SECONDS * fs, MAX_VALUES // 12))
