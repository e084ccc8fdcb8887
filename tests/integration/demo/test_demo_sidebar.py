"""The demo's printed sidebar customer: one whose page shows holdings and recent trades."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import insert

from caifu.adapters.sor.models import CONTRACT_TABLES, customer_cards
from caifu.cli.views.demo import sidebar_hint
from caifu.services.container import Container
from caifu.services.demo.scrm import sidebar_target

AS_OF = dt.date(2026, 10, 30)
STOCK = {"security_code": "600000", "name": "浦发银行", "quantity": 100, "market_value": 900.0}
FUND = {"fund_code": "000001", "name": "华夏成长", "value": 5000.0}


def _trade(day: dt.date) -> dict[str, object]:
    return {"trade_id": f"T{day:%m%d}", "trade_date": day.isoformat(), "security_code": "600000",
            "side": "B", "quantity": 100, "amount": 900.0}


def test_the_sidebar_customer_has_holdings_and_recent_trades(sqlite_workspace: Container) -> None:
    c = sqlite_workspace
    now = dt.datetime(2026, 10, 1)
    # cards as services/profiles/cards.py writes them (docs/customer-cards.md); by contact id
    # wm01 comes first — the one the demo used to print — with an empty card
    cards = {
        "C01": {"stocks": {"positions": []}, "funds": None, "recent_trades": []},  # empty
        "C02": {"recent_trades": [_trade(dt.date(2026, 10, 20))]},  # trades, no holdings
        "C03": {"stocks": {"positions": [STOCK]}, "funds": None,
                "recent_trades": [_trade(dt.date(2025, 3, 2))]},
        "C04": {"funds": {"positions": [FUND]}, "stocks": {"positions": []},
                "recent_trades": [_trade(dt.date(2026, 10, 28)), _trade(dt.date(2026, 9, 1))]},
        "C05": {"stocks": {"positions": [STOCK]},
                "recent_trades": [_trade(dt.date(2026, 10, 29))]},
    }
    with c.engine.begin() as conn:
        conn.execute(insert(CONTRACT_TABLES["advisors"]), [
            {"tenant_id": "acme", "advisor_id": "A1", "name": "王", "branch_id": "B1",
             "status": "active", "wecom_userid": "wang"},
            {"tenant_id": "acme", "advisor_id": "A2", "name": "李", "branch_id": "B1",
             "status": "active", "wecom_userid": "li"}])
        conn.execute(insert(CONTRACT_TABLES["wecom_follows"]), [
            {"tenant_id": "acme", "advisor_id": "A1" if i < 4 else "A2",
             "external_userid": f"wm{i:02d}", "customer_id": cid, "added_at": now,
             "status": "active"} for i, cid in enumerate(cards, start=1)])
        conn.execute(insert(customer_cards), [
            {"tenant_id": "acme", "customer_id": cid, "as_of": AS_OF,
             "card_json": json.dumps(card), "built_at": now} for cid, card in cards.items()])
    target = sidebar_target(c, "acme")
    assert (target["external_userid"], target["advisor_id"], target["wecom_userid"]) == (
        "wm04", "A2", "li")

    # without a recent trade anywhere, holdings and an older trade beat trades alone
    with c.engine.begin() as conn:
        conn.execute(customer_cards.delete().where(customer_cards.c.customer_id.in_(
            ["C04", "C05"])))
    assert sidebar_target(c, "acme")["external_userid"] == "wm03"


def test_the_printed_sidebar_url_uses_the_serve_port() -> None:
    sidebar = {"external_userid": "wmABC", "advisor_id": "A1"}
    hint = sidebar_hint(Path("/tmp/demo"), 9137, sidebar)
    assert "caifu demo --serve --port 9137 -w /tmp/demo" in hint
    assert "http://127.0.0.1:9137/wecom/demo/sidebar?ctx=wmABC" in hint
    assert ":8000" not in hint
    default = sidebar_hint(Path("/tmp/demo"), 8000, sidebar)
    assert "caifu demo --serve -w /tmp/demo" in default and "127.0.0.1:8000/" in default
