"""Identity links on SQLite and PostgreSQL: link, review, decide, unlink, audit, batch."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import typer
from sqlalchemy import insert, select
from typer.testing import CliRunner

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.scrm_models import wecom_links
from caifu.cli.common import Commands
from caifu.cli.scrm.groups import add_link_commands, groups_app
from caifu.core.errors import ConfigError
from caifu.scrm.linking import ContactFacts
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.scrm import identity_links

T = "acme"
ADDED = dt.datetime(2025, 6, 1, 2, 0)


def _customer(cid: str, name: str, mobile: str | None, advisor: str = "A01") -> dict[str, Any]:
    return {"tenant_id": T, "customer_id": cid, "name": name, "customer_type": "individual",
            "id_type": "resident_id", "id_number": "11010519800101002X", "mobile": mobile,
            "branch_id": "B01", "advisor_id": advisor, "opened_on": dt.date(2020, 3, 1),
            "channel": "app", "status": "normal"}


def _follow(ext: str, advisor: str = "A01", customer_id: str | None = None,
            unionid: str | None = None, mobile: str | None = None) -> dict[str, Any]:
    return {"tenant_id": T, "advisor_id": advisor, "external_userid": ext,
            "customer_id": customer_id, "added_at": ADDED, "status": "active",
            "unionid": unionid, "remark_mobile": mobile}


def _seed(workspace: Container) -> Container:
    with workspace.engine.begin() as conn:
        conn.execute(insert(CONTRACT_TABLES["customers"]), [
            _customer("C001", "张伟", "13800138001"),
            _customer("C002", "王芳", "13800138002", "A02"),
            _customer("C003", "李娜", "13800138003"),
            _customer("C004", "刘洋", "13800138003"),  # shares C003's mobile
            _customer("C005", "赵敏", None),
        ])
        conn.execute(insert(CONTRACT_TABLES["wecom_follows"]), [
            _follow("wm_known", "A02", "C002", unionid="o6_bmUNION0000000000002"),
            _follow("wm_mobile", mobile="13800138001"),
            _follow("wm_mobile", "A02"),  # a second advisor follows the same person
            _follow("wm_union", unionid="o6_bmUNION0000000000002"),
            _follow("wm_conflict", unionid="o6_bmUNION0000000000002", mobile="13800138001"),
            _follow("wm_family", mobile="13800138003"),
            _follow("wm_nothing"),
        ])
    return workspace


@pytest.fixture
def broker(workspace: Container) -> Container:
    return _seed(workspace)


def _follow_customer(c: Container, ext: str) -> set[str | None]:
    f = CONTRACT_TABLES["wecom_follows"]
    with c.engine.connect() as conn:
        return set(conn.execute(select(f.c.customer_id).where(
            f.c.tenant_id == T, f.c.external_userid == ext)).scalars())


def _statuses(c: Container) -> dict[tuple[str, str], str]:
    with c.engine.connect() as conn:
        return {(r.external_userid, r.customer_id): r.status
                for r in conn.execute(select(wecom_links).where(wecom_links.c.tenant_id == T))}


def test_link_all_links_strong_unique_and_queues_the_rest(broker: Container) -> None:
    report = identity_links.link_all(broker, T)
    assert (report.contacts, report.linked, report.review, report.none) == (5, 2, 2, 1)
    assert _statuses(broker) == {
        ("wm_mobile", "C001"): "linked", ("wm_union", "C002"): "linked",
        ("wm_conflict", "C001"): "review", ("wm_conflict", "C002"): "review",
        ("wm_family", "C003"): "review", ("wm_family", "C004"): "review"}
    # both advisors' follows of the same person now point at the customer
    assert _follow_customer(broker, "wm_mobile") == {"C001"}
    assert _follow_customer(broker, "wm_nothing") == {None}
    # evidence is stored masked: never a full mobile or unionid
    with broker.engine.connect() as conn:
        evidence = " ".join(conn.execute(select(wecom_links.c.evidence_json)).scalars())
    assert "138****8001" in evidence
    assert "13800138001" not in evidence and "13800138003" not in evidence
    assert "UNION0000000000002" not in evidence
    linked = [r for r in audit.records(broker, T) if r.entry.action == "link"]
    assert len(linked) == 1 and set(linked[0].entry.customer_ids) == {"C001", "C002"}
    # running again changes nothing and duplicates nothing
    again = identity_links.link_all(broker, T)
    assert (again.contacts, again.linked) == (3, 0)
    assert len(_statuses(broker)) == 6


def test_review_queue_approve_and_reject(broker: Container) -> None:
    identity_links.link_all(broker, T)
    queue = identity_links.review_queue(broker, T)
    assert {(r["external_userid"], r["customer_id"]) for r in queue} >= {
        ("wm_family", "C003"), ("wm_family", "C004")}
    family = next(r for r in queue if r["customer_id"] == "C003")
    assert family["customer_name"] == "李*" and family["evidence"][0]["value"] == "138****8003"
    identity_links.decide(broker, T, "wm_family", "C004", approve=True, actor="reviewer.li",
                 note="客户本人电话确认")
    assert _statuses(broker)[("wm_family", "C004")] == "linked"
    assert _statuses(broker)[("wm_family", "C003")] == "rejected"  # the other candidate
    assert _follow_customer(broker, "wm_family") == {"C004"}
    identity_links.decide(broker, T, "wm_conflict", "C002", approve=False, actor="reviewer.li",
                 note="unionid 属于家人")
    assert _statuses(broker)[("wm_conflict", "C002")] == "rejected"
    assert _follow_customer(broker, "wm_conflict") == {None}
    last = [r for r in audit.records(broker, T) if r.entry.action == "link"][-1]
    assert last.entry.actor == "reviewer.li" and last.entry.customer_ids == ("C004",)
    with pytest.raises(ConfigError, match="no candidate"):
        identity_links.decide(broker, T, "wm_family", "C001", approve=True, actor="reviewer.li")
    # a rejected pair is not proposed again
    identity_links.link_contact(broker, T, "wm_conflict")
    assert _statuses(broker)[("wm_conflict", "C002")] == "rejected"


def test_unlink_is_reversible_and_audited(broker: Container) -> None:
    d = identity_links.link_contact(broker, T, "wm_mobile", ContactFacts("wm_mobile", remark="张伟"))
    assert (d.outcome, d.customer_id) == ("link", "C001")
    assert {e.kind for e in d.candidates[0].evidence} == {"mobile", "name_advisor"}
    assert identity_links.unlink(broker, T, "wm_mobile", "ops.wang", "家人代为添加") == ["C001"]
    assert _statuses(broker)[("wm_mobile", "C001")] == "unlinked"
    assert _follow_customer(broker, "wm_mobile") == {None}
    undone = [r for r in audit.records(broker, T) if r.entry.action == "unlink"]
    assert undone[-1].entry.customer_ids == ("C001",) and undone[-1].entry.reason == "家人代为添加"
    # the same facts do not silently re-link what a person undid
    assert identity_links.link_contact(broker, T, "wm_mobile").outcome == "none"
    # and a person can restore it
    identity_links.decide(broker, T, "wm_mobile", "C001", approve=True, actor="ops.wang", note="核实无误")
    assert _statuses(broker)[("wm_mobile", "C001")] == "linked"
    assert _follow_customer(broker, "wm_mobile") == {"C001"}
    # the customer master is untouched throughout
    with broker.engine.connect() as conn:
        assert conn.execute(select(CONTRACT_TABLES["customers"].c.customer_id)).scalars().all()


def test_unlink_a_link_from_the_source_export(broker: Container) -> None:
    assert identity_links.unlink(broker, T, "wm_known", "ops.wang", "导入数据错误") == ["C002"]
    assert _follow_customer(broker, "wm_known") == {None}
    row = identity_links.links(broker, T, external_userid="wm_known")[0]
    assert row["status"] == "unlinked" and row["evidence"][0]["kind"] == "source"
    identity_links.decide(broker, T, "wm_known", "C002", approve=True, actor="ops.wang")
    assert _follow_customer(broker, "wm_known") == {"C002"}
    with pytest.raises(ConfigError, match="not linked"):
        identity_links.unlink(broker, T, "wm_nothing", "ops.wang", "no such link")


def test_a_new_link_never_replaces_an_existing_one(broker: Container) -> None:
    identity_links.link_contact(broker, T, "wm_mobile")
    d = identity_links.link_contact(broker, T, "wm_mobile",
                           ContactFacts("wm_mobile", remark_mobiles=("13800138002",)))
    assert d.outcome == "review"
    assert _statuses(broker)[("wm_mobile", "C001")] == "linked"
    assert _statuses(broker)[("wm_mobile", "C002")] == "review"
    with pytest.raises(ConfigError, match="unlink it first"):
        identity_links.decide(broker, T, "wm_mobile", "C002", approve=True, actor="reviewer.li")


def test_cli_links_review_decide_unlink_and_groups(sqlite_workspace: Container) -> None:
    c = _seed(sqlite_workspace)
    wecom = typer.Typer()
    add_link_commands(wecom)
    root = typer.Typer(cls=Commands)  # the CLI's error wrapper: refusals exit 2
    root.add_typer(wecom, name="wecom")
    root.add_typer(groups_app, name="groups")
    runner = CliRunner(env={"COLUMNS": "220"})
    w = ["-t", T, "-w", str(c.root)]
    out = runner.invoke(root, ["wecom", "link-all", *w])
    assert out.exit_code == 0 and "5 contacts without a customer: 2 linked, 2 to review" in out.output
    out = runner.invoke(root, ["wecom", "links", "--review", *w])
    assert out.exit_code == 0 and "review queue: 4" in out.output and "138****8003" in out.output
    assert "13800138003" not in out.output
    out = runner.invoke(root, ["wecom", "decide", "wm_family", "C003", "--approve", "--note",
                               "本人确认", "--actor", "reviewer.li", *w])
    assert out.exit_code == 0 and "wm_family ↔ C003: linked" in out.output
    out = runner.invoke(root, ["wecom", "unlink", "wm_family", "--reason", "家人共用手机号", *w])
    assert out.exit_code == 0 and "unlinked from C003" in out.output
    out = runner.invoke(root, ["wecom", "unlink", "wm_nothing", "--reason", "none here", *w])
    assert out.exit_code == 2 and "not linked" in out.output
    out = runner.invoke(root, ["groups", "seed-demo", *w])
    assert out.exit_code == 0 and "new_energy, sse50_etf, fund_sip" in out.output
    out = runner.invoke(root, ["groups", "plan", "sse50_etf", *w])
    assert out.exit_code == 0 and "上证50 ETF (sse50_etf)" in out.output
    out = runner.invoke(root, ["groups", "list", *w])
    assert out.exit_code == 0 and "基金定投" in out.output
