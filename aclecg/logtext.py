"""A job's terminal output made readable in a browser: no control codes, one line per progress bar.

Progress bars (tqdm) redraw themselves with carriage returns and cursor movements (``\\x1b[A``: one line up); in a
log file each redraw is a new line full of escape codes. :func:`readable_log` strips ANSI escape sequences, keeps
the last state of each carriage-return redraw, and keeps only the last redraw of each bar (a bar is known by its
description, the text before ``NN%|`` or ``N/M``), where that last redraw stood.

>>> raw = "sweep:  17%|#  | 1/6\\n\\x1b[Acell:   0%| | 2/2000\\rcell:   0%| | 3/2000\\x1b[A\\n"
>>> readable_log(raw + "sweep:  33%|## | 2/6\\n")
'cell:   0%| | 3/2000\\nsweep:  33%|## | 2/6'
"""

from __future__ import annotations

import re

__all__ = ["readable_log"]

#: ANSI escape sequences: CSI (``ESC [ ... letter``, cursor moves, colours, erase), OSC (``ESC ] ... BEL``) and
#: two-character escapes.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
#: A tqdm bar: its description, then a percentage and a bar, or a count ``N/M`` / ``N it``.
_BAR = re.compile(r"^(?P<desc>.*?):?\s*(?:\d+%\||\d+(?:/\d+)?\s*(?:\[|it\b|[a-z]+/s))")


def readable_log(raw: str) -> str:
    """``raw`` terminal output as plain lines (see the module's description)."""
    text = _ANSI.sub("", raw.replace("\r\n", "\n"))
    lines = [line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    last: dict[str, int] = {}
    for i, line in enumerate(lines):
        key = _bar_key(line)
        if key is not None:
            last[key] = i
    return "\n".join(line for i, line in enumerate(lines) if (key := _bar_key(line)) is None or last[key] == i)


def _bar_key(line: str) -> str | None:
    """The description of the progress bar ``line`` draws, ``None`` for a line that is not a bar."""
    match = _BAR.match(line)
    if match is None or "|" not in line:
        return None
    return match.group("desc").strip()
