"""The demo's risk replay on the small demo broker: real train-split headlines about held
companies go through intake, linking, the event classifier and exposure; every story's new
alerts are exactly the holders a plain SQL query over the broker's positions, fund
transactions and top holdings finds for the companies it linked (less those an earlier story
of the same event already alerted); a ``none`` line raises nothing although its company is
held; replaying again raises nothing new; the printout names events in Chinese and masks
customers."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from rich.console import Console
from sqlalchemy import select

from caifu.adapters.sor.risk_models import risk_alerts, risk_documents, risk_tasks
from caifu.cli.views.demo import print_replay
from caifu.risk.alerts import EVENT_NAMES, EVENT_WINDOW
from caifu.risk.corpus import NewsItem, load_news_corpus
from caifu.services.container import Container
from caifu.services.demo.broker import load_risk_reference
from caifu.services.demo.replay import SOURCE, SPREAD_DAYS, Replay, choose, replay
from tests.conftest import Broker
from tests.integration.risk.oracle import holders

END = dt.date(2026, 10, 30)  # the generator's default end date, which small_broker uses
TENANT = "acme"


def _holders(c: Container, codes: list[str]) -> set[tuple[str, str]]:
    """(customer, security) holding one of ``codes`` today: the exposure oracle's plain SQL."""
    return holders(c, codes, TENANT)


@pytest.fixture(scope="module")
def c(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    c = small_broker.copy(tmp_path_factory.mktemp("demo-replay") / "ws")
    load_risk_reference(c, TENANT)  # as the demo does: its tenant's aliases and relations
    yield c
    c.close()


@pytest.fixture(scope="module")
def first(c: Container) -> Replay:
    return replay(c, TENANT, END)


def _alerts(c: Container) -> set[tuple[str, str, str]]:
    with c.engine.connect() as conn:
        return {tuple(r) for r in conn.execute(select(  # type: ignore[misc]
            risk_alerts.c.story_id, risk_alerts.c.customer_id, risk_alerts.c.security_code))}


def test_the_replay_is_real_train_lines_about_held_companies(c: Container, first: Replay
                                                              ) -> None:
    lines = first.lines
    assert 5 <= len(lines) <= 12
    assert [x.item.id for x in lines] == sorted(x.item.id for x in lines)
    corpus = {i.id: i for i in load_news_corpus().items}
    labels = [x.item.event_type for x in lines]
    assert len({t for t in labels if t != "none"}) >= 4  # several event types
    assert 1 <= labels.count("none") <= 2
    for x in lines:
        assert corpus[x.item.id] == x.item and x.item.split == "train"
        # a labelled company, held, that the linker found
        assert _holders(c, sorted(x.item.codes & {code for code, _ in x.linked})), x.item.id
        day = dt.date.fromisoformat(x.published[:10])
        assert END - dt.timedelta(days=SPREAD_DAYS) <= day < END
    assert [x.published for x in lines] == sorted(x.published for x in lines)
    assert first.intake is not None and first.intake.rejected == 0
    with c.engine.connect() as conn:
        docs = conn.execute(select(risk_documents.c.url, risk_documents.c.title,
                                   risk_documents.c.source, risk_documents.c.published_at,
                                   risk_documents.c.published_zone)).all()
    assert {(d.url, d.title) for d in docs} == {(x.item.url, x.item.text) for x in lines}
    assert {d.source for d in docs} == {SOURCE}
    # 09:30 in Shanghai is 01:30 UTC
    assert {(d.published_at.time(), d.published_zone) for d in docs} == {
        (dt.time(1, 30), "Asia/Shanghai")}


def test_alerts_are_exactly_the_sql_holders_of_the_linked_companies(
    c: Container, first: Replay
) -> None:
    expected: set[tuple[str, str, str]] = set()
    alerted: list[tuple[str, str, str, dt.date]] = []  # customer, code, event, published
    raised_any = False
    for x in first.lines:
        o = x.outcome
        assert o is not None and x.story_id == o.story_id
        assert sorted(code for code, _ in x.linked) == o.listed
        holders = _holders(c, o.listed)
        assert x.holders == len(holders), x.item.id
        if o.event_type in (None, "none") or o.polarity != "negative":
            assert (o.new_alerts, o.repeats) == (0, 0), x.item.id
            continue
        day = dt.date.fromisoformat(x.published[:10])
        new = {h for h in holders if not any(
            (cid, code, ev) == (*h, o.event_type) and abs(day - at) <= EVENT_WINDOW
            for cid, code, ev, at in alerted)}
        assert (o.holders, o.new_alerts, o.repeats) == (
            len(holders), len(new), len(holders) - len(new)), x.item.id
        expected |= {(o.story_id, cid, code) for cid, code in new}
        alerted += [(cid, code, o.event_type, day) for cid, code in new]
        raised_any = raised_any or bool(new)
    assert raised_any
    assert _alerts(c) == expected
    with c.engine.connect() as conn:
        tasks = conn.execute(select(risk_tasks.c.customer_id, risk_tasks.c.status)).all()
    assert sorted(t.customer_id for t in tasks) == sorted(cid for _, cid, _ in expected)
    assert {t.status for t in tasks} == {"open"}


def test_a_none_line_about_a_held_company_raises_nothing(c: Container, first: Replay) -> None:
    nones = [x for x in first.lines if x.item.event_type == "none"]
    assert nones
    stories = {s for s, _, _ in _alerts(c)}
    for x in nones:
        assert x.outcome is not None and x.outcome.event_type == "none", x.item.id
        assert x.holders > 0 and x.story_id not in stories, x.item.id


def test_the_printout_names_events_in_chinese_and_masks_customers(
    c: Container, first: Replay
) -> None:
    console = Console(record=True, width=200)
    print_replay(c, TENANT, first, console)
    out = console.export_text()
    raised = [x for x in first.lines if x.outcome and x.outcome.new_alerts]
    for x in raised:
        assert EVENT_NAMES[str(x.outcome.event_type)] in out  # type: ignore[union-attr]
    assert "none — not a risk" in out
    assert f"{first.new_alerts:,} alerts and tasks raised" in out
    with c.engine.connect() as conn:
        names = dict(conn.exec_driver_sql(
            "SELECT customer_id, name FROM customers WHERE tenant_id = 'acme'").all())
    shown = re.findall(r"│ (\d{10}) (\S+)\s", out)
    assert shown
    for cid, name in shown:
        assert "*" in name and name != names[cid]


def test_replaying_again_raises_nothing_new(c: Container, first: Replay) -> None:
    before = _alerts(c)
    again = replay(c, TENANT, END)
    assert [x.item.id for x in again.lines] == [x.item.id for x in first.lines]
    assert again.intake is not None
    assert again.intake.duplicates == again.intake.received == len(first.lines)
    assert [x.story_id for x in again.lines] == [x.story_id for x in first.lines]
    assert again.new_alerts == 0
    assert _alerts(c) == before


def _item(i: str, event: str, codes: tuple[str, ...], url: str = "https://a.cn/1",
          polarity: str = "negative") -> NewsItem:
    return NewsItem(i, "text", url, "simplified", event, polarity,
                    tuple((f"name{k}", k) for k in codes), "test")


def test_choose_takes_one_line_per_event_type_and_neutral_single_company_nones() -> None:
    train = next(u for u in (f"https://a.cn/{n}" for n in range(100))
                 if NewsItem("x", "", u, "", "", "", (), "").split == "train")
    test_url = next(u for u in (f"https://b.cn/{n}" for n in range(100))
                    if NewsItem("x", "", u, "", "", "", (), "").split == "test")
    items = [
        _item("a5", "bond_default", ("000001",), train),
        _item("a1", "bond_default", ("000001",), train),  # first by id: taken
        _item("a2", "delisting_risk", ("999999",), train),  # not held
        _item("a3", "delisting_risk", ("000002",), test_url),  # test split
        _item("a4", "delisting_risk", ("000002", "999999"), train),  # one held code is enough
        _item("a6", "none", ("000001",), train, "positive"),  # positive: not a denial
        _item("a7", "none", ("000001", "000002"), train, "neutral"),  # two companies
        _item("a8", "none", ("000002",), train, "neutral"),
        _item("a9", "none", ("000001",), train, "neutral"),
        _item("b1", "none", ("000001",), train, "neutral"),  # over the none cap
        _item("b2", "major_litigation", ("000001",), train, "neutral"),  # not negative
        _item("b3", "major_litigation", (), train),  # no code
        _item("b4", "earnings_warning", ("000001", "000002", "000003", "000004"), train),
    ]
    held = {"000001", "000002", "000003", "000004"}
    assert [i.id for i in choose(items, held)] == ["a1", "a4", "a8", "a9"]
    assert [i.id for i in choose(items, held, risks=1, nones=1)] == ["a1", "a8"]
    assert choose(items, set()) == []
    # with the linker's codes: a line whose held company the linker misses is left out
    linked = {"a1": {"000001"}, "a4": {"999999"}, "a8": {"000002"}, "a9": set(),
              "b1": {"000001"}, "a5": {"000001"}}
    assert [i.id for i in choose(items, held, linked)] == ["a1", "a8", "b1"]
