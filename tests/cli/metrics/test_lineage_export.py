"""``caifu lineage export``: OpenLineage run events, valid against the OpenLineage JSON schema
(shipped with the tests, read offline), whose column lineage names real columns."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from caifu.cli import app
from caifu.data.contracts import registry
from caifu.pipelines import profile
from caifu.services.metrics.catalog import shipped

runner = CliRunner(env={"COLUMNS": "200"})
SCHEMAS = Path(__file__).resolve().parents[2] / "unit" / "metrics" / "openlineage"


def _validators() -> tuple[Any, dict[str, Any]]:
    """The run-event validator and one per facet, resolving the facets' references to the
    core schema from the files (nothing is fetched)."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    docs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.json")}
    core = docs["OpenLineage.json"]
    registry_ = jsonschema_rs.Registry([(d["$id"], d) for d in docs.values()])
    event = jsonschema_rs.validator_for(core, registry=registry_)
    facets = {}
    for name, doc in docs.items():
        if name == "OpenLineage.json":
            continue
        key = name.removesuffix(".json")
        facets[key] = jsonschema_rs.validator_for(
            {"$ref": f"{doc['$id']}#/$defs/{key}"}, registry=registry_)
    return event, facets


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _columns() -> dict[str, set[str]]:
    """Every real column by OpenLineage dataset name."""
    out = {f"{t.store}.{t.name}": set(t.column_names) for t in registry()}
    for ds in shipped().datasets.values():
        if ds.own_columns:
            out[ds.source.replace(":", ".", 1)] = set(ds.columns)
    out["lake.profile_features"] = {f.name for f in profile.FEATURES}
    return out


def test_export_writes_valid_events_with_real_column_lineage(tmp_path: Path) -> None:
    out = tmp_path / "lineage.jsonl"
    r = runner.invoke(app, ["lineage", "export", "--out", str(out)])
    assert r.exit_code == 0, r.output
    events = _read(out)
    jobs = {e["job"]["name"] for e in events}
    assert jobs == {f"metrics.{m}" for m in shipped().metrics} | {
        "pipelines.profile_features", "pipelines.rule_tags"}
    assert f"wrote {len(events)} events for {len(jobs)} jobs" in r.output
    event_schema, facets = _validators()
    columns = _columns()
    for e in events:
        assert event_schema.is_valid(e), next(iter(event_schema.iter_errors(e)))
        assert {"eventTime", "producer", "schemaURL", "run", "job", "eventType"} <= set(e)
        uuid.UUID(e["run"]["runId"])
        assert e["job"]["namespace"] == "caifu/shipped"
    complete = [e for e in events if e["eventType"] == "COMPLETE"]
    assert len(complete) == len(jobs) == len(events) // 2
    read = 0
    for e in complete:
        for fname, facet in e["job"]["facets"].items():
            key = {"sql": "SQLJobFacet", "documentation": "DocumentationJobFacet",
                   "ownership": "OwnershipJobFacet"}[fname]
            assert facets[key].is_valid(facet), (e["job"]["name"], fname)
        inputs = {d["name"]: d for d in e["inputs"]}
        for d in e["inputs"]:
            assert facets["SchemaDatasetFacet"].is_valid(d["facets"]["schema"])
            assert {f["name"] for f in d["facets"]["schema"]["fields"]} == columns[d["name"]]
        for d in e["outputs"]:
            assert facets["SchemaDatasetFacet"].is_valid(d["facets"]["schema"])
            lineage = d["facets"]["columnLineage"]
            assert facets["ColumnLineageDatasetFacet"].is_valid(lineage)
            assert set(lineage["fields"]) == {f["name"] for f in d["facets"]["schema"]["fields"]}
            for field in [*(f for v in lineage["fields"].values() for f in v["inputFields"]),
                          *lineage["dataset"]]:
                assert field["name"] in inputs, (e["job"]["name"], field)
                assert field["field"] in columns[field["name"]], (e["job"]["name"], field)
                assert {t["type"] for t in field["transformations"]} <= {"DIRECT", "INDIRECT"}
                read += 1
    assert read > 500
    # the schema is not vacuous: a run without its id, a lineage field without its column fail
    assert not event_schema.is_valid({**events[0], "run": {}})
    assert not facets["ColumnLineageDatasetFacet"].is_valid(
        {"_producer": "urn:x", "_schemaURL": "urn:y",
         "fields": {"value": {"inputFields": [{"namespace": "n", "name": "t"}]}}})


def test_a_metrics_event_says_what_it_reads_and_how(tmp_path: Path) -> None:
    out = tmp_path / "lineage.jsonl"
    assert runner.invoke(app, ["lineage", "export", "--out", str(out)]).exit_code == 0
    e = next(e for e in _read(out)
             if e["eventType"] == "COMPLETE" and e["job"]["name"] == "metrics.commission_revenue")
    assert [d["name"] for d in e["inputs"]] == ["lake.trades"]
    [output] = e["outputs"]
    assert output["name"] == "metrics.commission_revenue"
    value = output["facets"]["columnLineage"]["fields"]["value"]["inputFields"]
    fee = next(f for f in value if f["field"] == "fee")
    assert fee["transformations"] == [{"type": "DIRECT", "subtype": "AGGREGATION",
                                       "masking": False}]
    owner = shipped().metrics["commission_revenue"].owner
    assert e["job"]["facets"]["ownership"]["owners"] == [{"name": f"team:{owner}",
                                                          "type": "OWNER"}]
    assert "lineage__trades" in e["job"]["facets"]["sql"]["query"]


def test_a_tenants_export_includes_its_own_metrics(small_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = small_broker.copy(tmp_path / "ws")
    c.close()
    ws = c.root
    folder = ws / "metrics" / "acme"
    folder.mkdir(parents=True)
    (folder / "extra.yaml").write_text(yaml.safe_dump({"metrics": [{
        "name": "stamp_fees", "version": 1, "owner": "brokerage",
        "label": {"zh": "卖出手续费", "en": "Fees on sales"},
        "description": {"zh": "卖出成交的手续费", "en": "Fees of sell trades"},
        "format": "money", "dataset": "trades", "measure": "SUM(fee)",
        "filter": "side = 'sell'"}]}, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "acme.jsonl"
    r = runner.invoke(app, ["lineage", "export", "--out", str(out), "-t", "acme",
                            "-w", str(ws)])
    assert r.exit_code == 0, r.output
    events = [e for e in _read(out) if e["eventType"] == "COMPLETE"]
    mine = next(e for e in events if e["job"]["name"] == "metrics.stamp_fees")
    assert mine["job"]["namespace"] == "caifu/acme"
    lineage = mine["outputs"][0]["facets"]["columnLineage"]
    fields = lineage["fields"]["value"]["inputFields"]
    assert {(f["field"], f["transformations"][0]["subtype"]) for f in fields} == {
        ("fee", "AGGREGATION")}
    # the filter shapes every output column: dataset-level lineage
    assert {(f["field"], t["subtype"]) for f in lineage["dataset"]
            for t in f["transformations"]} >= {("side", "FILTER"), ("trade_date", "FILTER")}


def test_an_unknown_tenant_is_a_clear_error(small_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = small_broker.copy(tmp_path / "ws")
    c.close()
    ws = c.root
    r = runner.invoke(app, ["lineage", "export", "--out", str(tmp_path / "x.jsonl"),
                            "-t", "nobody", "-w", str(ws)])
    assert r.exit_code != 0 and "nobody" in r.output
    assert not (tmp_path / "x.jsonl").exists()
