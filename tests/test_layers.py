"""Imports follow the layers docs/architecture.md states: no module imports from a layer below its own.

The layers are read from the first fenced block of docs/architecture.md (one line a layer, its entries before the
first double space, each a module ``x.py`` or a subpackage ``x/`` relative to ``aclecg/``), so the document and the
check cannot drift apart. Every import is checked, at module level and inside functions alike (a deferred import is
still a dependency), and every module of the package must be placed in some layer.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aclecg"
DOC = ROOT / "docs" / "architecture.md"


@dataclass(frozen=True)
class Entry:
    name: str  # "aclecg.x" for a module or a subpackage
    layer: int
    package: bool


def parse_layers(doc: str) -> list[Entry]:
    """The entries of the first fenced block, each with its layer (0 = the lowest, imported by all)."""
    block = doc.split("```", 2)[1].splitlines()[1:]
    entries = []
    layer = -1
    for line in block:
        if not line.strip() or line[0].isspace():
            continue  # a description's continuation
        layer += 1
        for item in line.split("  ", 1)[0].split(","):
            item = item.strip()
            if item.endswith("/"):
                entries.append(Entry("aclecg." + item.rstrip("/").replace("/", "."), layer, True))
            elif item.endswith(".py"):
                stem = item[: -len(".py")]
                entries.append(Entry("aclecg" if stem == "__init__" else f"aclecg.{stem}", layer, False))
            else:
                raise ValueError(f"docs/architecture.md: {item!r} is neither a module (x.py) nor a package (x/)")
    return entries


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def owner(name: str, entries: list[Entry]) -> Entry | None:
    """The entry a module belongs to (a subpackage holds all its submodules)."""
    for e in entries:
        if name == e.name or (e.package and name.startswith(e.name + ".")):
            return e
    return None


def imports_of(source: str | ast.Module, name: str, is_package: bool) -> set[str]:
    """Every ``aclecg`` module ``source`` imports, wherever the import statement is."""
    found = set()
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(source) if isinstance(source, str) else source
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from aclecg import x` imports module x
    return {n for n in found if n == "aclecg" or n.startswith("aclecg.")}


def violations(modules: dict[str, tuple[str | ast.Module, bool]], entries: list[Entry]) -> list[str]:
    """``importer -> imported`` for every import of a lower layer; ``modules``: name -> (source, is_package)."""
    out = []
    for name, (source, is_package) in sorted(modules.items()):
        mine = owner(name, entries)
        if mine is None:
            out.append(f"{name}: not placed in any layer of docs/architecture.md")
            continue
        for target in sorted(imports_of(source, name, is_package)):
            theirs = owner(target, entries)
            if target not in modules and not (theirs and theirs.package and target == theirs.name):
                continue  # a name imported from a module (`from aclecg.x import f`), judged by its module
            if theirs is not None and theirs.layer > mine.layer:
                out.append(f"{name} (layer {mine.layer}) imports {target} (layer {theirs.layer})")
    return out


@functools.lru_cache(maxsize=1)
def package_modules(root: Path = PACKAGE) -> dict[str, tuple[str | ast.Module, bool]]:
    """Every module of the package, parsed once: name -> (syntax tree, is a package)."""
    return {
        module_name(p, root): (ast.parse(p.read_text()), p.name == "__init__.py") for p in sorted(root.rglob("*.py"))
    }


def test_every_import_follows_the_documented_layers():
    entries = parse_layers(DOC.read_text())
    assert violations(package_modules(), entries) == []


def test_every_documented_entry_exists():
    """A layer that names a module the package no longer has is a stale document."""
    modules = package_modules()
    missing = [e.name for e in parse_layers(DOC.read_text()) if e.name not in modules]
    assert missing == []


def test_the_app_is_imported_by_nothing_in_the_package():
    for name, (tree, _) in package_modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                assert node.module.split(".")[0] not in ("pages", "app"), f"{name} imports {node.module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] in ("pages", "app") for a in node.names), name


DOC_SAMPLE = """intro
```
errors.py, registry.py   foundations
data/                    readers
                         more words
evaluation/              sweeps
```
"""


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        ({"aclecg.data.read": ("from aclecg.errors import E\n", False)}, []),
        (
            {"aclecg.data.read": ("def f():\n    from aclecg.evaluation import sweep\n", False)},
            ["aclecg.data.read (layer 1) imports aclecg.evaluation (layer 2)"],
        ),
        (
            {"aclecg.errors": ("from aclecg import data\n", False), "aclecg.data": ("", True)},
            ["aclecg.errors (layer 0) imports aclecg.data (layer 1)"],
        ),
        (
            {"aclecg.data": ("from .. import evaluation\n", True), "aclecg.evaluation": ("", True)},
            ["aclecg.data (layer 1) imports aclecg.evaluation (layer 2)"],
        ),
        ({"aclecg.evaluation.sweep": ("from aclecg.data import read\n", False)}, []),
        ({"aclecg.viz": ("", True)}, ["aclecg.viz: not placed in any layer of docs/architecture.md"]),
    ],
)
def test_the_check_catches_an_upward_import(modules, expected):
    """The checker itself, on a small document: deferred, package-level and relative imports all count."""
    assert violations(modules, parse_layers(DOC_SAMPLE)) == expected


def test_the_document_parser_reads_layers_and_continuations():
    entries = parse_layers(DOC_SAMPLE)
    assert [(e.name, e.layer, e.package) for e in entries] == [
        ("aclecg.errors", 0, False),
        ("aclecg.registry", 0, False),
        ("aclecg.data", 1, True),
        ("aclecg.evaluation", 2, True),
    ]
