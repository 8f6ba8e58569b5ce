"""Measurements of a 12-lead ECG: heart rate, RR variability and the PR, QRS, QT and QTc intervals from a median
beat, with P, QRS and T boundaries per lead (:func:`measure_record`); the measurements of a whole prepared dataset,
cached (:func:`measure_dataset`); and how much each augmentation changes them (:mod:`aclecg.measure.preservation`).

Every value is an algorithmic estimate, not a diagnosis (:data:`DISCLAIMER`).

>>> from aclecg.measure import measure_record, synthetic_ecg
>>> x, truth = synthetic_ecg(fs=500, hr_bpm=60, pr_ms=160, qrs_ms=90, qt_ms=400)
>>> m = measure_record(x, 500)
>>> round(m.hr_bpm), abs(m.qrs_ms - truth.qrs_ms) < 15
(60, True)
"""

from aclecg.measure.core import DISCLAIMER, GLOBAL_FIELDS, Measurement, measure_record
from aclecg.measure.synthetic import SyntheticTruth, synthetic_ecg

__all__ = ["DISCLAIMER", "GLOBAL_FIELDS", "Measurement", "SyntheticTruth", "measure_record", "synthetic_ecg"]
