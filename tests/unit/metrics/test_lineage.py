"""Column lineage read from compiled SQL: every metric, profile feature and rule tag points back
to contract columns (a new pipeline column without lineage fails here), the SQL agrees with
the metric definitions, and levels propagate by the query path's rule."""

from __future__ import annotations

import ibis
import pytest

from caifu.data.contracts import registry
from caifu.pipelines import lineage as ln
from caifu.pipelines import profile
from caifu.pipelines.metrics import lineage as ml
from caifu.services.metrics.catalog import shipped
from caifu.services.metrics.lineage import shipped_lineage
from caifu.services.metrics.query import MIN_GROUP_SIZE

CATALOG = shipped()
D, IND = ln.DIRECT, ln.INDIRECT


@pytest.fixture(scope="module")
def lin():  # type: ignore[no-untyped-def]
    return shipped_lineage()


def _known(lin, s: ln.Source) -> bool:  # type: ignore[no-untyped-def]
    """A contract column, or a column an operational dataset of the metric files declares."""
    return s in lin.facts


# --- the tracer, on SQL written by hand -------------------------------------------------------


SCHEMAS = {"trades": {"trade_id": "VARCHAR", "customer_id": "VARCHAR", "side": "VARCHAR",
                      "amount": "DECIMAL(18,2)", "trade_date": "DATE"},
           "customers": {"customer_id": "VARCHAR", "branch_id": "VARCHAR"}}


def test_a_join_filter_and_group_by_are_indirect_the_sum_direct() -> None:
    t = ln.trace_sql("""
        SELECT c.branch_id AS branch, SUM(t.amount) AS bought
        FROM lineage__trades AS t JOIN lineage__customers AS c ON t.customer_id = c.customer_id
        WHERE t.side = 'buy' GROUP BY c.branch_id""", SCHEMAS)
    T, C = (lambda col: ln.Source("trades", col)), (lambda col: ln.Source("customers", col))
    shared = {ln.Edge(T("customer_id"), IND, "JOIN"), ln.Edge(C("customer_id"), IND, "JOIN"),
              ln.Edge(T("side"), IND, "FILTER"), ln.Edge(C("branch_id"), IND, "GROUP_BY")}
    assert t.columns["branch"].edges == {ln.Edge(C("branch_id"), D, "IDENTITY"), *shared}
    assert t.columns["bought"].edges == {ln.Edge(T("amount"), D, "AGGREGATION"), *shared}
    assert t.dataset == {T("customer_id"), C("customer_id"), T("side"), C("branch_id")}
    assert t.own("bought") == {T("amount")}


def test_lineage_follows_subqueries_ctes_unions_and_case_conditions() -> None:
    t = ln.trace_sql("""
        WITH buys AS (SELECT customer_id, amount FROM lineage__trades WHERE side = 'buy')
        SELECT x.customer_id, CASE WHEN x.amount > 0 THEN 1 ELSE 0 END AS positive
        FROM (SELECT customer_id, amount FROM buys
              UNION ALL SELECT customer_id, NULL AS amount FROM lineage__customers) AS x""",
                     SCHEMAS)
    T, C = (lambda col: ln.Source("trades", col)), (lambda col: ln.Source("customers", col))
    assert t.columns["customer_id"].edges == {
        ln.Edge(T("customer_id"), D, "IDENTITY"), ln.Edge(C("customer_id"), D, "IDENTITY"),
        ln.Edge(T("side"), IND, "FILTER")}
    # the filter on side reaches positive through the CASE: the outer step names it
    assert t.columns["positive"].edges == {ln.Edge(T("amount"), IND, "CONDITIONAL"),
                                           ln.Edge(T("side"), IND, "CONDITIONAL")}


def test_a_column_made_of_constants_has_no_lineage_so_the_guard_below_catches_it() -> None:
    trades = ln.unbound("trades", SCHEMAS["trades"])
    expr = trades.select("customer_id", flag=ibis.literal(1))
    t = ln.trace(expr, SCHEMAS)
    assert t.columns["customer_id"].sources == {ln.Source("trades", "customer_id")}
    assert t.columns["flag"].edges == frozenset()


def test_an_unknown_table_is_an_error_naming_it() -> None:
    from caifu.core.errors import ConfigError

    with pytest.raises(ConfigError, match="'trades_v2' has no schema"):
        ln.trace_sql("SELECT amount FROM lineage__trades_v2", SCHEMAS)


# --- every pipeline column has lineage back to contracts ------------------------------------


@pytest.mark.parametrize("feature", [f.name for f in profile.FEATURES])
def test_every_profile_feature_reads_contract_columns(lin, feature: str) -> None:  # type: ignore[no-untyped-def]
    c = lin.profile.columns[feature]
    if feature in ln.PARAMETERS:  # the profile date: a parameter, said so
        assert c.edges == frozenset()
        return
    assert c.direct or lin.profile.own(feature), f"{feature} has no lineage"
    unknown = [str(s) for s in c.sources if not _known(lin, s)]
    assert unknown == []


@pytest.mark.parametrize("metric", sorted(CATALOG.metrics))
def test_every_metric_reads_contract_columns(lin, metric: str) -> None:  # type: ignore[no-untyped-def]
    m = lin.metrics[metric]
    assert m.traced.columns["value"].edges, f"{metric}: its value has no lineage"
    assert m.traced.columns["period"].edges, f"{metric}: its period has no lineage"
    assert [str(s) for s in m.traced.sources if not _known(lin, s)] == []


@pytest.mark.parametrize("metric", sorted(CATALOG.metrics))
def test_the_sql_reads_what_the_definition_declares(lin, metric: str) -> None:  # type: ignore[no-untyped-def]
    """``Catalog.columns_read`` (as table columns) against the compiled SQL: everything
    declared is read, and whatever else the SQL reads is a key, a join key or the customer
    column the query path counts customers by."""
    m = CATALOG.metrics[metric]
    sql = set(lin.metrics[metric].traced.sources)
    declared = ml.declared_sources(CATALOG, m)
    assert declared - sql == set()
    assert sql - declared <= set(ml.structural_sources(CATALOG, m))


def test_what_the_sql_adds_to_the_definitions_is_keys_and_customers(lin) -> None:  # type: ignore[no-untyped-def]
    reasons: dict[str, int] = {}
    for name, m in CATALOG.metrics.items():
        extra = set(lin.metrics[name].traced.sources) - ml.declared_sources(CATALOG, m)
        why = ml.structural_sources(CATALOG, m)
        for s in extra:
            key = why[s].split(" of ")[0]
            reasons[key] = reasons.get(key, 0) + 1
    assert set(reasons) <= {"the distinct customers behind each row", "the dataset's key",
                            "join key"}
    assert reasons["the distinct customers behind each row"] > 30


def test_every_default_rule_tag_reads_features_and_contracts(lin) -> None:  # type: ignore[no-untyped-def]
    assert set(lin.tags) == {d.id for d in lin.tag_definitions if d.kind == "rule"}
    assert len(lin.tags) >= 10
    for tag, t in lin.tags.items():
        assert set(t.features) - {"customer_id"}, tag
        assert all(f in profile.FEATURE_KINDS for f in t.features), tag
        assert t.on_contracts.sources and all(_known(lin, s) for s in t.on_contracts.sources)
    hnw = lin.tags["high_net_worth"]
    assert hnw.features == ["aum", "customer_id"]
    assert ln.Source("positions", "market_value") in hnw.on_contracts.columns["aum"].direct


def test_features_trace_to_the_columns_they_are_made_of(lin) -> None:  # type: ignore[no-untyped-def]
    p = lin.profile
    assert p.own("fees_365d") == {ln.Source("trades", "fee"), ln.Source("trades", "trade_date")}
    assert p.columns["c_level"].direct == {ln.Source("suitability_assessments", "risk_level")}
    assert ln.Source("fund_products", "fund_type") in p.own("fund_value_equity")
    assert p.dataset >= {ln.Source("customers", "customer_id"), ln.Source("trades", "customer_id")}


# --- levels and PII ---------------------------------------------------------------------------


def test_a_metrics_level_is_the_highest_level_it_reads(lin) -> None:  # type: ignore[no-untyped-def]
    for name, m in lin.metrics.items():
        levels = [lin.facts[s].level for s in m.traced.sources]
        assert m.level == max(levels), name
        assert m.pii == any(lin.facts[s].pii for s in m.traced.sources), name
        # the catalog's own level reads the declared columns only: never higher
        assert m.level >= CATALOG.level(CATALOG.metrics[name]), name


def test_aggregates_follow_the_query_paths_group_size_rule(lin) -> None:  # type: ignore[no-untyped-def]
    aum = lin.metrics["aum"]
    assert aum.level == 3 and aum.counts_customers
    assert aum.min_group_size == MIN_GROUP_SIZE == 10
    assert "at least 10 distinct customers" in aum.rule
    assert aum.plain()["min_group_size"] == 10
    low = next(m for m in lin.metrics.values() if m.level < 3)
    assert "any group size" in low.rule and low.plain()["min_group_size"] is None
    wide = [m for m in lin.metrics.values() if not m.counts_customers]
    assert wide, "a metric whose data names no customer (ingest batches, group members)"
    for m in wide:
        assert m.traced.columns["customers"].direct == frozenset()
        if m.level >= 3:
            assert "names no customer" in m.rule


def test_the_metric_lineage_is_the_compiled_query() -> None:
    t = ml.trace_metric(CATALOG, "fund_sales")
    assert "lineage__fund_transactions" in t.sql
    assert ln.Source("fund_transactions", "amount") in t.columns["value"].direct


def test_profile_lineage_covers_exactly_the_features() -> None:
    t = ln.profile_lineage(registry())
    assert list(t.columns) == [f.name for f in profile.FEATURES]
