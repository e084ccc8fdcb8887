"""A tenant's tag definitions: where they live, how they are validated and versioned.

Definitions are YAML in the workspace, ``tags/<tenant>.yaml``. A tenant without its own file
uses the packaged defaults (``caifu/data/tags/default.yaml``); ``caifu tags init`` copies them
into the workspace to edit. Each definition version is recorded in the system of record the
first time a build uses it; changing a definition without bumping its version is refused, so
evidence that names a version always means one thing.
"""

from __future__ import annotations

import json

from caifu.adapters.sor.repos import profiles as repo
from caifu.core.errors import ConfigError
from caifu.core.tags import TagDefinition, parse_definitions
from caifu.pipelines.profile import FEATURE_KINDS
from caifu.services.container import Container
from caifu.services.platform.tenant_files import TenantFile, load_yaml
from caifu.services.text import models as text_models
from caifu.text.dictionaries import dictionary_ids
from caifu.text.taxonomy import Taxonomy, default_taxonomy

TAG_FILE = TenantFile("tags")
default_text = TAG_FILE.default_text
config_path = TAG_FILE.path
init_config = TAG_FILE.init


def load_definitions(c: Container, tenant: str) -> tuple[list[TagDefinition], str]:
    """The tenant's definitions and where they came from."""
    text, source = TAG_FILE.read(c, tenant)
    return parse_text(text, source, text_models.taxonomy(c, tenant)), source


def parse_text(text: str, source: str, taxonomy: Taxonomy | None = None
               ) -> list[TagDefinition]:
    """Validate a tags document; text tags' labels against ``taxonomy`` (the tenant's: the
    default plus its extension; the default when not given)."""
    tax = taxonomy or default_taxonomy()
    labels = {i: fam.side for fam in tax.families.values() for i in fam.ids}
    return parse_definitions(load_yaml(text, source), source=source, features=FEATURE_KINDS,
                             dictionaries=set(dictionary_ids()), labels=labels)


def spec_json(d: TagDefinition) -> str:
    return json.dumps(d.spec.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)


def register_versions(c: Container, tenant: str, definitions: list[TagDefinition],
                      source: str) -> None:
    """Record new definition versions; refuse a changed definition under an old version."""
    now = c.clock.now()
    with c.engine.begin() as conn:
        for d in definitions:
            stored = repo.stored_spec(conn, tenant, d.id, d.version)
            if stored is not None and stored != spec_json(d):
                raise ConfigError(
                    f"{source}: tags.{d.id} changed but is still version {d.version}; "
                    f"bump its version so earlier evidence keeps its meaning")
        repo.record_definitions(
            conn, tenant, ((d.id, d.version, d.kind, d.name, spec_json(d)) for d in definitions),
            now)
