"""The campaign funnel's metrics (``data/metrics/campaigns.yaml``) against hand-written SQL,
and the surfaces that show them: ``GET /v1/campaigns/{id}/funnel``, ``GET
/v1/campaigns/compare``, ``caifu campaign funnel`` and ``caifu campaign compare``.

The rows are made here by hand: caifu's runs (``campaign_contacts``, ``campaign_decisions``,
``campaign_runs`` in the system of record) beside history loaded into the lake
(``campaign_touches``), with the cases that decide a definition — a click seen before the
delivery, a history conversion without its earlier stages, a stage touched twice, a campaign
with a run *and* history (the run counts), a run that reached nobody, first touches either
side of a local month end, a storage-only customer, and a campaign id holding quotes and a
backslash. The oracle is DuckDB SQL over the stored rows, written from the definitions'
words (a contact is in a stage when it reached it or a later one), not from the compiler.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from caifu.adapters.sor.models import CONTRACT_TABLES, restricted_customers
from caifu.adapters.sor.scrm_models import campaign_contacts, campaign_decisions, campaign_runs
from caifu.api import create_app
from caifu.cli import app as cli
from caifu.core.errors import NotFoundError
from caifu.core.identity import Principal
from caifu.data.contracts.arrow import contract_schema
from caifu.data.contracts.tables import CAMPAIGN_TOUCHES
from caifu.pipelines.metrics import sqlexpr
from caifu.services.container import Container
from caifu.services.metrics.catalog import shipped
from caifu.services.metrics.query import answer, answers
from caifu.services.platform import users
from caifu.services.scrm.funnel import FUNNEL, RATE_METRICS, STAGE_METRICS, CampaignFunnel
from caifu.settings import Settings
from tests.serving import serving

T = CONTRACT_TABLES
STAGES = ("targeted", "sent", "delivered", "opened", "clicked", "converted")
# a campaign id with a backslash and quotes: pasted into ``campaign = '…'`` it would read
# ``campaign = 'EV\IL' OR 'a'='a'`` — every campaign
EVIL = "EV\\IL' OR 'a'='a"
OPS = Principal("acme", "campaign.test", "ops")
COMPLIANCE = Principal("acme", "campaign.test", "compliance")
ADVISOR = Principal("acme", "campaign.test", "advisor", advisor_id="TG1")
MANAGER = Principal("acme", "campaign.test", "branch_manager", branch_id="B2")
ALL = {"grain": "all", "start": dt.date(2000, 1, 1), "end": dt.date(2030, 12, 31)}
PASSWORD = "correct horse battery"
SECRET = "k3y-for-tests-only-0123456789abcdefghijklmnop"


def _at(day: str, hour: int = 2, minute: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, minute=minute)


# campaign → (channel, starts_on, spend, has a run)
CAMPAIGNS = {
    "LIVE1": ("mass_send", "2025-03-01", Decimal("1000.00"), True),
    "LIVE2": ("channel_qr", "2025-03-25", None, True),
    "BOTH": ("mass_send", "2024-06-01", None, True),  # run in caifu, and history in the lake
    "IDLE": ("mass_send", "2025-06-01", None, True),  # a run that reached nobody
    "HIST1": ("sms", "2024-04-01", Decimal("300.00"), False),
    "QUIET": ("sms", "2025-07-01", None, False),  # neither: not compared
    EVIL: ("mass_send", "2025-05-01", None, True),
}
# (campaign, customer, targeted at, {stage: at}, conversion kind)
LIVE1_AT = _at("2025-03-03")
CONTACTS: list[tuple[str, str, dt.datetime, dict[str, dt.datetime], str | None]] = [
    ("LIVE1", "C01", LIVE1_AT, dict.fromkeys(STAGES[1:], LIVE1_AT), "funded"),
    ("LIVE1", "C02", LIVE1_AT, {"sent": LIVE1_AT, "delivered": LIVE1_AT, "opened": LIVE1_AT},
     None),
    ("LIVE1", "C03", LIVE1_AT, {"sent": LIVE1_AT, "clicked": LIVE1_AT}, None),  # before the poll
    ("LIVE1", "C04", LIVE1_AT, {}, None),
    ("LIVE1", "C07", LIVE1_AT, {"sent": LIVE1_AT, "delivered": LIVE1_AT,
                                "converted": LIVE1_AT}, "product_bought"),
    ("LIVE1", "C08", LIVE1_AT, {}, None),
    ("LIVE1", "C09", LIVE1_AT, {"sent": LIVE1_AT}, None),
    # 17:30 UTC on 31 March is 1 April in Shanghai; 15:00 UTC is still 31 March
    ("LIVE2", "C05", _at("2025-03-31", 17, 30), {"sent": _at("2025-03-31", 17, 30),
                                                 "delivered": _at("2025-04-01"),
                                                 "converted": _at("2025-04-02")},
     "account_opened"),
    ("LIVE2", "C10", _at("2025-03-31", 17, 30), {"sent": _at("2025-03-31", 17, 30),
                                                 "delivered": _at("2025-04-01")}, None),
    ("LIVE2", "C11", _at("2025-03-31", 15), {"sent": _at("2025-03-31", 15)}, None),
    ("BOTH", "C06", _at("2025-02-10"), {"sent": _at("2025-02-10"),
                                        "delivered": _at("2025-02-10"),
                                        "opened": _at("2025-02-11")}, None),
    ("BOTH", "C12", _at("2025-02-10"), {"sent": _at("2025-02-10")}, None),
    (EVIL, "C01", _at("2025-05-02"), {"sent": _at("2025-05-02")}, None),
]
# (campaign, customer, outcome, rule)
DECISIONS = [
    ("LIVE1", "C01", "send", "OK"), ("LIVE1", "C02", "send", "OK"),
    ("LIVE1", "C03", "send", "OK"), ("LIVE1", "C04", "blocked", "LEVEL_MISMATCH"),
    ("LIVE1", "C07", "send", "OK"), ("LIVE1", "C08", "blocked", "NO_CONSENT"),
    ("LIVE1", "C09", "send", "OK"), ("LIVE1", "C10", "blocked", "LEVEL_MISMATCH"),
    ("LIVE2", "C05", "send", "OK"), ("LIVE2", "C10", "send", "OK"),
    ("LIVE2", "C11", "send", "OK"), ("BOTH", "C06", "send", "OK"),
    ("BOTH", "C12", "send", "OK"), (EVIL, "C01", "send", "OK"),
    (EVIL, "C02", "blocked", "FREQUENCY_CAP"),
]
# (campaign, customer, stage, touched at, cost)
TOUCHES = [
    *[("HIST1", "C01", s, _at("2024-04-01") + dt.timedelta(days=i), Decimal("2.00"))
      for i, s in enumerate(STAGES)],
    ("HIST1", "C02", "targeted", _at("2024-04-01"), Decimal("1.00")),
    ("HIST1", "C02", "sent", _at("2024-04-02"), Decimal("1.00")),
    ("HIST1", "C02", "sent", _at("2024-04-09"), Decimal("1.00")),  # sent twice
    ("HIST1", "C03", "targeted", _at("2024-04-01"), None),
    ("HIST1", "C03", "converted", _at("2024-04-20"), None),  # no touches in between
    ("HIST1", "C08", "targeted", _at("2024-04-03"), Decimal("1.00")),
    # 20:00 UTC on 30 April is 1 May in Shanghai
    ("HIST1", "C09", "targeted", _at("2024-04-30", 20), Decimal("1.00")),
    ("HIST1", "C09", "sent", _at("2024-05-01"), Decimal("1.00")),
    ("HIST1", "C09", "delivered", _at("2024-05-01"), Decimal("1.00")),
    # BOTH ran in caifu: its history does not count
    ("BOTH", "C06", "targeted", _at("2024-06-01"), Decimal("5.00")),
    ("BOTH", "C06", "sent", _at("2024-06-01"), Decimal("5.00")),
    ("BOTH", "C07", "targeted", _at("2024-06-01"), Decimal("5.00")),
]
ADVISORS = {"TG1": "B1", "TG2": "B2"}
# customers C01–C06: TG1 in B1; C07–C12: TG2 in B2; C12 is storage-only
CUSTOMERS = {f"C{i:02d}": "TG1" if i <= 6 else "TG2" for i in range(1, 13)}


def _seed(c: Container) -> None:
    created = _at("2025-01-01")
    with c.engine.begin() as conn:
        for branch in ("B1", "B2"):
            conn.execute(insert(T["branches"]).values(tenant_id="acme", branch_id=branch,
                                                      name=branch))
        for adv, branch in ADVISORS.items():
            conn.execute(insert(T["advisors"]).values(
                tenant_id="acme", advisor_id=adv, name=adv, branch_id=branch, status="active"))
        for cid, adv in CUSTOMERS.items():
            conn.execute(insert(T["customers"]).values(
                tenant_id="acme", customer_id=cid, name="客户", customer_type="individual",
                id_type="passport", id_number=f"E{cid}123", branch_id=ADVISORS[adv],
                advisor_id=adv, opened_on=dt.date(2024, 1, 2), channel="app",
                status="normal"))
        for cid, (channel, starts, spend, has_run) in CAMPAIGNS.items():
            conn.execute(insert(T["campaigns"]).values(
                tenant_id="acme", campaign_id=cid, name=f"活动 {cid}", channel=channel,
                goal="funded", starts_on=dt.date.fromisoformat(starts), spend=spend))
            if has_run:
                conn.execute(insert(campaign_runs).values(
                    tenant_id="acme", campaign_id=cid, status="sent", attribution_days=14,
                    rule_version="test", target_json='{"customers": 0}', created_by="test",
                    created_at=created, sent_at=created))
        for cid, customer, targeted, stages, kind in CONTACTS:
            conn.execute(insert(campaign_contacts).values(
                tenant_id="acme", campaign_id=cid, customer_id=customer, targeted_at=targeted,
                **{f"{s}_at": at for s, at in stages.items()}, conversion=kind))
        for cid, customer, outcome, rule in DECISIONS:
            conn.execute(insert(campaign_decisions).values(
                tenant_id="acme", campaign_id=cid, customer_id=customer, outcome=outcome,
                rule=rule, reasons_json="[]", rule_version="test", decided_at=created))
        conn.execute(insert(restricted_customers).values(
            tenant_id="acme", customer_id="C12", since=created, request_id="r1",
            legal_basis="test"))
    schema = contract_schema(CAMPAIGN_TOUCHES)
    rows = [{"touch_id": f"T{i:03d}", "campaign_id": cid, "customer_id": customer,
             "touched_at": at, "stage": stage, "cost": cost}
            for i, (cid, customer, stage, at, cost) in enumerate(TOUCHES)]
    data = pa.table({f.name: pa.array([r[f.name] for r in rows], f.type) for f in schema})
    data = data.append_column("_batch_id", pa.array(["test"] * len(rows), pa.string()))
    c.lake.append("acme", CAMPAIGN_TOUCHES, data, "test-campaign_touches")


@pytest.fixture
def ws(workspace: Container) -> Iterator[Container]:
    _seed(workspace)
    yield workspace


@pytest.fixture
def sql(ws: Container) -> Iterator[duckdb.DuckDBPyConnection]:
    """The oracle's DuckDB: the stored rows as they are, and the contacts the oracle sees
    (``contacts``: caifu's runs and the history of campaigns without one, each with how far
    down the funnel it got, 0 = targeted … 5 = converted)."""
    con = duckdb.connect()
    with ws.engine.connect() as conn:
        for name, table in (("sor_contacts", campaign_contacts),
                            ("sor_decisions", campaign_decisions), ("sor_runs", campaign_runs),
                            ("sor_customers", T["customers"]),
                            ("sor_restricted", restricted_customers)):
            result = conn.execute(select(table).where(table.c.tenant_id == "acme"))
            rows = [dict(r._mapping) for r in result]
            con.register(name, pa.Table.from_pylist(rows))
    files = [str(f) for f in ws.lake.files("acme", "campaign_touches")]
    con.read_parquet(files).create_view("touches")
    con.execute("""
        CREATE VIEW contacts AS
        SELECT campaign_id, customer_id, targeted_at AS first_at, 'live' AS source,
               CASE WHEN converted_at IS NOT NULL THEN 5 WHEN clicked_at IS NOT NULL THEN 4
                    WHEN opened_at IS NOT NULL THEN 3 WHEN delivered_at IS NOT NULL THEN 2
                    WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END AS depth
        FROM sor_contacts
        UNION ALL
        SELECT campaign_id, customer_id, min(touched_at), 'history',
               max(list_position(['targeted', 'sent', 'delivered', 'opened', 'clicked',
                                  'converted'], stage) - 1)
        FROM touches WHERE campaign_id NOT IN (SELECT campaign_id FROM sor_runs)
        GROUP BY campaign_id, customer_id""")
    yield con
    con.close()


def _stage_counts(sql: Any, who: str = "TRUE", source: str = "TRUE", by: str = "campaign_id"
                  ) -> dict[Any, dict[str, int]]:
    """Contacts reaching each stage, by ``by``, of customers ``who`` holds for."""
    out: dict[Any, dict[str, int]] = {}
    for row in sql.execute(f"""
            SELECT {by} AS k, {', '.join(f'count(*) FILTER (WHERE depth >= {i})'
                                          for i in range(6))}
            FROM contacts JOIN sor_customers USING (customer_id)
            WHERE ({who}) AND ({source})
              AND customer_id NOT IN (SELECT customer_id FROM sor_restricted)
            GROUP BY 1""").fetchall():
        out[row[0]] = dict(zip(STAGES, row[1:], strict=True))
    return out


def _rates(n: dict[str, int]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for prev, stage in zip(STAGES, STAGES[1:], strict=False):
        out[f"{stage}_rate"] = n[stage] / n[prev] if n[prev] else None
    out["conversion_rate"] = n["converted"] / n["targeted"] if n["targeted"] else None
    return out


def _by_campaign(a: Any) -> dict[Any, Any]:
    return {r["campaign"]: r["value"] for r in a.rows}


# --- the metrics ----------------------------------------------------------------------------


def test_stage_counts_of_runs_history_and_both_by_campaign(ws: Container, sql: Any) -> None:
    live = _stage_counts(sql, source="source = 'live'")
    history = _stage_counts(sql, source="source = 'history'")
    both = _stage_counts(sql)
    # the cases the definition turns on, written out: C03's click implies the delivery and
    # the open; HIST1's C03 converted with no touch between; C02's two sends count once
    assert live["LIVE1"] == {"targeted": 7, "sent": 5, "delivered": 4, "opened": 4,
                             "clicked": 3, "converted": 2}
    assert history["HIST1"] == {"targeted": 5, "sent": 4, "delivered": 3, "opened": 2,
                                "clicked": 2, "converted": 2}
    assert "BOTH" not in history and live["BOTH"]["targeted"] == 1  # C12 is storage-only
    got = answers(ws, OPS, [f"campaign_run_{s}" for s in STAGES]
                  + [f"campaign_history_{s}" for s in STAGES] + list(STAGE_METRICS.values()),
                  by=("campaign",), **ALL)
    by_name = {a.metric.name: _by_campaign(a) for a in got}
    for stage in STAGES:  # a campaign without a row has no contact in that stage
        assert by_name[f"campaign_run_{stage}"] == {
            k: v[stage] for k, v in live.items() if v[stage]}, stage
        assert by_name[f"campaign_history_{stage}"] == {
            k: v[stage] for k, v in history.items() if v[stage]}, stage
        assert by_name[STAGE_METRICS[stage]] == {
            k: v[stage] for k, v in both.items() if v[stage]}, stage
    assert by_name["campaign_targeted_customers"][EVIL] == 1
    assert "IDLE" not in by_name["campaign_targeted_customers"]


def test_stage_rates_divide_the_stage_before(ws: Container, sql: Any) -> None:
    counts = _stage_counts(sql)
    got = {a.metric.name: _by_campaign(a)
           for a in answers(ws, OPS, list(RATE_METRICS.values()), by=("campaign",), **ALL)}
    for cid, n in counts.items():
        for field, metric in RATE_METRICS.items():
            want = _rates(n)[field]
            value = got[metric].get(cid)
            assert (value is None) == (want is None), (cid, field)
            assert want is None or value == pytest.approx(want, rel=1e-12), (cid, field)
    # EVIL's one contact was sent and not delivered: a delivery rate of 0, and an open rate
    # with nothing to divide; LIVE2's C05 converted without a click seen: the click counts
    assert got["campaign_delivered_rate"][EVIL] == 0.0
    assert got["campaign_opened_rate"].get(EVIL) is None
    assert got["campaign_converted_rate"]["LIVE2"] == 1.0


def test_a_period_holds_the_contacts_first_touched_in_it_on_local_dates(ws: Container,
                                                                        sql: Any) -> None:
    expected: dict[tuple[Any, ...], Any] = {}
    for stage_i, stage in enumerate(STAGES):
        for month, n in sql.execute(f"""
                SELECT CAST(date_trunc('month', CAST(first_at + INTERVAL 8 HOUR AS DATE))
                            AS DATE), count(*)
                FROM contacts WHERE depth >= {stage_i}
                  AND customer_id NOT IN (SELECT customer_id FROM sor_restricted)
                GROUP BY 1""").fetchall():
            expected[(stage, month)] = n
    got = {}
    for a in answers(ws, OPS, list(STAGE_METRICS.values()), grain="month",
                     start=dt.date(2024, 1, 1), end=dt.date(2025, 12, 31)):
        stage = a.metric.name.removeprefix("campaign_").removesuffix("_customers")
        got |= {(stage, r["period"]): r["value"] for r in a.rows}
    assert got == expected
    # C05 and C10 (17:30 UTC on 31 March) count in April, C11 (15:00 UTC) in March;
    # HIST1's C09 (20:00 UTC on 30 April) in May
    assert expected[("targeted", dt.date(2025, 4, 1))] == 2
    assert expected[("targeted", dt.date(2025, 3, 1))] == 8
    assert expected[("targeted", dt.date(2024, 5, 1))] == 1


def test_conversions_by_kind_and_blocks_by_rule(ws: Container, sql: Any) -> None:
    kinds = {(r[0], r[1]): r[2] for r in sql.execute("""
        SELECT campaign_id, conversion, count(*) FROM sor_contacts
        WHERE converted_at IS NOT NULL
          AND customer_id NOT IN (SELECT customer_id FROM sor_restricted) GROUP BY 1, 2
        """).fetchall()}
    a = answer(ws, OPS, "campaign_run_converted", by=("campaign", "conversion_kind"), **ALL)
    assert {(r["campaign"], r["conversion_kind"]): r["value"] for r in a.rows} == kinds
    assert kinds == {("LIVE1", "funded"): 1, ("LIVE1", "product_bought"): 1,
                     ("LIVE2", "account_opened"): 1}
    blocked = {(r[0], r[1]): r[2] for r in sql.execute("""
        SELECT campaign_id, rule, count(*) FROM sor_decisions WHERE outcome = 'blocked'
          AND customer_id NOT IN (SELECT customer_id FROM sor_restricted) GROUP BY 1, 2
        """).fetchall()}
    a = answer(ws, OPS, "campaign_blocked_customers", by=("campaign", "gate_rule"), **ALL)
    assert {(r["campaign"], r["gate_rule"]): r["value"] for r in a.rows} == blocked
    assert blocked[("LIVE1", "LEVEL_MISMATCH")] == 2 and len(blocked) == 3


def test_cost_per_conversion_is_touch_cost_over_contacts_converted(ws: Container,
                                                                   sql: Any) -> None:
    cost = dict(sql.execute("SELECT campaign_id, sum(cost) FROM touches GROUP BY 1").fetchall())
    converted = {k: v["converted"] for k, v in _stage_counts(sql).items() if v["converted"]}
    a = answer(ws, OPS, "cost_per_conversion", by=("campaign",), **ALL)
    got = {k: v for k, v in _by_campaign(a).items() if v is not None}
    assert got == {k: pytest.approx(float(cost[k]) / n, rel=1e-12)
                   for k, n in converted.items() if cost.get(k) is not None}
    assert got["HIST1"] == pytest.approx(19.0 / 2)  # 12 + 3 + 0 + 1 + 3 over C01, C03


def test_scope_narrows_every_funnel_figure(ws: Container, sql: Any) -> None:
    """An advisor counts his customers' contacts, a branch manager his branch's, compliance
    also the storage-only customers' (nobody else does)."""
    for p, who in ((ADVISOR, "sor_customers.advisor_id = 'TG1'"),
                   (MANAGER, "sor_customers.branch_id = 'B2'")):
        counts = _stage_counts(sql, who=who)
        got = {a.metric.name: _by_campaign(a)
               for a in answers(ws, p, list(FUNNEL), by=("campaign",), **ALL)}
        for stage in STAGES:
            assert got[STAGE_METRICS[stage]] == {
                k: v[stage] for k, v in counts.items() if v[stage]}, (p.role, stage)
        for field, metric in RATE_METRICS.items():
            assert {k: v for k, v in got[metric].items() if v is not None} == {
                k: pytest.approx(_rates(n)[field]) for k, n in counts.items()
                if _rates(n)[field] is not None}, (p.role, field)
    assert _stage_counts(sql, who="sor_customers.advisor_id = 'TG1'")["LIVE1"]["targeted"] == 4
    everyone = _by_campaign(answer(ws, COMPLIANCE, "campaign_targeted_customers",
                                   by=("campaign",), **ALL))
    assert everyone["BOTH"] == 2  # C06 and the storage-only C12
    assert _by_campaign(answer(ws, OPS, "campaign_targeted_customers", by=("campaign",),
                               **ALL))["BOTH"] == 1


def test_a_quoted_campaign_id_stays_one_value() -> None:
    assert isinstance(sqlexpr.parse(f"campaign = '{EVIL}'", "test"), sqlexpr.exp.Or)  # naive
    for hostile in (EVIL, "x' OR '1'='1", "a\\' OR 1=1 --", "'", "\\", "活动'); DROP", "a\nb"):
        tree = sqlexpr.parse(f"campaign = {sqlexpr.literal(hostile)}", "test")
        assert [str(r) for r in sqlexpr.columns(tree)] == ["campaign"]
        assert tree.expression.this == hostile and tree.expression.is_string


# --- the surfaces ---------------------------------------------------------------------------


def _hashes(names: list[str]) -> list[dict[str, Any]]:
    cat = shipped()
    return [{"metric": n, "version": cat.metrics[n].version,
             "definition_hash": cat.definition_hash(n)} for n in names]


def test_the_funnel_of_one_campaign(ws: Container, sql: Any) -> None:
    counts = _stage_counts(sql)
    svc = CampaignFunnel(ws)
    f = svc.funnel(OPS, "LIVE1")
    assert {s: f["funnel"][s] for s in STAGES} == counts["LIVE1"]
    assert {k: f["funnel"][k] for k in _rates(counts["LIVE1"])} == {
        k: None if v is None else round(v, 4) for k, v in _rates(counts["LIVE1"]).items()}
    assert f["conversions"] == {"funded": 1, "product_bought": 1}
    assert f["blocked"] == {"LEVEL_MISMATCH": 2, "NO_CONSENT": 1}
    assert (f["name"], f["status"], f["attribution_days"]) == ("活动 LIVE1", "sent", 14)
    assert f["metrics"] == _hashes([*FUNNEL, "campaign_run_converted",
                                    "campaign_blocked_customers"])
    # the id is a value, never part of the condition: EVIL's own contact only
    evil = svc.funnel(OPS, EVIL)
    assert {s: evil["funnel"][s] for s in STAGES} == counts[EVIL]
    assert evil["funnel"]["targeted"] == 1 and evil["blocked"] == {"FREQUENCY_CAP": 1}
    idle = svc.funnel(OPS, "IDLE")["funnel"]
    assert [idle[s] for s in STAGES] == [0] * 6 and idle["sent_rate"] is None
    with pytest.raises(NotFoundError):
        svc.funnel(OPS, "HIST1")  # no run: nothing of caifu's to show
    with pytest.raises(NotFoundError):
        svc.funnel(OPS, "LIVE1' OR 'a'='a")


def test_the_comparison_of_every_campaign(ws: Container, sql: Any) -> None:
    counts = _stage_counts(sql)
    out = CampaignFunnel(ws).compare(OPS)
    rows = {r["campaign_id"]: r for r in out["items"]}
    assert set(rows) == {"LIVE1", "LIVE2", "BOTH", "IDLE", "HIST1", EVIL}
    assert out["total"] == 6 and out["metrics"] == _hashes(list(FUNNEL))
    for cid, row in rows.items():
        n = counts.get(cid, dict.fromkeys(STAGES, 0))
        assert {s: row[s] for s in STAGES} == n, cid
        assert {k: row[k] for k in _rates(n)} == {
            k: None if v is None else round(v, 4) for k, v in _rates(n).items()}, cid
    assert {cid: r["source"] for cid, r in rows.items()} == {
        "LIVE1": "live", "LIVE2": "live", "BOTH": "live", "IDLE": "live", EVIL: "live",
        "HIST1": "history"}
    assert rows["LIVE1"]["spend"] == 1000.0 and rows["HIST1"]["channel"] == "sms"
    assert [r["campaign_id"] for r in out["items"]][:2] == ["IDLE", EVIL]  # newest first


def test_the_api_shows_the_governed_figures_to_tenant_wide_roles(ws: Container,
                                                                 sql: Any) -> None:
    counts = _stage_counts(sql)
    for user, role, extra in (("acme.ops", "ops", {}), ("acme.adv", "advisor",
                                                         {"advisor_id": "TG1"}),
                              ("acme.bm", "branch_manager", {"branch_id": "B2"})):
        users.add_user(ws, user, role, PASSWORD, tenant="acme", **extra)
    with serving(create_app(Settings(secret_key=SECRET, run_jobs=False, run_events=False),
                            ws)) as http:
        def login(user: str) -> dict[str, str]:
            r = http.post("/v1/auth/login", json={"user_id": user, "password": PASSWORD})
            return {"Authorization": f"Bearer {r.json()['token']}"}

        ops = login("acme.ops")
        r = http.get("/v1/campaigns/LIVE1/funnel", headers=ops)
        assert r.status_code == 200, r.text
        body = r.json()
        assert {s: body["funnel"][s] for s in STAGES} == counts["LIVE1"]
        assert body["conversions"] == {"funded": 1, "product_bought": 1}
        assert body["metrics"] == _hashes([*FUNNEL, "campaign_run_converted",
                                           "campaign_blocked_customers"])
        r = http.get("/v1/campaigns/compare", headers=ops)
        assert r.status_code == 200
        rows = {x["campaign_id"]: x for x in r.json()["items"]}
        assert {s: rows["HIST1"][s] for s in STAGES} == counts["HIST1"]
        assert r.json()["metrics"] == _hashes(list(FUNNEL))
        # a quote in the path is refused before anything runs; an unknown id is 404
        assert http.get("/v1/campaigns/LIVE1'%20OR%20'a'='a/funnel",
                        headers=ops).status_code == 422
        assert http.get("/v1/campaigns/NOPE/funnel", headers=ops).status_code == 404
        # advisors and branch managers see their scope's funnel figures through the metric
        # API (above: the same metrics); the campaign pages stay with tenant-wide roles
        for user in ("acme.adv", "acme.bm"):
            h = login(user)
            assert http.get("/v1/campaigns/LIVE1/funnel", headers=h).status_code == 403
            assert http.get("/v1/campaigns/compare", headers=h).status_code == 403
        adv = login("acme.adv")
        r = http.get("/v1/metrics/campaign_sent_customers", headers=adv, params={
            "by": "campaign", "grain": "all", "from": "2000-01-01", "to": "2030-12-31"})
        assert r.status_code == 200, r.text
        mine = _stage_counts(sql, who="sor_customers.advisor_id = 'TG1'")
        assert {x["campaign"]: x["value"] for x in r.json()["rows"]} == {
            k: v["sent"] for k, v in mine.items() if v["sent"]}
        assert r.json()["scope"] == "advisor TG1"


def test_the_cli_prints_the_figures_and_their_metrics(ws: Container, sql: Any) -> None:
    counts = _stage_counts(sql)
    out = CliRunner().invoke(cli, ["campaign", "funnel", "LIVE1", "-t", "acme", "-w",
                                   str(ws.root)], env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in out.output.splitlines() if line.count("│") >= 4}
    names = {"targeted": "目标", "sent": "发送", "delivered": "送达", "opened": "打开",
             "clicked": "点击", "converted": "转化"}
    assert {s: int(lines[names[s]][0]) for s in STAGES} == counts["LIVE1"]
    assert "转化 funded 1、product_bought 1" in out.output
    assert "拦截 LEVEL_MISMATCH 2、NO_CONSENT 1" in out.output
    cat = shipped()
    for name in (*FUNNEL, "campaign_blocked_customers"):
        assert f"{name} v{cat.metrics[name].version} {cat.definition_hash(name)}" in out.output
    out = CliRunner().invoke(cli, ["campaign", "compare", "-t", "acme", "-w", str(ws.root)],
                             env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.output.splitlines() if line.count("│") >= 10}
    assert [int(v) for v in rows["HIST1"][3:9]] == [counts["HIST1"][s] for s in STAGES]
    assert rows["HIST1"][2] == "历史" and rows["LIVE1"][2] == "实时"
    assert "campaign_conversion v2" in out.output
