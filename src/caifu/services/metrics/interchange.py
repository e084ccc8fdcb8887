"""The tenant's metric catalog as an Open Semantic Interchange (Apache Ossie) document, and
definitions read back from one.

- ``export_osi(c, tenant, out)`` writes the catalog (shipped + the tenant's files) as one OSI
  ``semantic_model`` in YAML (``.json``: JSON), checked against the OSI JSON Schema shipped in
  ``caifu/data/osi/osi-schema.json`` before anything is written.
- ``import_osi(c, tenant, path, check=...)`` reads such a document (YAML or JSON), checks it
  against the schema and builds its catalog; then compares every definition with the tenant's
  catalog. Identical ones (same definition hash, same dataset and dimension definitions) are
  already there; a different definition under an existing id is refused (a metric's meaning
  changes under a new id); the new ones are written to the tenant's folder
  (``metrics/<tenant>/osi-<file>.yaml``, audited) unless ``check``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from caifu.core.errors import ConfigError
from caifu.data.contracts import registry
from caifu.pipelines.metrics import osi
from caifu.pipelines.metrics.spec import Catalog, build_catalog
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.metrics.catalog import catalog as catalog_of
from caifu.services.metrics.catalog import tenant_folder
from caifu.services.platform.workspace import get_tenant


@functools.cache
def schema() -> dict[str, Any]:
    """The OSI core JSON Schema (Apache-2.0, see docs/third-party.md)."""
    text = (resources.files("caifu.data") / "osi" / "osi-schema.json").read_text("utf-8")
    out: dict[str, Any] = json.loads(text)
    return out


def _checked(doc: dict[str, Any], where: str) -> None:
    errors = osi.validate(doc, schema())
    if errors:
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise ConfigError(f"{where}: not a valid OSI {osi.OSI_VERSION} document: "
                          f"{'; '.join(errors[:5])}{more}")


@dataclass
class Exported:
    path: Path
    datasets: int
    relationships: int
    dimensions: int
    metrics: int


def export_osi(c: Container, tenant: str, out: Path) -> Exported:
    get_tenant(c, tenant)
    cat = catalog_of(c, tenant)
    doc = osi.export(cat, name=f"caifu_{tenant}",
                     description=f"caifu governed metrics of tenant {tenant} "
                                 f"(catalog {cat.version})")
    _checked(doc, "the export")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    else:
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)
    out.write_text(text, encoding="utf-8")
    return Exported(out, len(cat.datasets), len(cat.relationships), len(cat.dimensions),
                    len(cat.metrics))


@dataclass
class Imported:
    path: Path
    catalog: Catalog
    same: list[str] = field(default_factory=list)  # "metric aum", "dataset trades", ...
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # with the reason
    written: Path | None = None


def read_osi(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The metric-file documents of an OSI file caifu wrote."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path.name}: neither YAML nor JSON: {e}") from None
    _checked(doc, path.name)
    return osi.documents(doc, path.name)


def _compare(report: Imported, new: dict[str, list[dict[str, Any]]], kind: str,
             imported: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Datasets or dimensions of the file against the tenant's: new ones to write, changed
    ones to refuse, the same ones to skip."""
    for name, item in imported.items():
        have = current.get(name)
        if have is None:
            report.new.append(f"{kind} {name}")
            new[f"{kind}s"].append(dict(item.declared))
        elif have != item or dict(have.declared) != dict(item.declared):
            report.changed.append(f"{kind} {name}: its definition differs")
        else:
            report.same.append(f"{kind} {name}")


def import_osi(c: Container, tenant: str, path: Path, *, check: bool = False,
               actor: str = "cli") -> Imported:
    get_tenant(c, tenant)
    docs = read_osi(path)
    imported = build_catalog(docs, registry())
    current = catalog_of(c, tenant)
    report = Imported(path, imported)
    new: dict[str, list[dict[str, Any]]] = {"datasets": [], "relationships": [],
                                            "dimensions": [], "metrics": []}
    _compare(report, new, "dataset", imported.datasets, current.datasets)
    rels = {r.name: r for r in current.relationships}
    for r in imported.relationships:
        if not r.declared:
            continue
        if r.name not in rels:
            report.new.append(f"relationship {r.name}")
            new["relationships"].append({"name": r.name, "from": r.source, "to": r.target,
                                         "from_columns": list(r.source_columns),
                                         "to_columns": list(r.target_columns)})
        elif rels[r.name] != r:
            report.changed.append(f"relationship {r.name}: its definition differs")
        else:
            report.same.append(f"relationship {r.name}")
    _compare(report, new, "dimension", imported.dimensions, current.dimensions)
    for name, m in imported.metrics.items():
        if name not in current.metrics:
            report.new.append(f"metric {name}")
            new["metrics"].append(dict(m.declared))
            continue
        mine, theirs = current.definition_hash(name), imported.definition_hash(name)
        if mine != theirs:
            report.changed.append(f"metric {name}: definition hash {theirs}, the tenant's is "
                                  f"{mine}")
        else:
            report.same.append(f"metric {name}")
    if check:
        return report
    if report.changed:
        raise ConfigError(f"{path.name}: {len(report.changed)} definition(s) differ from the "
                          f"tenant's under the same id ({'; '.join(report.changed[:5])}): "
                          "a definition that changes meaning takes a new id; nothing written")
    if not report.new:
        return report
    folder = tenant_folder(c, tenant)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"osi-{path.stem}.yaml"
    if target.exists():
        raise ConfigError(f"{target} exists already (an earlier import of {path.name} with "
                          "other definitions); remove it or rename the file")
    body = {"version": imported.version, **{k: v for k, v in new.items() if v}}
    target.write_text(f"# imported from {path.name} (Open Semantic Interchange)\n"
                      + yaml.safe_dump(body, allow_unicode=True, sort_keys=False, width=100),
                      encoding="utf-8")
    try:
        catalog_of(c, tenant)  # the tenant's files with it still make one catalog
    except ConfigError:
        target.unlink()
        raise
    audit.append(c, tenant, actor, "configure",
                 fields=[f"metrics:{item.replace(' ', ':')}" for item in report.new])
    report.written = target
    return report
