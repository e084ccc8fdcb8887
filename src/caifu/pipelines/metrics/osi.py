"""The metric catalog as an Open Semantic Interchange document, and back.

The Open Semantic Interchange core spec (now Apache Ossie, ``core-spec/spec.yaml`` and
``osi-schema.json``, version 0.2.0.dev0) describes one ``semantic_model``: datasets with
fields, many-to-one relationships and metrics, each expression given per SQL dialect. caifu
writes:

- a **dataset** per catalog dataset: ``source`` is the table (``sor.<table>`` for an
  operational table, a ``SELECT … GROUP BY`` for a grouped dataset), ``primary_key`` its key,
  a **field** per column (``datatype`` from the column's type; the dataset's time column is a
  time dimension) and a field per caifu **dimension** (``dimension: {is_time: false}``; a
  dimension that is a column of the same name marks that column's field);
- every **relationship**, also those the contracts imply (marked so in the extension, and left
  out again on import: the contracts give them);
- a **metric** per catalog metric, its ``ANSI_SQL`` expression readable without caifu: a simple
  or stock metric's measure with every column qualified by its dataset and the filter folded
  into each aggregate (``SUM(CASE WHEN trades.side = 'B' THEN trades.amount END)``); a
  derived metric's expression over the metrics it names.

What OSI has no field for — version, owner, the zh/en labels and descriptions, kind, format,
valid_from / valid_to, time, snapshot, a grouped dataset's definition, the JR/T 0158 levels
and PII flags, the definition hash — is a ``custom_extensions`` entry with ``vendor_name:
CAIFU`` and ``data`` a JSON string. Its ``definition`` is the definition as declared in the
metric files; ``documents`` reads it back into the documents ``build_catalog`` takes, after
checking that every OSI expression is still the one the definition gives (an expression
edited in OSI alone would otherwise be silently ignored).

``validate`` checks a document against the OSI JSON Schema (the keywords that schema uses).
Pure: the caller reads and writes files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from caifu.core.errors import ConfigError
from caifu.pipelines.metrics import sqlexpr
from caifu.pipelines.metrics.spec import Catalog, Dataset, Dimension, Metric

OSI_VERSION = "0.2.0.dev0"
VENDOR = "CAIFU"
DIALECT = "ANSI_SQL"
FORMAT = "caifu-metrics/1"
DATATYPES = {"string": "String", "int": "Integer", "decimal": "Decimal", "float": "Float",
             "date": "Date", "timestamp": "DateTimeTz", "bool": "Boolean"}


# --- export --------------------------------------------------------------------------------


def export(catalog: Catalog, name: str = "caifu", description: str = "") -> dict[str, Any]:
    """The catalog as one OSI document (a plain mapping, ready for YAML or JSON)."""
    dims_of: dict[str, list[tuple[int, Dimension]]] = {}
    for i, d in enumerate(catalog.dimensions.values()):
        dims_of.setdefault(d.dataset, []).append((i, d))
    model: dict[str, Any] = {
        "name": name,
        "description": description or "caifu governed metrics: one definition per KPI",
        "datasets": [_dataset(catalog, ds, dims_of.get(ds.name, []))
                     for ds in catalog.datasets.values()],
        "relationships": [_relationship(r) for r in catalog.relationships],
        "metrics": [_metric(catalog, m) for m in catalog.metrics.values()],
        "custom_extensions": [_ext({"format": FORMAT, "catalog_version": catalog.version})],
    }
    return {"version": OSI_VERSION, "semantic_model": [model]}


def _ext(data: Mapping[str, Any]) -> dict[str, str]:
    return {"vendor_name": VENDOR,
            "data": json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)}


def _expression(sql: str) -> dict[str, Any]:
    return {"dialects": [{"dialect": DIALECT, "expression": sql}]}


def _text(value: Mapping[str, str]) -> str:
    return value.get("en") or next(iter(value.values()), "")


def _source(catalog: Catalog, ds: Dataset) -> str:
    if ds.base is None:
        return ds.source.replace(":", ".", 1) if ds.own_columns else ds.table
    base = catalog.datasets[ds.base]
    inner = _source(catalog, base)
    frm = f"({inner}) AS {base.name}" if base.base is not None else inner
    cols = [*ds.key, *(f"{tree.sql()} AS {col}" for col, tree in ds.aggregates.items())]
    where = f" WHERE {ds.base_filter.sql()}" if ds.base_filter is not None else ""
    return f"SELECT {', '.join(cols)} FROM {frm}{where} GROUP BY {', '.join(ds.key)}"


def _dataset(catalog: Catalog, ds: Dataset, dims: list[tuple[int, Dimension]]
             ) -> dict[str, Any]:
    declared = dict(ds.declared)
    columns_declared = declared.pop("columns", None) or {}
    declared.pop("name", None)
    as_column = {d.name: (i, d) for i, d in dims if d.name in ds.columns}
    fields = []
    for col in ds.columns.values():
        f: dict[str, Any] = {"name": col.name, "expression": _expression(col.name),
                             "datatype": DATATYPES[col.kind]}
        if col.desc:
            f["description"] = col.desc
        data: dict[str, Any] = {"type": col.kind, "level": col.level, "pii": col.pii}
        if col.name in columns_declared:
            data["declared"] = columns_declared[col.name]
        if col.name == ds.time:
            f["dimension"] = {"is_time": True}
        if col.name in as_column:
            i, d = as_column[col.name]
            if d.tree.sql() != col.name:
                raise ConfigError(f"dimension {d.name} ({d.dataset}): named like a column of "
                                  f"{ds.name} but is {d.expr!r}; OSI has one field per name")
            f["dimension"] = {"is_time": False}
            data["dimension"] = _dimension_data(i, d)
        f["custom_extensions"] = [_ext(data)]
        fields.append(f)
    for i, d in dims:
        if d.name in as_column:
            continue
        f = {"name": d.name, "expression": _expression(d.tree.sql()),
             "dimension": {"is_time": False}}
        if isinstance(d.tree, exp.Column) and d.tree.name in ds.columns:
            f["datatype"] = DATATYPES[ds.columns[d.tree.name].kind]
        if d.description or d.label:
            f["description"] = _text(d.description or d.label)
        f["custom_extensions"] = [_ext({"dimension": _dimension_data(i, d)})]
        fields.append(f)
    out: dict[str, Any] = {"name": ds.name, "source": _source(catalog, ds),
                           "primary_key": list(ds.key)}
    if ds.description:
        out["description"] = _text(ds.description)
    out["fields"] = fields
    out["custom_extensions"] = [_ext({"definition": declared, "snapshot": ds.snapshot,
                                      "time": ds.time, "customer": ds.customer})]
    return out


def _dimension_data(order: int, d: Dimension) -> dict[str, Any]:
    definition = {k: v for k, v in d.declared.items() if k not in ("name", "dataset")}
    return {"order": order, "definition": definition}


def _relationship(r: Any) -> dict[str, Any]:
    out = {"name": r.name, "from": r.source, "to": r.target,
           "from_columns": list(r.source_columns), "to_columns": list(r.target_columns)}
    if not r.declared:
        out["custom_extensions"] = [_ext({"from_contract": True})]
    return out


def _metric(catalog: Catalog, m: Metric) -> dict[str, Any]:
    out: dict[str, Any] = {"name": m.name, "expression": _expression(metric_sql(m.declared)),
                           "description": _text(m.description)}
    datatype = _datatype(m)
    if datatype:
        out["datatype"] = datatype
    out["ai_context"] = {"synonyms": list(dict.fromkeys(m.label.values()))}
    definition = {k: v for k, v in m.declared.items() if k != "name"}
    data: dict[str, Any] = {"definition": definition, "origin": m.origin,
                            "definition_hash": catalog.definition_hash(m.name),
                            "level": catalog.level(m), "pii": catalog.reads_pii(m)}
    if m.kind != "derived":
        ds = catalog.datasets[m.dataset or ""]
        data["time"] = m.time or ds.time
        data["snapshot"] = ds.snapshot
    out["custom_extensions"] = [_ext(data)]
    return out


def _datatype(m: Metric) -> str | None:
    trees = list(m.trees.values())
    if any(t.find(exp.Div, exp.Avg, *sqlexpr.QUANTILES) for t in trees[:1]):
        return "Float"  # a ratio, an average or a quantile is computed in double (sqlexpr)
    return {"count": "Integer", "money": "Decimal", "shares": "Decimal",
            "ratio": "Float"}.get(m.format)


def metric_sql(declared: Mapping[str, Any], where: str = "metric") -> str:
    """The ANSI SQL expression of a metric as declared: a derived metric's expression; a
    simple or stock metric's measure with its columns qualified by the dataset and its filter
    folded into every aggregate."""
    if declared.get("kind") == "derived":
        return sqlexpr.parse(str(declared.get("expr") or ""), f"{where}: expr").sql()
    dataset = declared.get("dataset")
    measure = _qualify(sqlexpr.parse(str(declared.get("measure") or ""), f"{where}: measure"),
                       dataset)
    if declared.get("filter") is not None:
        flt = _qualify(sqlexpr.parse(declared["filter"], f"{where}: filter"), dataset)
        measure = measure.transform(lambda n: _folded(n, flt))
    return measure.sql()


def _qualify(tree: exp.Expression, dataset: str | None) -> exp.Expression:
    """``tree`` with every bare column named ``dataset.column`` (not period_start/_end)."""
    tree = tree.copy()
    for col in tree.find_all(exp.Column):
        if not col.table and dataset and col.name not in sqlexpr.PSEUDO:
            col.set("table", exp.to_identifier(dataset))
    return tree


def _folded(node: exp.Expression, flt: exp.Expression) -> exp.Expression:
    if not isinstance(node, sqlexpr.AGGREGATES):
        return node
    arg = node.this

    def when(value: exp.Expression) -> exp.Expression:
        return exp.Case(ifs=[exp.If(this=flt.copy(), true=value)])

    if isinstance(arg, exp.Star):
        return node.__class__(this=when(exp.Literal.number(1)))
    if isinstance(arg, exp.Distinct):
        (inner,) = arg.expressions
        return node.__class__(this=exp.Distinct(expressions=[when(inner.copy())]))
    folded = node.copy()  # QUANTILE keeps its p
    folded.set("this", when(arg.copy()))
    return folded


# --- import --------------------------------------------------------------------------------


def documents(doc: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """An OSI document written by ``export`` as the (origin, document) pairs of the metric
    files: one with the datasets, relationships and dimensions, one per metric file of
    origin. Errors name ``where`` and the place in the document."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("semantic_model"), list):
        raise ConfigError(f"{where}: not an OSI document (no semantic_model list)")
    models = doc["semantic_model"]
    if len(models) != 1:
        raise ConfigError(f"{where}: semantic_model: one model expected, found {len(models)}")
    model = models[0]
    top = _caifu(model, f"{where}: semantic_model[0]")
    if top.get("format") != FORMAT:
        raise ConfigError(f"{where}: semantic_model[0]: CAIFU extension format "
                          f"{top.get('format')!r}; this caifu reads {FORMAT}")
    datasets: list[dict[str, Any]] = []
    dimensions: list[tuple[int, dict[str, Any]]] = []
    for i, d in enumerate(model.get("datasets") or []):
        at = f"{where}: datasets[{i}] ({d.get('name')})"
        ext = _caifu(d, at)
        declared = {"name": d["name"], **_mapping(ext.get("definition"), at, "definition")}
        columns: dict[str, Any] = {}
        for j, f in enumerate(d.get("fields") or []):
            fat = f"{at}: fields[{j}] ({f.get('name')})"
            fext = _caifu(f, fat)
            if "declared" in fext:
                columns[f["name"]] = fext["declared"]
            if "dimension" in fext:
                dim = _mapping(fext["dimension"], fat, "dimension")
                definition = {"name": f["name"], "dataset": d["name"],
                              **_mapping(dim.get("definition"), fat, "dimension.definition")}
                want = sqlexpr.parse(str(definition.get("expr") or f["name"]),
                                     f"{fat}: expr").sql()
                got = _sql_of(f, fat)
                if "declared" not in fext and "type" not in fext and got != want:
                    raise ConfigError(f"{fat}: its {DIALECT} expression {got!r} is not the "
                                      f"dimension's CAIFU definition ({want!r}); change both")
                dimensions.append((int(dim.get("order", len(dimensions))), definition))
        if columns:
            declared["columns"] = columns
        keys = list(declared.get("key") or [])
        if keys and list(d.get("primary_key") or []) != keys:
            raise ConfigError(f"{at}: primary_key {d.get('primary_key')} is not the CAIFU "
                              f"definition's key {keys}")
        datasets.append(declared)
    relationships = []
    for i, r in enumerate(model.get("relationships") or []):
        at = f"{where}: relationships[{i}] ({r.get('name')})"
        if _caifu(r, at, required=False).get("from_contract"):
            continue  # the contracts give it
        relationships.append({k: (list(r[k]) if k.endswith("_columns") else r[k])
                              for k in ("name", "from", "to", "from_columns", "to_columns")})
    by_origin: dict[str, list[dict[str, Any]]] = {}
    for i, m in enumerate(model.get("metrics") or []):
        at = f"{where}: metrics[{i}] ({m.get('name')})"
        ext = _caifu(m, at)
        declared = {"name": m["name"], **_mapping(ext.get("definition"), at, "definition")}
        want = metric_sql(declared, at)
        got = _sql_of(m, at)
        if got != want:
            raise ConfigError(f"{at}: its {DIALECT} expression {got!r} is not the one its "
                              f"CAIFU definition gives ({want!r}); change the definition in "
                              "the CAIFU extension (the expression follows from it)")
        by_origin.setdefault(str(ext.get("origin") or "metrics"), []).append(declared)
    out: list[tuple[str, dict[str, Any]]] = [(where, {
        "version": str(top.get("catalog_version") or "0"), "datasets": datasets,
        "relationships": relationships,
        "dimensions": [d for _, d in sorted(dimensions, key=lambda x: x[0])]})]
    out += [(f"{where} ({origin})", {"metrics": metrics})
            for origin, metrics in by_origin.items()]
    return out


def _mapping(value: Any, at: str, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{at}: CAIFU extension {what} is a mapping")
    return dict(value)


def _caifu(item: Mapping[str, Any], at: str, *, required: bool = True) -> dict[str, Any]:
    exts = [e for e in item.get("custom_extensions") or []
            if isinstance(e, Mapping) and e.get("vendor_name") == VENDOR]
    if not exts:
        if required:
            raise ConfigError(f"{at}: no custom_extensions entry with vendor_name {VENDOR}; "
                              "caifu reads back OSI documents it wrote (version, owner and "
                              "labels have no OSI field)")
        return {}
    if len(exts) > 1:
        raise ConfigError(f"{at}: {len(exts)} {VENDOR} extensions; one expected")
    try:
        data = json.loads(exts[0].get("data") or "")
    except json.JSONDecodeError as e:
        raise ConfigError(f"{at}: {VENDOR} extension data is not JSON: {e}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{at}: {VENDOR} extension data is a JSON object")
    return dict(data)


def _sql_of(item: Mapping[str, Any], at: str) -> str:
    for d in (item.get("expression") or {}).get("dialects") or []:
        if d.get("dialect") == DIALECT:
            return str(d.get("expression"))
    raise ConfigError(f"{at}: no {DIALECT} expression")


# --- validation against the OSI JSON Schema ------------------------------------------------

_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "examples"}
_TYPES: dict[str, Any] = {"object": Mapping, "array": list, "string": str, "boolean": bool,
                          "integer": int, "number": (int, float), "null": type(None)}


def validate(doc: Any, schema: Mapping[str, Any]) -> list[str]:
    """Where ``doc`` breaks ``schema`` (``semantic_model[0].metrics[3]: 'expression' is
    required``); empty when it conforms. Handles the keywords the OSI schema uses ($ref to
    $defs, type, properties, required, additionalProperties, items, minItems, enum, const,
    oneOf) and refuses a schema with any other."""
    errors: list[str] = []
    _check(doc, schema, schema, "", errors)
    return errors


def _check(value: Any, node: Mapping[str, Any], root: Mapping[str, Any], path: str,
           errors: list[str]) -> None:
    known = _ANNOTATIONS | {"$ref", "type", "properties", "required", "additionalProperties",
                            "items", "minItems", "enum", "const", "oneOf"}
    unknown = set(node) - known
    if unknown:
        raise ConfigError(f"OSI schema keyword(s) {', '.join(sorted(unknown))} at {path or '/'}"
                          " are not handled by caifu's validator")
    where = path or "document"
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ConfigError(f"OSI schema reference {ref!r} is not a local $defs reference")
        _check(value, root["$defs"][ref.removeprefix("#/$defs/")], root, path, errors)
    if "type" in node:
        want = _TYPES[node["type"]]
        ok = isinstance(value, want) and not (node["type"] in ("integer", "number")
                                              and isinstance(value, bool))
        if not ok:
            errors.append(f"{where}: {type(value).__name__} where the schema wants "
                          f"{node['type']}")
            return
    if "const" in node and value != node["const"]:
        errors.append(f"{where}: {value!r} must be {node['const']!r}")
    if "enum" in node and value not in node["enum"]:
        errors.append(f"{where}: {value!r} is not one of {', '.join(map(str, node['enum']))}")
    if "oneOf" in node:
        matches = 0
        for option in node["oneOf"]:
            sub: list[str] = []
            _check(value, option, root, path, sub)
            matches += not sub
        if matches != 1:
            errors.append(f"{where}: matches {matches} of the schema's alternatives, not one")
    if isinstance(value, Mapping):
        props = node.get("properties", {})
        for key in node.get("required", []):
            if key not in value:
                errors.append(f"{where}: {key!r} is required")
        for key, v in value.items():
            if key in props:
                _check(v, props[key], root, f"{path}.{key}" if path else str(key), errors)
            elif node.get("additionalProperties", True) is False:
                errors.append(f"{where}: {key!r} is not a field the schema allows")
    if isinstance(value, list):
        if len(value) < node.get("minItems", 0):
            errors.append(f"{where}: at least {node['minItems']} item(s)")
        if "items" in node:
            for i, v in enumerate(value):
                _check(v, node["items"], root, f"{path}[{i}]", errors)
