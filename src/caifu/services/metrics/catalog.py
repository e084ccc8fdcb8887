"""The metric catalog of a tenant: the shipped files and the tenant's own.

Shipped definitions live in the package (``caifu/data/metrics/*.yaml``); a tenant adds
datasets, dimensions and metrics in ``<workspace>/metrics/<tenant>/*.yaml`` — new ids only:
a shipped metric keeps one meaning under its id everywhere (an industry-cloud figure and a
broker's must agree).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from caifu.core.errors import ConfigError
from caifu.data.contracts import registry
from caifu.pipelines.metrics.spec import Catalog, build_catalog
from caifu.services.container import Container


def _read(origin: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{origin}: not valid YAML: {e}") from None


@functools.cache
def shipped_documents() -> tuple[tuple[str, Any], ...]:
    folder = resources.files("caifu.data") / "metrics"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            out.append((f"caifu/data/metrics/{entry.name}", _read(entry.name, entry.read_text(
                encoding="utf-8"))))
    return tuple(out)


@functools.cache
def shipped() -> Catalog:
    return build_catalog(shipped_documents(), registry())


def tenant_folder(c: Container, tenant: str) -> Path:
    return c.root / "metrics" / tenant


def catalog(c: Container | None, tenant: str | None) -> Catalog:
    """The shipped catalog, plus the tenant's files when it has any."""
    if c is None or tenant is None:
        return shipped()
    folder = tenant_folder(c, tenant)
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not files:
        return shipped()
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in files)
    return _with_tenant(stamp)


@functools.lru_cache(maxsize=32)
def _with_tenant(stamp: tuple[tuple[str, int], ...]) -> Catalog:
    docs = [*shipped_documents()]
    for path, _ in stamp:
        p = Path(path)
        docs.append((f"{p.parent.name}/{p.name}", _read(p.name, p.read_text(encoding="utf-8"))))
    return build_catalog(docs, registry(), shipped=frozenset(shipped().metrics))
