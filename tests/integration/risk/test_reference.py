"""A tenant's reference data for risk: company aliases and relations (loaded whole or not at
all, role-checked, audited, per tenant; the tenant's linker is rebuilt when they change) and
funds' disclosed top holdings (a lake contract: bad rows quarantined with their reasons)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from caifu.core.errors import PermissionDeniedError, SourceError
from caifu.core.identity import Principal
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest, quarantined_rows
from caifu.services.platform.workspace import create_tenant
from caifu.services.risk.intake import Intake
from caifu.services.risk.linking import link_story, tenant_linker
from caifu.services.risk.reference import load, rows
from tests.conftest import Broker

OPS = Principal("acme", "ops.li", "ops")
ALIASES = """name,code,kind,valid_from,valid_to,note
深发展A,000001,former,,2012-08-01,平安银行的原证券简称
茅台大哥,600519,alias,,,
"""


@pytest.fixture(scope="module")
def c(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    c = small_broker.copy(tmp_path_factory.mktemp("risk-reference") / "ws")
    create_tenant(c, "other", "另一家证券")
    yield c
    c.close()


def _file(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_a_file_with_bad_rows_loads_nothing_and_says_where_and_why(c: Container,
                                                                  tmp_path: Path) -> None:
    bad = _file(tmp_path, "bad.jsonl", "\n".join([
        json.dumps({"name": "深发展A", "code": "000001", "valid_to": "2012-08-01"},
                   ensure_ascii=False),
        json.dumps({"name": "某某", "code": "999999"}, ensure_ascii=False),
        json.dumps({"name": "旧名", "code": "00001"}, ensure_ascii=False),
        json.dumps({"name": "曾用", "code": "600519", "kind": "nickname",
                    "valid_from": "2020-13-01"}, ensure_ascii=False),
        json.dumps({"name": "甲乙", "code": "600519", "valid_from": "2020-02-01",
                    "valid_to": "2019-01-01"}, ensure_ascii=False),
        "not json",
        json.dumps({"code": "600519", "colour": "red"}),
        json.dumps({"name": "深 发 展Ａ", "code": "000001"}, ensure_ascii=False),
        json.dumps({"name": "A", "code": "000001"}),
    ]) + "\n")
    r = load(c, OPS, "aliases", bad)
    assert not r.loaded and (r.added, r.updated) == (0, 0) and r.rows == 9
    got = [(b.where, b.field, b.reason) for b in r.rejected]
    assert got == [
        ("line 2", "code", "UNKNOWN_CODE"), ("line 3", "code", "BAD_CODE"),
        ("line 4", "kind", "BAD_KIND"), ("line 4", "valid_from", "BAD_DATE"),
        ("line 5", "valid_to", "DATES_REVERSED"), ("line 6", None, "NOT_JSON"),
        ("line 7", "colour", "UNKNOWN_FIELD"), ("line 7", "name", "MISSING_NAME"),
        ("line 8", "name", "DUPLICATE"), ("line 9", "name", "TOO_SHORT")]
    assert "first at line 1" in r.rejected[8].message
    assert rows(c, OPS, "aliases") == []  # line 1 was good, but the file is one unit
    with pytest.raises(SourceError, match="unknown file type"):
        load(c, OPS, "aliases", _file(tmp_path, "a.xlsx", "x"))


def test_load_list_upsert_replace_roles_audit_and_tenants(c: Container, tmp_path: Path) -> None:
    r = load(c, OPS, "aliases", _file(tmp_path, "a.csv", ALIASES))
    assert r.loaded and (r.rows, r.added, r.updated) == (2, 2, 0)
    got = rows(c, OPS, "aliases")
    assert [(x["name"], x["code"], x["kind"], x["valid_to"]) for x in got] == [
        ("深发展A", "000001", "former", dt.date(2012, 8, 1)), ("茅台大哥", "600519", "alias", None)]
    assert got[0]["loaded_by"] == "ops.li"
    again = load(c, OPS, "aliases", _file(tmp_path, "b.csv", ALIASES.splitlines()[0] + "\n"
                                          + "深发展A,000001,former,1991-04-03,2012-08-01,\n"))
    assert (again.added, again.updated) == (0, 1)
    assert len(rows(c, OPS, "aliases")) == 2
    assert rows(c, OPS, "aliases")[0]["valid_from"] == dt.date(1991, 4, 3)
    replaced = load(c, OPS, "aliases", _file(tmp_path, "c.csv", ALIASES.splitlines()[0]
                                             + "\n深发展A,000001,former,,2012-08-01,\n"),
                    replace_all=True)
    assert (replaced.added, replaced.updated, replaced.removed) == (0, 1, 1)
    assert [x["name"] for x in rows(c, OPS, "aliases")] == ["深发展A"]
    rel = load(c, OPS, "relations", _file(
        tmp_path, "r.csv", "party,code,relation\n中国贵州茅台酒厂（集团）有限责任公司,600519,"
                           "controlling_shareholder\n"))
    assert rel.loaded and rel.added == 1
    loads = [e.entry for e in audit.records(c, "acme") if e.entry.action == "risk_reference"]
    assert len(loads) == 4 and loads[-1].actor == "ops.li" and "relations: 1 rows" in \
        loads[-1].reason
    with pytest.raises(PermissionDeniedError, match="may not load company aliases"):
        load(c, Principal("acme", "adv", "advisor", advisor_id="TG00001"), "aliases",
             _file(tmp_path, "d.csv", ALIASES))
    assert len(rows(c, Principal("acme", "adv", "advisor", advisor_id="TG00001"),
                    "aliases")) == 1  # every tenant role may read
    assert rows(c, Principal("other", "ops.o", "ops"), "aliases") == []
    assert rows(c, Principal("other", "ops.o", "ops"), "relations") == []


def test_the_tenant_linker_uses_the_tables_and_is_rebuilt_when_they_change(
        c: Container, tmp_path: Path) -> None:
    load(c, OPS, "aliases", _file(tmp_path, "a.csv", ALIASES), replace_all=True)
    first = tenant_linker(c, "acme")
    assert tenant_linker(c, "acme") is first  # cached
    old = [(m.code, m.rule) for m in first.link("深发展A发布公告", dt.date(2011, 3, 1))]
    assert old == [("000001", "former_name")]
    assert first.link("深发展A发布公告", dt.date(2020, 3, 1)) == []  # after it was the name
    assert [m.code for m in tenant_linker(c, "other").link("深发展A发布公告",
                                                            dt.date(2011, 3, 1))] == []
    load(c, OPS, "aliases", _file(tmp_path, "x.csv", "name,code,kind\n茅台大哥,600519,alias\n"),
         replace_all=True)
    second = tenant_linker(c, "acme")
    assert second is not first
    assert second.link("深发展A发布公告", dt.date(2011, 3, 1)) == []
    # link_story uses the tenant's linker: a story naming only the unlisted shareholder
    load(c, OPS, "relations", _file(tmp_path, "r.csv", "party,code,relation\n"
                                    "中国贵州茅台酒厂（集团）有限责任公司,600519,"
                                    "controlling_shareholder\n"), replace_all=True)
    body = json.dumps({"title": "中国贵州茅台酒厂（集团）有限责任公司发行债券",
                       "url": "https://news.example.cn/r/1", "published": "2026-01-05 09:00"},
                      ensure_ascii=False)
    story = str(Intake(c).take_body("acme", body.encode()).documents[0]["story_id"])
    found = link_story(c, "acme", story)
    assert [(m["code"], m["listed"], m["rule"]) for m in found] == [
        ("600519", False, "relation")]


def test_top_holdings_rows_that_break_the_contract_are_quarantined_with_reasons(
        c: Container, tmp_path: Path) -> None:
    with c.engine.connect() as conn:
        code = conn.exec_driver_sql("SELECT fund_code FROM fund_products WHERE tenant_id = "
                                    "'acme' ORDER BY fund_code LIMIT 1").scalar_one()
    future = (dt.date.today() + dt.timedelta(days=40)).isoformat()
    text = ("fund_code,report_date,security_code,rank,nav_pct\n"
            f"{code},2026-03-31,600519,1,9.50\n"        # good
            f"{code},2026-03-31,000001,2,101\n"         # above 100 %
            "999998,2026-03-31,600519,1,5.00\n"         # no such fund
            f"{code},2026-03-31,123456,3,4.00\n"        # no such security
            f"{code},{future},600519,1,5.00\n"          # a report from the future
            f"{code},2026-03-31,600036,4,1.23456\n"     # more than 4 decimals
            f"{code},2026-03-31,600519,1,9.40\n")       # the same key, other content
    path = _file(tmp_path, "fund_top_holdings.csv", text)
    [res] = Ingest(c).ingest("acme", [path], table="fund_top_holdings")
    assert res.rows_in == 7 and res.balanced
    assert (res.inserted, res.quarantined) == (1, 6)  # the first of a repeated key stays
    q = quarantined_rows(c, "acme", res.batch_id)
    got = {r["row_number"]: r["reasons"] for r in q}
    assert {k: v.split(":")[0] for k, v in got.items()} == {
        2: "nav_pct", 3: "fund_code", 4: "security_code", 5: "report_date", 6: "nav_pct",
        7: got[7].split(":")[0]}, got
    assert got[2] == "nav_pct:ABOVE_MAX" and got[3] == "fund_code:UNKNOWN_REF"
    assert got[4] == "security_code:UNKNOWN_REF" and got[5] == "report_date:FUTURE"
    assert got[6] == "nav_pct:DECIMAL_SCALE" and got[7]  # the repeated key, with its reason
