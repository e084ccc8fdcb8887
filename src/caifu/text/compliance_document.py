"""The compliance lexicon as a document: its schema, validation and ``extends: default``.

The packaged default is ``caifu/data/compliance/lexicon.yaml`` (its header explains the
document); a tenant's compliance team replaces it or extends it. ``parse_document`` validates
either and raises ``ConfigError`` naming the source and the field; ``text/compliance``
compiles the result into a ``Lexicon``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.resources import files
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from caifu.core.errors import ConfigError
from caifu.text.normalise import normalise

CATEGORIES = ("guaranteed_return", "certainty", "inside_information", "profit_sharing",
              "exaggeration", "off_platform", "sensitive_data")
FORMAT_VERSION = 1
_CATEGORY_ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _words(value: list[str]) -> list[str]:
    for word in value:
        if not isinstance(word, str) or not normalise(word).strip() or len(word) > 40:
            raise ValueError(f"each entry must be 1-40 characters of text (got {word!r})")
    return value


class NegationSpec(_Strict):
    window: int = Field(default=6, ge=0, le=30)
    before: list[str] = []
    after: list[str] = []
    not_negators: list[str] = []
    scope_breakers: list[str] = []
    _check = field_validator("before", "after", "not_negators", "scope_breakers")(_words)


class CategorySpec(_Strict):
    label: str = ""
    severity: Literal["high", "medium", "low"] = "high"
    phrases: list[str] = []
    remove: list[str] = []
    negatable: bool = True
    customer: Literal["ignore", "alert"] = "ignore"
    detectors: list[Literal["resident_id", "bank_card", "secret"]] = []
    secret_keywords: list[str] = []
    _check = field_validator("phrases", "remove", "secret_keywords")(_words)


class LexiconDocument(_Strict):
    format: int
    version: str | int
    extends: Literal["default"] | None = None
    negation: NegationSpec = Field(default_factory=NegationSpec)
    allow: list[str] = []
    categories: dict[str, CategorySpec] = {}
    _check = field_validator("allow")(_words)


def _pydantic_message(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid compliance lexicon"]
    for e in err.errors()[:10]:
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {loc}: {str(e['msg']).removeprefix('Value error, ')}")
    return "\n".join(lines)


def _merge(base: LexiconDocument, over: LexiconDocument, source: str) -> LexiconDocument:
    """``over`` applied to ``base``: lists are added to, scalars replaced, ``remove`` removes."""
    neg = base.negation.model_copy(deep=True)
    if "window" in over.negation.model_fields_set:
        neg.window = over.negation.window
    for name in ("before", "after", "not_negators", "scope_breakers"):
        getattr(neg, name).extend(getattr(over.negation, name))
    cats = {k: v.model_copy(deep=True) for k, v in base.categories.items()}
    for cid, cat in over.categories.items():
        if cid not in cats:
            cats[cid] = cat.model_copy(update={"remove": []})
            continue
        into = cats[cid]
        present = {normalise(p) for p in into.phrases}
        unknown = [p for p in cat.remove if normalise(p) not in present]
        if unknown:
            raise ConfigError(f"{source}: categories.{cid}.remove: not in the default "
                              f"lexicon: {unknown}")
        gone = {normalise(p) for p in cat.remove}
        into.phrases = [p for p in into.phrases if normalise(p) not in gone] + cat.phrases
        into.secret_keywords = into.secret_keywords + cat.secret_keywords
        for name in cat.model_fields_set - {"phrases", "remove", "secret_keywords"}:
            setattr(into, name, getattr(cat, name))
    return LexiconDocument(format=over.format, version=over.version, negation=neg,
                           allow=base.allow + over.allow, categories=cats)


def parse_document(document: Any, *, source: str) -> tuple[LexiconDocument, str | None]:
    """A parsed YAML document validated (and merged onto the default when it extends it);
    with the default's version it is based on, if any."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping with format, version and categories")
    try:
        doc = LexiconDocument.model_validate(document)
    except ValidationError as err:
        raise ConfigError(_pydantic_message(source, err)) from None
    if doc.format != FORMAT_VERSION:
        raise ConfigError(f"{source}: format: {doc.format} is not supported (this caifu "
                          f"reads format {FORMAT_VERSION})")
    for cid in doc.categories:
        if not _CATEGORY_ID.match(cid):
            raise ConfigError(f"{source}: categories.{cid}: a category id is 2-40 lower-case "
                              "letters, digits and _")
    based_on = None
    if doc.extends == "default":
        base = default_document()
        doc, based_on = _merge(base, doc, source), str(base.version)
    else:
        if not doc.categories:
            raise ConfigError(f"{source}: categories: a lexicon that does not extend the "
                              "default needs at least one category")
        removing = [c for c, v in doc.categories.items() if v.remove]
        if removing:
            raise ConfigError(f"{source}: categories.{removing[0]}.remove: only a lexicon "
                              "with 'extends: default' can remove phrases")
    return doc, based_on


@lru_cache(maxsize=1)
def default_document() -> LexiconDocument:
    text = (files("caifu.data") / "compliance" / "lexicon.yaml").read_text(encoding="utf-8")
    return LexiconDocument.model_validate(yaml.safe_load(text))


