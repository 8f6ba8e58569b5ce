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


# ------------------------------------------------------------------------------------- methods' hyper-parameters
def _method_cases() -> list[tuple[str, str, object]]:
    from aclecg.methods import METHODS

    return [
        (name, key, bad)
        for name in METHODS.names()
        for key, constraint in METHODS.get(name).PARAMS.items()
        for bad in constraint.invalid()
    ]


METHOD_CASES = _method_cases()
TINY = {"stem_width": 4, "widths": [8], "blocks": [1], "kernel_size": 3, "feature_dim": 8}


@pytest.mark.parametrize(("method", "key", "bad"), METHOD_CASES, ids=[f"{m}.{k}={b!r}" for m, k, b in METHOD_CASES])
def test_every_method_hyper_parameter_refuses_every_invalid_value(method, key, bad):
    from aclecg.training import build_method

    config = PretrainConfig(method=method, encoder=TINY, method_hparams={key: bad})
    with pytest.raises(ConfigError, match=rf"^method '{method}': hyper-parameter '{key}' must "):
        build_method(config)


def test_every_method_declares_every_hyper_parameter():
    from aclecg.methods import METHODS

    for name in METHODS.names():
        cls = METHODS.get(name)
        assert set(cls.PARAMS) == set(cls.DEFAULTS) - {"augmentation"}, name
        c.validate(name, cls.PARAMS, {k: v for k, v in cls.DEFAULTS.items() if v is not None})  # defaults pass


# ------------------------------------------------------------------------------------ augmentation steps' params
def _step_cases() -> list[tuple[str, str, object]]:
    from aclecg.augment import AUGMENTATIONS
    from aclecg.augment.params import STEP_CONSTRAINTS

    return [
        (name, key, bad)
        for name in AUGMENTATIONS.names()
        for key, constraint in {**STEP_CONSTRAINTS, **AUGMENTATIONS.get(name).CONSTRAINTS}.items()
        for bad in constraint.invalid()
    ]


STEP_CASES = _step_cases()


@pytest.mark.parametrize(("step", "key", "bad"), STEP_CASES, ids=[f"{s}.{k}={b!r}" for s, k, b in STEP_CASES])
def test_every_augmentation_parameter_refuses_every_invalid_value(step, key, bad):
    from aclecg.augment import AUGMENTATIONS, build_augmentation

    with pytest.raises(ConfigError, match=rf"^augmentation '{step}': '{key}' must "):
        if key == "fs":  # the pipeline's rate, handed to every step
            AUGMENTATIONS.get(step)(fs=bad)
        else:
            build_augmentation([{"name": step, key: bad}])


def test_every_augmentation_step_constrains_each_of_its_parameters():
    from aclecg.augment import AUGMENTATIONS

    for name in AUGMENTATIONS.names():
        cls = AUGMENTATIONS.get(name)
        runtime = {"scope"} if name == "cardiac_cycle_mask" else set()  # its regions depend on the leads
        assert set(cls.CONSTRAINTS) | {"p"} | runtime == set(cls.PARAMS), name


# --------------------------------------------------------------------------------------- the classifier's budget
BUDGET_CASES = [(name, bad) for name, constraint in c.TRAIN_BUDGET_PARAMS.items() for bad in constraint.invalid()]


@pytest.mark.parametrize(("name", "bad"), BUDGET_CASES, ids=[f"{n}={b!r}" for n, b in BUDGET_CASES])
def test_the_training_budget_refuses_every_invalid_value(name, bad):
    import numpy as np
    import torch

    from aclecg.classifier import train_classifier
    from aclecg.reference_cnn import build_reference_cnn

    x, y = torch.zeros((4, 12, 64)), np.zeros((4, 1), np.float32)
    with pytest.raises(ConfigError, match=rf"^training: {name} must be "):
        train_classifier(build_reference_cnn(12, 1), x, y, x, y, "multilabel", 1e-3, **{name: bad})


# ------------------------------------------------------------------------------- the sweep form and command line
FORM_CASES = [("form", n, bad) for n, constraint in c.SWEEP_FORM_PARAMS.items() for bad in constraint.invalid()] + [
    ("cli", n, bad) for n, constraint in c.SWEEP_PARAMS.items() for bad in constraint.invalid()
]


@pytest.mark.parametrize(("where", "name", "bad"), FORM_CASES, ids=[f"{w}.{n}={b!r}" for w, n, b in FORM_CASES])
def test_the_sweep_form_refuses_every_invalid_value(where, name, bad):
    from aclecg.commands.sweep import check_form
    from aclecg.evaluation import parse_sweep_form

    values = {"fractions": [0.5], "seeds": 1, name: bad}
    with pytest.raises(ConfigError, match=rf"\b{name} must be "):
        if where == "form":
            parse_sweep_form(values["fractions"], ["random_init"], 0, values["seeds"])
        else:
            check_form(values["fractions"], values["seeds"])


def test_the_sweep_form_keeps_its_canonical_values():
    import numpy as np

    from aclecg.evaluation import parse_sweep_form

    assert parse_sweep_form("1,0.1,0.1", "random_init", 0, 3) == ([0.1, 1.0], ["random_init"], [0, 1, 2])
    assert parse_sweep_form(np.array([0.5]), ["random_init"], 0, np.int64(2))[2] == [0, 1]
    assert parse_sweep_form([0.5], ["random_init"], 0, [4, 2, 4])[2] == [4, 2]
