"""``aclecg app``: serve the Streamlit app with its heavy modules already imported (what ``make app`` runs).

``streamlit run app.py`` imports PyTorch, plotly and the data layer during the first visitor's first page, so that
page waits several seconds. This command imports them first, in the server's own process, and then hands over to
Streamlit's command line unchanged. It compiles umap-learn's kernels (otherwise compiled in a background thread
at the first visit of Representations, slowing every page for about 10 s) and then freezes the heap
(:func:`gc.freeze`), so garbage collections no longer walk the half-million objects of the imported libraries.
It also tells Streamlit not to treat ``pages/`` as an old-style page folder
before the app's ``st.navigation`` has run, which otherwise makes the first deep link of a fresh server (e.g.
``/augmentations``) show a "Page not found" notice before the page opens.

It serves on 127.0.0.1 (this machine only) unless told otherwise: ``--network`` (every interface) or ``--address``.
A network-facing app without a login (Streamlit's ``st.login``, configured in ``.streamlit/secrets.toml``, or a
trusted reverse proxy's user header, ``--trust-proxy-header``) starts read-only; ``--read-only`` forces that mode
anywhere. See docs/deploy.md.

Everything after ``--`` goes to ``streamlit run`` (e.g. ``-- --server.headless true``).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import inspect
import os
import time
from pathlib import Path

from aclecg.errors import AclEcgError

EXAMPLES = """examples:
  aclecg app                                  # the checkout's app.py on http://127.0.0.1:8501 (this machine only)
  aclecg app --port 8600 -- --server.headless true
  aclecg app --no-warm-up                      # exactly `streamlit run app.py`
  aclecg app --read-only                       # runs are shown, nothing can be launched, cancelled or resumed
  aclecg app --trust-proxy-header X-Forwarded-User   # behind nginx/Caddy on this machine (docs/deploy.md)
  aclecg app --network                         # every interface; read-only unless a login is configured
"""

LOOPBACK = "127.0.0.1"

#: Modules the pages import, in the order they are warmed (the first page then finds them in ``sys.modules``).
WARM_MODULES: tuple[str, ...] = (
    "torch",
    "pandas",
    "pyarrow",
    "plotly.graph_objects",
    "altair",
    "aclecg.data",
    "aclecg.viz",
    "aclecg.jobs",
    "aclecg.evaluation.sweep",  # the evaluation package itself loads its parts lazily
    "aclecg.results.study_report",
    "aclecg.upload",
    "streamlit.emojis",  # compiles its emoji regex on import, at the first alert or label with a non-ASCII character
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "app",
        help="serve the Streamlit app (needs the `app` extra)",
        description="Start the app with `streamlit run`, after importing the libraries its pages need, so the "
        "first page opens without waiting for them. Arguments after `--` go to `streamlit run`.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("script", nargs="?", default=None, help="the app's script (default: app.py of the project)")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    p.add_argument("--no-warm-up", action="store_true", help="do not import the pages' libraries first")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--address", default=None, help=f"address to listen on (default {LOOPBACK}: reachable from this machine only)"
    )
    where.add_argument(
        "--network",
        action="store_true",
        help="listen on every interface (0.0.0.0); read-only unless a login is configured (docs/deploy.md)",
    )
    p.add_argument(
        "--read-only", action="store_true", help="show runs but refuse every launch, cancel and resume (any address)"
    )
    p.add_argument(
        "--trust-proxy-header",
        metavar="NAME",
        default=None,
        help="take the user from this request header set by a reverse proxy (e.g. X-Forwarded-User); only safe when "
        "nothing but the proxy can reach the app's port",
    )
    p.set_defaults(func=run)


def app_script(script: str | None) -> Path:
    """The app's script: ``script`` or ``app.py`` of the project folder (see :func:`aclecg.paths.project_root`)."""
    from aclecg import paths

    path = Path(script) if script else paths.project_root() / "app.py"
    if not path.is_file():
        raise AclEcgError(
            f"{path}: no such app script. Run this from the ACL-ECG Studio checkout (or set ACLECG_HOME to it), "
            "or pass the path of app.py."
        )
    return path.resolve()


def warm_up(modules: tuple[str, ...] = WARM_MODULES) -> float:
    """Import ``modules`` (skipping any that is not installed), then build and serialise one figure, one map and one
    table (plotly loads its validators, altair its schema, pandas its Arrow conversion, at their first use); the
    seconds it took."""
    start = time.perf_counter()
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    try:
        import numpy as np
        import pandas as pd
        import plotly.io as pio
        import pyarrow as pa

        from aclecg import viz

        pio.to_json(viz.region_diagram())
        viz.embedding_map(np.zeros((1, 2)), pd.DataFrame({"c": ["a"]}), "c").to_dict()  # altair loads its schema
        pa.Table.from_pandas(pd.DataFrame({"dataset": ["ptbxl"], "records": [1]}))
    except ModuleNotFoundError:  # the app extra is not installed: Streamlit's own import error says so later
        pass
    # Streamlit's first element of a process calls inspect.stack() (is it a REPL?), which maps every loaded
    # module to its file once (0.1-0.2 s with torch loaded); inspect caches that map, so pay it here.
    inspect.stack()
    return time.perf_counter() - start


def prepare_bundled(script: Path) -> None:
    """Prepare (or check) the bundled datasets now and index their raw files, so the first page finds them ready and
    checked, in the cache the app will use (``app.py`` makes its own folder the project folder; so does this)."""
    from aclecg.data import PreparedDataset, ensure_bundled
    from aclecg.data.raw import index_raw

    os.environ.setdefault("ACLECG_HOME", str(script.parent))
    try:
        for folder in ensure_bundled(progress=True).values():
            index_raw(PreparedDataset(folder))  # the Explorer's first raw record then waits for no index
    except (AclEcgError, OSError) as exc:  # the pages say it again, and can still show the user's own datasets
        print(f"warning: the bundled datasets could not be prepared: {exc}")


def compile_umap_learn() -> float | None:
    """Compile umap-learn's numba kernels now (about 10 s on 2 cores), so no page visit starts that compile in a
    background thread that then competes with every page for the interpreter; the seconds, or None when skipped
    (umap-learn missing, or ``ACLECG_UMAP_WARMUP=0``)."""
    from aclecg.analysis import umap_learn

    if os.environ.get("ACLECG_UMAP_WARMUP", "1") == "0" or importlib.util.find_spec("umap") is None:
        return None
    start = time.perf_counter()
    umap_learn.warm_up(background=False)
    return time.perf_counter() - start


def freeze_heap() -> int:
    """Move every object alive now (the imported libraries: about half a million) out of the garbage collector's
    reach, so each later full collection walks only what the pages create; the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def no_pages_folder_routing() -> None:
    """Route every first request through ``app.py``'s ``st.navigation``, as every later one is.

    Streamlit decides at its first script run whether ``pages/`` is an old-style (v1) page folder, and only an
    ``st.navigation`` call turns that off; until then a deep link is looked up among the folder's file names.
    """
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False


def _flag_value(argv: list[str], flag: str) -> str | None:
    """The value given to a Streamlit flag among the arguments after ``--`` (``--flag V`` or ``--flag=V``)."""
    from aclecg.joblimits import option_value

    return option_value(argv, flag)


def login_configured(script: Path) -> bool:
    """Whether Streamlit's own login is configured: an ``[auth]`` section in a ``secrets.toml`` it reads (the user's
    ``~/.streamlit``, the working folder's or the app's own ``.streamlit`` folder)."""
    import tomllib

    for folder in (Path.home(), Path.cwd(), script.parent):
        path = folder / ".streamlit" / "secrets.toml"
        try:
            if "auth" in tomllib.loads(path.read_text()):
                return True
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
    return False


def serving_mode(args: argparse.Namespace, script: Path, passthrough: list[str]) -> tuple[list[str], str]:
    """The Streamlit flags that fix where the app listens, and one line saying how it serves.

    Sets ``ACLECG_READONLY`` / ``ACLECG_TRUST_PROXY_HEADER`` in this process's environment (the server's, so the
    pages and the job functions see them): read-only when asked, or when the app faces a network without a login.
    """
    from aclecg import access

    given = _flag_value(passthrough, "--server.address")
    address = given or args.address or ("0.0.0.0" if args.network else LOOPBACK)
    flags = [] if given else ["--server.address", address]
    header = (args.trust_proxy_header or "").strip()
    if header:
        os.environ[access.TRUST_HEADER_ENV] = header
    login = bool(header) or login_configured(script)
    if args.read_only:
        os.environ[access.READONLY_ENV] = "1"
        return flags, f"serving on {address}, read-only (--read-only)"
    if access.is_loopback(address):
        return flags, f"serving on {address} (this machine only)" + (f"; users from {header}" if header else "")
    if not login:
        os.environ[access.READONLY_ENV] = "1"
        return flags, (
            f"serving on {address} without a login, so read-only: configure st.login or --trust-proxy-header "
            "(docs/deploy.md)"
        )
    note = f"; users from the {header} header: make sure only the proxy can reach this port" if header else ""
    return flags, f"serving on {address} with a login{note}"


def run(args: argparse.Namespace) -> int:
    try:
        from streamlit.web import cli as streamlit_cli
    except ModuleNotFoundError:
        raise AclEcgError("the app needs Streamlit: pip install 'aclecg[app]'") from None
    script = app_script(args.script)
    if not args.no_warm_up:
        seconds = warm_up()
        print(f"imported the pages' libraries in {seconds:.1f} s")
        prepare_bundled(script)
        compiled = compile_umap_learn()
        if compiled is not None:
            print(f"compiled umap-learn's kernels in {compiled:.1f} s")
        freeze_heap()
        no_pages_folder_routing()
    passthrough = list(getattr(args, "passthrough", []))
    where, mode = serving_mode(args, script, passthrough)
    print(mode)
    argv = ["run", str(script), "--server.port", str(args.port), *where, *passthrough]
    try:  # standalone: Streamlit's command line prints its own usage errors (e.g. an unknown flag) and exits
        streamlit_cli.main(args=argv, prog_name="streamlit", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
