"""MEDIAN and QUANTILE in the metric language, on hand-made cash flows whose quantiles numpy
works out from the same numbers written in the test: odd and even counts, a missing amount
left out, p = 0 and p = 1, and what is refused (p out of range or not a written number, a
quantile of text)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from caifu.adapters.engines.session import DuckDBSession
from caifu.core.errors import ConfigError
from caifu.data.contracts import registry
from caifu.data.contracts.arrow import contract_schema
from caifu.pipelines.metrics import compile as mc
from caifu.pipelines.metrics import osi
from caifu.pipelines.metrics.spec import Catalog, build_catalog

D = dt.date
IN = [12.5, 3.0, 100.0, 7.25, 40.0]  # five amounts in: odd
OUT = [8.0, 1.5, 30.0, 2.0]  # four amounts out (and one missing): even


def metric(name: str, measure: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "version": 1, "owner": "t", "label": {"en": name},
            "description": {"en": name}, "dataset": "cash_flows", "measure": measure, **kw}


DOCS = {
    "datasets": [{"name": "cash_flows", "time": "flow_time"}],
    "dimensions": [{"name": "direction", "dataset": "cash_flows", "label": {"en": "D"}}],
    "metrics": [
        metric("amount_median", "MEDIAN(amount)"),
        metric("amount_p0", "QUANTILE(amount, 0)"),
        metric("amount_p25", "QUANTILE(amount, 0.25)"),
        metric("amount_p90", "QUANTILE(amount, 0.9)"),
        metric("amount_p1", "QUANTILE(amount, 1)"),
        metric("in_p75", "QUANTILE(amount, 0.75)", filter="direction = 'in'"),
        metric("amount_spread", "QUANTILE(amount, 0.75) - QUANTILE(amount, 0.25)"),
        metric("direction_median", "MEDIAN(direction)"),
    ],
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog([("quantiles", DOCS)], registry())


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = DuckDBSession(tmp_path_factory.mktemp("quantiles"), "512MB", 1)
    schema = contract_schema(registry()["cash_flows"])
    amounts = [("in", a) for a in IN] + [("out", a) for a in OUT] + [("out", None)]
    rows = [{"flow_id": f"f{i}", "customer_id": f"c{i}", "fund_account": f"A{i}",
             "flow_time": dt.datetime(2026, 1, 10, 3), "direction": d,
             "amount": None if a is None else Decimal(str(a))}
            for i, (d, a) in enumerate(amounts)]
    data = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows],
                                schema=schema)
    yield {"cash_flows": s.from_arrow("cash_flows", data)}
    s.close()


def value(catalog: Catalog, tables: Any, name: str, by: tuple[str, ...] = ()
          ) -> dict[Any, Any]:
    q = mc.Query(name, D(2026, 1, 1), D(2026, 1, 31), by, "all", 8)
    rows = mc.query(catalog, q, tables).to_pyarrow().to_pylist()
    return {r[by[0]] if by else None: r["value"] for r in rows}


@pytest.mark.parametrize(("name", "p"), [("amount_median", 0.5), ("amount_p0", 0.0),
                                         ("amount_p25", 0.25), ("amount_p90", 0.9),
                                         ("amount_p1", 1.0)])
def test_quantiles_are_exact_and_interpolated_linearly(catalog: Catalog, tables: Any,
                                                       name: str, p: float) -> None:
    got = value(catalog, tables, name, ("direction",))
    assert got["in"] == pytest.approx(float(np.quantile(IN, p)), abs=1e-12)  # odd count
    assert got["out"] == pytest.approx(float(np.quantile(OUT, p)), abs=1e-12)  # even; NULL out
    assert value(catalog, tables, name)[None] == pytest.approx(
        float(np.quantile(IN + OUT, p)), abs=1e-12)
    assert isinstance(got["in"], float)  # in double, like AVG


def test_hand_checked_values_and_a_filter_and_arithmetic(catalog: Catalog, tables: Any) -> None:
    # OUT sorted 1.5 2 8 30: the median lies halfway between 2 and 8
    assert value(catalog, tables, "amount_median", ("direction",))["out"] == 5.0
    # IN sorted 3 7.25 12.5 40 100: p75 is the fourth value, 40 — the filter keeps 'in' only
    assert value(catalog, tables, "in_p75")[None] == 40.0
    # all nine: 1.5 2 3 7.25 8 12.5 30 40 100 → p25 = 3, p75 = 30
    assert value(catalog, tables, "amount_spread")[None] == 27.0


def test_a_quantile_of_text_is_refused_before_any_engine_runs(catalog: Catalog,
                                                              tables: Any) -> None:
    with pytest.raises(ConfigError, match=r"'MEDIAN\(direction\)': MEDIAN is of numbers"):
        value(catalog, tables, "direction_median")


@pytest.mark.parametrize("measure", ["QUANTILE(amount, 1.5)", "QUANTILE(amount, -0.1)",
                                     "QUANTILE(amount, flow_id)", "QUANTILE(amount, 0.5 + 0)",
                                     "QUANTILE(amount, '0.5')", "QUANTILE(amount)"])
def test_p_is_a_written_number_from_0_to_1(measure: str) -> None:
    doc = {**DOCS, "metrics": [metric("bad", measure)]}
    with pytest.raises(ConfigError) as e:
        build_catalog([("acme/q.yaml", doc)], registry())
    assert "acme/q.yaml: metric bad: measure: QUANTILE(x, p)" in str(e.value)
    assert "p is a written number from 0 to 1" in str(e.value)


def test_an_aggregate_inside_a_quantile_is_refused() -> None:
    doc = {**DOCS, "metrics": [metric("bad", "MEDIAN(SUM(amount))")]}
    with pytest.raises(ConfigError, match="an aggregate inside an aggregate"):
        build_catalog([("q.yaml", doc)], registry())


def test_the_osi_expression_keeps_p_and_folds_the_filter_in() -> None:
    declared = metric("x", "QUANTILE(amount, 0.75)", filter="direction = 'in'")
    assert osi.metric_sql(declared) == ("QUANTILE(CASE WHEN cash_flows.direction = 'in' THEN "
                                        "cash_flows.amount END, 0.75)")


def test_lineage_reads_the_columns_not_p() -> None:
    from caifu.pipelines.metrics import sqlexpr

    tree = sqlexpr.parse("QUANTILE(CASE WHEN direction = 'in' THEN amount END, 0.9) "
                         "- MEDIAN(fee)", "w")
    assert [str(r) for r in sqlexpr.columns(tree)] == ["direction", "amount", "fee"] or \
        {str(r) for r in sqlexpr.columns(tree)} == {"direction", "amount", "fee"}
    assert sqlexpr.is_aggregate(tree) and sqlexpr.aggregates_everything(tree)
    assert not sqlexpr.aggregates_everything(sqlexpr.parse("MEDIAN(fee) + amount", "w"))
