"""The audit log in the system of record (SQLite and PostgreSQL): unmasked reads are recorded
before they happen, and edits or deletions made behind caifu's back are found."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, update
from typer.testing import CliRunner

from caifu.adapters.sor.models import CONTRACT_TABLES, audit_log
from caifu.cli import app
from caifu.core.errors import ConfigError
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.profiles.customers import Unmask, customer_view

pytestmark = pytest.mark.dialect  # the hash chain over values as each database returns them


def _customer(c: Container) -> None:
    t = CONTRACT_TABLES["customers"]
    with c.engine.begin() as conn:
        conn.execute(insert(CONTRACT_TABLES["branches"]).values(
            tenant_id="acme", branch_id="YYB001", name="上海营业部"))
        conn.execute(insert(t).values(
            tenant_id="acme", customer_id="C1", name="王小明", customer_type="individual",
            id_type="resident_id", id_number="11010519491231002X", mobile="13812345678",
            branch_id="YYB001", opened_on=dt.date(2024, 1, 2), channel="app", status="normal"))


def test_unmasked_read_is_audited_first(workspace: Container) -> None:
    _customer(workspace)
    masked = customer_view(workspace, "acme", "C1")["customer"]
    assert masked["name"] != "王小明" and "13812345678" not in str(masked)
    assert audit.records(workspace, "acme") == []  # a masked read is not an audit event
    clear = customer_view(workspace, "acme", "C1", Unmask("compliance.li", "核对身份：客户来电"))
    assert clear["customer"]["name"] == "王小明"
    assert clear["customer"]["id_number"] == "11010519491231002X"
    [rec] = audit.records(workspace, "acme")
    assert rec.entry.action == "unmask" and rec.entry.actor == "compliance.li"
    assert rec.entry.customer_ids == ("C1",) and rec.entry.reason == "核对身份：客户来电"
    assert {"name", "id_number", "mobile"} <= set(rec.entry.fields)
    with pytest.raises(ConfigError, match="needs a reason"):
        customer_view(workspace, "acme", "C1", Unmask("ops.wang", ""))
    assert len(audit.records(workspace, "acme")) == 1  # refused: nothing read, nothing written
    assert audit.verify(workspace, "acme").ok


def _five(c: Container) -> None:
    for i in range(5):
        audit.append(c, "acme", f"user{i}", "export", customer_ids=[f"C{i}"],
                     fields=["mobile"], reason="月度监管报送")


def test_edits_and_deletions_in_the_database_are_found(workspace: Container) -> None:
    _five(workspace)
    assert audit.verify(workspace, "acme").ok
    with workspace.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 2)
                     .values(reason="（已改）"))
    assert audit.verify(workspace, "acme").problems == [
        "record 2: its content does not match its hash (the record was edited)"]
    with workspace.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq.in_([2, 5])))
    problems = audit.verify(workspace, "acme").problems
    assert "record 3: follows 1 — 1 record(s) missing" in problems
    assert any("record 5 was written: 1 record(s) missing at its end" in p for p in problems)


def test_chains_are_per_tenant_and_export_recomputes(workspace: Container, tmp_path: Path) -> None:
    from caifu.core.audit import GENESIS, AuditEntry, entry_hash
    from caifu.services.platform.workspace import create_tenant

    create_tenant(workspace, "beta", "丙丁证券")
    _five(workspace)
    audit.append(workspace, "beta", "ops", "export", reason="季度报送")
    assert [r.entry.seq for r in audit.records(workspace, "beta")] == [1]
    assert audit.records(workspace, "beta")[0].prev_hash == GENESIS
    n = audit.export(workspace, "acme", tmp_path / "audit.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text("utf-8").splitlines()]
    assert n == len(lines) == 5
    prev = GENESIS
    for line in lines:  # what a regulator does with the export, without caifu's code paths
        e = AuditEntry(line["seq"], line["tenant_id"], dt.datetime.fromisoformat(line["at"]),
                       line["actor"], line["action"], tuple(line["customer_ids"]),
                       tuple(line["fields"]), line["reason"], line["request_id"])
        assert line["prev_hash"] == prev and entry_hash(e, prev) == line["hash"]
        prev = line["hash"]


def test_cli_unmask_and_verify(sqlite_workspace: Container) -> None:
    c = sqlite_workspace
    _customer(c)
    runner = CliRunner(env={"COLUMNS": "200"})
    w = ["-t", "acme", "-w", str(c.root)]
    refused = runner.invoke(app, ["customer", "C1", "--unmask", *w])
    assert refused.exit_code == 2 and "needs a reason" in refused.output
    shown = runner.invoke(app, ["customer", "C1", "--unmask", "--reason", "客户投诉核查",
                                "--actor", "compliance.li", *w])
    assert shown.exit_code == 0 and "王小明" in shown.output
    ok = runner.invoke(app, ["audit", "verify", *w])
    assert ok.exit_code == 0 and "1 records, chain intact" in ok.output
    with c.engine.begin() as conn:
        conn.execute(update(audit_log).values(actor="someone.else"))
    broken = runner.invoke(app, ["audit", "verify", *w])
    assert broken.exit_code == 1 and "record 1" in broken.output
