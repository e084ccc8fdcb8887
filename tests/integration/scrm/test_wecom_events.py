"""Callbacks applied against the fake WeCom: a customer adds his advisor through a channel QR
(state kept, compliant welcome sent within the code's 20 s, details fetched), the advisor's
remark mobile links him to the broker's customer, he deletes the advisor (churn signal),
groups with a missed event resync through the API, corp tags follow WeCom. Every callback
goes the whole way: fake → signed, encrypted request → endpoint checks → worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import insert, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.scrm_models import (
    wecom_callbacks,
    wecom_corp_tags,
    wecom_group_members,
    wecom_groups,
    wecom_links,
)
from caifu.adapters.wecom.fake import FakeWeCom
from caifu.scrm.crypto import WeComCrypto
from caifu.services.container import Container
from caifu.services.scrm import wecom_app
from caifu.services.scrm.callback_apply import WeComEvents
from caifu.services.scrm.callback_intake import Callbacks

T = CONTRACT_TABLES
CORP, TOKEN, AES = "wwcaifutest0000001", "tok3n", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ADVISOR = "wx_tg00001"


@pytest.fixture
def scrm(workspace: Container) -> Iterator[tuple[Container, FakeWeCom]]:
    c = workspace
    fake = FakeWeCom(CORP, "fake-secret", "1000002",
                     callback_crypto=WeComCrypto(TOKEN, AES, CORP))
    fake.add_member(ADVISOR, "李投顾")
    c.wecom_transport = httpx.MockTransport(fake.handler)
    wecom_app.configure(c, "acme", corp_id=CORP, agent_id="1000002", token=TOKEN,
                    encoding_aes_key=AES, secret="fake-secret")
    with c.engine.begin() as conn:
        conn.execute(insert(T["branches"]).values(tenant_id="acme", branch_id="YYB001",
                                                  name="一部"))
        conn.execute(insert(T["advisors"]).values(
            tenant_id="acme", advisor_id="TG00001", name="李投顾", branch_id="YYB001",
            sac_number="A0120612345678", wecom_userid=ADVISOR, status="active"))
        conn.execute(insert(T["customers"]).values(
            tenant_id="acme", customer_id="C1", name="王一", customer_type="individual",
            id_type="passport", id_number="E12345678", mobile="13812345678",
            branch_id="YYB001", advisor_id="TG00001", opened_on=dt.date(2024, 1, 2),
            channel="app", status="normal"))
    yield c, fake


def deliver(c: Container, fake: FakeWeCom, xml: str) -> None:
    params, body = fake.callback(xml)
    assert Callbacks(c).receive("acme", params, body).status == "accepted"
    done = WeComEvents(c).apply_pending("acme")
    with c.engine.connect() as conn:
        errors = conn.execute(select(wecom_callbacks.c.error).where(
            wecom_callbacks.c.status == "failed")).scalars().all()
    assert (done.applied, done.failed) == (1, 0), errors


def follow(c: Container, ext: str):  # type: ignore[no-untyped-def]
    with c.engine.connect() as conn:
        return conn.execute(select(T["wecom_follows"]).where(
            T["wecom_follows"].c.external_userid == ext)).one()


def test_a_contact_from_add_to_link_to_churn(scrm: tuple[Container, FakeWeCom]) -> None:
    c, fake = scrm
    added = fake.customer_adds(ADVISOR, name="王一", state="cf-CAMP01", unionid="o6_abc")
    deliver(c, fake, added.event_xml)
    f = follow(c, added.external_userid)
    assert (f.status, f.state, f.advisor_id, f.unionid) == ("active", "cf-CAMP01", "TG00001",
                                                            "o6_abc")
    assert f.customer_id is None  # nothing yet ties him to a broker customer
    welcome = fake.welcome_messages[-1]
    assert welcome["external_userid"] == added.external_userid
    assert "A0120612345678" in welcome["text"]["content"]
    assert "市场有风险，投资需谨慎" in welcome["text"]["content"]
    # the advisor notes the customer's mobile as a remark: strong, unique evidence
    fake.follow(ADVISOR, added.external_userid)["remark_mobiles"] = ["13812345678"]
    deliver(c, fake, fake.advisor_edits(ADVISOR, added.external_userid, remark="王一").event_xml)
    assert follow(c, added.external_userid).customer_id == "C1"
    with c.engine.connect() as conn:
        link = conn.execute(select(wecom_links)).one()
    assert (link.customer_id, link.status) == ("C1", "linked")
    assert "13812345678" not in link.evidence_json  # evidence is masked
    # he deletes the advisor: the churn signal the profile reads
    deliver(c, fake, fake.customer_deletes(ADVISOR, added.external_userid).event_xml)
    f = follow(c, added.external_userid)
    assert f.status == "deleted_by_customer" and f.removed_at is not None


def test_unknown_advisor_fails_with_its_reason_and_retries(
        scrm: tuple[Container, FakeWeCom]) -> None:
    c, fake = scrm
    fake.add_member("wx_new01", "新投顾")
    params, body = fake.callback(fake.customer_adds("wx_new01").event_xml)
    Callbacks(c).receive("acme", params, body)
    events = WeComEvents(c)
    assert events.apply_pending("acme").failed == 1
    with c.engine.connect() as conn:
        assert conn.execute(select(wecom_callbacks.c.error)).scalar_one() == \
            "UserID:UNKNOWN_ADVISOR"
        conn.execute(insert(T["advisors"]).values(
            tenant_id="acme", advisor_id="TG00009", name="新投顾", branch_id="YYB001",
            wecom_userid="wx_new01", status="active"))
        conn.commit()
    assert events.retry_failed("acme") == 1
    # the welcome code has a 20 s life in the fake; the retry comes in time here
    assert events.apply_pending("acme").applied == 1


def test_groups_follow_events_and_resync_after_a_gap(scrm: tuple[Container, FakeWeCom]) -> None:
    c, fake = scrm
    a = fake.customer_adds(ADVISOR, name="甲").external_userid
    b = fake.customer_adds(ADVISOR, name="乙").external_userid
    d = fake.customer_adds(ADVISOR, name="丙").external_userid
    chat = fake.add_group_chat(ADVISOR, [a], name="新能源交流群")
    deliver(c, fake, fake.group_event("create", chat))

    def members() -> dict[str, bool]:
        with c.engine.connect() as conn:
            return dict(conn.execute(select(wecom_group_members.c.member_id,
                                            wecom_group_members.c.active)).all())

    assert members() == {ADVISOR: True, a: True}
    deliver(c, fake, fake.members_join_chat(chat, [b]).event_xml)
    assert members() == {ADVISOR: True, a: True, b: True}
    fake.members_join_chat(chat, [d])  # this event never arrives
    deliver(c, fake, fake.members_leave_chat(chat, [a]).event_xml)
    assert members() == {ADVISOR: True, a: False, b: True, d: True}  # resynced through the API
    with c.engine.connect() as conn:
        g = conn.execute(select(wecom_groups)).one()
    assert (g.name, g.needs_resync, g.member_version) == ("新能源交流群", False,
                                                          fake.member_version(chat))
    deliver(c, fake, fake.group_event("dismiss", chat))
    assert not any(members().values())


def test_corp_tags_follow_wecom(scrm: tuple[Container, FakeWeCom]) -> None:
    c, fake = scrm
    ids = fake.add_tag_group("投资偏好", ["新能源", "基金定投"])
    deliver(c, fake, fake.tag_event("create", ids["新能源"], "tag"))
    with c.engine.connect() as conn:
        tags = dict(conn.execute(select(wecom_corp_tags.c.name, wecom_corp_tags.c.deleted)).all())
    assert tags == {"新能源": False, "基金定投": False}
    deliver(c, fake, fake.tag_event("delete", ids["基金定投"], "tag"))
    with c.engine.connect() as conn:
        tags = dict(conn.execute(select(wecom_corp_tags.c.name, wecom_corp_tags.c.deleted)).all())
    assert tags == {"新能源": False, "基金定投": True}


def test_a_failed_apply_writes_nothing_and_the_retry_applies_it(
        scrm: tuple[Container, FakeWeCom]) -> None:
    """Found by an outside probe: the follow row was written before the contact's details
    were fetched, so an API failure left a half-applied event marked failed. An event's
    writes are one transaction: a failure leaves no row, the event is failed with its
    reason, and the retry applies it whole."""
    c, fake = scrm
    added = fake.customer_adds(ADVISOR, name="王一", state="cf-CAMP01", unionid="o6_abc")
    params, body = fake.callback(added.event_xml)
    assert Callbacks(c).receive("acme", params, body).status == "accepted"
    fake.fail_next("externalcontact/get", 84061)  # not retried by the client
    events = WeComEvents(c)
    done = events.apply_pending("acme")
    assert (done.applied, done.failed, done.welcomes) == (0, 1, 0)
    with c.engine.connect() as conn:
        assert conn.execute(select(T["wecom_follows"])).all() == []
        assert conn.execute(select(wecom_links)).all() == []
        row = conn.execute(select(wecom_callbacks)).one()
    assert row.status == "failed" and "84061" in row.error
    assert events.retry_failed("acme") == 1
    done = events.apply_pending("acme")
    assert (done.applied, done.failed, done.welcomes) == (1, 0, 1)
    f = follow(c, added.external_userid)
    assert (f.status, f.state, f.unionid) == ("active", "cf-CAMP01", "o6_abc")


def test_a_database_failure_inside_an_event_rolls_the_whole_event_back(
        scrm: tuple[Container, FakeWeCom], monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity link is the event's last write; when it fails, the follow written
    before it in the same event is undone too."""
    from caifu.services.scrm import identity_links

    c, fake = scrm
    added = fake.customer_adds(ADVISOR, name="王一", unionid="o6_abc")
    params, body = fake.callback(added.event_xml)
    Callbacks(c).receive("acme", params, body)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(identity_links, "_apply", broken)
    done = WeComEvents(c).apply_pending("acme")
    assert (done.applied, done.failed) == (0, 1)
    with c.engine.connect() as conn:
        assert conn.execute(select(T["wecom_follows"])).all() == []
        row = conn.execute(select(wecom_callbacks)).one()
    assert (row.status, row.error) == ("failed", "RuntimeError: the database went away")


def test_status_counts_and_the_resync_of_the_groups_that_missed_events(
        scrm: tuple[Container, FakeWeCom]) -> None:
    c, fake = scrm
    a = fake.customer_adds(ADVISOR, name="甲").external_userid
    b = fake.customer_adds(ADVISOR, name="乙").external_userid
    chat = fake.add_group_chat(ADVISOR, [a], name="基金定投群")
    deliver(c, fake, fake.group_event("create", chat))
    fake.members_join_chat(chat, [b])  # WeCom has b; caifu never heard of it
    with c.engine.begin() as conn:  # as after an event applied while the app had no API
        conn.execute(wecom_groups.update().values(needs_resync=True))
    events = WeComEvents(c)
    assert events.status("acme") == {"by_status": [("applied", 1)], "failed": [],
                                     "groups_to_resync": 1}
    assert events.status("other") == {"by_status": [], "failed": [], "groups_to_resync": 0}
    with wecom_app.client_for(c, "acme") as client:
        groups, tags = events.resync_pending("acme", client)
    assert (groups, tags) == (1, 0)
    with c.engine.connect() as conn:
        assert dict(conn.execute(select(wecom_group_members.c.member_id,
                                        wecom_group_members.c.active)).all()) == {
            ADVISOR: True, a: True, b: True}
    assert events.status("acme")["groups_to_resync"] == 0
