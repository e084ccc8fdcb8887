"""The data dictionary: every table and column caifu reads, generated from the contracts and
the metric files, with what uses each column (from the lineage).

Per column: type, JR/T 0158 level, PII flag, description in Chinese (the contract's ``desc``)
and English (``caifu/data/contracts/english.yaml``), and the metrics, profile features and
rule tags that read it. A table's owner is the owner of the metric dataset that reads it;
a table no metric file names is the data office's (``data-office``). Rendered as
``docs/data-dictionary.md`` by ``caifu docs`` (a test keeps it in step) and served as JSON by
``GET /v1/dictionary``.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml

from caifu.core.errors import ConfigError
from caifu.core.identity import Principal
from caifu.data.contracts import registry
from caifu.pipelines import lineage as ln
from caifu.services.container import Container
from caifu.services.metrics.lineage import Lineage

DEFAULT_OWNER = "data-office"


@functools.cache
def english() -> dict[str, dict[str, Any]]:
    """``{table: {"desc": ..., "columns": {column: ...}}}`` from english.yaml."""
    text = (resources.files("caifu.data.contracts") / "english.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text) or {}
    tables = doc.get("tables")
    if not isinstance(tables, dict):
        raise ConfigError("caifu/data/contracts/english.yaml: tables: table → {desc, columns}")
    return tables


def dictionary(lin: Lineage) -> dict[str, Any]:
    """The dictionary as plain data: tables in contract order, then operational tables."""
    en = english()
    used = lin.used_by()
    owners: dict[str, str] = {}
    table_zh: dict[str, str] = {}
    for ds in lin.catalog.datasets.values():
        if ds.base is None and ds.owner:
            owners.setdefault(ds.source, ds.owner)
        if ds.own_columns and ds.base is None:
            table_zh.setdefault(ds.source, ds.description.get("zh", ""))
    tables: list[dict[str, Any]] = []
    for t in registry():
        tables.append(_table(t.name, t.store, t.desc, owners, en, used, lin, list(t.key)))
    for ds in lin.catalog.datasets.values():
        if ds.own_columns and ds.base is None and \
                all(x["name"] != ds.source for x in tables):
            tables.append(_table(ds.source, ds.source.partition(":")[0], table_zh.get(ds.source, ""), owners, en,
                                 used, lin, list(ds.key)))
    return {"catalog_version": lin.catalog.version, "tenant": lin.tenant,
            "default_owner": DEFAULT_OWNER, "tables": tables}


def _table(name: str, store: str, zh: str, owners: dict[str, str],
           en: dict[str, dict[str, Any]], used: dict[ln.Source, dict[str, list[str]]],
           lin: Lineage, key: list[str]) -> dict[str, Any]:
    entry = en.get(name) or {}
    cols_en = entry.get("columns") or {}
    columns = []
    for s, f in lin.facts.items():
        if s.table != name:
            continue
        u = used.get(s, {"metrics": [], "features": [], "tags": []})
        columns.append({"name": s.column, "type": f.kind, "level": f.level, "pii": f.pii,
                        "description": {"zh": f.desc, "en": str(cols_en.get(s.column, ""))},
                        "metrics": u["metrics"], "features": u["features"], "tags": u["tags"]})
    return {"name": name, "store": store, "key": key,
            "owner": owners.get(name, DEFAULT_OWNER),
            "description": {"zh": zh, "en": str(entry.get("desc", ""))}, "columns": columns}


def _list(names: list[str], limit: int = 12) -> str:
    if not names:
        return ""
    shown = ", ".join(f"`{n}`" if not n.startswith("(") else n for n in names[:limit])
    return shown + (f" … (+{len(names) - limit})" if len(names) > limit else "")


def render(d: dict[str, Any]) -> str:
    out = [
        "# Data dictionary",
        "",
        "Generated from the contracts (`src/caifu/data/contracts`), their English descriptions",
        "(`src/caifu/data/contracts/english.yaml`), the metric files (`src/caifu/data/metrics`)",
        "and the column lineage (`docs/lineage.md`) by `caifu docs`; do not edit by hand. The",
        "same as JSON: `GET /v1/dictionary`.",
        "",
        "Levels are JR/T 0158-2018 data levels (1 低 … 4 极高); level ≥ 3 values are masked by",
        "default. A table's owner is the owner of the metric dataset that reads it;",
        f"`{d['default_owner']}` owns the tables no metric file names. *Used by* lists the",
        "metrics, profile features and rule tags whose compiled SQL reads the column (the",
        "profile's join keys, shared by every feature, are shown as *all features*).",
        "",
        "| table | store | owner | 说明 | description |",
        "|---|---|---|---|---|",
    ]
    for t in d["tables"]:
        anchor = t["name"].replace(":", "")
        out.append(f"| [`{t['name']}`](#{anchor}) | {t['store']} | {t['owner']} | "
                   f"{t['description']['zh']} | {t['description']['en']} |")
    for t in d["tables"]:
        out += ["", f"## {t['name']}", "",
                f"{t['description']['zh']} — {t['description']['en']}. Owner: "
                f"**{t['owner']}**; key ({', '.join(t['key'])}).", "",
                "| column | type | level | PII | 说明 | description | metrics | features | "
                "tags |",
                "|---|---|---|---|---|---|---|---|---|"]
        for c in t["columns"]:
            out.append(f"| `{c['name']}` | {c['type']} | {c['level']} | "
                       f"{'yes' if c['pii'] else ''} | {c['description']['zh']} | "
                       f"{c['description']['en']} | {_list(c['metrics'])} | "
                       f"{_list(c['features'])} | {_list(c['tags'])} |")
    return "\n".join(out) + "\n"


def for_caller(c: Container, p: Principal) -> dict[str, Any]:
    """The dictionary of the caller's tenant (its own metric files and tags included)."""
    from caifu.services.metrics.lineage import lineage_of
    from caifu.services.platform.access import tenant_of

    return dictionary(lineage_of(c, tenant_of(p)))


def render_shipped() -> str:
    from caifu.services.metrics.lineage import shipped_lineage

    return render(dictionary(shipped_lineage()))
