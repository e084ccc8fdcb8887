"""Count the suite's test functions and assertions (the before/after figures of a refactor).

Test functions: ``def test_*`` / ``async def test_*`` anywhere under ``tests/``.
Assertions: ``assert`` statements plus ``pytest.raises`` / ``pytest.warns`` blocks, counted in
the source (not per parametrised case), so a move or a split keeps the number unless an
assertion is really removed.

    python scripts/test_counts.py [tests]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def count(root: Path) -> tuple[int, int, int]:
    files = tests = asserts = 0
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        files += 1
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                tests += 1
            elif isinstance(node, ast.Assert):
                asserts += 1
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("raises", "warns") \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "pytest":
                asserts += 1
    return files, tests, asserts


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "tests")
    f, t, a = count(root)
    print(f"files={f} test_functions={t} assertions={a}")
