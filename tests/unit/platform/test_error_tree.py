"""The error tree drawn in ``caifu.core.errors`` is the tree in the code: every subclass of
``CaifuError`` anywhere in caifu, with its parent, code, HTTP status and exit code."""

from __future__ import annotations

import importlib
import pkgutil
import re

import caifu
from caifu.core import errors
from caifu.core.errors import CaifuError

ROW = re.compile(r"^    (?P<indent>[│├└─ ]*)(?P<name>[A-Za-z]+)\s+(?P<code>[a-z_.]+)\s+"
                 r"(?P<http>\d{3})\s+(?P<exit>\d+)\s")


def _documented() -> dict[str, tuple[str | None, str, int, int]]:
    """name -> (parent, code, http, exit), read from the drawing in the module docstring."""
    assert errors.__doc__
    rows: dict[str, tuple[str | None, str, int, int]] = {}
    stack: list[str] = []  # the open ancestors, one per depth
    for line in errors.__doc__.splitlines():
        m = ROW.match(line)
        if not m:
            continue
        depth = len(m["indent"]) // 4
        del stack[depth:]
        rows[m["name"]] = (stack[-1] if stack else None, m["code"], int(m["http"]),
                           int(m["exit"]))
        stack.append(m["name"])
    return rows


def _every_subclass() -> dict[str, type[CaifuError]]:
    for info in pkgutil.walk_packages(caifu.__path__, "caifu."):
        if ".migrations" in info.name:  # alembic's scripts, run only inside alembic
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as exc:  # an optional extra (spark) that is not installed
            assert exc.name and not exc.name.startswith("caifu"), exc
    found: dict[str, type[CaifuError]] = {}
    todo: list[type[CaifuError]] = [CaifuError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("caifu."):  # not the tests' own
            assert cls.__name__ not in found, f"two error classes named {cls.__name__}"
            found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def test_the_documented_tree_is_the_code() -> None:
    documented = _documented()
    found = _every_subclass()
    assert len(documented) >= 22
    assert sorted(documented) == sorted(found), "tree and code list different classes"
    for name, (parent, code, http, exit_code) in documented.items():
        cls = found[name]
        parents = [b.__name__ for b in cls.__bases__ if issubclass(b, CaifuError)]
        assert parents == ([parent] if parent else []), (name, parents, parent)
        assert (cls.code, cls.http_status, cls.exit_code) == (code, http, exit_code), name


def test_codes_are_unique_and_stable_strings() -> None:
    found = _every_subclass()
    codes = [cls.code for cls in found.values()]
    assert len(codes) == len(set(codes)), sorted(codes)
    assert all(re.fullmatch(r"[a-z_]+(\.[a-z_]+)?", c) for c in codes), codes
    # a child's code names its parent's family, so "source.*" can be matched as one
    for cls in found.values():
        parent = cls.__bases__[0]
        if parent is not CaifuError and issubclass(parent, CaifuError):
            assert cls.code.startswith(parent.code + "."), (cls.__name__, cls.code)
