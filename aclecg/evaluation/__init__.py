"""Downstream evaluation: embeddings, linear probing, fine-tuning, label-fraction sweeps with statistics.

The protocol follows the self-supervised ECG literature (linear evaluation and fine-tuning, e.g. Mehari &
Strodthoff, Comput. Biol. Med. 2022; the ACL-ECG paper, Sensors 2026) and always reports the two reference
arms that keep such comparisons honest: a network trained from scratch on the same labels (``supervised``) and
a linear probe on a seeded, randomly initialised encoder (``random_init``; see arXiv 2602.17531 for why).

Only the training folds (``split == "train"``) are ever subsampled or fitted; the validation folds choose the
probe's regularisation and the fine-tuning epoch; the test folds are scored once per cell. See
``docs/evaluation.md`` for the definitions and the output files.

Modules, one concern each:

* :mod:`~aclecg.evaluation.arms` - the registry of arms (kind, trained or not, per checkpoint or reference);
* :mod:`~aclecg.evaluation.config` - the defaults and :class:`EvalConfig`;
* :mod:`~aclecg.evaluation.sources` - encoders to evaluate (checkpoint or random init) and the data check;
* :mod:`~aclecg.evaluation.embeddings` - frozen-encoder embeddings and their cache;
* :mod:`~aclecg.evaluation.probe` - the linear probe;
* :mod:`~aclecg.evaluation.finetune` - the trained arms' cells (fine-tune, supervised, reference CNN);
* :mod:`~aclecg.evaluation.fractions` - test-fold rotation and the label-fraction draw;
* :mod:`~aclecg.evaluation.form` - validating a sweep's fractions, arms and seeds;
* :mod:`~aclecg.evaluation.outputs` - a sweep's cells read back and its tables written;
* :mod:`~aclecg.evaluation.sweep` - :func:`run_sweep`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aclecg import lazy

if TYPE_CHECKING:
    from aclecg.classifier import TrainLog, predict_classifier, train_classifier
    from aclecg.evaluation.arms import ARM_KINDS, ArmKind, arm_display_name
    from aclecg.evaluation.config import (
        DEFAULT_ARMS,
        DEFAULT_FRACTIONS,
        PROTOCOLS,
        EvalConfig,
        embedding_cache_dir,
    )
    from aclecg.evaluation.embeddings import cached_embeddings, encode_windows, extract_embeddings, precision_key
    from aclecg.evaluation.form import parse_sweep_form
    from aclecg.evaluation.fractions import rotate_folds, sample_label_fraction
    from aclecg.evaluation.outputs import SweepResult, count_not_converged, learning_rates_of
    from aclecg.evaluation.probe import ProbeResult, linear_probe
    from aclecg.evaluation.sources import (
        EncoderSource,
        check_compatible,
        data_contract,
        load_source,
        random_init_like,
        random_init_source,
    )
    from aclecg.evaluation.sweep import SweepProgress, open_dataset, run_sweep
    from aclecg.paths import cache_root
    from aclecg.runtime import resolve_device

#: Public name -> the module that defines it (loaded on first use, so that ``from aclecg.evaluation.config import
#: EvalConfig`` -- what the command line's help reads -- imports no torch).
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("TrainLog", "predict_classifier", "train_classifier"), "aclecg.classifier"),
    **dict.fromkeys(("ARM_KINDS", "ArmKind", "arm_display_name"), "aclecg.evaluation.arms"),
    **dict.fromkeys(
        ("DEFAULT_ARMS", "DEFAULT_FRACTIONS", "PROTOCOLS", "EvalConfig", "embedding_cache_dir"),
        "aclecg.evaluation.config",
    ),
    **dict.fromkeys(
        ("cached_embeddings", "encode_windows", "extract_embeddings", "precision_key"), "aclecg.evaluation.embeddings"
    ),
    "parse_sweep_form": "aclecg.evaluation.form",
    **dict.fromkeys(("rotate_folds", "sample_label_fraction"), "aclecg.evaluation.fractions"),
    **dict.fromkeys(("SweepResult", "count_not_converged", "learning_rates_of"), "aclecg.evaluation.outputs"),
    **dict.fromkeys(("ProbeResult", "linear_probe"), "aclecg.evaluation.probe"),
    **dict.fromkeys(
        ("EncoderSource", "check_compatible", "data_contract", "load_source", "random_init_like", "random_init_source"),
        "aclecg.evaluation.sources",
    ),
    **dict.fromkeys(("SweepProgress", "open_dataset", "run_sweep"), "aclecg.evaluation.sweep"),
    "cache_root": "aclecg.paths",
    "resolve_device": "aclecg.runtime",
}

__all__ = [
    "ARM_KINDS",
    "DEFAULT_ARMS",
    "DEFAULT_FRACTIONS",
    "PROTOCOLS",
    "ArmKind",
    "EncoderSource",
    "EvalConfig",
    "ProbeResult",
    "SweepProgress",
    "SweepResult",
    "TrainLog",
    "arm_display_name",
    "cache_root",
    "cached_embeddings",
    "check_compatible",
    "count_not_converged",
    "data_contract",
    "embedding_cache_dir",
    "encode_windows",
    "extract_embeddings",
    "learning_rates_of",
    "linear_probe",
    "load_source",
    "open_dataset",
    "parse_sweep_form",
    "precision_key",
    "predict_classifier",
    "random_init_like",
    "random_init_source",
    "resolve_device",
    "rotate_folds",
    "run_sweep",
    "sample_label_fraction",
    "train_classifier",
]
assert set(__all__) == set(_EXPORTS)


def __getattr__(name: str) -> Any:
    return lazy.load(__name__, _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
