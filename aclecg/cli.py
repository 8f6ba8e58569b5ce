"""Command line entry point: ``aclecg <command> ...`` (the console script) or ``python -m aclecg <command> ...``.

Each subcommand lives in ``aclecg/commands/<name>.py`` and defines ``register(subparsers)``, which adds its
parser and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
Library errors that describe bad input (``AclEcgError``) are printed as one line, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from aclecg.errors import AclEcgError

#: Subcommands in the order ``--help`` lists them (module names under ``aclecg.commands``).
COMMANDS: tuple[str, ...] = (
    "bundled",
    "prepare",
    "info",
    "augment",
    "methods",
    "pretrain",
    "runs",
    "embed",
    "sweep",
    "report",
    "study",
    "umap",
    "neighbours",
    "attribute",
    "app",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aclecg",
        description="ACL-ECG Studio: anatomy-aware contrastive learning on 12-lead ECGs.",
        epilog="Run `aclecg COMMAND --help` for a command's options and examples (`python -m aclecg` works too).",
    )
    from aclecg import __version__

    parser.add_argument("--version", action="version", version=f"aclecg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"aclecg.commands.{name}")
        except ModuleNotFoundError as exc:  # a command whose module is not written yet is simply not listed
            if exc.name == f"aclecg.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after a bare `--` is handed to the command untouched (e.g. `runs launch NAME -- --epochs 5`).
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    args.passthrough = passthrough
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except AclEcgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry_point() -> None:
    """The ``aclecg`` console script (the same exit handling as ``python -m aclecg``)."""
    from aclecg.__main__ import _exit

    _exit(main())


if __name__ == "__main__":
    sys.exit(main())
