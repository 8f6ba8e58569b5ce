"""``python -m aclecg encoders``: register your own encoder (``MODULE:FACTORY`` + contract) so the app offers it."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  # build and check mypkg.encoders:build once, then offer it as "mine (yours)" on the app's pages
  PYTHONPATH=. python -m aclecg encoders add mine --encoder-factory mypkg.encoders:build \\
      --encoder-contract my_contract.json
  python -m aclecg encoders list
  python -m aclecg encoders remove mine

A registration is NAME.encoder.json in the encoders folder ($ACLECG_ENCODERS, else <home>/encoders): the factory's
name and its contract. The app only reads that folder, and imports the factory's module in the server process when
a page uses the encoder, so the module must be importable there (installed, or on the app's PYTHONPATH). Every
command that takes --checkpoint also takes the registration file. See docs/interop.md.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from aclecg.commands.encoder_args import add_factory_args

    p = sub.add_parser(
        "encoders",
        help="register your own encoder (MODULE:FACTORY + contract) for the app and --checkpoint",
        description="Register, list or remove encoders of your own. `add` builds the factory's module once, checks "
        "that it maps the contract's windows to (N, E) embeddings, and writes NAME.encoder.json into the encoders "
        "folder, which the app's encoder pickers read.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=("add", "list", "remove"), help="what to do")
    p.add_argument("name", nargs="?", help="the encoder's name (add, remove)")
    add_factory_args(p)
    p.add_argument("--root", default=None, help="the encoders folder (default $ACLECG_ENCODERS, else <home>/encoders)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aclecg import paths
    from aclecg.errors import ConfigError

    root = Path(args.root).expanduser() if args.root else paths.encoders_root()
    if args.action == "list":
        import json

        found = paths.registered_encoders(root)
        for name, path in found.items():
            try:
                factory = json.loads(path.read_text()).get("factory", "?")
            except (OSError, ValueError, AttributeError):
                factory = "(unreadable)"
            print(f"{name:<24} {factory}  ({path})")
        if not found:
            print(f"no registered encoders in {root}")
        return 0
    if not args.name:
        raise ConfigError(f"encoders {args.action} needs a NAME")
    if args.action == "remove":
        from aclecg.evaluation.custom import registration_file

        target = registration_file(args.name, root)
        if not target.is_file():
            raise ConfigError(f"no registered encoder {args.name!r} in {root}")
        target.unlink()
        print(f"removed {target}")
        return 0
    if not args.encoder_factory or not args.encoder_contract:
        raise ConfigError("encoders add needs --encoder-factory MODULE:FACTORY and --encoder-contract FILE")
    from aclecg.evaluation.custom import register_encoder

    path = register_encoder(args.name, args.encoder_factory, args.encoder_contract, root)
    print(f"registered {args.name}: {path} (the app lists it as '{args.name} (yours)')")
    return 0
