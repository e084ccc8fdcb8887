"""``docs/data-model.md`` whole: the contract tables (``data/contracts/docs``), then the
system-of-record tables caifu writes itself that other tools read — declared here, rendered
from their SQLAlchemy definitions and comments (a test keeps the file in step)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Index, Table

from caifu.adapters.sor.quality_models import QUALITY_TABLES
from caifu.adapters.sor.recommend_models import RECOMMEND_TABLES
from caifu.data.contracts import registry
from caifu.data.contracts.docs import render

DOCUMENTED: tuple[Table, ...] = RECOMMEND_TABLES + QUALITY_TABLES


def _index(ix: Index) -> str:
    return "(" + ", ".join(c.name for c in ix.columns) + ")"


def render_tables(tables: Iterable[Table]) -> str:
    out = ["", "# Tables caifu writes", "",
           "Not ingested: caifu's own commands write them into the system of record; other",
           "tools may read them. Every key starts with `tenant_id`; on PostgreSQL each has the",
           "tenant row-level-security policy. Timestamps are naive UTC.", ""]
    for t in tables:
        key = ", ".join(c.name for c in t.primary_key.columns)
        out += [f"## {t.name}", "", f"{t.comment} — key ({key})"
                + "".join(f"; index {_index(ix)}" for ix in sorted(t.indexes, key=_index))
                + ".", "",
                "| column | type | required | 说明 |", "|---|---|---|---|"]
        for c in t.columns:
            note = (c.comment or "").replace("|", "\\|")  # a table cell
            out.append(f"| `{c.name}` | {c.type} | {'yes' if not c.nullable else ''} | {note} |")
        out.append("")
    return "\n".join(out)


def data_model() -> str:
    """The text of ``docs/data-model.md``."""
    return render(registry()) + render_tables(DOCUMENTED)
