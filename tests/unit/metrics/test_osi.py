"""Open Semantic Interchange export and import of the metric catalog (issue 17 item 6)."""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from typing import Any

import pytest
import yaml

from caifu.core.errors import ConfigError
from caifu.data.contracts import registry
from caifu.pipelines.metrics import osi
from caifu.pipelines.metrics.spec import Catalog, Metric, build_catalog
from caifu.services.metrics.catalog import shipped
from caifu.services.metrics.interchange import schema


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return shipped()


@pytest.fixture(scope="module")
def doc(cat: Catalog) -> dict[str, Any]:
    return osi.export(cat)


def _model(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["semantic_model"][0]


def _by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in items}


def _caifu(item: dict[str, Any]) -> dict[str, Any]:
    (ext,) = [e for e in item["custom_extensions"] if e["vendor_name"] == "CAIFU"]
    return json.loads(ext["data"])


def _sql(item: dict[str, Any]) -> str:
    (d,) = item["expression"]["dialects"]
    assert d["dialect"] == "ANSI_SQL"
    return d["expression"]


# --- the round trip ------------------------------------------------------------------------


def test_round_trip_gives_identical_definitions(cat: Catalog, doc: dict[str, Any]) -> None:
    # through YAML text, as a file would carry it
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    back = build_catalog(osi.documents(yaml.safe_load(text), "export.yaml"), registry())
    assert len(back.metrics) == len(cat.metrics) >= 74
    for name in cat.metrics:
        assert back.definition_hash(name) == cat.definition_hash(name), name
        a, b = cat.metrics[name], back.metrics[name]
        for f in fields(Metric):
            if f.name not in ("origin", "trees"):
                assert getattr(a, f.name) == getattr(b, f.name), (name, f.name)
        assert b.origin == f"export.yaml ({a.origin})"
        assert cat.level(a) == back.level(b)
    assert list(back.metrics) == list(cat.metrics)
    assert back.datasets == cat.datasets
    assert {n: d.declared for n, d in back.datasets.items()} == \
        {n: d.declared for n, d in cat.datasets.items()}
    assert list(back.dimensions) == list(cat.dimensions)  # the order of declaration too
    assert back.dimensions == cat.dimensions
    assert {n: d.declared for n, d in back.dimensions.items()} == \
        {n: d.declared for n, d in cat.dimensions.items()}
    assert back.relationships == cat.relationships
    assert back.version == cat.version == "2026.12"


def test_export_conforms_to_the_osi_schema(doc: dict[str, Any]) -> None:
    assert osi.validate(doc, schema()) == []
    assert doc["version"] == osi.OSI_VERSION == schema()["properties"]["version"]["const"]


def test_export_conforms_by_jsonschema_too(doc: dict[str, Any]) -> None:
    # a second opinion where the jsonschema package is installed (not a caifu dependency)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(schema()).validate(doc)
    bad = copy.deepcopy(doc)
    del _model(bad)["datasets"][1]["source"]
    assert not jsonschema.Draft202012Validator(schema()).is_valid(bad)


# --- what the export says ------------------------------------------------------------------


def test_simple_metric_is_qualified_with_its_filter_folded_in(doc: dict[str, Any]) -> None:
    metrics = _by_name(_model(doc)["metrics"])
    assert _sql(metrics["turnover"]) == "SUM(trades.amount)"
    assert _sql(metrics["chinext_traders"]) == (
        "COUNT(DISTINCT CASE WHEN securities.board = 'chinext' THEN trades.customer_id END)")
    assert _sql(metrics["app_logins"]) == (
        "COUNT(CASE WHEN app_events.event_type = 'login' THEN 1 END)")
    assert _sql(metrics["net_inflow"]) == ("SUM(CASE WHEN cash_flows.direction = 'in' THEN "
                                           "cash_flows.amount ELSE -cash_flows.amount END)")
    assert _sql(metrics["commission_rate"]) == "commission_revenue / turnover"  # derived
    assert metrics["commission_rate"]["datatype"] == "Float"
    assert metrics["turnover"]["datatype"] == "Decimal"
    assert metrics["active_traders"]["datatype"] == "Integer"
    assert metrics["avg_trade_amount"]["datatype"] == "Float"
    assert metrics["aum"]["description"].startswith("Market value")
    assert "证券资产规模（AUM）" in metrics["aum"]["ai_context"]["synonyms"]


def test_what_osi_has_no_field_for_is_in_the_caifu_extension(cat: Catalog,
                                                              doc: dict[str, Any]) -> None:
    model = _model(doc)
    aum = _caifu(_by_name(model["metrics"])["aum"])
    assert aum["definition"]["version"] == 1
    assert aum["definition"]["owner"] == "wealth-ops"
    assert aum["definition"]["label"] == {"zh": "证券资产规模（AUM）", "en": "AUM (securities)"}
    assert aum["definition"]["format"] == "money"
    assert aum["snapshot"] is True and aum["time"] == "snapshot_date"
    assert aum["definition_hash"] == cat.definition_hash("aum")
    assert aum["level"] == cat.level(cat.metrics["aum"])
    stock = _caifu(_by_name(model["metrics"])["customers_total"])["definition"]
    assert (stock["kind"], stock["valid_from"], stock["valid_to"]) == \
        ("stock", "opened_on", "closed_on")
    datasets = _by_name(model["datasets"])
    first = datasets["first_deposits"]
    assert first["source"] == ("SELECT customer_id, MIN(flow_time) AS first_deposit_at, "
                               "COUNT(*) AS deposits FROM cash_flows WHERE direction = 'in' "
                               "GROUP BY customer_id")
    assert _caifu(first)["definition"]["group_by"] == ["customer_id"]
    cards = datasets["customer_cards"]
    assert cards["source"] == "sor.customer_cards" and cards["primary_key"] == ["customer_id"]
    assert _caifu(model)["catalog_version"] == "2026.12"


def test_fields_carry_types_levels_and_dimensions(cat: Catalog, doc: dict[str, Any]) -> None:
    datasets = _by_name(_model(doc)["datasets"])
    customers = _by_name(datasets["customers"]["fields"])
    assert customers["opened_on"]["dimension"] == {"is_time": True}
    assert customers["opened_on"]["datatype"] == "Date"
    # the dimension "branch" is the expression branch_id; customer_type is its own column
    assert _sql(customers["branch"]) == "branch_id"
    assert customers["branch"]["dimension"] == {"is_time": False}
    assert customers["customer_type"]["dimension"] == {"is_time": False}
    assert "dimension" not in customers["mobile"]
    mobile = _caifu(customers["mobile"])
    col = cat.datasets["customers"].columns["mobile"]
    assert (mobile["level"], mobile["pii"]) == (col.level, col.pii) == (3, True)
    flows = _by_name(datasets["cash_flows"]["fields"])
    assert flows["flow_time"]["datatype"] == "DateTimeTz"  # stored as UTC instants
    assert flows["amount"]["datatype"] == "Decimal"


def test_contract_relationships_are_exported_and_not_imported(cat: Catalog,
                                                              doc: dict[str, Any]) -> None:
    rels = _by_name(_model(doc)["relationships"])
    assert len(rels) == len(cat.relationships)
    assert rels["trades_customer_id"] == {
        "name": "trades_customer_id", "from": "trades", "to": "customers",
        "from_columns": ["customer_id"], "to_columns": ["customer_id"],
        "custom_extensions": [{"vendor_name": "CAIFU", "data": '{"from_contract": true}'}]}
    assert "custom_extensions" not in rels["compliance_flags_advisor"]
    (first, *_) = osi.documents(doc, "x.yaml")
    names = [r["name"] for r in first[1]["relationships"]]
    assert names == [r.name for r in cat.relationships if r.declared]


# --- bad input -----------------------------------------------------------------------------


def test_an_expression_edited_in_osi_alone_is_refused(doc: dict[str, Any]) -> None:
    bad = copy.deepcopy(doc)
    turnover = _by_name(_model(bad)["metrics"])["turnover"]
    turnover["expression"]["dialects"][0]["expression"] = "SUM(trades.fee)"
    with pytest.raises(ConfigError, match=r"x\.yaml: metrics\[\d+\] \(turnover\): its ANSI_SQL "
                                          r"expression 'SUM\(trades.fee\)' is not the one"):
        osi.documents(bad, "x.yaml")


def test_a_document_without_caifu_extensions_is_refused(doc: dict[str, Any]) -> None:
    bad = copy.deepcopy(doc)
    del _by_name(_model(bad)["metrics"])["aum"]["custom_extensions"]
    with pytest.raises(ConfigError, match=r"metrics\[\d+\] \(aum\): no custom_extensions "
                                          "entry with vendor_name CAIFU"):
        osi.documents(bad, "x.yaml")
    with pytest.raises(ConfigError, match="not an OSI document"):
        osi.documents({"datasets": []}, "x.yaml")


def test_a_changed_definition_in_the_extension_reaches_the_catalog(cat: Catalog,
                                                                   doc: dict[str, Any]) -> None:
    # the extension is the definition: edit it (and the expression that follows) and the
    # imported metric is a different one, with another hash
    changed = copy.deepcopy(doc)
    turnover = _by_name(_model(changed)["metrics"])["turnover"]
    data = _caifu(turnover)
    data["definition"]["measure"] = "SUM(fee)"
    turnover["custom_extensions"] = [{"vendor_name": "CAIFU", "data": json.dumps(data)}]
    turnover["expression"]["dialects"][0]["expression"] = "SUM(trades.fee)"
    back = build_catalog(osi.documents(changed, "x.yaml"), registry())
    assert back.metrics["turnover"].measure == "SUM(fee)"
    assert back.definition_hash("turnover") != cat.definition_hash("turnover")
    assert back.definition_hash("trade_count") == cat.definition_hash("trade_count")


def test_schema_violations_name_the_place(doc: dict[str, Any]) -> None:
    bad = copy.deepcopy(doc)
    model = _model(bad)
    model["metrics"][3]["expression"]["dialects"][0]["dialect"] = "SPARK_SQL"
    del model["datasets"][1]["source"]
    model["relationships"][0]["cardinality"] = "many_to_one"
    bad["version"] = "1.0"
    errors = osi.validate(bad, schema())
    assert "version: '1.0' must be '0.2.0.dev0'" in errors
    assert any(e.startswith("semantic_model[0].metrics[3].expression.dialects[0].dialect: "
                            "'SPARK_SQL' is not one of ANSI_SQL") for e in errors)
    assert "semantic_model[0].datasets[1]: 'source' is required" in errors
    assert ("semantic_model[0].relationships[0]: 'cardinality' is not a field the schema "
            "allows") in errors
    assert len(errors) == 4


def test_validator_refuses_schema_keywords_it_does_not_handle() -> None:
    with pytest.raises(ConfigError, match="pattern"):
        osi.validate("x", {"type": "string", "pattern": "^a"})
