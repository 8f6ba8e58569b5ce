"""Just enough PDF reading for tests (no PDF library is installed): the page sizes and the text shown by
``Tj`` / ``TJ`` operators in the (Flate-compressed) content streams matplotlib writes."""

from __future__ import annotations

import re
import zlib

_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)
_SHOW = re.compile(rb"\[((?:[^\]\\]|\\.)*)\]\s*TJ|\(((?:[^)\\]|\\.)*)\)\s*Tj", re.S)
_LITERAL = re.compile(rb"\(((?:[^)\\]|\\.)*)\)", re.S)


def _unescape(raw: bytes) -> str:
    out = re.sub(rb"\\([0-7]{1,3})", lambda m: bytes([int(m.group(1), 8)]), raw)
    out = re.sub(rb"\\(.)", rb"\1", out)
    return out.decode("latin-1")


def page_sizes_pt(pdf: bytes) -> list[tuple[float, float]]:
    """(width, height) in points of each page's MediaBox."""
    boxes = re.findall(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", pdf)
    return [(float(x1) - float(x0), float(y1) - float(y0)) for x0, y0, x1, y1 in boxes]


def shown_text(pdf: bytes) -> list[str]:
    """Every string a content stream shows, one entry per Tj/TJ (a TJ's pieces joined, kerning dropped)."""
    texts: list[str] = []
    for match in _STREAM.finditer(pdf):
        try:
            body = zlib.decompress(match.group(1))
        except zlib.error:
            body = match.group(1)
        for array, single in _SHOW.findall(body):
            pieces = _LITERAL.findall(array) if array else [single]
            texts.append("".join(_unescape(p) for p in pieces))
    return texts
