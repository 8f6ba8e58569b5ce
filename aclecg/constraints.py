"""Declarative parameter constraints (in the style of scikit-learn's ``_parameter_constraints``).

One table per configuration names every parameter's accepted values; :func:`validate` checks a whole config
against its table at the boundary (the dataclass's ``__post_init__``), and the command line and the app read
their choice lists from the same tuples, so the three can never disagree.

>>> check = validate("demo", {"epochs": Integer(1), "amp": Options(AMP_MODES)}, {"epochs": 3, "amp": "bf16"})
>>> check["epochs"], check["amp"]
(3, 'bf16')
>>> validate("demo", {"epochs": Integer(1)}, {"epochs": 0})
Traceback (most recent call last):
...
aclecg.errors.ConfigError: demo: epochs must be an integer >= 1, got 0

This module imports nothing but :mod:`aclecg.errors`, so every layer may read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aclecg.errors import ConfigError

__all__ = [
    "AMP_MODES",
    "APP_LAUNCH_PARAMS",
    "ARMS",
    "AVR_POLICIES",
    "CYCLE_WINDOWS",
    "DATA_FORMATS",
    "EVAL_PARAMS",
    "EXPORT_FORMATS",
    "INPUT_DRAWS",
    "LR_SELECTIONS",
    "MASK_FILLS",
    "PAPER_SIZES_MM",
    "PRETRAIN_PARAMS",
    "PRINT_GAINS",
    "PROTOCOLS",
    "SHIFT_MODES",
    "SWEEP_FORM_PARAMS",
    "SWEEP_PARAMS",
    "TRAIN_BUDGET_PARAMS",
    "UMAP_METHODS",
    "UMAP_METRICS",
    "Boolean",
    "Constraint",
    "Device",
    "Either",
    "Integer",
    "ListOf",
    "Optional",
    "Options",
    "Pair",
    "Real",
    "validate",
]

# ------------------------------------------------------------------------------------------------ choice lists
#: Mixed precision of pretraining and evaluation (see :func:`aclecg.runtime.resolve_amp`).
AMP_MODES: tuple[str, ...] = ("auto", "off", "bf16", "fp16")
#: What aVR does in the region pooling: left out of every region, or a region of its own.
AVR_POLICIES: tuple[str, ...] = ("exclude", "own")
#: Formats of ``aclecg export`` (:mod:`aclecg.export`).
EXPORT_FORMATS: tuple[str, ...] = ("onnx", "torchscript")
#: Paper sizes (landscape width, height in mm) and gains (mm/mV) of the true-scale printout
#: (:mod:`aclecg.viz.printout`).
PAPER_SIZES_MM: dict[str, tuple[float, float]] = {"A4": (297.0, 210.0), "Letter": (279.4, 215.9)}
PRINT_GAINS: tuple[float, ...] = (5.0, 10.0, 20.0)
#: How pretraining draws its augmentations: ``per_sample`` (counter-based, keyed by seed, epoch, view and sample,
#: so every process augments only its own rows and any number of processes gives the same views) or
#: ``global_batch`` (one generator over the global batch, every process augmenting all of it; runs made before
#: ``per_sample`` existed, kept so they resume and reproduce exactly).
INPUT_DRAWS: tuple[str, ...] = ("per_sample", "global_batch")
#: Names of the augmentation presets of :data:`aclecg.augment.PRESETS` (here so that help texts and choice lists
#: need not import torch; tests/test_augment.py checks they are the registry's).
AUGMENTATION_PRESETS: tuple[str, ...] = ("physio", "physio_v1", "standard", "none")
#: Label protocols: every label of a record, or only records with exactly one (the authors' protocol).
PROTOCOLS: tuple[str, ...] = ("multilabel", "singlelabel")
#: Evaluation arms: per checkpoint (``linear_probe``, ``fine_tune``) and the reference arms.
ARMS: tuple[str, ...] = ("linear_probe", "fine_tune", "supervised", "reference_cnn", "random_init")
#: How trained arms choose their learning rate on validation.
LR_SELECTIONS: tuple[str, ...] = ("first_seed", "every_cell")
#: Raw formats of the built-in readers (the names of :data:`aclecg.data.base.READERS`, which `prepare --format`
#: reads; here for torch-free help texts, tests/test_registries.py checks they are the registry's).
DATA_FORMATS: tuple[str, ...] = ("ptbxl", "cpsc2018", "challenge")
#: Temporal shift modes, cardiac-cycle windows and mask fills of Physio-AUG.
SHIFT_MODES: tuple[str, ...] = ("circular", "zero", "edge")
CYCLE_WINDOWS: tuple[str, ...] = ("rr", "pqrst")
MASK_FILLS: tuple[str, ...] = ("zero", "median")
#: 2-D map implementations and metrics (see :mod:`aclecg.analysis.embed2d`).
UMAP_METHODS: tuple[str, ...] = ("fast", "umap-learn")
UMAP_METRICS: tuple[str, ...] = ("euclidean", "cosine")


# ------------------------------------------------------------------------------------------------- constraints
class Constraint:
    """A set of accepted values: :meth:`check` returns the value in canonical form or raises ``ValueError``."""

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def invalid(self) -> list[Any]:
        """Values outside the set (the constraint test feeds each of them to every parameter)."""
        raise NotImplementedError

    def _fail(self, value: Any) -> ValueError:
        return ValueError(f"must be {self.describe()}, got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer (not a bool) in ``[lo, hi]``."""

    lo: int | None = None
    hi: int | None = None
    #: accept a float with no fractional part (``2.0``) and return it as an int
    whole_floats: bool = False

    def check(self, value: Any) -> int:
        if self.whole_floats and _is_number(value) and float(value) == int(value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._fail(value)
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise self._fail(value)
        return value

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"an integer in [{self.lo}, {self.hi}]"
        if self.lo is not None:
            return f"an integer >= {self.lo}"
        return "an integer" if self.hi is None else f"an integer <= {self.hi}"

    def invalid(self) -> list[Any]:
        out: list[Any] = [1.5, "3", True]
        if self.lo is not None:
            out.append(self.lo - 1)
        if self.hi is not None:
            out.append(self.hi + 1)
        return out


@dataclass(frozen=True)
class Real(Constraint):
    """A finite number in the interval from ``lo`` to ``hi`` (each end open or closed)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def check(self, value: Any) -> float:
        if not _is_number(value):
            raise self._fail(value)
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            raise self._fail(value)
        if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
            raise self._fail(value)
        return float(value)

    def describe(self) -> str:
        if self.hi is None and self.lo is not None:  # one-sided, in Integer's style
            return f"a number {'>' if self.lo_open else '>='} {self.lo:g}"
        if self.lo is None and self.hi is not None:
            return f"a number {'<' if self.hi_open else '<='} {self.hi:g}"
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        left = "(" if self.lo is None or self.lo_open else "["
        right = ")" if self.hi is None or self.hi_open else "]"
        return f"a number in {left}{lo}, {hi}{right}"

    def invalid(self) -> list[Any]:
        out: list[Any] = ["0.1", float("nan"), True]
        if self.lo is not None:
            out.append(self.lo if self.lo_open else self.lo - 1)
        if self.hi is not None:
            out.append(self.hi if self.hi_open else self.hi + 1)
        return out


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of strings."""

    choices: tuple[str, ...]

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise self._fail(value)
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(map(repr, self.choices))

    def invalid(self) -> list[Any]:
        return ["no-such-option", 3, None]


@dataclass(frozen=True)
class Boolean(Constraint):
    """``True`` or ``False`` (not merely truthy)."""

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self._fail(value)
        return value

    def describe(self) -> str:
        return "true or false"

    def invalid(self) -> list[Any]:
        return [1, "yes", None]


@dataclass(frozen=True)
class Optional(Constraint):
    """``None`` or a value ``inner`` accepts."""

    inner: Constraint

    def check(self, value: Any) -> Any:
        return None if value is None else self.inner.check(value)

    def describe(self) -> str:
        return f"{self.inner.describe()} or null"

    def invalid(self) -> list[Any]:
        return [v for v in self.inner.invalid() if v is not None]


@dataclass(frozen=True)
class ListOf(Constraint):
    """A list or tuple of at least ``min_len`` items, each accepted by ``item``; returned as a tuple or list."""

    item: Constraint
    min_len: int = 0
    as_tuple: bool = False

    def check(self, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or len(value) < self.min_len:
            raise self._fail(value)
        try:
            items = [self.item.check(v) for v in value]
        except ValueError:
            raise self._fail(value) from None
        return tuple(items) if self.as_tuple else items

    def describe(self) -> str:
        size = f"at least {self.min_len} " if self.min_len else ""
        return f"a list of {size}items, each {self.item.describe()}"

    def invalid(self) -> list[Any]:
        out: list[Any] = ["not-a-list", [self.item.invalid()[0]]]
        if self.min_len:
            out.append([])
        return out


@dataclass(frozen=True)
class Pair(Constraint):
    """A ``[low, high]`` pair with ``low <= high``, each end accepted by ``item`` (a single number means
    ``[v, v]``); returned as a tuple."""

    item: Constraint

    def check(self, value: Any) -> tuple[Any, Any]:
        if _is_number(value):
            value = (value, value)
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise self._fail(value)
        low, high = self.item.check(value[0]), self.item.check(value[1])
        if low > high:
            raise ValueError(f"must have low <= high, got {list(value)!r}")
        return (low, high)

    def describe(self) -> str:
        return f"a [low, high] pair, each {self.item.describe()}"

    def invalid(self) -> list[Any]:
        bad = next(v for v in self.item.invalid() if not isinstance(v, str))
        return ["not-a-pair", [1, 2, 3], [bad, bad], self._reversed()]

    def _reversed(self) -> list[Any]:
        """Two accepted values, high first (found among a few candidates)."""
        ok = []
        for v in (0, 0.25, 0.5, 1, 2, 5, 10, 16):
            try:
                ok.append(self.item.check(v))
            except ValueError:
                continue
        return [max(ok), min(ok)]


@dataclass(frozen=True)
class Either(Constraint):
    """A value one of ``alternatives`` accepts (the first that does gives its canonical form)."""

    alternatives: tuple[Constraint, ...]

    def check(self, value: Any) -> Any:
        for alternative in self.alternatives:
            try:
                return alternative.check(value)
            except ValueError:
                continue
        raise self._fail(value)

    def describe(self) -> str:
        return " or ".join(a.describe() for a in self.alternatives)

    def invalid(self) -> list[Any]:
        out = []
        for alternative in self.alternatives:
            for value in alternative.invalid():
                if not any(_accepts(a, value) for a in self.alternatives) and value not in out:
                    out.append(value)
        return out


def _accepts(constraint: Constraint, value: Any) -> bool:
    try:
        constraint.check(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Device(Constraint):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether that GPU exists is checked when the run starts)."""

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._fail(value)
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise self._fail(value)

    def describe(self) -> str:
        return "auto, cpu, cuda or cuda:N"

    def invalid(self) -> list[Any]:
        return ["tpu", "cuda:x", 0]


def validate(
    owner: str, params: Mapping[str, Constraint], values: Mapping[str, Any], *, quote: bool = False
) -> dict[str, Any]:
    """Every value of ``values`` that ``params`` constrains, checked and canonical; the first failure is a
    :class:`ConfigError` naming ``owner``, the parameter (``quote``: in quotes) and what it accepts."""
    out: dict[str, Any] = {}
    for name, constraint in params.items():
        if name not in values:
            continue
        try:
            out[name] = constraint.check(values[name])
        except ValueError as exc:
            raise ConfigError(f"{owner}: {name!r} {exc}" if quote else f"{owner}: {name} {exc}") from None
    return out


# ------------------------------------------------------------------------------------------------------ tables
#: :class:`aclecg.training.PretrainConfig`. ``method``, ``encoder``, ``augmentation`` and ``leads`` are checked
#: against their registries when the run is built.
PRETRAIN_PARAMS: dict[str, Constraint] = {
    "epochs": Integer(1),
    "max_steps": Optional(Integer(1)),
    "batch_size": Integer(1),
    "lr": Real(0, 10, lo_open=True, hi_open=True),
    "weight_decay": Real(0, 1),
    "warmup_steps": Integer(0),
    "grad_clip": Optional(Real(0, None, lo_open=True)),
    "seed": Integer(0),
    "device": Device(),
    "amp": Options(AMP_MODES),
    "compile": Boolean(),
    "deterministic": Boolean(),
    "checkpoint_every": Integer(1),
    "keep_last": Integer(1),
    "log_every": Integer(1),
    "max_peaks": Integer(1),
    "input_draws": Options(INPUT_DRAWS),
    "avr_policy": Options(AVR_POLICIES),
    "exclude_folds": ListOf(Integer(1, 10)),
    "exclude_splits": ListOf(Options(("train", "val", "test"))),
}

#: :class:`aclecg.evaluation.EvalConfig`.
EVAL_PARAMS: dict[str, Constraint] = {
    "probe_grid": ListOf(Real(0), min_len=1, as_tuple=True),
    "probe_max_iter": Integer(1),
    "max_steps": Integer(1),
    "eval_every": Integer(1),
    "dense_every": Integer(1),
    "dense_until": Integer(0),
    "patience": Integer(1),
    "batch_size": Integer(1),
    "lr_grid": ListOf(Real(0, lo_open=True), min_len=1, as_tuple=True),
    "lr_selection": Options(LR_SELECTIONS),
    "lr_extend": Integer(0, 4),
    "val_cap": Integer(0),
    "n_bootstrap": Integer(1),
    "embed_batch_size": Integer(1),
    "device": Device(),
}

#: The budget of one classifier training (:func:`aclecg.classifier.train_classifier`): steps, validation
#: interval, early-stopping patience (in validations) and batch size.
TRAIN_BUDGET_PARAMS: dict[str, Constraint] = {
    "max_steps": Integer(1),
    "eval_every": Integer(1),
    "patience": Integer(1),
    "batch_size": Integer(1),
}

#: What a launch from the app may ask for (the form's bounds, checked again by :func:`aclecg.joblimits.check_app_caps`
#: so that a crafted request cannot start a run of 10,000 epochs on a shared server).
APP_LAUNCH_PARAMS: dict[str, Constraint] = {
    "epochs": Integer(1, 200),
    "batch_size": Integer(2, 512),
    "seeds": Integer(1, 10),
}

#: A sweep's label fractions and seeds (:func:`aclecg.evaluation.parse_sweep_form`, so :func:`run_sweep`, the command
#: line and the app): seeds are a count (seeds 0..n-1) or the seeds themselves.
SWEEP_FORM_PARAMS: dict[str, Constraint] = {
    "fractions": ListOf(Real(0, 1, lo_open=True), min_len=1),
    "seeds": Either((Integer(1), ListOf(Integer(), min_len=1))),
}

#: The command line's sweep form (``sweep --seeds N --fractions F,...``): seeds per fraction and label fractions,
#: bounded so a typo cannot ask for 10^8 cells or a fraction that selects no record.
SWEEP_PARAMS: dict[str, Constraint] = {
    "seeds": Integer(1, 100),
    "fractions": ListOf(Real(1e-4, 1), min_len=1),
}
