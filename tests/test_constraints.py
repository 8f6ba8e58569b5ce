"""Every parameter of every config refuses every invalid value its constraint lists, with a message naming it;
the command line offers exactly the constraint module's choices."""

from __future__ import annotations

import argparse

import pytest

from aclecg import constraints as c
from aclecg.cli import build_parser
from aclecg.errors import ConfigError
from aclecg.evaluation import EvalConfig
from aclecg.training import PretrainConfig

CASES = [
    (PretrainConfig, name, bad) for name, constraint in c.PRETRAIN_PARAMS.items() for bad in constraint.invalid()
] + [(EvalConfig, name, bad) for name, constraint in c.EVAL_PARAMS.items() for bad in constraint.invalid()]


@pytest.mark.parametrize(("config", "name", "bad"), CASES, ids=[f"{k.__name__}.{n}={b!r}" for k, n, b in CASES])
def test_every_parameter_refuses_every_invalid_value(config, name, bad):
    with pytest.raises(ConfigError, match=rf"\b{name} must be "):
        config(**{name: bad})


def test_defaults_and_the_tables_cover_the_configs():
    PretrainConfig()
    EvalConfig()
    pretrain_fields = set(PretrainConfig.__dataclass_fields__)
    # the rest are checked against their registries (method, encoder, augmentation) or by the leads code
    assert pretrain_fields - set(c.PRETRAIN_PARAMS) == {
        "method",
        "data",
        "encoder",
        "method_hparams",
        "augmentation",
        "leads",
    }
    assert set(EvalConfig.__dataclass_fields__) == set(c.EVAL_PARAMS)


def _choices(command: str, flag: str) -> tuple:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in sub.choices[command]._actions if flag in a.option_strings)
    return tuple(action.choices)


@pytest.mark.parametrize(
    ("command", "flag", "expected"),
    [
        ("pretrain", "--amp", c.AMP_MODES),
        ("sweep", "--protocol", c.PROTOCOLS),
        ("sweep", "--lr-selection", c.LR_SELECTIONS),
        ("prepare", "--format", c.DATA_FORMATS),
        ("umap", "--method", c.UMAP_METHODS),
        ("umap", "--metric", c.UMAP_METRICS),
    ],
)
def test_the_cli_offers_the_constraint_choices(command, flag, expected):
    assert _choices(command, flag) == tuple(expected)
