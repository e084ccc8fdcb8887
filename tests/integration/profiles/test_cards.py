"""Customer cards on the scored demo broker, checked against the lake with plain DuckDB SQL,
and on an empty tenant (SQLite and PostgreSQL): sections missing, never an error."""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb
import pytest
from sqlalchemy import insert, select

from caifu.adapters.sor.models import CONTRACT_TABLES, customer_cards, restricted_customers
from caifu.services.container import Container
from caifu.services.profiles.cards import CARD_VERSION, Cards, CardsResult
from caifu.services.profiles.customers import customer_view
from caifu.services.profiles.lifecycle import Lifecycle

CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def built(scored) -> tuple[Container, CardsResult, dict[str, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    c, _, _ = scored
    Lifecycle(c).run("acme")
    result = Cards(c).build("acme")
    with c.engine.connect() as conn:
        rows = conn.execute(select(customer_cards.c.customer_id, customer_cards.c.card_json,
                                   customer_cards.c.lifecycle_stage, customer_cards.c.as_of)
                            .where(customer_cards.c.tenant_id == "acme")).all()
    assert all(r.as_of == result.as_of for r in rows)
    cards = {r.customer_id: json.loads(r.card_json) for r in rows}
    for r in rows:  # the stage column search filters on is the card's own
        assert r.lifecycle_stage == cards[r.customer_id]["lifecycle"]["stage"]
    return c, result, cards


def _sql(c: Container, table: str, query: str) -> list[tuple[Any, ...]]:
    """``query`` over the lake table's current files, named ``t`` — no caifu code involved."""
    con = duckdb.connect()
    files = ", ".join(f"'{f}'" for f in c.lake.files("acme", table))
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet([{files}])")
    return con.execute(query).fetchall()


def test_one_card_per_customer_opened_by_the_date(built) -> None:  # type: ignore[no-untyped-def]
    c, result, cards = built
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        opened = {r[0] for r in conn.execute(select(t.c.customer_id).where(
            t.c.tenant_id == "acme", t.c.opened_on <= result.as_of))}
    assert set(cards) == opened and result.cards == len(opened) > 3000
    assert {card["version"] for card in cards.values()} == {CARD_VERSION}
    assert result.snapshots["lifecycle_stages"] == result.as_of.isoformat()
    # the shared demo may or may not have had a value run by now (other modules run one):
    # either the newest snapshot by the date is in every card, or a note says there is none
    dates = [d for d in c.lake.snapshot_dates("acme", "customer_value")
             if d <= result.as_of.isoformat()]
    if dates:
        assert result.snapshots["customer_value"] == dates[-1]
        assert sum(card["value"] is not None for card in cards.values()) > 3000
    else:
        assert result.snapshots["customer_value"] is None
        assert any("customer value" in n for n in result.notes)
        assert all(card["value"] is None for card in cards.values())


def test_stock_holdings_match_the_latest_snapshot(built) -> None:  # type: ignore[no-untyped-def]
    c, result, cards = built
    rows = _sql(c, "positions", f"""
        SELECT customer_id, security_code, sum(quantity), sum(cost), sum(market_value)
        FROM t WHERE snapshot_date = (SELECT max(snapshot_date) FROM t
                                      WHERE snapshot_date <= DATE '{result.as_of}')
        GROUP BY ALL HAVING sum(quantity) > 0""")
    expected: dict[str, dict[str, tuple[int, Decimal, Decimal]]] = {}
    for cid, code, qty, cost, mv in rows:
        expected.setdefault(cid, {})[code] = (int(qty), Decimal(cost).quantize(CENT),
                                              Decimal(mv).quantize(CENT))
    assert len(expected) > 1000
    for cid, card in cards.items():
        got = {p["security_code"]: (p["quantity"], Decimal(p["cost"]), Decimal(p["market_value"]))
               for p in card["stocks"]["positions"]}
        assert got == expected.get(cid, {}), cid
        mv = sum((v[2] for v in got.values()), Decimal(0))
        pnl = sum((v[2] - v[1] for v in got.values()), Decimal(0))
        assert Decimal(card["stocks"]["value"]) == mv
        assert Decimal(card["stocks"]["unrealised_pnl"]) == pnl
        for p in card["stocks"]["positions"]:
            assert Decimal(p["unrealised_pnl"]) == Decimal(p["market_value"]) - Decimal(p["cost"])
        assert Decimal(card["aum"]["total"]) == mv + Decimal(card["funds"]["value"])


def test_last_ten_trades_newest_first(built) -> None:  # type: ignore[no-untyped-def]
    c, result, cards = built
    rows = _sql(c, "trades", f"""
        SELECT customer_id, list(trade_id ORDER BY trade_time DESC, trade_id DESC)[1:10],
               list(amount ORDER BY trade_time DESC, trade_id DESC)[1:10]
        FROM t WHERE trade_date <= DATE '{result.as_of}' GROUP BY customer_id""")
    expected = {cid: (ids, [Decimal(a).quantize(CENT) for a in amounts])
                for cid, ids, amounts in rows}
    assert any(len(v[0]) == 10 for v in expected.values())
    for cid, card in cards.items():
        trades = card["recent_trades"]
        got = ([x["trade_id"] for x in trades], [Decimal(x["amount"]) for x in trades])
        assert got == expected.get(cid, ([], [])), cid


def test_realised_pnl_by_average_prices(built) -> None:  # type: ignore[no-untyped-def]
    c, result, cards = built
    rows = _sql(c, "trades", f"""
        SELECT customer_id, security_code,
               sum(quantity) FILTER (side = 'B'), sum(amount) FILTER (side = 'B'),
               sum(quantity) FILTER (side = 'S'), sum(amount) FILTER (side = 'S')
        FROM t WHERE trade_date <= DATE '{result.as_of}' GROUP BY ALL""")
    expected: dict[str, Decimal] = {}
    sold: dict[str, int] = {}
    for cid, _, bq, ba, sq, sa in rows:
        value = Decimal(0)
        if bq and sq:  # matched × (average sell − average buy), to the fen half away from 0
            value = (min(bq, sq) * (Decimal(sa) / sq - Decimal(ba) / bq)).quantize(
                CENT, rounding=ROUND_HALF_UP)
            sold[cid] = sold.get(cid, 0) + 1
        expected[cid] = expected.get(cid, Decimal(0)) + value
    # a fen apart per security at most: the pipeline rounds a float (as the profile does,
    # for engines to agree), this test an exact decimal
    differ = {cid: (card["pnl"]["stock_realised"], expected.get(cid, 0))
              for cid, card in cards.items()
              if abs(Decimal(card["pnl"]["stock_realised"]) - expected.get(cid, 0))
              > CENT * sold.get(cid, 0)}
    assert not differ
    assert sum(v != 0 for v in expected.values()) > 500


def test_fund_holdings_match_the_share_ledger(built) -> None:  # type: ignore[no-untyped-def]
    c, result, cards = built
    day = f"DATE '{result.as_of}'"
    # positions whose running balance never went negative (no shares from before the
    # history): shares are the signed sum, valued at the fund's latest NAV on or before
    rows = _sql(c, "fund_transactions", f"""
        WITH r AS (SELECT *, CASE WHEN txn_type = 'redeem' THEN -shares ELSE shares END AS s
                   FROM t WHERE txn_date <= {day}),
        b AS (SELECT customer_id, fund_code, sum(s) OVER (PARTITION BY customer_id, fund_code
                ORDER BY txn_date, txn_type = 'redeem', txn_id) AS bal FROM r),
        clean AS (SELECT customer_id, fund_code FROM b GROUP BY ALL HAVING min(bal) >= 0),
        nav AS (SELECT fund_code, max(nav) AS nav FROM r WHERE (fund_code, txn_date) IN
                (SELECT (fund_code, max(txn_date)) FROM r GROUP BY fund_code) GROUP BY ALL)
        SELECT customer_id, fund_code, sum(s), any_value(nav.nav) FROM r
        JOIN clean USING (customer_id, fund_code) JOIN nav USING (fund_code)
        GROUP BY ALL HAVING sum(s) > 0""")
    assert len(rows) > 500
    checked = 0
    for cid, code, shares, nav in rows:
        if cid not in cards:
            continue
        [p] = [p for p in cards[cid]["funds"]["positions"] if p["fund_code"] == code]
        assert Decimal(p["shares"]) == Decimal(shares).quantize(CENT), (cid, code)
        value = (Decimal(shares) * Decimal(nav)).quantize(CENT, rounding=ROUND_HALF_UP)
        assert abs(Decimal(p["value"]) - value) <= CENT, (cid, code)
        assert p["cost"] is not None and Decimal(p["pnl"]) == Decimal(p["value"]) - Decimal(p["cost"])
        checked += 1
    assert checked > 500


def test_losing_positions_are_every_holding_below_cost(built) -> None:  # type: ignore[no-untyped-def]
    _, _, cards = built
    with_losses = 0
    for card in cards.values():
        below = {("stock", p["security_code"]) for p in card["stocks"]["positions"]
                 if Decimal(p["unrealised_pnl"]) < 0}
        below |= {("fund", p["fund_code"]) for p in card["funds"]["positions"]
                  if p["pnl"] is not None and Decimal(p["pnl"]) < 0}
        losing = card["losing_positions"]
        assert {(x["kind"], x["code"]) for x in losing} == below
        pnls = [Decimal(x["pnl"]) for x in losing]
        assert pnls == sorted(pnls)  # the largest loss first
        with_losses += bool(losing)
    assert with_losses > 500


def test_suitability_is_the_latest_assessment_with_its_expiry(built) -> None:  # type: ignore[no-untyped-def]
    c, result, cards = built
    t = CONTRACT_TABLES["suitability_assessments"]
    with c.engine.connect() as conn:
        rows = conn.execute(select(t.c.customer_id, t.c.assessment_id, t.c.assessed_on,
                                   t.c.risk_level, t.c.valid_until)
                            .where(t.c.tenant_id == "acme", t.c.assessed_on <= result.as_of)
                            ).all()
    latest: dict[str, Any] = {}
    for r in sorted(rows, key=lambda r: (r.assessed_on, r.assessment_id)):
        latest[r.customer_id] = r
    expired = 0
    for cid, card in cards.items():
        s, r = card["suitability"], latest.get(cid)
        if r is None:
            assert s is None and any("no suitability" in n for n in card["notes"])
            continue
        assert (s["risk_level"], s["valid_until"]) == (r.risk_level, r.valid_until.isoformat())
        assert s["expired"] is (r.valid_until < result.as_of)
        expired += s["expired"]
        if s["expired"]:
            assert any("expired" in n for n in card["notes"])
    assert 0 < expired < len(latest)  # the demo has both kinds


def test_lifecycle_stage_and_scores_come_from_their_snapshots(built) -> None:  # type: ignore[no-untyped-def]
    c, result, cards = built
    day = f"DATE '{result.as_of}'"
    stages = {r[0]: r[1:] for r in _sql(
        c, "lifecycle_stages", f"SELECT customer_id, stage, since FROM t WHERE as_of = {day}")}
    for cid, card in cards.items():
        stage, since = stages[cid]
        assert (card["lifecycle"]["stage"], card["lifecycle"]["since"]) == (stage,
                                                                            since.isoformat())
    scores: dict[str, dict[str, tuple[float, int]]] = {}
    for cid, name, value, reasons in _sql(c, "model_scores", f"""
            SELECT customer_id, score, value, reasons_json FROM t
            WHERE as_of = (SELECT max(as_of) FROM t WHERE as_of <= {day})"""):
        scores.setdefault(cid, {})[name] = (round(value, 4), len(json.loads(reasons)))
    explained = 0
    for cid, card in cards.items():
        got = {x["score"]: (x["value"], len(x["reasons"])) for x in card["scores"]["items"]}
        assert got == scores.get(cid, {}), cid
        for x in card["scores"]["items"]:
            explained += bool(x["reasons"])
            assert all(r["label"] and r["contribution"] > 0 for r in x["reasons"])
    assert explained > 100


def test_the_360_carries_the_card(built) -> None:  # type: ignore[no-untyped-def]
    c, _, cards = built
    cid = next(k for k, v in sorted(cards.items()) if v["recent_trades"] and v["stocks"])
    view = customer_view(c, "acme", cid)
    assert {k: v for k, v in view["card"].items() if k != "built_at"} == cards[cid]
    assert view["notes"] == [] and view["card"]["built_at"]


def _seed_master(c: Container) -> None:
    T = CONTRACT_TABLES
    with c.engine.begin() as conn:
        conn.execute(insert(T["branches"]).values(tenant_id="acme", branch_id="YYB001",
                                                  name="一部"))
        for cid in ("K1", "K2", "K3"):
            conn.execute(insert(T["customers"]).values(
                tenant_id="acme", customer_id=cid, name="李四", customer_type="individual",
                id_type="passport", id_number=f"E{cid}0001", branch_id="YYB001",
                opened_on=dt.date(2025, 3, 1), channel="app", status="normal"))
        conn.execute(insert(T["suitability_assessments"]).values(
            tenant_id="acme", assessment_id="A1", customer_id="K1",
            questionnaire_version="v1", assessed_on=dt.date(2024, 1, 5), score=45,
            risk_level="C3", no_loss_tolerance=False, no_civil_capacity=False,
            valid_until=dt.date(2026, 1, 4)))
        conn.execute(insert(restricted_customers).values(
            tenant_id="acme", customer_id="K3", since=dt.datetime(2026, 2, 1),
            request_id="R1", legal_basis="证券法：交易记录保存二十年"))


@pytest.mark.dialect
def test_a_tenant_without_facts_gets_cards_with_notes(workspace: Container) -> None:
    _seed_master(workspace)
    before = customer_view(workspace, "acme", "K1")
    assert before["card"] is None and "caifu cards" in before["notes"][0]
    result = Cards(workspace).build("acme", dt.date(2026, 3, 1))
    assert result.cards == 2 and result.skipped_restricted == 1  # K3: storage only
    assert len(result.notes) == 7  # positions, funds, trades and the four derived tables
    card = customer_view(workspace, "acme", "K1")["card"]
    assert card["stocks"] is None and card["funds"] is None and card["recent_trades"] is None
    assert card["scores"] is None and card["lifecycle"] is None
    assert card["aum"] == {"total": "0.00", "stocks": "0.00", "funds": "0.00",
                           "stock_share": None}
    assert card["suitability"]["risk_level"] == "C3" and card["suitability"]["expired"] is True
    assert any("no model scores" in n for n in card["notes"])
    k2 = customer_view(workspace, "acme", "K2")
    assert k2["card"]["suitability"] is None
    k3 = customer_view(workspace, "acme", "K3")
    assert k3["card"] is None and "storage only" in k3["notes"][0]
    again = Cards(workspace).build("acme", dt.date(2026, 3, 2))  # replaces, never adds
    assert again.cards == 2
    with workspace.engine.connect() as conn:
        days = conn.execute(select(customer_cards.c.as_of)).scalars().all()
    assert days == [dt.date(2026, 3, 2)] * 2
