"""Metric definitions: the shipped catalog's promises, and a clear error for each way a metric
file can be wrong (which file, which metric, which field, what to write instead)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from caifu.core.errors import ConfigError
from caifu.data.contracts import registry
from caifu.pipelines.metrics import sqlexpr
from caifu.pipelines.metrics.spec import build_catalog
from caifu.services.metrics.catalog import shipped, shipped_documents

STABLE_IDS = ("customers_total new_accounts funded_accounts active_traders aum net_inflow "
              "fund_sales fund_redemptions commission_revenue chinext_conversion "
              "wecom_follows campaign_conversion").split()


def test_the_shipped_catalog_declares_the_kpis_the_issue_names() -> None:
    cat = shipped()
    assert len(cat.metrics) >= 40
    assert set(STABLE_IDS) <= set(cat.metrics)
    for m in cat.metrics.values():
        assert m.owner and m.version >= 1
        assert m.label.get("zh") and m.label.get("en"), m.name
        assert m.description.get("zh") and m.description.get("en"), m.name
        assert cat.level(m) in (1, 2, 3, 4)
        assert len(cat.definition_hash(m.name)) == 16


def test_levels_follow_the_columns_read() -> None:
    cat = shipped()
    # trades.amount is level 3 (a customer's financial detail); opening dates are level 2;
    # ingest batch counts are level 1
    assert cat.level(cat.metric("turnover")) == 3
    assert cat.level(cat.metric("new_customers")) == 2
    assert cat.level(cat.metric("quarantine_rate")) == 1
    assert cat.level(cat.metric("commission_rate")) == 3  # derived: its parts' highest
    assert ("trades", "fee") in cat.columns_read(cat.metric("commission_rate"))


def test_the_hash_changes_with_the_meaning_and_only_with_it() -> None:
    docs = [(o, copy.deepcopy(d)) for o, d in shipped_documents()]
    before = build_catalog(docs, registry())
    for _, doc in docs:
        for m in doc.get("metrics") or []:
            if m["name"] == "turnover":
                m["filter"] = "side = 'B'"
    after = build_catalog(docs, registry())
    assert before.definition_hash("turnover") != after.definition_hash("turnover")
    # a derived metric's hash follows its parts'
    assert before.definition_hash("commission_rate") != after.definition_hash("commission_rate")
    assert before.definition_hash("aum") == after.definition_hash("aum")


BASE: dict[str, Any] = {"datasets": [{"name": "trades", "time": "trade_date"},
                                     {"name": "customers", "time": "opened_on"},
                                     {"name": "securities"}]}


def one(**kw: Any) -> dict[str, Any]:
    m = {"name": "m1", "version": 1, "owner": "o", "label": {"en": "M"},
         "description": {"en": "M"}, "dataset": "trades", "measure": "SUM(amount)"}
    m.update(kw)
    return {k: v for k, v in m.items() if v is not None}


def build(*metrics: dict[str, Any], base: dict[str, Any] | None = None) -> Any:
    return build_catalog([("base.yaml", base or BASE),
                          ("m.yaml", {"metrics": list(metrics)})], registry())


@pytest.mark.parametrize(("kw", "message"), [
    ({"measure": "SUM(amout)"}, "m.yaml: metric m1: measure: trades has no column 'amout'; "
                                "did you mean amount?"),
    ({"measure": "amount"}, "measure must aggregate every column"),
    ({"measure": "SUM(amount) + fee"}, "measure must aggregate every column"),
    ({"measure": "SUM(SUM(amount))"}, "aggregate inside an aggregate"),
    ({"measure": "STDDEV(amount)"}, "is not part of the metric language"),
    ({"measure": "MEDIAN(amount)"}, None),
    ({"measure": "SUM(amount) FROM x"}, "cannot read"),
    ({"filter": "SUM(amount) > 0"}, "a filter is on rows"),
    ({"filter": "securities.board = 'star'"}, None),  # reachable through a reference: fine
    ({"filter": "funds.x = 1"}, "'funds' is not a dataset"),
    ({"dataset": "nope"}, "dataset 'nope' is not a dataset"),
    ({"version": 0}, "version is a whole number"),
    ({"owner": ""}, "owner (who answers for the figure) is required"),
    ({"label": "x"}, None),  # one language is allowed: it is English
    ({"label": {"zh": ""}}, "label: give text per language"),
    ({"kind": "ratio"}, "kind is one of simple, stock, derived"),
    ({"format": "percent"}, "format is one of"),
    ({"time": "channel"}, "time 'channel' is not a date or timestamp column of trades"),
    ({"valid_from": "trade_date"}, "valid_from is for stock metrics"),
    ({"unknown": 1}, "unknown field(s) unknown"),
    ({"name": "M-1"}, "metric name 'M-1'"),
    ({"kind": "stock"}, "a stock metric needs valid_from"),
    ({"kind": "derived"}, "a derived metric has expr only, not dataset"),
])
def test_a_bad_metric_says_where_and_why(kw: dict[str, Any], message: str | None) -> None:
    if message is None:
        build(one(**kw))
        return
    with pytest.raises(ConfigError) as e:
        build(one(**kw))
    assert message in str(e.value)


def test_derived_metrics_name_metrics_without_cycles() -> None:
    a = one(name="aa")
    with pytest.raises(ConfigError, match="uses 'zzz', which is not a metric"):
        build(a, {**one(name="bb"), "dataset": None, "measure": None, "kind": "derived",
                  "expr": "aa / zzz"} | {})
    d1 = {k: v for k, v in one(name="d1", kind="derived", expr="d2 + aa").items()
          if k not in ("dataset", "measure")}
    d2 = {k: v for k, v in one(name="d2", kind="derived", expr="d1").items()
          if k not in ("dataset", "measure")}
    with pytest.raises(ConfigError, match="metric cycle: d1 → d2 → d1"):
        build(a, d1, d2)
    with pytest.raises(ConfigError, match="declared twice"):
        build(a, one(name="aa"))


def test_a_tenant_cannot_redefine_a_shipped_metric() -> None:
    docs = [*shipped_documents(), ("acme/mine.yaml", {"metrics": [
        one(name="turnover", measure="SUM(fee)")]})]
    with pytest.raises(ConfigError, match="acme/mine.yaml: metric 'turnover': a shipped "
                                          "metric; give it a new id"):
        build_catalog(docs, registry(), shipped=frozenset(shipped().metrics))
    ok = build_catalog([*shipped_documents(), ("acme/mine.yaml", {"metrics": [
        one(name="stamp_duty_share", measure="SUM(fee) / SUM(amount)")]})], registry(),
        shipped=frozenset(shipped().metrics))
    assert "stamp_duty_share" in ok.metrics and len(ok.metrics) == len(shipped().metrics) + 1


def test_datasets_and_dimensions_are_checked() -> None:
    with pytest.raises(ConfigError, match="source 'nope' is no contract table"):
        build(base={"datasets": [{"name": "xx", "source": "nope"}]})
    with pytest.raises(ConfigError, match="a sor table needs its key"):
        build(base={"datasets": [{"name": "xx", "source": "sor:ingest_log",
                                  "columns": {"a": {"type": "int", "level": 1}}}]})
    with pytest.raises(ConfigError, match="column a: level is a JR/T 0158 level"):
        build(base={"datasets": [{"name": "xx", "source": "sor:ingest_log", "key": ["a"],
                                  "columns": {"a": {"type": "int", "level": 7}}}]})
    with pytest.raises(ConfigError, match="a dimension is a row value, not an aggregate"):
        build(base={**BASE, "dimensions": [{"name": "dd", "dataset": "trades",
                                            "expr": "COUNT(*)", "label": "D"}]})
    with pytest.raises(ConfigError, match="to_columns must be customers's key"):
        build(base={**BASE, "relationships": [{
            "name": "rr", "from": "trades", "to": "customers", "from_columns": ["channel"],
            "to_columns": ["channel"]}]})


def test_the_expression_language_reads_what_it_names() -> None:
    tree = sqlexpr.parse("SUM(CASE WHEN t.side = 'B' THEN amount END) / COUNT(DISTINCT x)", "w")
    assert [str(r) for r in sqlexpr.columns(tree)] == ["x", "t.side", "amount"] or \
        {str(r) for r in sqlexpr.columns(tree)} == {"x", "t.side", "amount"}
    assert sqlexpr.is_aggregate(tree) and sqlexpr.aggregates_everything(tree)
    with pytest.raises(ConfigError, match="w: an expression is required"):
        sqlexpr.parse("  ", "w")
    with pytest.raises(ConfigError, match=r"CAST to \w+ is not supported; one of BIGINT, DATE"):
        sqlexpr.parse("CAST(x AS VARCHAR)", "w")


def test_a_grouped_dataset_may_come_before_its_table_in_the_files() -> None:
    # the files are read in name order: campaigns.yaml groups campaign_touches, which
    # datasets.yaml declares; a grouped dataset's base must still exist somewhere
    grouped = {"datasets": [{"name": "first_buys", "from": "trades", "group_by": ["customer_id"],
                             "aggregates": {"first_buy": "MIN(trade_date)"},
                             "time": "first_buy"}]}
    cat = build_catalog([("a.yaml", grouped), ("b.yaml", BASE)], registry())
    assert cat.datasets["first_buys"].base == "trades"
    with pytest.raises(ConfigError, match="from 'nope' is not a table dataset"):
        build_catalog([("a.yaml", {"datasets": [{**grouped["datasets"][0], "from": "nope"}]}),
                       ("b.yaml", BASE)], registry())
