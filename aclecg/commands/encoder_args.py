"""The command line's one way to name encoders: ``--checkpoint`` files and a user's ``--encoder-factory`` module.

:func:`add_factory_args` adds ``--encoder-factory MODULE:FACTORY`` and ``--encoder-contract FILE`` to a command;
:func:`encoder_sources` loads every encoder a command was given through one function (checkpoints verified by
:func:`aclecg.evaluation.load_source`; the factory by :func:`aclecg.evaluation.custom.load_factory_source`). Only
the command line reaches the factory: it runs the user's own code, on purpose.
"""

from __future__ import annotations

import argparse
from typing import Any

FACTORY_HELP = (
    "your own encoder: MODULE:FACTORY, a function returning a torch module that maps (N, leads, samples) float32 "
    "to embeddings (N, E); imported from the working folder or the Python path. Needs --encoder-contract"
)
CONTRACT_HELP = (
    "with --encoder-factory: JSON or TOML file of the preprocessing contract its input follows "
    "(fs, n_samples, band_hz, leads, ...; see docs/interop.md)"
)


def add_factory_args(p: argparse.ArgumentParser | Any, group: Any = None) -> None:
    """Add ``--encoder-factory`` (to ``group`` when given, e.g. a mutually exclusive source group) and
    ``--encoder-contract`` to parser ``p``."""
    (group or p).add_argument("--encoder-factory", metavar="MODULE:FACTORY", default=None, help=FACTORY_HELP)
    p.add_argument("--encoder-contract", metavar="FILE", default=None, help=CONTRACT_HELP)


def factory_source(args: argparse.Namespace) -> Any:
    """The ``--encoder-factory`` encoder as an ``EncoderSource``, or ``None`` when none was given."""
    from aclecg.errors import ConfigError

    spec, contract = getattr(args, "encoder_factory", None), getattr(args, "encoder_contract", None)
    if spec is None:
        if contract is not None:
            raise ConfigError("--encoder-contract needs --encoder-factory (checkpoints carry their own contract)")
        return None
    if contract is None:
        raise ConfigError(f"--encoder-factory {spec} needs --encoder-contract FILE: what windows does it expect?")
    from aclecg.evaluation.custom import load_factory_source

    return load_factory_source(spec, contract)


def encoder_sources(args: argparse.Namespace, checkpoints: Any = None) -> list[Any]:
    """Every encoder the command was given: each ``--checkpoint`` (or ``checkpoints``), then the factory's."""
    from aclecg import evaluation

    paths = getattr(args, "checkpoint", None) if checkpoints is None else checkpoints
    paths = [paths] if isinstance(paths, str) else list(paths or [])
    sources = [evaluation.load_source(path) for path in paths]
    own = factory_source(args)
    return sources + ([own] if own is not None else [])
