"""``python -m aclecg``: the command line (see ``aclecg.cli``)."""

import os
import sys

from aclecg.cli import main


def _exit(code: int) -> None:
    """Exit with ``code``. A torchrun worker leaves without interpreter teardown once its work is done.

    With gloo, C++ worker threads of the process group can still be torn down during interpreter finalisation,
    which now and then aborts a rank that has finished ("terminate called without an active exception",
    SIGABRT) and so fails a finished run. Everything the engine writes is closed and atomically renamed before
    this point, so after flushing the standard streams nothing is lost by skipping the teardown.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    _exit(main())
