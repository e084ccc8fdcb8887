"""A tenant's chat tagger: the shipped one, or the tenant's own retrained with its additions.

Files in the workspace, all optional (``<workspace>/text/<tenant>/``):

- ``taxonomy.yaml``: ``extends: default`` plus ``add:`` labels per family
  (``caifu.text.taxonomy``);
- ``examples.jsonl``: labelled examples in the corpus format (``caifu/data/text/README.md``),
  which join the train split;
- ``model/``: the tenant's model, written by ``caifu text train -t TENANT``.

``tagger`` uses the tenant's model when there is one (else the shipped model), the seed
dictionaries plus the tenant's securities and funds, and the default compliance lexicon.
``tagger_version`` says which model and taxonomy it would use without building it: a caller
that keeps a tagger (the build, the real-time worker) rebuilds it when that or the master
data change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.core.errors import ConfigError
from caifu.data.contracts import registry
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.text.classifier import TextModel, packaged_model_dir
from caifu.text.corpus import Corpus, load_corpus, load_examples
from caifu.text.hybrid import HybridTagger, fit
from caifu.text.taxonomy import Taxonomy, default_taxonomy


@dataclass(frozen=True)
class TenantText:
    folder: Path

    @property
    def taxonomy_file(self) -> Path:
        return self.folder / "taxonomy.yaml"

    @property
    def examples_file(self) -> Path:
        return self.folder / "examples.jsonl"

    @property
    def model_dir(self) -> Path:
        return self.folder / "model"


def tenant_text(c: Container, tenant: str) -> TenantText:
    get_tenant(c, tenant)  # TenantError if there is no such tenant
    return TenantText(c.root / "text" / tenant)


def taxonomy(c: Container, tenant: str) -> Taxonomy:
    files = tenant_text(c, tenant)
    base = default_taxonomy()
    if not files.taxonomy_file.is_file():
        return base
    import yaml

    text = files.taxonomy_file.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{files.taxonomy_file}: not valid YAML: {err}") from None
    return base.extend(doc, source=str(files.taxonomy_file))


def training_corpus(c: Container, tenant: str, corpus_dir: Path | None) -> tuple[Corpus, Taxonomy]:
    """The corpus (packaged unless ``corpus_dir``) plus the tenant's examples, if any."""
    tax = taxonomy(c, tenant)
    corpus = load_corpus(corpus_dir, tax)
    files = tenant_text(c, tenant)
    if files.examples_file.is_file():
        corpus = corpus.with_examples(load_examples(files.examples_file, tax))
    return corpus, tax


def train(c: Container, tenant: str, corpus_dir: Path | None) -> tuple[TextModel, Path]:
    corpus, tax = training_corpus(c, tenant, corpus_dir)
    model = fit(corpus, tax)
    out = tenant_text(c, tenant).model_dir
    model.save(out)
    return model, out


def model_dir(c: Container, tenant: str) -> Path | Traversable:
    """The tenant's own model when ``caifu text train -t TENANT`` wrote one, else the shipped."""
    files = tenant_text(c, tenant)
    return files.model_dir if (files.model_dir / "manifest.json").is_file() \
        else packaged_model_dir()


def tagger_version(c: Container, tenant: str) -> str:
    """A digest of what the tenant's tagger is built from besides master data: its model's
    manifest (version, weights' SHA-256, calibration) and its taxonomy."""
    digest = hashlib.sha256(tenant.encode())
    digest.update(model_dir(c, tenant).joinpath("manifest.json").read_bytes())
    digest.update(taxonomy(c, tenant).version.encode())
    tax_file = tenant_text(c, tenant).taxonomy_file
    if tax_file.is_file():
        digest.update(tax_file.read_bytes())
    return digest.hexdigest()[:16]


def tagger(c: Container, tenant: str, securities: Any = None, funds: Any = None
           ) -> HybridTagger:
    """The tenant's tagger; ``securities`` and ``funds`` (Arrow tables) when the caller has
    them already, else they are read from the system of record."""
    if securities is None or funds is None:
        reg = registry()
        with c.engine.connect() as conn:
            securities = ingest_repo.rows(conn, tenant, reg["securities"])
            funds = ingest_repo.rows(conn, tenant, reg["fund_products"])
    return HybridTagger.load(model_dir(c, tenant), securities=securities, funds=funds,
                             taxonomy=taxonomy(c, tenant))
