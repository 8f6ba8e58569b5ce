"""No function of the library is over 80 lines or 8 parameters without a written reason.

A function may be longer, or take more parameters, when the line before its ``def`` (before its first decorator)
or the ``def`` line itself carries a ``# long:`` comment saying why. ``self`` and ``cls`` are not counted;
``*args`` and ``**kwargs`` are.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "aclecg"
MAX_LINES = 80
MAX_PARAMS = 8


def _size(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[int, int, int]:
    """``(first line, lines, parameters)``; the first line is the first decorator's."""
    args = node.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    count = len(params) + (args.vararg is not None) + (args.kwarg is not None)
    if params and params[0].arg in ("self", "cls"):
        count -= 1
    first = min([d.lineno for d in node.decorator_list] + [node.lineno])
    return first, (node.end_lineno or node.lineno) - first + 1, count


def offenders(root: Path = PACKAGE) -> list[str]:
    """``path:name (N lines, M parameters)`` of every function over the limits without a ``# long:`` reason."""
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            first, length, params = _size(node)
            if length <= MAX_LINES and params <= MAX_PARAMS:
                continue
            reason = lines[max(first - 2, 0) : first] + [lines[node.lineno - 1]]
            name = f"{path.relative_to(root).as_posix()}:{node.name}"
            if any("# long:" in line for line in reason):
                continue
            found.append(f"{name} ({length} lines, {params} parameters)")
    return found


def test_no_library_function_is_long_without_a_reason():
    assert offenders() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(a, b):\n    return a\n", []),
        ("def f(a, b, c, d, e, f, g, h, i):\n    return a\n", ["m.py:f (2 lines, 9 parameters)"]),
        ("# long: a reason\ndef f(a, b, c, d, e, f, g, h, i):\n    return a\n", []),
        ("def f(a, b, c, d, e, f, g, h, i):  # long: a reason\n    return a\n", []),
        ("class C:\n    def f(self, a, b, c, d, e, f, g, h):\n        return a\n", []),
        ("def f(a, *args, **kwargs):\n" + "    a += 1\n" * 80 + "    return a\n", ["m.py:f (82 lines, 3 parameters)"]),
        ("# long: why\n@decorator\ndef f(a, b, c, d, e, f, g, h, i):\n    return a\n", []),
    ],
)
def test_the_rule_itself(tmp_path: Path, source: str, expected: list[str]):
    (tmp_path / "m.py").write_text(source)
    assert offenders(tmp_path) == expected
