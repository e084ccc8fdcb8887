"""Import boundaries: layers import only downward (DESIGN.md, "Architecture").

Every module under ``src/caifu`` is parsed (never imported) and each of its imports —
top-level, inside functions and under ``TYPE_CHECKING`` alike — is checked against the
tables below. A new top-level package must be added to ``LAYERS`` before it can exist.

    layer      packages / modules                                   rank
    ---------  ---------------------------------------------------  ----
    core       caifu.core                                            0
    data       caifu.data                                            1
    adapters   caifu.adapters                                        2
    text       caifu.text                                            3
    pipelines  caifu.pipelines                                       4
    logic      caifu.{analytics,risk,recommend,scrm}                 5
    services   caifu.services                                        6
    entry      caifu.{api,web,cli}                                   7

    Text sits below pipelines (tag rules match chats), pipelines below analytics (the fund
    ledger and profile inputs feed CLV, lifecycle and redemption), so a cycle between them
    fails here instead of at import time.

    rule                                                   why
    -----------------------------------------------------  --------------------------------
    a module imports caifu modules of its rank or lower    imports only go downward
    caifu.core imports no caifu module outside core        pure domain
    caifu.core imports no I/O or heavy library (CORE_BANS) nothing touches a disk/socket/db
    caifu.pipelines imports neither adapters nor services  logic is Ibis, no connections
    caifu.settings is imported by services and entry only  settings are passed in, not read
    caifu.settings imports only caifu.core                 it is the top of nothing
    caifu (the root __init__) imports no caifu module      importing core must stay light
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import caifu

SRC = Path(caifu.__file__).resolve().parent

LAYERS: dict[str, tuple[str, int]] = {
    "core": ("core", 0),
    "data": ("data", 1),
    "adapters": ("adapters", 2),
    "text": ("text", 3),
    "pipelines": ("pipelines", 4),
    "analytics": ("logic", 5),
    "risk": ("logic", 5),
    "recommend": ("logic", 5),
    "scrm": ("logic", 5),
    "services": ("services", 6),
    "api": ("entry", 7),
    "web": ("entry", 7),
    "cli": ("entry", 7),
}
SETTINGS_IMPORTERS = frozenset({"services", "entry"})
CORE_BANS = frozenset({
    "sqlalchemy", "duckdb", "deltalake", "pyarrow", "ibis", "httpx", "requests", "socket",
    "sqlite3", "psycopg", "psycopg2", "pandas", "polars", "os", "pathlib", "subprocess", "shutil",
    "tempfile", "io", "urllib", "yaml", "pydantic_settings",
})
PIPELINE_BANS = frozenset({"adapters", "services"})


@dataclass(frozen=True)
class Import:
    target: str  # absolute dotted module name
    line: int


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _known_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (SRC.parent / rel).is_dir() or (SRC.parent / rel.with_suffix(".py")).is_file()


def imports_of(module: str, source: str, is_package: bool = False) -> list[Import]:
    """Absolute names of everything ``source`` (the text of ``module``) imports."""
    out: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend(Import(a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base_parts = package[: len(package) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # "from caifu import settings" imports the module caifu.settings
                target = sub if base.startswith("caifu") and _known_module(sub) else base
                out.append(Import(target, node.lineno))
    return out


def _layer(module: str) -> str | None:
    """Layer name of a caifu module; 'settings', 'root', or None if caifu does not know it."""
    parts = module.split(".")
    if parts == ["caifu"]:
        return "root"
    if parts[1] == "settings":
        return "settings"
    entry = LAYERS.get(parts[1])
    return entry[0] if entry else None


def _rank(module: str) -> int | None:
    entry = LAYERS.get(module.split(".")[1]) if "." in module else None
    return entry[1] if entry else None


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every boundary rule ``source`` (the text of ``module``) breaks, one message each."""
    found: list[str] = []
    layer = _layer(module)
    if layer is None:
        return [f"{module}: top-level package not in LAYERS; add it to the table"]
    for imp in imports_of(module, source, is_package):
        top = imp.target.split(".")[0]
        where = f"{module}:{imp.line} imports {imp.target}"
        if top != "caifu":
            if layer == "core" and top in CORE_BANS:
                found.append(f"{where}: core must not import I/O or heavy libraries")
            continue
        if imp.target == "caifu":
            continue  # the root package itself (e.g. __version__) is always loaded
        target_layer = _layer(imp.target)
        if target_layer is None:
            found.append(f"{where}: unknown caifu package")
            continue
        if layer == "root":
            found.append(f"{where}: the root package must not import caifu modules")
            continue
        if target_layer == "settings":
            if layer not in SETTINGS_IMPORTERS and layer != "settings":
                found.append(f"{where}: only services and entry points read settings")
            continue
        if layer == "settings":
            if target_layer != "core":
                found.append(f"{where}: settings may only import caifu.core")
            continue
        if layer == "core" and target_layer != "core":
            found.append(f"{where}: core imports nothing from caifu outside core")
            continue
        if module.split(".")[1] == "pipelines" and imp.target.split(".")[1] in PIPELINE_BANS:
            found.append(f"{where}: pipelines open no connections (no adapters/services)")
            continue
        own, theirs = _rank(module), _rank(imp.target)
        if own is not None and theirs is not None and theirs > own:
            found.append(f"{where}: {layer} (rank {own}) must not import {target_layer} "
                         f"(rank {theirs}); imports only go downward")
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_source_tree_is_found() -> None:
    names = {module_name(p) for p in _modules()}
    assert {"caifu.core.ids", "caifu.services.ingest.load", "caifu.pipelines.staging"} <= names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: module_name(p))
def test_module_respects_layers(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert violations(module_name(path), source, path.name == "__init__.py") == []


# --- the checker itself catches what it should -----------------------------------------------


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("caifu.core.fake", "import sqlalchemy\n", "core must not import I/O"),
    ("caifu.core.fake", "from os import path\n", "core must not import I/O"),
    ("caifu.core.fake", "import pyarrow.compute as pc\n", "core must not import I/O"),
    ("caifu.core.fake", "from caifu.data.contracts import Table\n", "outside core"),
    ("caifu.core.fake", "from ..data import contracts\n", "outside core"),
    ("caifu.pipelines.fake", "from caifu.adapters.sor.repos import ingest\n", "no connections"),
    ("caifu.pipelines.fake", "def f():\n    from caifu.services import ingest\n",
     "no connections"),
    ("caifu.pipelines.fake", "from ..adapters.lake.delta import Lake\n", "no connections"),
    ("caifu.adapters.fake", "from caifu.settings import Settings\n", "read settings"),
    ("caifu.pipelines.fake", "from caifu import settings\n", "read settings"),
    ("caifu.adapters.fake", "from caifu.services.container import build\n",
     "imports only go downward"),
    ("caifu.data.fake", "import caifu.adapters.lake.delta\n", "imports only go downward"),
    ("caifu.services.fake", "from caifu.cli import app\n", "imports only go downward"),
    ("caifu.analytics.fake",
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from caifu.services import x\n",
     "imports only go downward"),
    ("caifu.settings", "from caifu.data import contracts\n", "settings may only import"),
    # the two cycles broken in the re-layout: a pipeline may not reach up into analytics,
    # text may not reach up into pipelines
    ("caifu.pipelines.fake", "from caifu.analytics.redemption import fund_redemptions\n",
     "imports only go downward"),
    ("caifu.text.fake", "from caifu.pipelines.profile import local_date\n",
     "imports only go downward"),
    ("caifu", "from caifu.core import ids\n", "root package"),
    ("caifu.nowhere.fake", "import json\n", "not in LAYERS"),
])
def test_checker_catches_violation(module: str, source: str, expected: str) -> None:
    found = violations(module, source)
    assert len(found) == 1, found
    assert expected in found[0]


@pytest.mark.parametrize(("module", "source"), [
    ("caifu.core.fake", "import re\nfrom datetime import date\nfrom caifu.core import ids\n"),
    ("caifu.core.fake", "from . import errors\nfrom .ids import make_uscc\n"),
    ("caifu.pipelines.fake", "import ibis\nfrom caifu.core.ids import USCC_ALPHABET\n"
                             "from caifu.data.contracts import Table\n"),
    ("caifu.risk.fake", "from caifu.text import normalise\n"),
    ("caifu.risk.fake", "from caifu.scrm import crypto\n"),  # siblings in the logic tier
    ("caifu.analytics.fake", "from caifu.pipelines.fund_ledger import open_lots\n"),
    ("caifu.adapters.fake", "import duckdb\nfrom caifu.data.contracts import Table\n"),
    ("caifu.services.fake", "from caifu.settings import Settings\n"
                            "from caifu.adapters.sor.repos import ingest\n"),
    ("caifu.cli", "from caifu import __version__\nfrom caifu.services import ingest\n"
                  "from caifu.settings import Settings\n"),
])
def test_checker_allows_downward_imports(module: str, source: str) -> None:
    assert violations(module, source) == []


def test_relative_imports_resolve_against_the_package() -> None:
    # In a package's __init__, "." is the package itself; in a module, its parent package.
    init = imports_of("caifu.pipelines", "from . import checks\n", is_package=True)
    mod = imports_of("caifu.pipelines.staging", "from . import checks\nfrom .. import core\n")
    assert [i.target for i in init] == ["caifu.pipelines.checks"]
    assert [i.target for i in mod] == ["caifu.pipelines.checks", "caifu.core"]


# --- no cycles between modules ----------------------------------------------------------------


def _module_graph() -> dict[str, set[str]]:
    """Module → the caifu modules it imports at module level (lazy imports inside functions
    are how an entry point defers work, so they are left out)."""
    graph: dict[str, set[str]] = {}
    for path in _modules():
        name = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = ast.Module(body=[n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)],
                         type_ignores=[])
        graph[name] = {i.target for i in imports_of(name, ast.unparse(top),
                                                    path.name == "__init__.py")
                       if i.target.startswith("caifu.") and i.target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    # a package __init__ that re-exports its modules is not a cycle with them
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in _module_graph().items()}
    assert cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
