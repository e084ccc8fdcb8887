"""caifu's tags mirrored into WeCom through the fake: corp tags created once, each linked
contact marked with exactly the tags his customer holds, and only the changes sent later."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import delete, insert, select

from caifu.adapters.sor.models import CONTRACT_TABLES, tag_assignments, tag_definitions
from caifu.adapters.sor.scrm_models import wecom_corp_tags
from caifu.adapters.wecom.fake import FakeWeCom
from caifu.services.container import Container
from caifu.services.scrm import wecom_app
from caifu.services.scrm.tag_mirror import mirror

T = CONTRACT_TABLES
NOW = dt.datetime(2026, 11, 1)


def test_tags_are_mirrored_and_only_changes_are_sent(workspace: Container) -> None:
    c = workspace
    fake = FakeWeCom("wwtagmirror0000001", "s", "1000002")
    c.wecom_transport = httpx.MockTransport(fake.handler)
    wecom_app.configure(c, "acme", corp_id="wwtagmirror0000001", agent_id="1000002", token="t",
                    encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", secret="s")
    fake.add_member("wx_a", "李投顾")
    exts = [fake.customer_adds("wx_a", name=n).external_userid for n in ("甲", "乙", "丙")]
    mine = fake.add_tag_group("券商自建", ["VIP"])["VIP"]  # the broker's own tag: untouched
    fake.follow("wx_a", exts[0])["tag_ids"].append(mine)
    with c.engine.begin() as conn:
        conn.execute(insert(T["branches"]).values(tenant_id="acme", branch_id="B1", name="一部"))
        conn.execute(insert(T["advisors"]).values(tenant_id="acme", advisor_id="A1", name="李",
                                                  branch_id="B1", wecom_userid="wx_a",
                                                  status="active"))
        for i, ext in enumerate(exts):
            conn.execute(insert(T["wecom_follows"]).values(
                tenant_id="acme", advisor_id="A1", external_userid=ext,
                customer_id=f"C{i}" if i < 2 else None, added_at=NOW, status="active"))
        for tag, name in (("dormant", "沉睡客户"), ("high_net_worth", "高净值")):
            conn.execute(insert(tag_definitions).values(tenant_id="acme", tag_id=tag, version=1,
                                                        kind="rule", name=name, spec_json="{}",
                                                        first_used_at=NOW))
        for cid, tag in (("C0", "dormant"), ("C0", "high_net_worth"), ("C1", "dormant")):
            conn.execute(insert(tag_assignments).values(
                tenant_id="acme", customer_id=cid, tag_id=tag, tag_version=1, kind="rule",
                evidence_json="{}", as_of=NOW.date(), gained_at=NOW, updated_at=NOW))
    r = mirror(c, "acme")
    assert (r.tags, r.created, r.contacts, r.marked, r.added, r.removed) == (2, 2, 2, 2, 3, 0)
    with c.engine.connect() as conn:
        mapping = dict(conn.execute(select(wecom_corp_tags.c.caifu_tag_id,
                                           wecom_corp_tags.c.tag_id)).all())
    names = {fake.tags[i]["name"] for i in fake.follow("wx_a", exts[0])["tag_ids"]}
    assert names == {"沉睡客户", "高净值", "VIP"}
    assert fake.follow("wx_a", exts[1])["tag_ids"] == [mapping["dormant"]]
    assert fake.follow("wx_a", exts[2])["tag_ids"] == []  # not linked: not caifu's to tag
    # nothing changed: nothing is sent; then C0 loses a tag and only that goes out
    calls = fake.call_count("externalcontact/mark_tag")
    assert mirror(c, "acme").marked == 0 and fake.call_count("externalcontact/mark_tag") == calls
    with c.engine.begin() as conn:
        conn.execute(delete(tag_assignments).where((tag_assignments.c.customer_id == "C0")
                                                   & (tag_assignments.c.tag_id == "dormant")))
    r = mirror(c, "acme")
    assert (r.created, r.marked, r.added, r.removed) == (0, 1, 0, 1)
    names = {fake.tags[i]["name"] for i in fake.follow("wx_a", exts[0])["tag_ids"]}
    assert names == {"高净值", "VIP"}
