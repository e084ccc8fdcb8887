"""A story's companies and its event: the company linking step, and the operator's manual
classification (the classifier will fill the same columns).

    tenant_linker(c, tenant)                   the shipped A-share list + the tenant's aliases
                                               and relations (risk_aliases, risk_relations),
                                               built once per tenant and rebuilt when those
                                               tables change
    link_story(c, tenant, story_id)            title + body of the founding document →
                                               tenant_linker → risk_stories.companies_json
    classify_story(c, tenant, story_id, event_type, polarity, actor)
                                               an operator's event type and polarity, audited

Each linked company keeps its code (None for an unlisted party without a relation), the name
as written, rule, score, where it was written (title or body, offsets) and the evidence
sentence. The shipped A-share list is the master; the tenant's aliases (former names,
nicknames) and relations (unlisted parties → listed companies) are loaded with ``caifu risk
aliases load`` / ``caifu risk relations load`` (``services/risk/reference``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from caifu.adapters.sor.repos import risk as repo
from caifu.core.errors import NotFoundError
from caifu.risk.alerts import check_classification
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.risk.intake import story_with_documents
from caifu.text.companies import CompanyLinker, CompanyMention
from caifu.text.company_master import NameAlias, PartyRelation


@lru_cache(maxsize=1)
def _shipped_linker() -> CompanyLinker:
    return CompanyLinker()  # ~1 s to build: once per process


def linker(aliases: Sequence[NameAlias] = (), relations: Sequence[PartyRelation] = ()
           ) -> CompanyLinker:
    return CompanyLinker(aliases=aliases, relations=relations) if aliases or relations \
        else _shipped_linker()


_TENANT_LINKERS: dict[tuple[str, str], tuple[tuple[Any, ...], CompanyLinker]] = {}
_TENANT_LOCK = threading.Lock()


def tenant_reference(c: Container, tenant: str) -> tuple[list[NameAlias], list[PartyRelation]]:
    """The tenant's aliases and relations as the linker takes them."""
    with c.engine.connect() as conn:
        aliases = [NameAlias(r["name"], r["code"], r["valid_from"], r["valid_to"], r["kind"])
                   for r in repo.reference_rows(conn, tenant, "aliases")]
        relations = [PartyRelation(r["party"], r["code"], r["relation"])
                     for r in repo.reference_rows(conn, tenant, "relations")]
    return aliases, relations


def tenant_linker(c: Container, tenant: str) -> CompanyLinker:
    """The linker for ``tenant``: the shipped A-share list with the tenant's aliases and
    relations. Cached per workspace and tenant; a load that changes either table (rows or
    load time: the stamp ``repos.risk.reference_version`` reads) makes the next call build a
    new one — in this process and any other using the same system of record."""
    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        stamp = repo.reference_version(conn, tenant)
    key = (c.sor_url, tenant)
    with _TENANT_LOCK:
        hit = _TENANT_LINKERS.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    aliases, relations = tenant_reference(c, tenant)
    built = linker(aliases, relations)
    with _TENANT_LOCK:
        _TENANT_LINKERS[key] = (stamp, built)
    return built


def _plain(m: CompanyMention, where: str, offset: int) -> dict[str, Any]:
    return {"code": m.code, "name": m.name, "listed": m.listed, "rule": m.rule,
            "score": round(m.score, 3), "field": where, "start": m.start - offset,
            "end": m.end - offset, "sentence": m.evidence.sentence,
            "because": list(m.evidence.because), "ambiguity": m.evidence.ambiguity}


def companies_of(title: str, body: str, published: Any, using: CompanyLinker
                 ) -> list[dict[str, Any]]:
    """Every mention in title + body, with offsets within the field it is in."""
    text = f"{title}\n{body}" if body else title
    out = []
    for m in using.link(text, published):
        in_title = m.end <= len(title)
        out.append(_plain(m, "title" if in_title else "body", 0 if in_title else len(title) + 1))
    return out


def link_story(c: Container, tenant: str, story_id: str,
               aliases: Sequence[NameAlias] | None = None,
               relations: Sequence[PartyRelation] | None = None) -> list[dict[str, Any]]:
    """Link the story's founding document and store the companies on the story: with the
    tenant's linker (``tenant_linker``), or with ``aliases`` and ``relations`` given
    instead of the tenant's tables."""
    story, docs = story_with_documents(c, tenant, story_id)
    first = next((d for d in docs if d["document_id"] == story["first_document_id"]), docs[0])
    using = tenant_linker(c, tenant) if aliases is None and relations is None \
        else linker(aliases or (), relations or ())
    found = companies_of(first["title"], first["body"], first["published_at"].date(), using)
    with c.engine.begin() as conn:
        repo.set_companies(conn, tenant, story_id, json.dumps(found, ensure_ascii=False),
                           c.clock.now())
    return found


def classify_story(c: Container, tenant: str, story_id: str, event_type: str, polarity: str,
                   actor: str) -> None:
    """An operator sets the story's event type and polarity (the classifier's columns);
    audited (``risk_classify``) before it is written."""
    from caifu.services.compliance import audit

    get_tenant(c, tenant)
    check_classification(event_type, polarity)
    with c.engine.connect() as conn:
        if repo.story(conn, tenant, story_id) is None:
            raise NotFoundError(f"no story {story_id!r}")
    audit.append(c, tenant, actor, "risk_classify", fields=["event_type", "polarity"],
                 reason=f"story {story_id}: {event_type}, {polarity}")
    with c.engine.begin() as conn:
        repo.set_classification(conn, tenant, story_id, event_type, polarity,
                                f"operator:{actor}", c.clock.now())
