"""``aclecg app``: serve the Streamlit app with its heavy modules already imported (what ``make app`` runs).

``streamlit run app.py`` imports PyTorch, plotly and the data layer during the first visitor's first page, so that
page waits several seconds. This command imports them first, in the server's own process, and then hands over to
Streamlit's command line unchanged. It compiles umap-learn's kernels (otherwise compiled in a background thread
at the first visit of Representations, slowing every page for about 10 s) and then freezes the heap
(:func:`gc.freeze`), so garbage collections no longer walk the half-million objects of the imported libraries.
It also tells Streamlit not to treat ``pages/`` as an old-style page folder
before the app's ``st.navigation`` has run, which otherwise makes the first deep link of a fresh server (e.g.
``/augmentations``) show a "Page not found" notice before the page opens.

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
  aclecg app                                  # the checkout's app.py on http://localhost:8501
  aclecg app --port 8600 -- --server.headless true
  aclecg app --no-warm-up                      # exactly `streamlit run app.py`
"""

#: Modules the pages import, in the order they are warmed (the first page then finds them in ``sys.modules``).
WARM_MODULES: tuple[str, ...] = (
    "torch",
    "pandas",
    "pyarrow",
    "plotly.graph_objects",
    "aclecg.data",
    "aclecg.viz",
    "aclecg.jobs",
    "aclecg.evaluation.sweep",  # the evaluation package itself loads its parts lazily
    "aclecg.study_report",
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
    """Import ``modules`` (skipping any that is not installed), then build and serialise one figure and one table
    (plotly loads its validators, and pandas its Arrow conversion, at their first use); the seconds it took."""
    start = time.perf_counter()
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    try:
        import pandas as pd
        import plotly.io as pio
        import pyarrow as pa

        from aclecg import viz

        pio.to_json(viz.region_diagram())
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
    from aclecg import umap_learn

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
    argv = ["run", str(script), "--server.port", str(args.port), *getattr(args, "passthrough", [])]
    try:  # standalone: Streamlit's command line prints its own usage errors (e.g. an unknown flag) and exits
        streamlit_cli.main(args=argv, prog_name="streamlit", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
