"""The small real datasets shipped in ``aclecg/bundled/`` and their prepared caches.

``ensure_bundled()`` prepares each bundled raw dataset once into ``<cache>/prepared/<name>``, where ``<cache>``
is :func:`aclecg.paths.cache_root` (the same cache root as the embedding cache), and reuses it while the raw
files and preprocessing parameters are unchanged. The raw files are the package's data (``aclecg/bundled``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from aclecg.data.cache import is_prepared
from aclecg.data.prepare import FORMAT_VERSION, prepare_dataset
from aclecg.paths import cache_root

#: Raw bundled data (original PhysioNet layouts), installed with the package as package data.
BUNDLED_RAW_DIR = Path(str(resources.files("aclecg") / "bundled"))
#: name -> (format, raw folder)
BUNDLED: dict[str, tuple[str, Path]] = {
    "ptbxl": ("ptbxl", BUNDLED_RAW_DIR / "ptb-xl"),
    "challenge": ("challenge", BUNDLED_RAW_DIR / "challenge-2021"),
}
#: Bump when the preprocessing code changes in a way that alters the cache.
PIPELINE_VERSION = 1


def prepared_root() -> Path:
    """Where prepared bundled datasets live: ``<cache root>/prepared`` (see :mod:`aclecg.paths`)."""
    return cache_root() / "prepared"


#: The prepared bundled PTB-XL folder (the default dataset), resolved at import time; it exists once
#: :func:`ensure_bundled` has run. :func:`prepared_root` re-reads the environment on every call.
BUNDLED_DIR = prepared_root() / "ptbxl"


#: (raw folder, parameters) -> (every file's name, size and mtime; stamp), for this process: the app's launcher and
#: its first page both check the bundled data, and re-reading ~25 MB of raw files to learn nothing costs 0.1-0.25 s.
_STAMPS: dict[tuple, tuple[tuple, str]] = {}


def source_stamp(raw_dir: Path, fmt: str, fs: float, seconds: float) -> str:
    """sha256 over the raw files' names and contents plus the preparation parameters.

    Recomputed whenever a file is added, removed, resized or touched; otherwise this process's last answer."""
    files = sorted(p for p in raw_dir.rglob("*") if p.is_file() and p.name != "README.md")
    stats = tuple((str(p), st.st_size, st.st_mtime_ns) for p in files for st in (p.stat(),))
    key = (str(raw_dir), fmt, fs, seconds)
    if key in _STAMPS and _STAMPS[key][0] == stats:
        return _STAMPS[key][1]
    sha = hashlib.sha256(json.dumps([FORMAT_VERSION, PIPELINE_VERSION, fmt, fs, seconds]).encode())
    for path in files:
        sha.update(str(path.relative_to(raw_dir)).encode())
        sha.update(path.read_bytes())
    _STAMPS[key] = (stats, sha.hexdigest())
    return _STAMPS[key][1]


@contextmanager
def _lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _up_to_date(out: Path, stamp: str) -> bool:
    if not is_prepared(out):
        return False
    try:
        return json.loads((out / "manifest.json").read_text()).get("source_stamp") == stamp
    except (OSError, ValueError):
        return False


def ensure_bundled(
    names: tuple[str, ...] | list[str] | None = None,
    root: str | Path | None = None,
    fs: float = 100.0,
    seconds: float = 10.0,
    progress: bool = False,
    force: bool = False,
) -> dict[str, Path]:
    """Prepare the bundled datasets that are missing or stale; return ``{name: prepared folder}``.

    Safe to call from several processes at once (a file lock serialises the work).
    """
    target_root = Path(root).expanduser().resolve() if root else prepared_root()
    out: dict[str, Path] = {}
    with _lock(target_root):
        for name in names or tuple(BUNDLED):
            if name not in BUNDLED:
                raise KeyError(f"unknown bundled dataset {name!r}; available: {', '.join(BUNDLED)}")
            fmt, raw = BUNDLED[name]
            folder = target_root / name
            stamp = source_stamp(raw, fmt, fs, seconds)
            if force or not _up_to_date(folder, stamp):
                prepare_dataset(
                    raw,
                    folder,
                    fmt,
                    fs=fs,
                    seconds=seconds,
                    name=name,
                    progress=progress,
                    extra_manifest={"source_stamp": stamp, "bundled": True},
                )
            out[name] = folder
    return out
