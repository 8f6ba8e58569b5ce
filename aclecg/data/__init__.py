"""Data layer: readers for PTB-XL, CPSC 2018 and the PhysioNet/CinC Challenge 2020/2021 format, ``prepare``
(resample, filter, window, z-score, R-peaks) and the memory-mapped :class:`PreparedDataset` cache.

>>> from aclecg.data import ensure_bundled, PreparedDataset
>>> ds = PreparedDataset(ensure_bundled(["ptbxl"])["ptbxl"])      # doctest: +SKIP
>>> keep, y, classes = ds.labels("superdiagnostic", "singlelabel")  # doctest: +SKIP
"""

from aclecg.data import ptbxl, cpsc2018, challenge  # noqa: F401, I001  (the readers register, in this order)
from aclecg.data.base import READERS, Reader, RecordItem, register_reader
from aclecg.data.bundled import BUNDLED, BUNDLED_DIR, BUNDLED_RAW_DIR, ensure_bundled, prepared_root
from aclecg.data.cache import PROTOCOLS, PreparedDataset, available_datasets, is_prepared
from aclecg.data.challenge import ChallengeReader
from aclecg.data.cpsc2018 import Cpsc2018Reader
from aclecg.data.prepare import PrepareConfig, make_reader, prepare_dataset, summary_lines
from aclecg.data.ptbxl import PtbXlReader
from aclecg.data.records import Record, Skipped
from aclecg.data.rpeaks import detect_rpeaks
from aclecg.data.splits import patient_stratified_folds, split_of

__all__ = [
    "BUNDLED",
    "BUNDLED_DIR",
    "BUNDLED_RAW_DIR",
    "PROTOCOLS",
    "READERS",
    "ChallengeReader",
    "Cpsc2018Reader",
    "PrepareConfig",
    "PreparedDataset",
    "PtbXlReader",
    "Reader",
    "Record",
    "RecordItem",
    "Skipped",
    "available_datasets",
    "detect_rpeaks",
    "ensure_bundled",
    "is_prepared",
    "make_reader",
    "patient_stratified_folds",
    "prepare_dataset",
    "prepared_root",
    "register_reader",
    "split_of",
    "summary_lines",
]
