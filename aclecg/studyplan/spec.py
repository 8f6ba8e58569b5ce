"""The study file: the whole protocol of a study in one TOML file, parsed (``tomllib``) and validated.

Every error is one line naming the file and the key (``studies/x.toml: folds.validation must be ...``). The
file's relative paths are relative to the working directory (the repository root, as ``make`` runs it). See
``docs/evaluation.md`` ("The study as a plan") for the format and ``studies/bundled.toml`` for the protocol of
``docs/results.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from aclecg.constraints import ARMS, PROTOCOLS, Boolean, Integer, ListOf, Optional, Options, Real, validate
from aclecg.errors import ConfigError
from aclecg.evaluation.config import EvalConfig
from aclecg.studyplan.overrides import apply_overrides, blame, parse_override, runs_suffix
from aclecg.studyplan.repeats import read_repeats, repeat_base

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

__all__ = ["BEST_BASELINE", "MethodSpec", "Study", "SweepStage", "load_study"]

#: In a sweep's ``encoders``: the baseline whose linear probe validates best in that rotation (chosen on the
#: validation fold once the rotation's probes are finished, :func:`aclecg.results.study.best_baseline`).
BEST_BASELINE = "best_baseline"

_TABLES: dict[str, set[str]] = {
    "study": {"name", "runs", "checkpoints", "cells", "save_cells"},
    "data": {"pretrain", "downstream", "label_set", "overlap"},
    "folds": {"test", "validation", "official"},
    "pretrain": {"epochs", "methods", "official_only", "seeds", "overrides", "method", "repeats"},
    "evaluation": {"seeds", "embed", *(f.name for f in fields(EvalConfig))},
    "primary": {"protocol", "fraction", "kind", "metric"},
}
_SWEEP_KEYS = {"group", "arms", "encoders", "fractions", "protocols", "folds"}


@dataclass(frozen=True)
class MethodSpec:
    """One pretrained encoder of the study: its pretraining config file and overrides (``KEY = value`` as
    ``pretrain --set KEY=JSON``); ``official_only`` ones (the ablations) are pretrained on the official split only."""

    name: str
    config: Path
    overrides: Mapping[str, Any] = field(default_factory=dict)
    official_only: bool = False
    seed: int | None = None  # a repeat (``NAME@seedS``): its own pretraining seed, for the one fold in ``folds``
    folds: tuple[int, ...] | None = None  # the test folds it is pretrained for (None: by ``official_only``)

    @property
    def base(self) -> str:
        """The method a repeat repeats (its own name for a first run)."""
        return repeat_base(self.name)


@dataclass(frozen=True)
class SweepStage:
    """Sweeps of one arm group: for every listed test fold and protocol, the folder
    ``<protocol>-test<K>-<group>`` with these arms and fractions. ``encoders``: ``None`` for every method pretrained
    for that fold, else names (``best_baseline`` allowed)."""

    group: str
    arms: tuple[str, ...]
    encoders: tuple[str, ...] | None
    fractions: tuple[float, ...]
    protocols: tuple[str, ...]
    folds: tuple[int, ...]


@dataclass(frozen=True)
class Study:
    """A parsed, validated study file."""

    path: Path
    name: str
    runs: Path
    checkpoints: Path
    cells: Path | None
    save_cells: bool
    pretrain_data: tuple[str, ...] | None
    downstream: str
    label_set: str
    test_folds: tuple[int, ...]
    val_fold: int
    official_fold: int
    epochs: int | None
    methods: tuple[MethodSpec, ...]
    pretrain_seeds: Mapping[int, int]
    label_seeds: int
    embed: bool
    evaluation: EvalConfig
    sweeps: tuple[SweepStage, ...]
    primary: Mapping[str, Any]
    overlap: str = "warn"  # pretraining records that duplicate a test fold's: warn, refuse or ignore
    overrides: tuple[str, ...] = ()  # the command line's --set KEY=VALUE, as given

    @property
    def sweeps_dir(self) -> Path:
        """Where the sweep folders land (what ``aclecg study report`` reads)."""
        return self.runs / "sweeps"

    def methods_for(self, fold: int) -> list[MethodSpec]:
        """The methods pretrained for a test fold (the ablations only on the official split; a repeat only on its
        own fold)."""
        return [
            m
            for m in self.methods
            if (fold in m.folds if m.folds is not None else fold == self.official_fold or not m.official_only)
        ]


class _Reader:
    """Reads one study file's tables, naming the file and key in every error."""

    def __init__(self, path: Path, doc: Mapping[str, Any]):
        self.path, self.doc = path, doc

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key} {message}")

    def table(self, name: str, required: bool = True) -> Mapping[str, Any]:
        value = self.doc.get(name)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"[{name}]", "is missing" if value is None else "must be a table")
        return value

    def check(self, prefix: str, params: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return validate(f"{self.path}: {prefix}", params, values)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(f"{prefix}: ", f"{prefix}.", 1)) from None

    def known(self, prefix: str, values: Mapping[str, Any], allowed: set[str]) -> None:
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise self.fail(f"{prefix}.{unknown[0]}", f"is not a known key; known: {', '.join(sorted(allowed))}")

    def required(self, prefix: str, values: Mapping[str, Any], *names: str) -> None:
        for name in names:
            if name not in values:
                raise self.fail(f"{prefix}.{name}", "is missing")


def load_study(path: str | Path, overrides: Sequence[str] = ()) -> Study:
    """Parse and validate a study file with its ``--set KEY=VALUE`` overrides (:mod:`~aclecg.studyplan.overrides`);
    raise :class:`ConfigError` (one line, file and key, and the override that caused it) when it is wrong."""
    path = Path(path)
    parsed = [parse_override(o) for o in overrides]
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"study file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"study file {path} is unreadable: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        effective = apply_overrides(doc, parsed)
    except ConfigError as exc:
        raise ConfigError(f"{path} {exc}") from None
    try:
        study = _read_study(path, effective)
    except ConfigError as exc:
        raise ConfigError(blame(str(exc), str(path), parsed)) from None
    suffix = runs_suffix(doc, effective, parsed)
    runs = study.runs / suffix if suffix else study.runs
    return replace(study, runs=runs, overrides=tuple(overrides))


def _read_study(path: Path, doc: Mapping[str, Any]) -> Study:
    r = _Reader(path, doc)
    _top_level(r, doc)
    for name, allowed in _TABLES.items():
        r.known(name, r.table(name, required=name not in ("evaluation", "primary")), allowed)
    study = r.table("study")
    data = r.table("data")
    folds = _folds(r)
    methods, seeds, epochs = _pretrain(r, folds)
    methods += read_repeats(r, folds, methods, seeds)
    label_seeds, embed, eval_cfg = _evaluation(r)
    sweeps = _sweeps(r, folds, methods)
    primary = _primary(r)
    _best_baseline_probes(r, sweeps, primary)
    r.check("study", {"save_cells": Boolean()}, study)
    r.required("study", study, "name", "runs")
    r.required("data", data, "downstream", "label_set")
    pretrain_data = data.get("pretrain")
    if pretrain_data is not None and (
        not isinstance(pretrain_data, list) or not pretrain_data or not all(isinstance(d, str) for d in pretrain_data)
    ):
        raise r.fail(
            "data.pretrain", f"must be a non-empty list of prepared folders or bundled:NAME, got {pretrain_data!r}"
        )
    overlap = data.get("overlap", "warn")
    if overlap not in ("warn", "refuse", "ignore"):
        raise r.fail("data.overlap", f"must be one of warn, refuse, ignore, got {overlap!r}")
    for key in ("downstream", "label_set"):
        if not isinstance(data[key], str) or not data[key]:
            raise r.fail(f"data.{key}", f"must be a non-empty string, got {data[key]!r}")
    for key in ("name", "runs", "checkpoints", "cells"):
        if key in study and (not isinstance(study[key], str) or not study[key]):
            raise r.fail(f"study.{key}", f"must be a non-empty string, got {study[key]!r}")
    return Study(
        path=path,
        name=str(study["name"]),
        runs=Path(study["runs"]),
        checkpoints=Path(study.get("checkpoints", "checkpoints")),
        cells=Path(study["cells"]) if "cells" in study else None,
        save_cells=bool(study.get("save_cells", False)),
        pretrain_data=tuple(pretrain_data) if pretrain_data is not None else None,
        downstream=data["downstream"],
        overlap=str(overlap),
        label_set=data["label_set"],
        test_folds=folds["test"],
        val_fold=folds["validation"],
        official_fold=folds["official"],
        epochs=epochs,
        methods=methods,
        pretrain_seeds=seeds,
        label_seeds=label_seeds,
        embed=embed,
        evaluation=eval_cfg,
        sweeps=sweeps,
        primary=primary,
    )


def _top_level(r: _Reader, doc: Mapping[str, Any]) -> None:
    unknown = sorted(set(doc) - {*_TABLES, "sweep"})
    if unknown:
        raise r.fail(unknown[0], f"is not a known table; known: {', '.join(sorted({*_TABLES, 'sweep'}))}")


def _folds(r: _Reader) -> dict[str, Any]:
    folds = r.table("folds")
    r.required("folds", folds, "test", "validation")
    out = r.check(
        "folds",
        {"test": ListOf(Integer(1), min_len=1), "validation": Integer(1), "official": Integer(1)},
        {"official": 10, **folds},
    )
    test = tuple(out["test"])
    if len(set(test)) != len(test):
        raise r.fail("folds.test", f"repeats a fold: {list(test)}")
    if out["validation"] in test:
        raise r.fail("folds.validation", f"must not be a test fold ({out['validation']} is in folds.test)")
    if out["official"] not in test:
        raise r.fail("folds.official", f"must be one of folds.test {list(test)}, got {out['official']}")
    return {"test": test, "validation": out["validation"], "official": out["official"]}


def _pretrain(r: _Reader, folds: Mapping[str, Any]) -> tuple[tuple[MethodSpec, ...], dict[int, int], int | None]:
    pre = r.table("pretrain")
    r.required("pretrain", pre, "methods", "seeds")
    names = r.check(
        "pretrain",
        {"methods": ListOf(Options(_names(pre)), min_len=1), "official_only": ListOf(Options(_names(pre)))},
        pre,
    )
    epochs = r.check("pretrain", {"epochs": Optional(Integer(1))}, pre).get("epochs")
    seeds_table = pre["seeds"]
    if not isinstance(seeds_table, dict):
        raise r.fail("pretrain.seeds", "must be a table: test fold = pretraining seed")
    seeds: dict[int, int] = {}
    for fold, seed in seeds_table.items():
        if not fold.isdigit() or int(fold) not in folds["test"]:
            raise r.fail(f"pretrain.seeds.{fold}", f"must name a test fold of folds.test {list(folds['test'])}")
        seeds[int(fold)] = r.check("pretrain.seeds", {fold: Integer(0)}, {fold: seed})[fold]
    missing = [f for f in folds["test"] if f not in seeds]
    if missing:
        raise r.fail(f"pretrain.seeds.{missing[0]}", "is missing (every test fold needs its pretraining seed)")
    overrides = pre.get("overrides", {})
    per_method = pre.get("method", {})
    for key, value in (("pretrain.overrides", overrides), ("pretrain.method", per_method)):
        if not isinstance(value, dict):
            raise r.fail(key, "must be a table")
    _pretrain_keys(r, "pretrain.overrides", overrides)
    all_names = list(names["methods"]) + list(names.get("official_only", []))
    if len(set(all_names)) != len(all_names):
        raise r.fail("pretrain.methods", f"names a method twice: {all_names}")
    unknown = sorted(set(per_method) - set(all_names))
    if unknown:
        raise r.fail(f"pretrain.method.{unknown[0]}", "is not in pretrain.methods or pretrain.official_only")
    methods = []
    for name in all_names:
        own = per_method.get(name, {})
        r.known(f"pretrain.method.{name}", own, {"config", "overrides"})
        config = own.get("config", str(Path(_checkpoints(r)) / name / "config.json"))
        if not isinstance(config, str) or not config:
            raise r.fail(f"pretrain.method.{name}.config", f"must be the path of a config file, got {config!r}")
        extra = own.get("overrides", {})
        if not isinstance(extra, dict):
            raise r.fail(f"pretrain.method.{name}.overrides", "must be a table")
        _pretrain_keys(r, f"pretrain.method.{name}.overrides", extra)
        official_only = name in names.get("official_only", [])
        methods.append(MethodSpec(name, Path(config), {**overrides, **extra}, official_only))
    return tuple(methods), seeds, epochs


def _pretrain_keys(r: _Reader, prefix: str, values: Mapping[str, Any]) -> None:
    """Pretraining overrides name keys of the pretraining config, with values its constraints accept (the
    method, encoder, augmentation and leads are checked when the task's config is built)."""
    from aclecg.constraints import PRETRAIN_PARAMS
    from aclecg.training.config import PretrainConfig

    r.known(prefix, values, {f.name for f in fields(PretrainConfig)})
    r.check(prefix, PRETRAIN_PARAMS, values)


def _names(pre: Mapping[str, Any]) -> tuple[str, ...]:
    """Method names: identifiers (the folder names of runs and encoders)."""
    out = []
    for key in ("methods", "official_only"):
        for n in pre.get(key) or []:
            if isinstance(n, str) and n.replace("_", "").replace("-", "").isalnum():
                out.append(n)
    return tuple(out)


def _checkpoints(r: _Reader) -> str:
    return str(r.table("study").get("checkpoints", "checkpoints"))


def _evaluation(r: _Reader) -> tuple[int, bool, EvalConfig]:
    ev = dict(r.table("evaluation", required=False))
    out = r.check("evaluation", {"seeds": Integer(1), "embed": Boolean()}, {"seeds": 3, "embed": True, **ev})
    kwargs = {k: v for k, v in ev.items() if k not in ("seeds", "embed")}
    try:
        cfg = EvalConfig(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{r.path}: evaluation.{str(exc).split(': ', 1)[-1]}") from None
    return out["seeds"], out["embed"], cfg


def _sweeps(r: _Reader, folds: Mapping[str, Any], methods: tuple[MethodSpec, ...]) -> tuple[SweepStage, ...]:
    stages = r.doc.get("sweep")
    if not isinstance(stages, list) or not stages:
        raise r.fail("[[sweep]]", "is missing: declare at least one sweep stage")
    out, seen = [], set()
    names = {m.name for m in methods} | {BEST_BASELINE}
    for i, st in enumerate(stages):
        where = f"sweep[{i}]"
        if not isinstance(st, dict):
            raise r.fail(where, "must be a table")
        r.known(where, st, _SWEEP_KEYS)
        r.required(where, st, "group", "arms", "fractions", "protocols")
        v = r.check(
            where,
            {
                "arms": ListOf(Options(ARMS), min_len=1),
                "fractions": ListOf(Real(0, 1, lo_open=True), min_len=1, as_tuple=True),
                "protocols": ListOf(Options(PROTOCOLS), min_len=1),
            },
            st,
        )
        group = st["group"]
        if not isinstance(group, str) or not group.replace("_", "").isalnum():
            raise r.fail(f"{where}.group", f"must be a word (letters, digits, _), got {group!r}")
        stage_folds = _stage_folds(r, where, st.get("folds", "all"), folds["test"])
        encoders = _stage_encoders(r, where, st.get("encoders", "all"), names)
        if encoders is not None and any(a in ("linear_probe", "fine_tune") for a in v["arms"]) and not encoders:
            raise r.fail(f"{where}.encoders", "must name an encoder for the linear_probe / fine_tune arms")
        only = sorted({m.name for m in methods if m.official_only} & set(encoders or ()))
        rotations = [f for f in stage_folds if f != folds["official"]]
        if only and rotations:
            raise r.fail(
                f"{where}.encoders",
                f"names {only[0]}, pretrained on the official split only (pretrain.official_only), but the sweep's "
                f"folds include {rotations[0]}",
            )
        for fold in stage_folds:
            for protocol in v["protocols"]:
                folder = f"{protocol}-test{fold}-{group}"
                if folder in seen:
                    raise r.fail(f"{where}", f"declares sweep {folder} again")
                seen.add(folder)
        out.append(
            SweepStage(
                group,
                tuple(v["arms"]),
                encoders,
                tuple(sorted(set(v["fractions"]))),
                tuple(v["protocols"]),
                stage_folds,
            )
        )
    return tuple(out)


def _best_baseline_probes(r: _Reader, sweeps: tuple[SweepStage, ...], primary: Mapping[str, Any]) -> None:
    """A stage naming ``best_baseline`` for a test fold needs that fold's linear probes of every method at the
    primary fraction and protocol (the choice reads them); without them its cells would wait forever."""
    probed = {
        fold
        for st in sweeps
        if "linear_probe" in st.arms and st.encoders is None and primary["protocol"] in st.protocols
        and any(abs(f - primary["fraction"]) < 1e-9 for f in st.fractions)
        for fold in st.folds
    }  # fmt: skip
    for i, st in enumerate(sweeps):
        missing = [f for f in st.folds if f not in probed]
        if BEST_BASELINE in (st.encoders or ()) and missing:
            raise r.fail(
                f"sweep[{i}].encoders",
                f'names {BEST_BASELINE}, chosen on the linear probes of every method (encoders = "all") at '
                f"fraction {primary['fraction']:g} ({primary['protocol']}), and no stage has those probes for test "
                f"fold {missing[0]}",
            )


def _stage_folds(r: _Reader, where: str, value: Any, test: tuple[int, ...]) -> tuple[int, ...]:
    if value == "all":
        return test
    if not isinstance(value, list) or not value or any(f not in test for f in value):
        raise r.fail(f"{where}.folds", f'must be "all" or a list of folds.test {list(test)}, got {value!r}')
    return tuple(value)


def _stage_encoders(r: _Reader, where: str, value: Any, names: set[str]) -> tuple[str, ...] | None:
    if value == "all":
        return None
    if not isinstance(value, list) or any(v not in names for v in value):
        raise r.fail(f"{where}.encoders", f'must be "all" or a list of {", ".join(sorted(names))}, got {value!r}')
    return tuple(value)


def _primary(r: _Reader) -> dict[str, Any]:
    """The primary comparison as the file records it; it must be the one :mod:`aclecg.results.study` declares."""
    from aclecg.results.study import PRIMARY

    declared = {k: PRIMARY[k] for k in ("protocol", "fraction", "kind", "metric")}
    given = dict(r.table("primary", required=False))
    for key, value in given.items():
        if value != declared[key]:
            raise r.fail(
                f"primary.{key}",
                f"is {value!r} but the study's statistics declare {declared[key]!r} (aclecg.results.study.PRIMARY)",
            )
    return {**declared, **given}
