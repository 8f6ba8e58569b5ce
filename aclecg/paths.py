"""Where a project's files live, resolved at call time from the environment or the working directory.

Nothing here looks at the package's own folder, so an installed ``aclecg`` never writes beside site-packages:

========================  =====================================  ==========================================
what                      environment variable                   default
========================  =====================================  ==========================================
project folder            ``ACLECG_HOME``                        the working directory
runs (pretraining/sweeps) ``ACLECG_RUNS``                        ``<project>/runs``
shipped checkpoints       ``ACLECG_CHECKPOINTS``                 ``<project>/checkpoints``
published study results   ``ACLECG_PUBLISHED``                   ``<project>/docs/results``
caches                    ``ACLECG_CACHE``                       ``<project>/.cache`` in a project folder,
                                                                 else the user cache folder
2-D maps (app and CLI)    ``ACLECG_UMAP_CACHE``                  ``<caches>/umap``
embeddings (app and CLI)  (next to the 2-D maps when that is     ``<caches>/embeddings``
                          set: ``<ACLECG_UMAP_CACHE>/../embeddings``)
========================  =====================================  ==========================================

A *project folder* is one that holds ``checkpoints/`` or ``.cache/`` (a checkout of ACL-ECG Studio is one). The
user cache folder is ``$XDG_CACHE_HOME/aclecg`` or ``~/.cache/aclecg``. ``app.py`` sets ``ACLECG_HOME`` to its
own folder, so ``streamlit run /path/to/app.py`` finds the checkout's checkpoints from any working directory.

>>> import os
>>> os.environ["ACLECG_RUNS"] = "/tmp/my-runs"
>>> str(runs_root())
'/tmp/my-runs'
>>> del os.environ["ACLECG_RUNS"]
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ENCODER_SUFFIX",
    "cache_root",
    "checkpoints_root",
    "embeddings_cache_dir",
    "encoders_root",
    "project_root",
    "published_root",
    "registered_encoders",
    "registration_name",
    "runs_root",
    "umap_cache_dir",
    "user_cache_dir",
]


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else None


def project_root() -> Path:
    """``$ACLECG_HOME``, else the working directory."""
    return _env_path("ACLECG_HOME") or Path.cwd()


def runs_root() -> Path:
    return _env_path("ACLECG_RUNS") or project_root() / "runs"


def checkpoints_root() -> Path:
    return _env_path("ACLECG_CHECKPOINTS") or project_root() / "checkpoints"


def encoders_root() -> Path:
    """Registered encoders of your own (``aclecg encoders add``): ``$ACLECG_ENCODERS`` or ``<home>/encoders``. The
    app reads this folder and never writes it."""
    return _env_path("ACLECG_ENCODERS") or project_root() / "encoders"


#: The file name ending of an encoder registered with ``aclecg encoders add`` (``NAME.encoder.json``).
ENCODER_SUFFIX = ".encoder.json"


def registration_name(path: str | Path) -> str | None:
    """The encoder name of a registration file's path, ``None`` for any other path (e.g. a checkpoint)."""
    name = Path(path).name
    return name[: -len(ENCODER_SUFFIX)] if name.endswith(ENCODER_SUFFIX) else None


def registered_encoders(root: str | Path) -> dict[str, Path]:
    """The registration files in ``root`` (regular files, not links): name -> path, by name."""
    root = Path(root)
    if not root.is_dir():
        return {}
    found = sorted(p for p in root.glob(f"*{ENCODER_SUFFIX}") if p.is_file() and not p.is_symlink())
    return {str(registration_name(p)): p for p in found}


def published_root() -> Path:
    """Where ``make results`` exports the study; the app's Sweeps page lists these sweeps out of the box."""
    return _env_path("ACLECG_PUBLISHED") or project_root() / "docs" / "results"


def user_cache_dir() -> Path:
    base = _env_path("XDG_CACHE_HOME") or Path.home() / ".cache"
    return base / "aclecg"


def cache_root() -> Path:
    """Root of every on-disk cache (prepared data, embeddings, 2-D maps); see the module docstring."""
    env = _env_path("ACLECG_CACHE")
    if env is not None:
        return env
    project = project_root()
    if (project / "checkpoints").is_dir() or (project / ".cache").is_dir():
        return project / ".cache"
    return user_cache_dir()


def umap_cache_dir() -> Path:
    """The 2-D maps' cache, the same for the app and ``aclecg umap``: ``$ACLECG_UMAP_CACHE`` or
    ``<cache root>/umap``."""
    return _env_path("ACLECG_UMAP_CACHE") or cache_root() / "umap"


def embeddings_cache_dir() -> Path:
    """Frozen-encoder embeddings' cache, the same for the app, sweeps and the CLI: next to the 2-D maps when
    ``$ACLECG_UMAP_CACHE`` moves them (``<it>/../embeddings``), else ``<cache root>/embeddings``."""
    umap = _env_path("ACLECG_UMAP_CACHE")
    return umap.parent / "embeddings" if umap is not None else cache_root() / "embeddings"
