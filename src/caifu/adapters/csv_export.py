"""CSV for people: every export a spreadsheet may open goes through here.

A text cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which
some spreadsheets skip before one of those) is read by Excel and WPS as a formula — a
customer's name ``=HYPERLINK(...)`` in an exported list would run on the advisor's machine.
Such a cell is written with a leading ``'`` (OWASP "CSV injection"), which the spreadsheet
shows as text. Numbers stay numbers: only text is changed, and a text cell that is a plain
number (``-12.5``) is no formula and stays as it is.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_STARTS = r"^[=+\-@\t\r]"


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet must read it: a formula-like text cell neutralised."""
    if isinstance(value, str) and value.startswith(FORMULA_START) \
            and re.match(_NUMBER, value) is None:
        return "'" + value
    return value


def safe_column(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A column with its formula-like text cells neutralised (other types unchanged)."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return col
    risky = pc.and_(pc.match_substring_regex(col, _STARTS),
                    pc.invert(pc.match_substring_regex(col, _NUMBER)))
    return pc.if_else(risky, pc.binary_join_element_wise("'", col, ""), col)


def write_table(table: pa.Table, path: Path) -> None:
    """``table`` as CSV (UTF-8, header), text neutralised."""
    safe = pa.table([safe_column(c) for c in table.columns], names=table.column_names)
    pacsv.write_csv(safe, path)


def write_rows(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """Rows (dicts; keys not in ``columns`` left out) as CSV with a BOM (Excel reads UTF-8
    then), text neutralised; returns how many."""
    n = 0
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for row in rows:
            w.writerow([safe_cell(row.get(c)) for c in columns])
            n += 1
    return n
