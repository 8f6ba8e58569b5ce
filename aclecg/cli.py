"""Command line entry point: ``aclecg <command> ...`` (the console script) or ``python -m aclecg <command> ...``.

Each subcommand lives in ``aclecg/commands/<name>.py`` and defines ``register(subparsers)``, which adds its
parser and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
Library errors that describe bad input (``AclEcgError``) are printed as one line, never as a traceback; so is a
file system that refuses the output (read-only, no permission, disk full, quota), wherever below the command it is
raised: one line naming the path and what is wrong, exit code 2. So is an optional package a command needs and
that is not installed (a missing module of aclecg itself is a bug and keeps its traceback). ``--workers`` beyond
the CPU cores this process may use is lowered to them, with a one-line note.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from pathlib import Path

from aclecg.errors import AclEcgError

#: Subcommands in the order ``--help`` lists them (module names under ``aclecg.commands``).
COMMANDS: tuple[str, ...] = (
    "bundled",
    "prepare",
    "info",
    "augment",
    "measure",
    "printout",
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
    "regions",
    "overlap",
    "export",
    "encoders",
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
    for name in COMMANDS:  # every command module exists: one that fails to import is a bug, shown as such
        importlib.import_module(f"aclecg.commands.{name}").register(sub)
    return parser


#: Optional packages a command may need: import name -> (pip name, the extra of pyproject.toml that installs it).
OPTIONAL_PACKAGES: dict[str, tuple[str, str | None]] = {
    "matplotlib": ("matplotlib", "report"),
    "streamlit": ("streamlit", "app"),
    "plotly": ("plotly", "app"),
    "umap": ("umap-learn", "app"),
    "ray": ("ray", "cluster"),
    "onnx": ("onnx", None),
    "onnxscript": ("onnxscript", None),
}


def missing_package_line(exc: ModuleNotFoundError) -> str | None:
    """One line naming the package a command needs and how to install it; ``None`` for a module of aclecg itself
    (a bug, whose traceback must show) or an unnamed one."""
    if not exc.name:
        return None
    top = exc.name.split(".")[0]
    if top == "aclecg":
        return None
    pip_name, extra = OPTIONAL_PACKAGES.get(top, (top, None))
    hint = f"pip install {pip_name}" + (f", or pip install 'aclecg[{extra}]'" if extra else "")
    return f"this command needs the Python package {top!r}, which is not installed ({hint})"


#: OSError numbers that mean the output cannot be written where asked, and what the user can do about it.
STORAGE_ERRNOS: dict[int, str] = {
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EACCES: "permission denied; choose a folder you may write to, or fix its permissions",
    errno.EPERM: "operation not permitted; choose a folder you may write to, or fix its permissions",
    errno.ENOSPC: "no space left on the device; free some space or choose another folder",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another folder",
}

#: The options that name a command's output, in the order a message falls back on them.
OUTPUT_OPTIONS: tuple[str, ...] = ("out", "output", "run_dir", "root", "html", "cache_dir")


def storage_error_line(exc: BaseException, args: argparse.Namespace | None = None) -> str | None:
    """One line for a refusing file system found in ``exc`` or the exceptions it was raised from; ``None`` when
    there is none. Names the file (the folder of an atomic write's hidden temporary file), else the output option."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            path = current.filename
            if isinstance(path, (str, bytes, os.PathLike)):
                path = Path(os.fsdecode(path))
                if path.name.startswith(".") and (".tmp" in path.name or path.name.endswith("tmp")):
                    path = path.parent
            else:
                path = next((getattr(args, k) for k in OUTPUT_OPTIONS if getattr(args, k, None)), None)
            verb = "cannot access" if current.errno in (errno.EACCES, errno.EPERM) else "cannot write"
            where = f"{verb} {path}" if path is not None else f"{verb} the output"
            return f"{where}: {STORAGE_ERRNOS[current.errno]} ({errno.errorcode.get(current.errno, current.errno)})"
        current = current.__cause__ or current.__context__
    return None


def cap_workers(args: argparse.Namespace) -> None:
    """Lower a command's ``--workers`` to the available cores, saying so on stderr."""
    workers = getattr(args, "workers", None)
    if not isinstance(workers, int) or isinstance(workers, bool):
        return
    from aclecg.data.prepare import usable_cpus  # the one count of usable cores (prepare's pool uses it too)

    cores = usable_cpus()
    if workers > cores:
        print(f"note: --workers {workers} is more than the {cores} CPU cores available; using {cores}", file=sys.stderr)
        args.workers = cores


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
    cap_workers(args)
    try:
        return int(args.func(args) or 0)
    except AclEcgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        missing = missing_package_line(exc)
        if missing is None:
            raise
        print(f"error: {missing}", file=sys.stderr)
        return 2
    except Exception as exc:
        line = storage_error_line(exc, args)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
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
