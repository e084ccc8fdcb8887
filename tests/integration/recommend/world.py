"""A small tenant world for the serving tests: advisors, customers, assessments, content,
funds — and published lists written as ``publish`` writes them (``repo.insert_lists``, COPY on
PostgreSQL), so the read path is tested without fitting a policy."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.repos import recommend as repo
from caifu.services.container import Container

T = CONTRACT_TABLES
AS_OF = dt.date(2026, 10, 30)
NOON = dt.datetime(2026, 10, 30, 4, 0)  # UTC: noon in Asia/Shanghai, on AS_OF
VERSION = "test-2026-10/abc123"


def item(item_id: str, item_type: str, risk: str, score: float, reason: str, *,
         horizon: str | None = None, variety: str | None = None,
         valid_from: str | None = "2026-01-01", valid_until: str | None = None
         ) -> dict[str, Any]:
    """One listed item in the shape ``serving.publish`` writes."""
    return {"item_id": item_id, "item_type": item_type, "risk_level": risk, "horizon": horizon,
            "variety": variety, "valid_from": valid_from, "valid_until": valid_until,
            "score": score, "reason": reason}


def write_lists(c: Container, tenant: str, lists: Mapping[str, Sequence[dict[str, Any]]],
                k: int = 3) -> None:
    """Replace the tenant's published lists (one transaction, as a publish does)."""
    n = len(lists)
    with c.engine.begin() as conn:
        repo.delete_lists(conn, tenant)
        repo.insert_lists(conn, tenant, {
            "customer_id": list(lists), "as_of": [AS_OF] * n, "policy_version": [VERSION] * n,
            "generated_at": [NOON - dt.timedelta(hours=6)] * n, "k": [k] * n,
            "items_json": [json.dumps(list(v), ensure_ascii=False) for v in lists.values()]})


def assess(c: Container, tenant: str, assessment_id: str, customer_id: str, level: str,
           on: dt.date = dt.date(2025, 6, 1), **extra: Any) -> None:
    values = {"objective": "growth", "horizon": "long", "valid_until": dt.date(2099, 6, 1),
              **extra}
    with c.engine.begin() as conn:
        conn.execute(insert(T["suitability_assessments"]).values(
            tenant_id=tenant, assessment_id=assessment_id, customer_id=customer_id,
            questionnaire_version="v3", assessed_on=on, score=50, risk_level=level,
            no_loss_tolerance=False, no_civil_capacity=False, **values))


def seed(c: Container, tenant: str = "acme") -> None:
    """Branch YYB001; advisors TG00001 (王晓明) and TG00002; customers C1 (TG00001's, C3,
    consents), C2 (TG00001's, C4, refused marketing) and C3 (TG00002's, C2); research N1 (R2,
    with a URL), an advisor view N2 (R3), an old note N3 (R1); funds 000001 (R3 hybrid) and
    000002 (R1 money)."""
    with c.engine.begin() as conn:
        conn.execute(insert(T["branches"]).values(tenant_id=tenant, branch_id="YYB001",
                                                  name="金融街营业部"))
        for adv, name in (("TG00001", "王晓明"), ("TG00002", "李娜")):
            conn.execute(insert(T["advisors"]).values(
                tenant_id=tenant, advisor_id=adv, name=name, branch_id="YYB001",
                sac_number="S0010120080012", status="active"))
        for cid, adv, consent in (("C1", "TG00001", True), ("C2", "TG00001", False),
                                  ("C3", "TG00002", None)):
            conn.execute(insert(T["customers"]).values(
                tenant_id=tenant, customer_id=cid, name="王一", customer_type="individual",
                id_type="passport", id_number=f"E{cid}12345", mobile="13812345678",
                branch_id="YYB001", advisor_id=adv, opened_on=dt.date(2024, 1, 2),
                channel="app", status="normal", marketing_consent=consent))
        for content_id, ctype, title, level, day, url in (
                ("N1", "research_report", "宁德时代三季报点评", "R2", dt.datetime(2026, 10, 28),
                 "https://research.example.com/N1"),
                ("N2", "advisor_view", "四季度成长风格展望", "R3", dt.datetime(2026, 10, 29), None),
                ("N3", "research_report", "货币基金入门", "R1", dt.datetime(2026, 8, 1), None)):
            conn.execute(insert(T["content_items"]).values(
                tenant_id=tenant, content_id=content_id, content_type=ctype, title=title,
                risk_level=level, published_at=day, url=url))
        for code, name, ftype, level in (("000001", "成长混合A", "hybrid", "R3"),
                                         ("000002", "现金宝货币", "money", "R1")):
            conn.execute(insert(T["fund_products"]).values(
                tenant_id=tenant, fund_code=code, name=name, fund_type=ftype, risk_level=level,
                manager_company="某基金"))
    for aid, cid, level in (("S1", "C1", "C3"), ("S2", "C2", "C4"), ("S3", "C3", "C2")):
        assess(c, tenant, aid, cid, level)


# C1's list, best first: 3 shown, the rest spares (N3 expired on 2026-09-30)
C1_LIST = [
    item("N1", "content", "R2", 2.5, "近期看过 3 篇研报；本周新发布", valid_from="2026-10-28",
         valid_until="2026-12-27"),
    item("F000001", "fund", "R3", 1.9, "关注过混合基金（2 次）", horizon="medium",
         variety="equity"),
    item("N2", "content", "R3", 1.4, "与您相似的客户常看", valid_from="2026-10-29",
         valid_until="2026-12-28"),
    item("A:subscribe_level2", "action", "R1", 0.8, "近 90 天有 12 笔交易", valid_from=None),
    item("F000002", "fund", "R1", 0.5, "C3 投资者近期热门", horizon="short", variety="cash"),
    item("N3", "content", "R1", 0.2, "符合您的风险等级与投资偏好", valid_from="2026-08-01",
         valid_until="2026-09-30"),
]


def explore_config(c: Container, epsilon: float, seed_: int = 7) -> None:
    """The tenant ``acme`` serves with exploration ``epsilon`` (its recommend YAML)."""
    folder = c.root / "recommend"
    folder.mkdir(exist_ok=True)
    (folder / "acme.yaml").write_text(f"explore: {{epsilon: {epsilon}, seed: {seed_}}}\n",
                                      "utf-8")


def served_days(c: Container, days: int = 5, customers: Sequence[str] = ("C1", "C3"),
                epsilon: float = 0.5) -> None:
    """The seeded world with ``C1_LIST`` published for ``customers``, each served k=2 on the
    sidebar once a day for ``days`` days from NOON, exploring at ``epsilon``: a log of
    sidebar lists for the off-policy tests."""
    from caifu.core.clock import FixedClock
    from caifu.core.identity import Principal
    from caifu.services.recommend import serving

    seed(c)
    write_lists(c, "acme", dict.fromkeys(customers, C1_LIST))
    explore_config(c, epsilon)
    ops = Principal("acme", "acme.ops", "ops")
    for d in range(days):
        c.clock = FixedClock(NOON + dt.timedelta(days=d))
        for cid in customers:
            serving.for_customer(c, ops, cid, 2, "sidebar")


def click_first_slots(conn: Any, tenant: str = "acme") -> list[str]:
    """Every logged item at rank 1 clicked at NOON; their rec ids."""
    from sqlalchemy import select

    from caifu.adapters.sor.recommend_models import recommendation_log as log

    clicked = [r.rec_id for r in conn.execute(select(log.c.rec_id, log.c.rank)) if r.rank == 1]
    for rec_id in clicked:
        repo.mark(conn, tenant, rec_id, "clicked", NOON)
    return clicked


def ope_logging(c: Container) -> Any:
    """``caifu recommend ope --target logging`` over the whole log (a CliRunner result)."""
    from typer.testing import CliRunner

    from caifu.cli import app

    return CliRunner().invoke(app, ["recommend", "ope", "-t", "acme", "-w", str(c.root),
                                    "--target", "logging", "--since", "365"])
