"""The profiles repository: serving profiles, tag definitions, assignments and history,
segments, customer cards, and the customer master as the profile pages read it.

Every function takes the tenant explicitly. Bulk writes go to the driver (COPY on
PostgreSQL, executemany on SQLite) with each column's own bind processor, as ingest does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    Connection,
    Date,
    Numeric,
    Row,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from caifu.adapters.sor.models import (
    CONTRACT_TABLES,
    customer_cards,
    profile_serving,
    segment_sizes,
    segments,
    tag_assignments,
    tag_definitions,
    tag_history,
)
from caifu.data.contracts import Table as Contract
from caifu.data.contracts.arrow import arrow_type


def _processed(process: Any, values: Sequence[Any]) -> list[Any]:
    """``[process(v) for v in values]``, processing a run of the same object once: a column
    of one timestamp (``created_at`` of a batch) costs a bind call per row otherwise."""
    out: list[Any] = []
    last: Any = out  # no value is this list
    got: Any = None
    for v in values:
        if v is not last:
            last, got = v, process(v)
        out.append(got)
    return out


def _sqlite_arrow(values: pa.Array | pa.ChunkedArray, to: Any) -> list[Any] | None:
    """What SQLite's bind processor makes of an Arrow decimal or date column's values,
    computed by Arrow (None: another type): a ``Numeric`` is bound as ``float(Decimal)``,
    which is the float nearest the decimal's text — Arrow writes a decimal's text exactly
    and reads text to the nearest double, so the values are the same, without a Decimal
    and a call per value; a ``Date`` is bound as its ISO text (``YYYY-MM-DD``)."""
    if pa.types.is_decimal(values.type) and type(to) is Numeric:
        return pc.cast(pc.cast(values, pa.string()), pa.float64()).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_date32(values.type) and type(to) is Date:
        return pc.cast(values, pa.string()).to_pylist()  # type: ignore[no-any-return]
    return None


def bulk_insert(conn: Connection, t: Table,
                columns: Mapping[str, Sequence[Any] | pa.Array | pa.ChunkedArray]) -> int:
    """Insert column-wise data in the connection's transaction; returns the row count. A
    column is a sequence of Python values or an Arrow array (its Python values, each bound
    by the column type's processor — on SQLite a decimal or date column is converted by
    Arrow to what that processor gives)."""
    names = list(columns)
    n = len(columns[names[0]]) if names else 0
    if n == 0:
        return 0
    dialect = conn.dialect
    processed: list[Sequence[Any]] = []
    for name in names:
        process = t.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        values = columns[name]
        if isinstance(values, pa.Array | pa.ChunkedArray):
            done = (_sqlite_arrow(values, t.c[name].type) if dialect.name == "sqlite" and process
                    else None)
            if done is not None:
                processed.append(done)
                continue
            values = values.to_pylist()
        processed.append(_processed(process, values) if process else values)
    rows = list(zip(*processed, strict=True))
    quoted = ", ".join(dialect.identifier_preparer.quote(c) for c in names)
    table = dialect.identifier_preparer.format_table(t)
    if dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return n
    marks = ", ".join("?" for _ in names)
    for i in range(0, n, 100_000):
        conn.exec_driver_sql(f"INSERT INTO {table} ({quoted}) VALUES ({marks})",
                             rows[i: i + 100_000])
    return n


# --- profiles ---------------------------------------------------------------------------------


def serving_as_of(conn: Connection, tenant: str) -> dt.date | None:
    value = conn.execute(select(func.max(profile_serving.c.as_of))
                         .where(profile_serving.c.tenant_id == tenant)).scalar()
    return value if isinstance(value, dt.date) else None


def _in_chunks(column: Any, values: Sequence[str]) -> Iterable[Any]:
    """``column IN (...)`` conditions of at most 500 values (SQLite's variable limit)."""
    for i in range(0, len(values), 500):
        yield column.in_(list(values[i:i + 500]))


def replace_profiles(conn: Connection, tenant: str, as_of: dt.date, customer_ids: Sequence[str],
                     features_json: Sequence[str], built_at: dt.datetime,
                     only: Sequence[str] | None = None) -> int:
    """Replace the tenant's serving profiles, or only those of the customers in ``only``."""
    base = profile_serving.c.tenant_id == tenant
    if only is None:
        conn.execute(delete(profile_serving).where(base))
    else:
        for cond in _in_chunks(profile_serving.c.customer_id, only):
            conn.execute(delete(profile_serving).where(base, cond))
    n = len(customer_ids)
    return bulk_insert(conn, profile_serving, {
        "tenant_id": [tenant] * n, "customer_id": customer_ids, "as_of": [as_of] * n,
        "features_json": features_json, "built_at": [built_at] * n})


def profile(conn: Connection, tenant: str, customer_id: str) -> tuple[dt.date, str] | None:
    row = conn.execute(select(profile_serving.c.as_of, profile_serving.c.features_json).where(
        profile_serving.c.tenant_id == tenant, profile_serving.c.customer_id == customer_id)).first()
    return None if row is None else (row[0], row[1])


# --- tags -------------------------------------------------------------------------------------


def record_definitions(conn: Connection, tenant: str,
                       defs: Iterable[tuple[str, int, str, str, str]], now: dt.datetime) -> int:
    """Store each (tag_id, version, kind, name, spec_json) not stored yet; returns how many.

    A stored version whose spec differs is a configuration error the caller reports: a
    changed meaning needs a new version number.
    """
    known = {(r[0], r[1]): r[2] for r in conn.execute(
        select(tag_definitions.c.tag_id, tag_definitions.c.version, tag_definitions.c.spec_json)
        .where(tag_definitions.c.tenant_id == tenant))}
    new = [d for d in defs if (d[0], d[1]) not in known]
    for tag_id, version, kind, name, spec in new:
        conn.execute(insert(tag_definitions).values(
            tenant_id=tenant, tag_id=tag_id, version=version, kind=kind, name=name,
            spec_json=spec, first_used_at=now))
    return len(new)


def stored_spec(conn: Connection, tenant: str, tag_id: str, version: int) -> str | None:
    return conn.execute(select(tag_definitions.c.spec_json).where(
        tag_definitions.c.tenant_id == tenant, tag_definitions.c.tag_id == tag_id,
        tag_definitions.c.version == version)).scalar()


ASSIGNMENT_COLUMNS = ("customer_id", "tag_id", "tag_version", "kind", "evidence_json", "as_of",
                      "gained_at", "updated_at", "expires_at")


def assignments(conn: Connection, tenant: str, tag_ids: Sequence[str] | None = None,
                customer_id: str | None = None, customer_ids: Sequence[str] | None = None
                ) -> list[dict[str, Any]]:
    t = tag_assignments
    q = select(*(t.c[c] for c in ASSIGNMENT_COLUMNS)).where(t.c.tenant_id == tenant)
    if tag_ids is not None:
        q = q.where(t.c.tag_id.in_(list(tag_ids)))
    if customer_id is not None:
        q = q.where(t.c.customer_id == customer_id)
    q = q.order_by(t.c.customer_id, t.c.tag_id)
    if customer_ids is None:
        return [dict(r._mapping) for r in conn.execute(q)]
    out: list[dict[str, Any]] = []
    for cond in _in_chunks(t.c.customer_id, customer_ids):
        out += [dict(r._mapping) for r in conn.execute(q.where(cond))]
    return sorted(out, key=lambda r: (r["customer_id"], r["tag_id"]))


def tag_holders(conn: Connection, tenant: str, tag_ids: Sequence[str],
                unexpired_at: dt.datetime | None = None) -> list[tuple[str, str]]:
    """``(customer_id, tag_id)`` of every assignment of ``tag_ids`` (only those not expired
    at ``unexpired_at`` when given)."""
    t = tag_assignments
    q = select(t.c.customer_id, t.c.tag_id).where(t.c.tenant_id == tenant,
                                                  t.c.tag_id.in_(list(tag_ids)))
    if unexpired_at is not None:
        q = q.where(or_(t.c.expires_at.is_(None), t.c.expires_at > unexpired_at))
    return [(r[0], r[1]) for r in conn.execute(q)]


def replace_assignments(conn: Connection, tenant: str, rows: Mapping[str, Sequence[Any]],
                        tag_ids: Sequence[str] | None = None,
                        customer_ids: Sequence[str] | None = None) -> int:
    """Replace the tenant's assignments with ``rows``: only of ``tag_ids`` and of
    ``customer_ids`` when given."""
    cond = tag_assignments.c.tenant_id == tenant
    if tag_ids is not None:
        cond = and_(cond, tag_assignments.c.tag_id.in_(list(tag_ids)))
    if customer_ids is None:
        conn.execute(delete(tag_assignments).where(cond))
    else:
        for among in _in_chunks(tag_assignments.c.customer_id, customer_ids):
            conn.execute(delete(tag_assignments).where(cond, among))
    n = len(rows["customer_id"])
    return bulk_insert(conn, tag_assignments, {"tenant_id": [tenant] * n, **rows})


def add_history(conn: Connection, tenant: str, rows: Mapping[str, Sequence[Any]]) -> int:
    n = len(rows["customer_id"])
    return bulk_insert(conn, tag_history, {"tenant_id": [tenant] * n, **rows})


def history(conn: Connection, tenant: str, customer_id: str) -> list[dict[str, Any]]:
    t = tag_history
    q = (select(t.c.tag_id, t.c.tag_version, t.c.event, t.c.as_of, t.c.recorded_at,
                t.c.evidence_json)
         .where(t.c.tenant_id == tenant, t.c.customer_id == customer_id)
         .order_by(t.c.event_id))
    return [dict(r._mapping) for r in conn.execute(q)]


def tags_held_on(conn: Connection, tenant: str, day: dt.date) -> list[tuple[str, str]]:
    """(customer_id, tag_id) pairs whose latest history event on or before ``day`` is a gain.

    "Latest" is by business date, then by recording order: a rebuild of an older date
    recorded later must not override what newer dates say.
    """
    t = tag_history
    ranked = (select(t.c.customer_id, t.c.tag_id, t.c.event,
                     func.row_number().over(
                         partition_by=(t.c.customer_id, t.c.tag_id),
                         order_by=(t.c.as_of.desc(), t.c.event_id.desc())).label("rn"))
              .where(t.c.tenant_id == tenant, t.c.as_of <= day).subquery())
    q = select(ranked.c.customer_id, ranked.c.tag_id).where(ranked.c.rn == 1,
                                                             ranked.c.event == "gained")
    return [(r[0], r[1]) for r in conn.execute(q)]


# --- segments ---------------------------------------------------------------------------------


def save_segment(conn: Connection, tenant: str, segment_id: str, name: str, expression: str,
                 now: dt.datetime) -> None:
    key = and_(segments.c.tenant_id == tenant, segments.c.segment_id == segment_id)
    if conn.execute(update(segments).where(key).values(
            name=name, expression=expression, updated_at=now)).rowcount == 0:
        conn.execute(insert(segments).values(tenant_id=tenant, segment_id=segment_id, name=name,
                                             expression=expression, created_at=now,
                                             updated_at=now))


def list_segments(conn: Connection, tenant: str) -> list[dict[str, Any]]:
    q = (select(segments.c.segment_id, segments.c.name, segments.c.expression,
                segments.c.updated_at)
         .where(segments.c.tenant_id == tenant).order_by(segments.c.segment_id))
    return [dict(r._mapping) for r in conn.execute(q)]


def get_segment(conn: Connection, tenant: str, segment_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(segments.c.segment_id, segments.c.name, segments.c.expression)
                       .where(segments.c.tenant_id == tenant,
                              segments.c.segment_id == segment_id)).first()
    return None if row is None else dict(row._mapping)


def record_size(conn: Connection, tenant: str, segment_id: str, as_of: dt.date, members: int,
                now: dt.datetime) -> None:
    key = and_(segment_sizes.c.tenant_id == tenant, segment_sizes.c.segment_id == segment_id,
               segment_sizes.c.as_of == as_of)
    if conn.execute(update(segment_sizes).where(key).values(
            members=members, computed_at=now)).rowcount == 0:
        conn.execute(insert(segment_sizes).values(tenant_id=tenant, segment_id=segment_id,
                                                  as_of=as_of, members=members, computed_at=now))


def segments_sized_on(conn: Connection, tenant: str, as_of: dt.date) -> set[str]:
    """The segments a build sized on ``as_of`` (also those with no member)."""
    q = select(segment_sizes.c.segment_id).where(segment_sizes.c.tenant_id == tenant,
                                                 segment_sizes.c.as_of == as_of)
    return {r[0] for r in conn.execute(q)}


def tag_names(conn: Connection, tenant: str, tag_ids: Sequence[str] | None = None
              ) -> dict[tuple[str, int], str]:
    """(tag id, version) → display name, of every stored version (or of ``tag_ids``)."""
    d = tag_definitions
    q = select(d.c.tag_id, d.c.version, d.c.name).where(d.c.tenant_id == tenant)
    if tag_ids is not None:
        q = q.where(d.c.tag_id.in_(list(tag_ids)))
    return {(r.tag_id, r.version): r.name for r in conn.execute(q.order_by(d.c.version))}


# --- the customer master and cards --------------------------------------------------------------


def rows_of_customers(conn: Connection, tenant: str, contract: Contract,
                      customer_ids: Sequence[str]) -> pa.Table:
    """Stored rows of ``contract`` that belong to the given customers (real-time path)."""
    t = CONTRACT_TABLES[contract.name]
    found: list[Any] = []
    ids = sorted(set(customer_ids))
    for i in range(0, len(ids), 500):
        found += conn.execute(select(*(t.c[c] for c in contract.column_names)).where(
            t.c.tenant_id == tenant, t.c.customer_id.in_(ids[i:i + 500]))).all()
    columns = list(zip(*found, strict=True)) if found else [[] for _ in contract.columns]
    return pa.table({
        c.name: pa.array(columns[i], arrow_type(c)) for i, c in enumerate(contract.columns)
    })


def customer_exists(conn: Connection, tenant: str, customer_id: str) -> bool:
    t = CONTRACT_TABLES["customers"]
    return conn.execute(select(t.c.customer_id).where(
        t.c.tenant_id == tenant, t.c.customer_id == customer_id)).first() is not None


def customer_master(conn: Connection, tenant: str, customer_id: str, columns: Sequence[str]
                    ) -> dict[str, Any] | None:
    """The customer's master row, only ``columns`` (in clear: the caller masks)."""
    t = CONTRACT_TABLES["customers"]
    row = conn.execute(select(*(t.c[n] for n in columns)).where(
        t.c.tenant_id == tenant, t.c.customer_id == customer_id)).first()
    return None if row is None else dict(row._mapping)


def card(conn: Connection, tenant: str, customer_id: str) -> Row[Any] | None:
    """The customer's stored card: ``(card_json, built_at)`` by primary key."""
    t = customer_cards
    return conn.execute(select(t.c.card_json, t.c.built_at).where(
        t.c.tenant_id == tenant, t.c.customer_id == customer_id)).first()


def has_cards(conn: Connection, tenant: str) -> bool:
    """Whether the tenant has any card (the primary key's first column: an index probe)."""
    t = customer_cards
    return conn.execute(select(t.c.customer_id).where(t.c.tenant_id == tenant).limit(1)
                        ).first() is not None


def delete_cards(conn: Connection, tenant: str) -> None:
    conn.execute(delete(customer_cards).where(customer_cards.c.tenant_id == tenant))


def insert_cards(conn: Connection, tenant: str, as_of: dt.date, built_at: dt.datetime,
                 customer_ids: Sequence[str], cards_json: Sequence[str],
                 stages: Sequence[str | None]) -> int:
    n = len(customer_ids)
    return bulk_insert(conn, customer_cards, {
        "tenant_id": [tenant] * n, "customer_id": customer_ids, "as_of": [as_of] * n,
        "card_json": cards_json, "built_at": [built_at] * n, "lifecycle_stage": stages})
