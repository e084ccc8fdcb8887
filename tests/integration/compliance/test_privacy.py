"""Data-subject requests end to end on a small demo broker, on SQLite and PostgreSQL: export
has every row and only the customer's; erasure keeps regulated records (storage only) or
deletes everything, vacuumed out of the lake; a crashed erasure completes when run again."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, func, insert, select, text, update

from caifu.adapters.sor.models import (
    CONTRACT_TABLES,
    customer_cards,
    dsr_requests,
    event_inbox,
    ingest_quarantine,
    metadata,
    profile_serving,
)
from caifu.core.errors import ConfigError, NotFoundError
from caifu.core.identity import Principal
from caifu.data.demo import generate
from caifu.services.compliance import audit, privacy
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest
from caifu.services.ingest.realtime import Events
from caifu.services.platform import access
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.services.profiles.build import Build
from caifu.services.profiles.lifecycle import Lifecycle
from caifu.services.value.customer_value import CustomerValue
from caifu.settings import Settings

pytestmark = [
    pytest.mark.dialect,  # erasure deletes across every table, found by introspection
    # the tests share one module-scoped broker and erase customers from it in turn (an index
    # into ``_customers`` depends on which ran before): all on one xdist worker, in file order
    pytest.mark.xdist_group("compliance-privacy"),
]

TODAY = dt.date(2026, 11, 30)
T = "acme"
REGULATED_LAKE = ("trades", "positions", "cash_flows", "fund_transactions")
# model scores and advisor tasks need more customers than this demo has: written by hand
HAND_WRITTEN = ("model_scores", "advisor_tasks")


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("privacy-demo") / "exports"
    generate(out, customers=300, seed=21)
    return out


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                               marks=pytest.mark.postgres)])
def ws(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
       exports: Path) -> Iterator[Container]:
    """A built demo broker with every kind of customer data, and one table only the database
    knows (``advisor_notes``: discovery must find it)."""
    url, admin, name = None, None, f"caifu_test_{uuid.uuid4().hex[:12]}"
    if request.param == "postgres":
        pg = request.getfixturevalue("pg_admin")
        admin = create_engine(pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = pg.rsplit("/", 1)[0] + "/" + name
    c = init_workspace(tmp_path_factory.mktemp("privacy-ws") / "ws",
                       Settings(duckdb_memory_limit="2GB"), url)
    create_tenant(c, T, "甲乙证券")
    Ingest(c).ingest(T, [exports])
    Build(c).build(T)
    CustomerValue(c).run(T)
    Lifecycle(c).run(T)
    with c.engine.begin() as conn:
        conn.execute(text("CREATE TABLE advisor_notes (tenant_id VARCHAR(32) NOT NULL, "
                          "customer_id VARCHAR(32) NOT NULL, note TEXT NOT NULL)"))
    yield c
    c.close()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _customers(c: Container) -> list[tuple[str, str]]:
    """(customer id, advisor id) of customers with a WeCom follow, chats and tags."""
    t, f = CONTRACT_TABLES["customers"], CONTRACT_TABLES["wecom_follows"]
    chats = set(_lake(c, "chat_messages")["customer_id"].to_pylist()) & set(
        _lake(c, "tag_snapshots")["customer_id"].to_pylist())
    with c.engine.connect() as conn:
        rows = conn.execute(select(t.c.customer_id, t.c.advisor_id).where(
            t.c.tenant_id == T, t.c.customer_id.in_(select(f.c.customer_id)))
            .order_by(t.c.customer_id)).all()
    return [(r[0], r[1]) for r in rows if r[0] in chats]


def _lake(c: Container, table: str, customer_id: str | None = None) -> pa.Table:
    files = c.lake.files(T, table)
    if not files:
        return pa.table({"customer_id": pa.array([], pa.string())})
    data = ds.dataset(files, format="parquet")
    return data.to_table(filter=ds.field("customer_id") == customer_id) if customer_id \
        else data.to_table()


def _sor_count(c: Container, table: str, customer_id: str) -> int:
    with c.engine.connect() as conn:
        return conn.execute(text(f'SELECT count(*) FROM "{table}" WHERE tenant_id = :t '
                                 "AND customer_id = :c"), {"t": T, "c": customer_id}).scalar_one()


def _give_everything(c: Container, cid: str) -> None:
    """Rows of the kinds the demo does not make for this customer: a card, a pending event,
    a quarantined row, a note, model scores and an advisor task."""
    now = dt.datetime(2026, 11, 1)
    with c.engine.begin() as conn:
        conn.execute(insert(customer_cards).values(tenant_id=T, customer_id=cid,
                                                   as_of=now.date(), card_json="{}", built_at=now))
        conn.execute(insert(ingest_quarantine).values(
            tenant_id=T, batch_id=f"b{cid}", row_number=1, table_name="trades", source_path="x",
            reasons="amount:NEGATIVE", raw_json=json.dumps({"customer_id": cid, "amount": "-1"})))
        conn.execute(text("INSERT INTO advisor_notes VALUES (:t, :c, '想买基金')"),
                     {"t": T, "c": cid})
    Events(c).submit(T, "app_event", {"event_id": f"EV{cid}", "customer_id": cid,
                                      "event_time": "2026-11-01T10:00:00", "event_type": "login",
                                      "page": "home", "device": "ios"})
    day = now.date()
    for table in HAND_WRITTEN:  # one snapshot date; earlier customers' rows stay
        rows = pa.table({"as_of": [day, day], "customer_id": [cid, "OTHER"],
                         "score": ["test_only"] * 2, "value": [0.9, 0.1],
                         "scored_at": pa.array([now, now], pa.timestamp("us")),
                         "model_version": ["v0"] * 2, "reasons_json": ["[]"] * 2})
        if c.lake.files(T, table):
            rows = pa.concat_tables([_lake(c, table).select(rows.column_names),
                                     rows.slice(0, 1)])
        c.lake.write_snapshot(T, table, rows, day.isoformat(), {"caifu.as_of": day.isoformat()})


def _retire(c: Container, r: privacy.ErasureResult) -> None:
    """Run the retirement at the time the erasure said its old lake files are due."""
    assert r.old_files > 0 and r.old_files_removed_by is not None
    due = dt.datetime.fromisoformat(r.old_files_removed_by)
    assert privacy.retire_files(c, T, now=due)["removed"] >= r.old_files


def _holds(c: Container, table: str, cid: str) -> bool:
    """Whether any file of the lake table — data, checkpoint or log — still has the id."""
    root = c.lake.path(T, table)
    for path in root.rglob("*"):
        if path.suffix == ".parquet":
            data = pq.read_table(path)
            for name in data.column_names:
                col = data[name]
                if pa.types.is_string(col.type) and cid in col.to_pylist():
                    return True
        elif path.is_file() and cid.encode() in path.read_bytes():
            return True
    return False


def test_every_table_with_a_customer_id_is_discovered(ws: Container) -> None:
    with ws.engine.connect() as conn:
        found = set(privacy.sor_customer_tables(conn))
    declared = {n for n, t in metadata.tables.items() if "customer_id" in t.c}
    assert found == declared | {"advisor_notes"}
    assert {"customers", "accounts", "tag_history", "customer_cards"} <= found
    lake = set(privacy.lake_customer_tables(ws, T))
    assert {"trades", "chat_messages", "profile_features", "tag_snapshots", "customer_value",
            "customer_value_payback", "lifecycle_stages"} <= lake


def test_export_has_every_row_of_the_customer_and_no_one_else(ws: Container) -> None:
    cid, _ = _customers(ws)[0]
    _give_everything(ws, cid)
    doc = privacy.export_customer(ws, T, cid, "comp.li", "客户申请查阅个人信息")
    json.dumps(doc, ensure_ascii=False)  # serialisable as it is
    with ws.engine.connect() as conn:
        tables = privacy.sor_customer_tables(conn)
    for table in tables:
        rows = doc["sor"][table]
        assert doc["manifest"][f"sor.{table}"] == len(rows) == _sor_count(ws, table, cid), table
        assert {r["customer_id"] for r in rows} <= {cid}, table
    assert len(doc["sor"]["customers"]) == 1 and doc["sor"]["customers"][0]["name"]
    assert "*" not in doc["sor"]["customers"][0]["mobile"]  # unmasked: his own data
    assert doc["manifest"]["sor.advisor_notes"] == 1  # the table models know nothing of
    assert doc["manifest"]["sor.customer_cards"] == 1
    assert doc["manifest"]["sor.ingest_quarantine"] == 1
    assert [json.loads(r["payload_json"])["event_id"] for r in doc["sor"]["event_inbox"]] == \
        [f"EV{cid}"]
    for table in privacy.lake_customer_tables(ws, T):
        want = _lake(ws, table, cid).num_rows
        assert doc["manifest"][f"lake.{table}"] == want == len(doc["lake"][table]), table
        assert {r["customer_id"] for r in doc["lake"][table]} <= {cid}
    assert doc["manifest"]["lake.trades"] > 0 and doc["manifest"]["lake.chat_messages"] > 0
    assert doc["manifest"]["lake.model_scores"] == 1
    last = audit.records(ws, T)[-1].entry
    assert (last.action, last.customer_ids, last.reason, last.request_id) == (
        "export", (cid,), "客户申请查阅个人信息", doc["request_id"])
    assert doc["manifest"]["sor.audit_log"] >= 1  # including the export's own record
    with ws.engine.connect() as conn:
        req = conn.execute(select(dsr_requests).where(
            dsr_requests.c.request_id == doc["request_id"])).one()
    assert (req.kind, req.outcome, req.requested_by) == ("export", "exported", "comp.li")
    assert req.completed_at is not None
    assert json.loads(req.details_json)["manifest"] == doc["manifest"]


def test_erasure_with_accounts_is_storage_only(ws: Container) -> None:
    # a customer with an account and trades or positions (which one depends on the demo's
    # random draws: take the first that has them)
    cid, advisor = next((c, a) for c, a in _customers(ws)[1:]
                        if sum(_lake(ws, t, c).num_rows for t in ("trades", "positions")) > 0)
    _give_everything(ws, cid)
    regulated = {t: _sor_count(ws, t, cid) for t in ("customers", "accounts",
                                                      "suitability_assessments")}
    facts = {t: _lake(ws, t, cid).num_rows for t in REGULATED_LAKE}
    assert regulated["accounts"] >= 1 and facts["trades"] + facts["positions"] > 0
    erased = ("chat_messages", "profile_features", "tag_snapshots", "customer_value",
              "customer_value_payback", "lifecycle_stages", *HAND_WRITTEN)
    before = {t: _lake(ws, t, cid).num_rows for t in erased}
    assert all(before.values()), before
    serving_before = _sor_count(ws, "profile_serving", cid)

    r = privacy.erase_customer(ws, T, cid, "comp.li", "客户要求删除", today=TODAY)

    assert r.outcome == "storage_only" and "不少于20年" in r.rule and not r.resumed
    assert {t: _sor_count(ws, t, cid) for t in regulated} == regulated
    assert {t: _lake(ws, t, cid).num_rows for t in REGULATED_LAKE} == facts
    for table in ("profile_serving", "tag_assignments", "tag_history", "customer_cards",
                  "wecom_follows", "advisor_notes"):
        assert _sor_count(ws, table, cid) == 0, table
    assert r.deleted["sor.profile_serving"] == serving_before == 1
    assert r.deleted["sor.event_inbox"] == 1 and r.deleted["sor.ingest_quarantine"] == 1
    # the replaced files wait for readers that listed them before the erasure
    assert any(_holds(ws, table, cid) for table in erased)
    _retire(ws, r)
    for table in erased:
        assert r.deleted[f"lake.{table}"] == before[table], table
        assert _lake(ws, table, cid).num_rows == 0
        assert not _holds(ws, table, cid), f"{table} still holds {cid} in a file"
    assert _lake(ws, "chat_messages").num_rows > 0  # the others' chats stay
    assert _holds(ws, "trades", cid)  # regulated: kept
    with ws.engine.connect() as conn:
        req = conn.execute(select(dsr_requests).where(
            dsr_requests.c.request_id == r.request_id)).one()
    details = json.loads(req.details_json)
    assert (req.outcome, details["kept"]["lake.trades"]) == ("storage_only", facts["trades"])
    assert req.completed_at is not None and details["deleted"] == r.deleted
    assert privacy.restricted_ids(ws, T) >= {cid}

    # no longer processed: hidden from every role but compliance, left out of builds
    for role, kw in (("ops", {}), ("tenant_admin", {}), ("advisor", {"advisor_id": advisor})):
        assert not access.visible(ws, Principal(T, "u", role, **kw), cid), role
    assert access.visible(ws, Principal(T, "u", "compliance"), cid)
    Build(ws).build(T)
    assert _sor_count(ws, "profile_serving", cid) == 0
    assert _lake(ws, "profile_features", cid).num_rows == 0
    with ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(profile_serving).where(
            profile_serving.c.tenant_id == T)).scalar_one() > 100

    again = privacy.erase_customer(ws, T, cid, "comp.li", "客户再次要求", today=TODAY)
    assert again.outcome == "storage_only" and again.request_id != r.request_id
    assert not any(again.deleted.values()) and again.kept == r.kept
    assert audit.verify(ws, T).ok
    actions = [(e.entry.action, e.entry.request_id) for e in audit.records(ws, T)]
    assert ("delete_request", r.request_id) in actions
    assert ("delete_request", again.request_id) in actions

    # new events about him are refused, counted, and their content not kept
    from caifu.services.ingest.realtime import Events
    got = Events(ws).submit(T, "app_event", {
        "event_id": "E-after-erasure", "customer_id": cid, "event_type": "login",
        "event_time": "2026-10-30T10:00:00+08:00", "page": "首页"})
    assert got.status == "rejected" and got.reasons == ["customer_id:PROCESSING_RESTRICTED"]
    with ws.engine.connect() as conn:
        stored = conn.execute(select(event_inbox.c.payload_json).where(
            event_inbox.c.event_seq == got.event_seq)).scalar_one()
    assert "首页" not in stored and json.loads(stored)["customer_id"] == cid


def test_erasure_past_retention_deletes_everything(ws: Container) -> None:
    # a customer with trades, chosen by that and not by position: which customers the
    # module's earlier tests erased or restricted decides what a position points at (in the
    # full suite under xdist, position 2 once fell on a customer without trades)
    traded = set(_lake(ws, "trades")["customer_id"].to_pylist())
    cid = next(c for c, _ in _customers(ws)[2:] if c in traded)
    _give_everything(ws, cid)
    t = CONTRACT_TABLES["customers"]
    with ws.engine.begin() as conn:  # closed 21 years ago: the 20 years have run out
        conn.execute(update(t).where(t.c.tenant_id == T, t.c.customer_id == cid)
                     .values(status="closed", closed_on=dt.date(2005, 11, 29)))
    trades = _lake(ws, "trades", cid).num_rows
    assert trades > 0

    r = privacy.erase_customer(ws, T, cid, "comp.li", "销户满20年后申请删除", today=TODAY)

    assert r.outcome == "deleted" and "more than 20 years" in r.rule and r.kept == {}
    assert r.deleted["sor.customers"] == 1 and r.deleted["lake.trades"] == trades
    with ws.engine.connect() as conn:
        tables = privacy.sor_customer_tables(conn)
    assert {tb for tb in tables if _sor_count(ws, tb, cid)} == {"dsr_requests"}
    _retire(ws, r)
    for table in privacy.lake_customer_tables(ws, T, with_data=False):
        assert _lake(ws, table, cid).num_rows == 0, table
        assert not _holds(ws, table, cid), f"{table} still holds {cid} in a file"
    assert cid not in privacy.restricted_ids(ws, T)

    again = privacy.erase_customer(ws, T, cid, "comp.li", "重复申请", today=TODAY)
    assert again.outcome == "deleted" and r.request_id in again.rule
    assert not any(again.deleted.values())
    assert audit.verify(ws, T).ok


def test_customer_without_accounts_is_deleted(ws: Container) -> None:
    t = CONTRACT_TABLES["customers"]
    with ws.engine.begin() as conn:
        conn.execute(insert(t).values(
            tenant_id=T, customer_id="P0000001", name="潜在客户", customer_type="individual",
            id_type="passport", id_number="E12345678", mobile="13812345678", branch_id="B",
            advisor_id="A", opened_on=dt.date(2026, 1, 2), channel="app", status="normal"))
    r = privacy.erase_customer(ws, T, "P0000001", "admin", "未开户，申请删除", today=TODAY)
    assert (r.outcome, r.deleted["sor.customers"]) == ("deleted", 1)
    assert "no account or trade records" in r.rule
    assert _sor_count(ws, "customers", "P0000001") == 0
    with pytest.raises(NotFoundError):
        privacy.erase_customer(ws, T, "NOBODY", "admin", "不存在", today=TODAY)
    with pytest.raises(NotFoundError):
        privacy.export_customer(ws, T, "NOBODY", "admin", "不存在")
    with pytest.raises(ConfigError, match="needs a reason"):
        privacy.erase_customer(ws, T, "P0000001", "admin", "  ")


def test_a_crashed_erasure_completes_when_run_again(ws: Container,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cid, _ = _customers(ws)[3]
    chats, tags = (_lake(ws, tb, cid).num_rows for tb in ("chat_messages", "tag_snapshots"))
    real = privacy._erase_lake

    def crash_on_tags(c: Container, con: object, tenant: str, name: str, customer_id: str,
                      clean: bool) -> int:
        if name == "tag_snapshots":
            raise OSError("disk gone")
        return real(c, con, tenant, name, customer_id, clean)

    monkeypatch.setattr(privacy, "_erase_lake", crash_on_tags)
    with pytest.raises(OSError):
        privacy.erase_customer(ws, T, cid, "comp.li", "客户要求删除", today=TODAY)
    monkeypatch.undo()
    assert _lake(ws, "chat_messages", cid).num_rows == 0  # done before the crash
    assert _lake(ws, "tag_snapshots", cid).num_rows == tags > 0  # not yet
    assert not access.visible(ws, Principal(T, "u", "ops"), cid)  # restricted at once
    with ws.engine.connect() as conn:
        [pending] = conn.execute(select(dsr_requests).where(
            dsr_requests.c.customer_id == cid, dsr_requests.c.completed_at.is_(None))).all()

    r = privacy.erase_customer(ws, T, cid, "comp.li", "完成中断的删除", today=TODAY)
    assert r.resumed and r.request_id == pending.request_id and r.outcome == "storage_only"
    assert r.deleted["lake.chat_messages"] == chats and r.deleted["lake.tag_snapshots"] == tags
    _retire(ws, r)
    assert not _holds(ws, "tag_snapshots", cid) and not _holds(ws, "chat_messages", cid)
    with ws.engine.connect() as conn:
        assert conn.execute(select(dsr_requests.c.completed_at).where(
            dsr_requests.c.request_id == r.request_id)).scalar_one() is not None
    assert audit.verify(ws, T).ok
