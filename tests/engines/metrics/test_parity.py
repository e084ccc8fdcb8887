"""DuckDB = Spark for every shipped metric (issue 17, goal "identical results, one
parametrised test").

The demo broker's tables are read from its workspace once (as Arrow), then put on a DuckDB
session and on the Spark session once per module; every case compiles the metric with
``pipelines.metrics.compile.query`` and runs it on both — on Spark a dozen cases per job
(``_stacked``: a job costs about a second whatever its size). Money, counts, dates and strings
must be identical; floats (ratios, averages) agree to 1e-9 relative, because engines sum in
different orders.

The operational (``sor:``) tables and the lake tables of builds the metrics read are empty or
dated "now" in a freshly ingested workspace (no build, card build, lifecycle run, group plan,
compliance scan or group sync; ingest batches are stamped with the wall clock), so the module
fills them with rows derived from the demo's own tables, inside the demo's range: every metric
then has rows to compare.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from caifu.adapters.engines.session import DuckDBSession, EngineSession, SparkSession
from caifu.pipelines.metrics import compile as mc
from caifu.pipelines.metrics.spec import Catalog
from caifu.services.metrics.catalog import shipped
from caifu.services.metrics.query import Tables
from caifu.services.profiles.lifecycle import Lifecycle
from caifu.services.value.customer_value import CustomerValue
from caifu.services.value.redemption import RedemptionAnalysis
from caifu.settings import Settings
from tests.conftest import Broker

pytestmark = [pytest.mark.slow, pytest.mark.spark]

START, END = dt.date(2024, 10, 1), dt.date(2026, 10, 31)  # the demo's range


def _catalog() -> Catalog:
    return shipped()


def _cut(i: int, reachable: list[str]) -> tuple[str, ...]:
    """One or two dimensions a metric's data reaches, rotating through the list so that the
    cases together use near-hops (branch) and far ones (province, board, fund type)."""
    if not reachable:
        return ()
    first = reachable[i % len(reachable)]
    second = reachable[(i + 3) % len(reachable)]
    return (first, second) if i % 2 == 0 and second != first else (first,)


def _cases() -> list[Any]:
    cat = _catalog()
    out = []
    # one query per metric, cut when it can be (a cut runs the uncut query's every step and
    # a join more); Spark costs about a second a query, so no second, uncut run
    for i, (name, m) in enumerate(cat.metrics.items()):
        by = _cut(i, cat.dimensions_of(m))
        out.append(pytest.param(name, by, "month",
                                id=f"{name}-by-{'-'.join(by)}" if by else f"{name}-total"))
    return out


EXTRA = [
    pytest.param("turnover", ("branch",), "all", id="turnover-by-branch-all"),
    pytest.param("chinext_conversion", (), "all", id="chinext_conversion-all"),
    pytest.param("customers_total", ("branch",), "quarter", id="customers_total-by-branch-quarter"),
    pytest.param("wecom_contacts", (), "quarter", id="wecom_contacts-quarter"),
    pytest.param("aum", ("province",), "week", id="aum-by-province-week"),
    pytest.param("net_inflow", ("cash_method",), "day", id="net_inflow-by-cash_method-day"),
    pytest.param("campaign_conversion", ("campaign",), "all", id="campaign_conversion-by-campaign-all"),
]


# --- the inputs, read once -----------------------------------------------------------------


def _sor_rows(data: dict[str, pa.Table]) -> None:
    """Rows for the operational tables, derived from the demo's tables, in its range."""
    customers = data["customers"].to_pylist()
    stages = ["prospect", "onboarding", "active", "dormant", "churn_risk"]
    cards = [{"customer_id": c["customer_id"], "as_of": as_of,
              "lifecycle_stage": stages[(i + k) % len(stages)]}
             for i, c in enumerate(customers)
             for k, as_of in enumerate((dt.date(2025, 3, 31), dt.date(2025, 12, 31),
                                        dt.date(2026, 9, 30)))
             if c["opened_on"] <= as_of and i % 4 != k]
    data["sor:customer_cards"] = pa.Table.from_pylist(
        cards, schema=data["sor:customer_cards"].schema)

    messages = data["chat_messages"].to_pylist()
    categories = ["guarantee", "return_promise", "off_platform", "insider"]
    flags = [{"flag_id": f"F{i:05d}", "msg_time": msg["msg_time"],
              "advisor_id": msg["advisor_id"], "customer_id": msg["customer_id"],
              "sender": msg["sender"], "category": categories[i % len(categories)],
              "action": "alert" if i % 3 == 0 else "review",
              "source": "model" if i % 2 else "lexicon",
              "status": ["open", "confirmed", "dismissed"][i % 3]}
             for i, msg in enumerate(messages) if i % 5 == 0]
    data["sor:chat_compliance_flags"] = pa.Table.from_pylist(
        flags, schema=data["sor:chat_compliance_flags"].schema)

    follows = data["wecom_follows"].to_pylist()
    members = [{"chat_id": f"wr{i % 12:03d}", "member_id": f["external_userid"],
                "member_type": "external" if i % 7 else "internal",
                "joined_at": f["added_at"], "left_at": f["removed_at"]}
               for i, f in enumerate(follows) if f["external_userid"]]
    data["sor:wecom_group_members"] = pa.Table.from_pylist(
        members, schema=data["sor:wecom_group_members"].schema)

    _campaign_runs(data)
    # tags (some lapse), segment members and lifecycle stages and flows at a few build
    # dates, preference-group plans
    tags = ["dormant", "high_net_worth", "interest_chinext", "intent_redeem"]
    assigned = [{"customer_id": c["customer_id"], "tag_id": tags[(i + k) % len(tags)],
                 "gained_at": dt.datetime.combine(c["opened_on"], dt.time(17, 30))
                 + dt.timedelta(days=40 * k + i % 90),
                 "expires_at": None if (i + k) % 3 else dt.datetime.combine(
                     c["opened_on"], dt.time(16)) + dt.timedelta(days=150 + 20 * k)}
                for i, c in enumerate(customers) for k in range(i % 3)]
    data["sor:tag_assignments"] = pa.Table.from_pylist(
        assigned, schema=data["sor:tag_assignments"].schema)
    builds = (dt.date(2025, 3, 31), dt.date(2025, 12, 31), dt.date(2026, 9, 29),
              dt.date(2026, 9, 30))
    members = [{"as_of": as_of, "segment_id": ["rich", "sleepers", "leads"][(i + k) % 3],
                "customer_id": c["customer_id"]}
               for i, c in enumerate(customers) for k, as_of in enumerate(builds)
               if c["opened_on"] <= as_of and (i + k) % 5 != 0]
    data["lake:segment_members"] = pa.Table.from_pylist(
        members, schema=data["lake:segment_members"].schema)
    staged = [{"as_of": as_of, "customer_id": c["customer_id"],
               "stage": stages[(i * 7 + k) % len(stages)]}
              for i, c in enumerate(customers) for k, as_of in enumerate(builds)
              if c["opened_on"] <= as_of]
    data["lake:lifecycle_stages"] = pa.Table.from_pylist(
        staged, schema=data["lake:lifecycle_stages"].schema)
    flows = [{"as_of": r["as_of"], "customer_id": r["customer_id"],
              "from_date": r["as_of"] - dt.timedelta(days=91),
              "from_stage": "new" if i % 6 == 0 else stages[i % len(stages)],
              "to_stage": r["stage"]} for i, r in enumerate(staged)]
    data["lake:lifecycle_flows"] = pa.Table.from_pylist(
        flows, schema=data["lake:lifecycle_flows"].schema)
    plans = [{"group_id": ["new_energy", "sse50_etf", "fund_sip"][i % 3],
              "customer_id": c["customer_id"],
              "status": ["member", "invite", "left", "excluded"][i % 4],
              "updated_at": dt.datetime(2025, 1, 1, 2) + dt.timedelta(days=3 * (i % 200))}
             for i, c in enumerate(customers) if i % 2 == 0]
    data["sor:preference_group_members"] = pa.Table.from_pylist(
        plans, schema=data["sor:preference_group_members"].schema)

    tables = sorted({t for t in data if not t.startswith("sor:")})
    batches = []
    for i in range(240):  # ten batches a month
        rows_in = 1_000 + 37 * i
        quarantined = (i * 13) % 29
        batches.append({"batch_id": f"B{i:04d}", "table_name": tables[i % len(tables)],
                        "status": "failed" if i % 17 == 0 else "committed",
                        "rows_in": rows_in, "loaded": rows_in - quarantined,
                        "quarantined": quarantined, "duplicates": i % 3,
                        "started_at": dt.datetime(2024, 10, 1, 1, 30)
                        + dt.timedelta(hours=73 * i)})
    data["sor:ingest_log"] = pa.Table.from_pylist(batches,
                                                  schema=data["sor:ingest_log"].schema)


def _campaign_runs(data: dict[str, pa.Table]) -> None:
    """Runs in caifu for every other campaign of the demo's history, their contacts made
    from its touches (a stage time per stage touched; every fifth contact's delivery
    unseen, so a later stage implies it) and the gate's decisions: the funnel metrics then
    read both sources, and the history of a campaign with a run is left out."""
    touches = data["campaign_touches"].to_pylist()
    ran = sorted({t["campaign_id"] for t in touches})[::2]
    contacts: dict[tuple[str, str], dict[str, Any]] = {}
    for t in sorted(touches, key=lambda t: t["touched_at"]):
        if t["campaign_id"] not in ran:
            continue
        row = contacts.setdefault((t["campaign_id"], t["customer_id"]), {
            "campaign_id": t["campaign_id"], "customer_id": t["customer_id"],
            "targeted_at": t["touched_at"]})
        row.setdefault(f"{t['stage']}_at", t["touched_at"])
    kinds = ["funded", "product_bought", "account_opened"]
    for i, row in enumerate(contacts.values()):
        if i % 5 == 0:
            row.pop("delivered_at", None)
        if row.get("converted_at"):
            row["conversion"] = kinds[i % len(kinds)]
    rules = ["LEVEL_MISMATCH", "NO_CONSENT", "FREQUENCY_CAP", "NOT_REACHABLE"]
    decisions = [{"campaign_id": r["campaign_id"], "customer_id": r["customer_id"],
                  "outcome": "send" if r.get("sent_at") else "blocked",
                  "rule": "OK" if r.get("sent_at") else rules[i % len(rules)],
                  "decided_at": r["targeted_at"]} for i, r in enumerate(contacts.values())]
    for name, rows in (("sor:campaign_contacts", list(contacts.values())),
                       ("sor:campaign_decisions", decisions),
                       ("sor:campaign_runs", [{"campaign_id": c} for c in ran])):
        data[name] = pa.Table.from_pylist(rows, schema=data[name].schema)


@pytest.fixture(scope="module")
def inputs(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, pa.Table]:
    base = tmp_path_factory.mktemp("metrics-parity")
    c = small_broker.copy(base / "ws", Settings(duckdb_memory_limit="1GB"))
    # the runs whose lake tables metrics read: the value run (lake:customer_value and its
    # payback view), a lifecycle run (lake:lifecycle_stages) and a fund-redemption study of a
    # redemption wave (lake:redemption_study_holdings, lake:redemption_study_redemptions)
    value = CustomerValue(c).run("acme")
    Lifecycle(c).run("acme", value.as_of)
    RedemptionAnalysis(c).run("acme", dt.date(2026, 5, 6), dt.date(2026, 6, 17))
    s = DuckDBSession(base / "read", "1GB", 2)
    try:
        tables = Tables(c, s, "acme", _catalog())
        data = {source: s.to_arrow(tables[source]) for source in tables}
    finally:
        s.close()
        c.close()
    _sor_rows(data)
    _unknown_ages(data)
    return data


def _unknown_ages(data: dict[str, pa.Table]) -> None:
    """The demo's fund holdings all begin inside its history, so no redemption is of unknown
    age (shares held since before the history): every fifth redemption of the study is made
    one, so study_unknown_age_redemptions has rows to compare."""
    t = data["lake:redemption_study_redemptions"]
    days = t["holding_days"].to_pylist()
    i = t.column_names.index("holding_days")
    data["lake:redemption_study_redemptions"] = t.set_column(i, "holding_days", pa.array(
        [None if k % 5 == 0 else d for k, d in enumerate(days)], pa.float64()))


def _load(s: EngineSession, data: dict[str, pa.Table]) -> dict[str, Any]:
    return {source: s.from_arrow("mp_" + source.replace(":", "_"), t)
            for source, t in data.items()}


@pytest.fixture(scope="module")
def on_duckdb(inputs: dict[str, pa.Table], tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[EngineSession, dict[str, Any]]]:
    s = DuckDBSession(tmp_path_factory.mktemp("metrics-duck"), "1GB", 2)
    yield s, _load(s, inputs)
    s.close()


@pytest.fixture(scope="module")
def on_spark(inputs: dict[str, pa.Table], spark_session: SparkSession
             ) -> Iterator[tuple[EngineSession, dict[str, Any]]]:
    # the process's Spark (spark_session skips when there is none), under a view prefix of
    # this module's own: another module's engine fixture closing its views leaves these
    s = SparkSession("local[2]")
    tables = _load(s, inputs)
    for source in inputs:  # one read of the Arrow data, not one per query
        s.spark.catalog.cacheTable(s.prefix + "mp_" + source.replace(":", "_"))
    yield s, tables
    s.close()


# --- comparing -----------------------------------------------------------------------------


def _run(s: EngineSession, tables: dict[str, Any], metric: str, by: tuple[str, ...],
         grain: str) -> list[dict[str, Any]]:
    q = mc.Query(metric, START, END, by, grain, 8)
    return _sorted(s.to_arrow(mc.query(_catalog(), q, tables)).to_pylist(), by)


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(a) == Decimal(b)
    return type(a) is type(b) and a == b


SEP, MISSING = "\x1f", "\x00"
CHUNK = 12  # queries per Spark job


def _stacked(s: EngineSession, tables: dict[str, Any], cases: list[tuple[str, tuple[str, ...], str]]
             ) -> dict[tuple[str, tuple[str, ...], str], list[dict[str, Any]]]:
    """Every case's rows from a few Spark jobs instead of one job per query (a Spark job costs
    about a second whatever its size): each query's rows are put in one shape — its dimensions
    joined into a string, an exact value as text and a float as a float — and a dozen queries
    run as one UNION ALL."""
    import ibis

    parts = []
    for i, (metric, by, grain) in enumerate(cases):
        t = mc.query(_catalog(), mc.Query(metric, START, END, by, grain, 8), tables)
        is_float = t.schema()["value"].is_floating()
        dims = ibis.literal("") if not by else ibis.literal(SEP).join(
            [t[d].cast("string").fill_null(MISSING) for d in by])
        parts.append(t.select(
            case=ibis.literal(i, "int64"), period=t["period"], dims=dims,  # int8 stops at 127
            value_s=ibis.null().cast("string") if is_float else t["value"].cast("string"),
            value_f=t["value"].cast("float64") if is_float else ibis.null().cast("float64"),
            customers=t["customers"].cast("int64")))
    out: dict[tuple[str, tuple[str, ...], str], list[dict[str, Any]]] = {c: [] for c in cases}
    for start in range(0, len(parts), CHUNK):
        for r in s.to_arrow(ibis.union(*parts[start:start + CHUNK], distinct=False)).to_pylist():
            metric, by, grain = cases[r["case"]]
            values = r["dims"].split(SEP) if by else []
            row = {"period": r["period"],
                   **{d: None if v == MISSING else v for d, v in zip(by, values, strict=True)},
                   "value": r["value_f"] if r["value_s"] is None else r["value_s"],
                   "customers": r["customers"]}
            out[(metric, by, grain)].append(row)
    return out


@pytest.fixture(scope="module")
def spark_rows(on_spark: tuple[EngineSession, Any]
               ) -> dict[tuple[str, tuple[str, ...], str], list[dict[str, Any]]]:
    cases = [tuple(p.values) for p in (*_cases(), *EXTRA)]
    return _stacked(*on_spark, cases)  # type: ignore[arg-type]


def _sorted(rows: list[dict[str, Any]], by: tuple[str, ...]) -> list[dict[str, Any]]:
    keys = ["period", *by]
    return sorted(rows, key=lambda r: tuple((r[k] is None, r[k] or "") if k != "period"
                                            else (False, r[k]) for k in keys))


def _typed(got: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """A stacked Spark row's value back in the type DuckDB's has (text → Decimal or int), and
    a date dimension (joined into the dimensions' text) back to a date."""
    v, w = got["value"], want["value"]
    if isinstance(v, str) and isinstance(w, Decimal):
        v = Decimal(v)
    elif isinstance(v, str) and isinstance(w, int):
        v = int(v)
    dates = {k: dt.date.fromisoformat(x) for k, x in got.items() if k not in ("period", "value")
             and isinstance(x, str) and isinstance(want.get(k), dt.date)}
    return {**got, **dates, "value": v}


def _check(metric: str, by: tuple[str, ...], grain: str, duck: tuple[EngineSession, Any],
           spark_rows: dict[tuple[str, tuple[str, ...], str], list[dict[str, Any]]]
           ) -> list[dict[str, Any]]:
    want = _run(*duck, metric, by, grain)
    got = _sorted(spark_rows[(metric, by, grain)], by)
    got = [_typed(g, w) for g, w in zip(got, want, strict=False)] + got[len(want):]
    assert len(got) == len(want), (metric, len(got), len(want))
    bad = []
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w) == ["period", *by, "value", "customers"]
        for k in w:
            if k == "value" and isinstance(w[k], float) != isinstance(g[k], float) \
                    and None not in (w[k], g[k]):
                bad.append((k, "type", w, g))  # a ratio exact on one engine, float on the other
            elif not _same(g[k], w[k]):
                bad.append((k, w, g))
    assert not bad, (metric, by, grain, bad[:3])
    return want


@pytest.mark.parametrize(("metric", "by", "grain"), _cases())
def test_metric_same_on_spark(metric: str, by: tuple[str, ...], grain: str,
                              on_duckdb: tuple[EngineSession, Any],
                              spark_rows: dict[Any, list[dict[str, Any]]]) -> None:
    rows = _check(metric, by, grain, on_duckdb, spark_rows)
    # every metric has figures to compare on the demo (with the filled operational tables)
    assert rows, f"{metric} has no rows on the demo: the comparison would prove nothing"
    assert all(r["period"].day == 1 and START <= r["period"] <= END for r in rows)


@pytest.mark.parametrize(("metric", "by", "grain"), EXTRA)
def test_grains_same_on_spark(metric: str, by: tuple[str, ...], grain: str,
                              on_duckdb: tuple[EngineSession, Any],
                              spark_rows: dict[Any, list[dict[str, Any]]]) -> None:
    rows = _check(metric, by, grain, on_duckdb, spark_rows)
    assert rows
    periods = {r["period"] for r in rows}
    if grain == "all":
        assert periods == {START}
    elif grain == "quarter":
        assert periods == {p for p, _, _ in mc.periods(START, END, "quarter")}  # stock: all


def test_scope_same_on_spark(on_duckdb: tuple[EngineSession, Any],
                             on_spark: tuple[EngineSession, Any],
                             inputs: dict[str, pa.Table]) -> None:
    """An advisor-like scope (keep some customers, drop a few) narrows both engines alike."""
    ids = sorted(inputs["customers"]["customer_id"].to_pylist())
    keep, drop = ids[::3], ids[::7]
    answers = []
    for s, tables in (on_duckdb, on_spark):
        scope = mc.Scope(keep=s.from_arrow("mp_keep", pa.table({"customer_id": keep})),
                         drop=s.from_arrow("mp_drop", pa.table({"customer_id": drop})))
        q = mc.Query("aum", START, END, ("branch",), "month", 8)
        rows = s.to_arrow(mc.query(_catalog(), q, tables, scope)).to_pylist()
        answers.append(sorted(rows, key=lambda r: (r["period"], r["branch"] or "")))
    assert answers[0] == answers[1]
    assert answers[0]
    everyone = _run(*on_duckdb, "aum", ("branch",), "month")
    assert sum(r["customers"] for r in answers[0]) < sum(r["customers"] for r in everyone)
