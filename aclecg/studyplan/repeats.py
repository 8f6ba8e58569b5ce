"""Repeated pretraining runs of a study file (``[pretrain.repeats]``, issue 28): the run of seed ``S`` of a method is
the method ``NAME@seedS``, pretrained for one test fold only, so the variance between pretraining runs is measured
rather than assumed (:mod:`aclecg.results.pairing` pairs them by seed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from aclecg.constraints import Integer, ListOf, Options
from aclecg.errors import ConfigError

if TYPE_CHECKING:
    from aclecg.studyplan.spec import MethodSpec

__all__ = ["REPEAT_MARK", "read_repeats", "repeat_base", "repeat_name"]


class Reader(Protocol):
    """What :mod:`aclecg.studyplan.spec`'s reader offers: one-line errors naming the file and key."""

    def fail(self, key: str, message: str) -> ConfigError: ...
    def table(self, name: str, required: bool = True) -> Mapping[str, Any]: ...
    def check(self, prefix: str, params: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]: ...
    def known(self, prefix: str, values: Mapping[str, Any], allowed: set[str]) -> None: ...
    def required(self, prefix: str, values: Mapping[str, Any], *names: str) -> None: ...


#: A repeat's name: ``NAME@seedS`` (``@`` is never in a method's name, so the base method is unambiguous).
REPEAT_MARK = "@seed"


def repeat_name(method: str, seed: int) -> str:
    return f"{method}{REPEAT_MARK}{seed}"


def repeat_base(name: str) -> str:
    """``acl_ecg@seed100`` -> ``acl_ecg``; a first run's name is its own base."""
    return name.split("@", 1)[0]


def read_repeats(
    r: Reader, folds: Mapping[str, Any], methods: tuple[MethodSpec, ...], seeds: Mapping[int, int]
) -> tuple[MethodSpec, ...]:
    """``[pretrain.repeats]``: more pretraining runs of some methods, one per extra seed of a test fold, so the
    variance between pretraining runs is measured (``methods = [...]``, ``seeds = {K = S}`` or ``{K = [S, ...]}``).
    Each is a method of its own, ``NAME@seedS``, pretrained for that fold only; the primary comparison pairs the
    runs of ACL-ECG and of its baseline that share a seed. An array of such tables (``[[pretrain.repeats]]``)
    repeats different methods on different folds, e.g. a baseline only where the rotation chose it."""
    rep = r.table("pretrain").get("repeats")
    if rep is None:
        return ()
    groups = rep if isinstance(rep, list) and rep else [rep]
    out: list[MethodSpec] = []
    for i, group in enumerate(groups):
        prefix = f"pretrain.repeats[{i}]" if isinstance(rep, list) else "pretrain.repeats"
        out += _group(r, prefix, group, folds, methods, seeds)
    names = [m.name for m in out]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise r.fail("pretrain.repeats", f"declares {twice} twice")
    return tuple(out)


def _group(
    r: Reader,
    prefix: str,
    rep: Any,
    folds: Mapping[str, Any],
    methods: tuple[MethodSpec, ...],
    seeds: Mapping[int, int],
) -> list[MethodSpec]:
    """One repeats table (``prefix`` names it in errors): its methods on each named fold, once per extra seed."""
    if not isinstance(rep, dict):
        raise r.fail(prefix, "must be a table with methods and seeds")
    r.known(prefix, rep, {"methods", "seeds"})
    r.required(prefix, rep, "methods", "seeds")
    by_name = {m.name: m for m in methods if not m.official_only}
    names = r.check(prefix, {"methods": ListOf(Options(tuple(by_name)), min_len=1)}, rep)["methods"]
    table = rep["seeds"]
    if not isinstance(table, dict) or not table:
        raise r.fail(f"{prefix}.seeds", "must be a table: test fold = seed, or a list of seeds")
    out = []
    for fold, value in table.items():
        key = f"{prefix}.seeds.{fold}"
        if not fold.isdigit() or int(fold) not in folds["test"]:
            raise r.fail(key, f"must name a test fold of folds.test {list(folds['test'])}")
        extra = value if isinstance(value, list) else [value]
        extra = r.check(f"{prefix}.seeds", {fold: ListOf(Integer(0), min_len=1)}, {fold: extra})[fold]
        if seeds[int(fold)] in extra or len(set(extra)) != len(extra):
            raise r.fail(key, f"must be new seeds for fold {fold} (its first run has seed {seeds[int(fold)]})")
        for seed in extra:
            for name in names:
                out.append(
                    replace(
                        by_name[name], name=repeat_name(name, seed), official_only=False, seed=seed, folds=(int(fold),)
                    )
                )
    return out
