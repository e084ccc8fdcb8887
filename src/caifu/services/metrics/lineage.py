"""Column lineage of a tenant's metrics, profile features and rule tags, and its export as
OpenLineage run events (``caifu lineage export``; ``docs/lineage.md``).

The lineage is read from the SQL each pipeline compiles to (``pipelines.lineage``,
``pipelines.metrics.lineage``); nothing here runs a query or opens a network connection —
the export writes a file, and a lineage server imports it.

OpenLineage shape (spec 2-0-2), one ``START`` and one ``COMPLETE`` run event per job:

- jobs (namespace ``caifu/<tenant>``): ``metrics.<metric>`` per metric,
  ``pipelines.profile_features`` and ``pipelines.rule_tags``;
- datasets (namespace ``caifu://<tenant>``): a contract table is ``<store>.<table>``
  (``lake.trades``, ``sor.customers``), an operational table ``sor.<table>``, the profile
  ``lake.profile_features``, a metric ``metrics.<metric>``, a rule tag ``tags.<tag>``;
- the ``COMPLETE`` event carries the facets: ``schema`` on every dataset, ``columnLineage``
  on every output (``DIRECT``/``INDIRECT`` with a subtype per input field; the columns that
  shape every output are under ``dataset``), the compiled ``sql`` on the job, the metric's
  ``documentation`` and ``ownership``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caifu import __version__
from caifu.core.errors import ConfigError
from caifu.core.tags import TagDefinition
from caifu.data.contracts import registry
from caifu.pipelines import lineage as ln
from caifu.pipelines.metrics import lineage as ml
from caifu.pipelines.metrics.spec import Catalog
from caifu.services.container import Container
from caifu.services.metrics.catalog import catalog as catalog_of
from caifu.services.metrics.catalog import shipped
from caifu.services.metrics.query import MIN_GROUP_SIZE
from caifu.services.profiles import tag_definitions

OL_SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
PRODUCER = f"urn:caifu:{__version__}"
FACETS = {
    "schema": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json"
              "#/$defs/SchemaDatasetFacet",
    "columnLineage": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json"
                     "#/$defs/ColumnLineageDatasetFacet",
    "sql": "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet",
    "documentation": "https://openlineage.io/spec/facets/1-1-0/DocumentationJobFacet.json"
                     "#/$defs/DocumentationJobFacet",
    "ownership": "https://openlineage.io/spec/facets/1-0-1/OwnershipJobFacet.json"
                 "#/$defs/OwnershipJobFacet",
}
PROFILE_JOB, TAGS_JOB = "pipelines.profile_features", "pipelines.rule_tags"
SHIPPED = "shipped"  # the namespace's tenant part when no tenant is named


@dataclass(frozen=True)
class Lineage:
    """Everything's lineage for one tenant (or the shipped definitions)."""

    tenant: str | None
    catalog: Catalog
    profile: ln.Traced
    tags: dict[str, ln.TagLineage]
    metrics: dict[str, ml.MetricLineage]
    facts: dict[ln.Source, ml.ColumnFacts]
    tag_definitions: tuple[TagDefinition, ...] = ()

    def used_by(self) -> dict[ln.Source, dict[str, list[str]]]:
        """Per source column: the metrics, profile features and rule tags that read it. A
        feature counts a column it reads itself (not the joins every feature shares: those
        are listed as ``profile (all features)``)."""
        out: dict[ln.Source, dict[str, set[str]]] = {}

        def add(s: ln.Source, kind: str, name: str) -> None:
            out.setdefault(s, {"metrics": set(), "features": set(), "tags": set()})[kind].add(
                name)

        for name, m in self.metrics.items():
            for s in m.traced.sources:
                add(s, "metrics", name)
        for feature in self.profile.columns:
            for s in self.profile.own(feature):
                add(s, "features", feature)
        for s in self.profile.dataset:
            add(s, "features", "(all features: the profile's joins)")
        for tag, t in self.tags.items():  # through the features it reads, as they do
            for feature in t.features:
                if feature != "customer_id":
                    for s in self.profile.own(feature):
                        add(s, "tags", tag)
        return {s: {k: sorted(v) for k, v in kinds.items()} for s, kinds in out.items()}


def _default_tags() -> list[TagDefinition]:
    return tag_definitions.parse_text(tag_definitions.default_text(),
                                      "caifu/data/tags/default.yaml")


def _build(tenant: str | None, catalog: Catalog, tags: list[TagDefinition]) -> Lineage:
    reg = registry()
    profile = ln.profile_lineage(reg)
    return Lineage(tenant, catalog, profile, ln.rule_tag_lineage(tags, profile),
                   ml.metric_lineage(catalog, reg, MIN_GROUP_SIZE),
                   ml.column_facts(catalog, reg), tuple(tags))


@functools.cache
def shipped_lineage() -> Lineage:
    """The lineage of the shipped metrics and the default tags (computed once: ~3 s)."""
    return _build(None, shipped(), _default_tags())


def lineage_of(c: Container | None, tenant: str | None) -> Lineage:
    """The tenant's lineage: its metric files and tag definitions over the shipped ones."""
    if c is None or tenant is None:
        return shipped_lineage()
    from caifu.services.platform.workspace import get_tenant

    get_tenant(c, tenant)  # an unknown tenant: a clear error
    cat = catalog_of(c, tenant)
    tags, source = tag_definitions.load_definitions(c, tenant)
    if cat is shipped() and "packaged default" in source:
        base = shipped_lineage()
        return Lineage(tenant, base.catalog, base.profile, base.tags, base.metrics, base.facts,
                       base.tag_definitions)
    return _build(tenant, cat, tags)


# --- OpenLineage -----------------------------------------------------------------------------


def _facet(kind: str, **body: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": FACETS[kind], **body}


class _Names:
    def __init__(self, lin: Lineage) -> None:
        self.tenant = lin.tenant or SHIPPED
        self.dataset_ns = f"caifu://{self.tenant}"
        self.job_ns = f"caifu/{self.tenant}"
        self._stores = {t.name: t.store for t in registry()}

    def table(self, table: str) -> str:
        if table.startswith(("sor:", "lake:")):
            return table.replace(":", ".", 1)
        if table == ln.PROFILE_TABLE:
            return "lake." + table
        return f"{self._stores[table]}.{table}"


def _input_datasets(lin: Lineage, names: _Names, sources: Iterable[ln.Source],
                    facets: bool) -> list[dict[str, Any]]:
    tables = sorted({s.table for s in sources})
    out = []
    for t in tables:
        d: dict[str, Any] = {"namespace": names.dataset_ns, "name": names.table(t)}
        if facets:
            d["facets"] = {"schema": _facet("schema", fields=_table_fields(lin, t))}
        out.append(d)
    return out


def _table_fields(lin: Lineage, table: str) -> list[dict[str, Any]]:
    if table == ln.PROFILE_TABLE:
        from caifu.pipelines import profile

        return [{"name": f.name, "type": ln.PROFILE_KIND_TYPES[f.kind], "description": f.desc,
                 "ordinal_position": i}
                for i, f in enumerate(profile.FEATURES, 1)]
    cols = [(s.column, f) for s, f in lin.facts.items() if s.table == table]
    return [{"name": name, "type": ml.SQL_TYPES[f.kind], "description": f.desc,
             "ordinal_position": i} for i, (name, f) in enumerate(cols, 1)]


def _column_lineage(traced: ln.Traced, names: _Names) -> dict[str, Any]:
    def field_(s: ln.Source, how: Iterable[ln.Edge]) -> dict[str, Any]:
        return {"namespace": names.dataset_ns, "name": names.table(s.table), "field": s.column,
                "transformations": [{"type": e.type, "subtype": e.subtype, "masking": False}
                                    for e in sorted(how, key=lambda e: (e.type, e.subtype))]}

    fields: dict[str, Any] = {}
    for name, col in traced.columns.items():
        by_source: dict[ln.Source, list[ln.Edge]] = {}
        for e in col.edges:
            if e.type == ln.INDIRECT and e.source in traced.dataset:
                continue  # listed once under "dataset"
            by_source.setdefault(e.source, []).append(e)
        fields[name] = {"inputFields": [field_(s, by_source[s]) for s in sorted(by_source)]}
    shared: dict[ln.Source, set[ln.Edge]] = {}
    for col in traced.columns.values():
        for e in col.edges:
            if e.type == ln.INDIRECT and e.source in traced.dataset:
                shared.setdefault(e.source, set()).add(ln.Edge(e.source, e.type, e.subtype))
    return _facet("columnLineage", fields=fields,
                  dataset=[field_(s, shared[s]) for s in sorted(shared)])


def _events(job: str, names: _Names, when: dt.datetime, inputs: list[dict[str, Any]],
            outputs: list[dict[str, Any]], job_facets: dict[str, Any]) -> list[dict[str, Any]]:
    run_id = str(uuid.uuid5(uuid.NAMESPACE_URL,
                            f"{names.job_ns}/{job}@{when.isoformat()}"))
    stamp = when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    base = {"producer": PRODUCER, "schemaURL": f"{OL_SPEC}#/$defs/RunEvent",
            "eventTime": stamp, "run": {"runId": run_id}}
    bare = [{k: d[k] for k in ("namespace", "name")} for d in inputs]
    bare_out = [{k: d[k] for k in ("namespace", "name")} for d in outputs]
    return [
        {**base, "eventType": "START", "job": {"namespace": names.job_ns, "name": job},
         "inputs": bare, "outputs": bare_out},
        {**base, "eventType": "COMPLETE",
         "job": {"namespace": names.job_ns, "name": job, "facets": job_facets},
         "inputs": inputs, "outputs": outputs},
    ]


def openlineage_events(lin: Lineage, when: dt.datetime) -> list[dict[str, Any]]:
    """The run events of every job, in a stable order (profile, tags, then metrics by name)."""
    names = _Names(lin)
    events: list[dict[str, Any]] = []
    # the profile
    out = {"namespace": names.dataset_ns, "name": names.table(ln.PROFILE_TABLE), "facets": {
        "schema": _facet("schema", fields=_table_fields(lin, ln.PROFILE_TABLE)),
        "columnLineage": _column_lineage(lin.profile, names)}}
    events += _events(PROFILE_JOB, names, when,
                      _input_datasets(lin, names, lin.profile.sources, True), [out],
                      {"sql": _facet("sql", query=lin.profile.sql, dialect="duckdb")})
    # the rule tags: they read the profile table
    outputs = []
    for tag, t in sorted(lin.tags.items()):
        outputs.append({"namespace": names.dataset_ns, "name": f"tags.{tag}", "facets": {
            "schema": _facet("schema", fields=[
                {"name": c, "type": ln.profile_schema()[c]} for c in t.on_features.columns]),
            "columnLineage": _column_lineage(t.on_features, names)}})
    if outputs:
        feature_inputs = [ln.Source(ln.PROFILE_TABLE, f) for f in ln.feature_names()]
        events += _events(TAGS_JOB, names, when,
                          _input_datasets(lin, names, feature_inputs, True), outputs,
                          {"sql": _facet("sql", dialect="duckdb", query=";\n".join(
                              t.on_features.sql for _, t in sorted(lin.tags.items())))})
    # the metrics
    for name, m in sorted(lin.metrics.items()):
        metric = lin.catalog.metrics[name]
        out = {"namespace": names.dataset_ns, "name": f"metrics.{name}", "facets": {
            "schema": _facet("schema", fields=[
                {"name": "period", "type": "DATE", "description": "first day of the period"},
                {"name": "value", "type": m.traced.types.get("value", ""),
                 "description": f"{metric.label.get('en', name)} ({metric.format})"},
                {"name": "customers", "type": m.traced.types.get("customers", "BIGINT"),
                 "description": "distinct customers behind the row"}]),
            "columnLineage": _column_lineage(m.traced, names)}}
        description = metric.description.get("en") or next(iter(metric.description.values()))
        events += _events(f"metrics.{name}", names, when,
                          _input_datasets(lin, names, m.traced.sources, True), [out], {
                              "sql": _facet("sql", query=m.traced.sql, dialect="duckdb"),
                              "documentation": _facet(
                                  "documentation",
                                  description=f"{description} (version {metric.version}; "
                                              f"{m.rule})"),
                              "ownership": _facet("ownership", owners=[
                                  {"name": f"team:{metric.owner}", "type": "OWNER"}])})
    return events


def export(c: Container | None, tenant: str | None, out: Path,
           when: dt.datetime | None = None) -> dict[str, int]:
    """Write the events as JSON Lines; the counts of jobs and events written."""
    lin = lineage_of(c, tenant)
    now = when or (c.clock.now() if c is not None else dt.datetime.now(dt.UTC))
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    events = openlineage_events(lin, now)
    if out.exists() and out.is_dir():
        raise ConfigError(f"--out {out} is a folder; name the file to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n")
    jobs = len({e["job"]["name"] for e in events})
    return {"jobs": jobs, "events": len(events), "metrics": len(lin.metrics),
            "features": len(lin.profile.columns), "tags": len(lin.tags)}

