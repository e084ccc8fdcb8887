"""CSV data rows keep their number in the file when lines around them are rejected.

Parsed rows are numbered from their position plus the rejected lines before them: in a view
for up to ``_MAX_INLINE_REJECTS`` rejected lines, in a table beyond. Both must give every
parsed row exactly its data row number (the header is line 1, data row n is line n + 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caifu.adapters.engines.duckdb import connect
from caifu.adapters.sources import files
from caifu.data.contracts import registry
from caifu.data.mapping import SourceSpec

BRANCHES = registry()["branches"]


@pytest.fixture
def con() -> Iterator[object]:
    backend = connect()
    yield backend.con
    backend.disconnect()


def _load(con: object, tmp_path: Path, kinds: str) -> tuple[list[tuple[int, str]], list[int]]:
    """``kinds``: one letter per data row, g = good, m = missing column, x = extra column."""
    lines = ["branch_id,name"]
    for n, kind in enumerate(kinds, start=1):
        lines.append({"g": f"B{n},营业部{n}", "m": f"B{n}", "x": f"B{n},a,b"}[kind])
    path = tmp_path / "branches.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    source = files.load_source(con, SourceSpec(table="branches"), BRANCHES, path, work)  # type: ignore[arg-type]
    parsed = con.execute(f"SELECT _row, branch_id FROM {files.RAW} ORDER BY _row").fetchall()  # type: ignore[attr-defined]
    assert source.rows == len(parsed)
    assert source.rows_in == len(kinds)
    return parsed, sorted(r.row_number or 0 for r in source.rejected)


PATTERNS = ["g" * 5, "mg", "gggm", "mmxgggmgxxg", "g" + "m" * 7 + "g" * 3 + "x", "xm" * 6 + "g"]


@pytest.mark.parametrize("inline_limit", [0, 1, 3, 1024], ids=lambda n: f"inline<={n}")
@pytest.mark.parametrize("kinds", PATTERNS)
def test_parsed_rows_keep_their_number(con: object, tmp_path: Path, kinds: str,
                                       inline_limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_MAX_INLINE_REJECTS", inline_limit)
    parsed, rejected = _load(con, tmp_path, kinds)
    assert parsed == [(n, f"B{n}") for n, k in enumerate(kinds, start=1) if k == "g"]
    assert rejected == [n for n, k in enumerate(kinds, start=1) if k != "g"]


def test_the_count_tree_counts_values_at_most_x(con: object) -> None:
    values = [0, 0, 3, 4, 4, 4, 9]
    expr = files._count_at_most("x", values)
    got = con.execute(f"SELECT x, {expr} FROM range(-1, 12) t(x) ORDER BY x").fetchall()  # type: ignore[attr-defined]
    assert got == [(x, sum(v <= x for v in values)) for x in range(-1, 12)]
    assert files._count_at_most("x", []) == "0"
