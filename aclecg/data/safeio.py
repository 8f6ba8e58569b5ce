"""Reading a dataset file only when it is a regular file inside the input folder, and only up to a size limit.

Every file a reader opens (headers, signal files, label tables, MATLAB files) goes through :func:`read_confined`:

* the path, with every link resolved, must lie inside the resolved input folder (a link out of it, e.g. to
  ``/dev/zero`` or to another user's files, is refused and never opened);
* ``lstat`` must show a regular file before anything is opened, so a FIFO (which would block ``open``), a device
  (which reads forever) or a socket is refused by name;
* the file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and ``fstat`` on the open descriptor must show the same
  regular file, so a file swapped for a link or a FIFO in between is refused too;
* a file larger than the caller's limit is refused before it is read.

Errors are :class:`~aclecg.errors.DataError` naming the record (``source``), the file and the reason.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aclecg.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["file_kind", "read_confined", "read_table"]

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISLNK, "a symbolic link"),
)


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words (``"a FIFO (named pipe)"``, ``"a character device"``...)."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file"


def read_confined(
    path: str | Path, root: str | Path, source: str, max_bytes: int, what: str = "file", scope: str = ""
) -> bytes:
    """The bytes of ``path``, a regular file inside ``root`` of at most ``max_bytes`` bytes.

    ``what`` names the file's role in messages ("header file", "signal file", ...), ``scope`` the folder
    (default "the input folder <root>"). Raises :class:`DataError` for a missing file, a link out of ``root``, a
    FIFO/device/socket/folder, or a larger file.
    """
    path = Path(path)
    root = Path(os.path.realpath(root))
    resolved = Path(os.path.realpath(path))
    if not resolved.is_relative_to(root):
        raise DataError(f"{source}: {what} {path.name} links outside {scope or f'the input folder {root}'}; refused")
    try:
        before = os.lstat(resolved)
    except FileNotFoundError:
        raise DataError(f"{source}: {what} {path.name} is missing") from None
    except OSError as exc:
        raise DataError(f"{source}: cannot open {what} {path.name} ({exc.strerror})") from None
    if not stat.S_ISREG(before.st_mode):
        raise DataError(f"{source}: {what} {path.name} is {file_kind(before.st_mode)}, not a regular file; refused")
    if before.st_size > max_bytes:
        raise DataError(f"{source}: {what} {path.name} is {before.st_size} bytes, over the {max_bytes}-byte limit")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(resolved, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{source}: {what} {path.name} became a link while being opened; refused") from None
        raise DataError(f"{source}: cannot open {what} {path.name} ({exc.strerror})") from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
            raise DataError(f"{source}: {what} {path.name} changed while being opened; refused")
        return _read_at_most(fd, max_bytes, f"{source}: {what} {path.name}")
    finally:
        os.close(fd)


def _read_at_most(fd: int, max_bytes: int, label: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        try:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
        except OSError as exc:
            raise DataError(f"{label}: cannot be read ({exc.strerror})") from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise DataError(f"{label} grew past the {max_bytes}-byte limit while being read; refused")


def read_table(path: str | Path, root: str | Path, what: str, max_bytes: int, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv`` of a label table (``what``: "PTB-XL database", ...) that must be a regular file inside
    ``root`` of at most ``max_bytes`` bytes; :class:`DataError` naming the file when it is not or cannot be parsed."""
    import pandas as pd

    data = read_confined(path, root, str(path), max_bytes, "label table")
    try:
        return pd.read_csv(io.BytesIO(data), **kwargs)
    except Exception as exc:  # pandas raises many types for a malformed table
        first = (str(exc).splitlines() or [""])[0][:200]
        raise DataError(f"{path}: cannot read the {what} ({first})") from None
