"""``python -m aclecg``: the command line (see ``aclecg.cli``)."""

from aclecg.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
