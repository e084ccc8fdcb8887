"""Tag definitions: declarative, versioned, per tenant — and their validation.

A tenant's tags live in its workspace as YAML (``tags/<tenant>.yaml``; the packaged default
is copied there when the tenant is created). This module validates the parsed document; it
reads no file. Three kinds::

    tags:
      dormant:                       # tag id: letters, digits, _ . - or Chinese
        name: 沉睡客户
        kind: rule                   # over profile features (core.expressions grammar)
        version: 1                   # bump when the meaning changes; evidence records it
        when: days_since_last_trade >= 180 and aum > 0
      interest_chinext:
        name: 关注创业板
        kind: text                   # from chat messages
        version: 2
        labels: [chinext]            # taxonomy labels or security:<code> / fund:<code>
        sender: customer             # customer | advisor | any
        lookback_days: 90            # messages this recent count
        valid_days: 90               # the tag lapses this long after the last mention
      churn_risk:
        name: 流失风险高
        kind: model                  # a score from a model, by threshold
        version: 1
        score: churn_90d
        min_score: 0.6

A text tag holds when the customer's messages in the lookback carry any of its ``labels``
(what the hybrid chat tagger, ``caifu.text.hybrid``, gives a message: taxonomy label ids such
as ``redeem`` or ``loss_anxiety``, and named things ``security:600519``, ``fund:110011``), or
match any of its ``dictionaries`` (seed dictionaries, ``caifu.text.dictionaries``) or
``patterns`` (literal phrases) — the older form, kept for definitions written before labels.
A tag may combine them; a message counts once.

Validation errors name the tag and field, and for expressions the column; an unknown label
names the label and the closest known ones.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from caifu.core import expressions as ex
from caifu.core.errors import ConfigError

# 且/或/非 are the expression language's and/or/not, so a tag id cannot contain them
TAG_ID = re.compile(r"^(?:(?![且或非])[\w.\-]){1,64}$")
# dictionaries built from the tenant's own master data at build time
MASTER_DICTIONARY = re.compile(r"^(?:security\.\d{6}|fund\.[A-Za-z0-9]{1,16})$")
# named things the chat tagger finds from the tenant's own master data (interests)
MASTER_LABEL = re.compile(r"^(?:security:\d{6}|fund:[A-Za-z0-9]{1,16})$")
FORMAT_VERSION = 1


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    description: str = ""


class RuleTag(_Base):
    kind: Literal["rule"]
    when: str
    valid_days: int | None = Field(default=None, ge=1)


class TextTag(_Base):
    kind: Literal["text"]
    labels: tuple[str, ...] = ()
    dictionaries: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    sender: Literal["customer", "advisor", "any"] = "customer"
    lookback_days: int = Field(default=90, ge=1, le=3660)
    valid_days: int = Field(default=90, ge=1, le=3660)
    min_mentions: int = Field(default=1, ge=1)


class ModelTag(_Base):
    kind: Literal["model"]
    score: str
    min_score: float = Field(ge=0.0, le=1.0)


TagSpec = RuleTag | TextTag | ModelTag


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = FORMAT_VERSION
    tags: dict[str, RuleTag | TextTag | ModelTag] = Field(default_factory=dict)


@dataclass(frozen=True)
class TagDefinition:
    id: str
    spec: TagSpec
    expression: ex.Expr | None = None  # parsed ``when`` of a rule tag

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> int:
        return self.spec.version


def _format_pydantic(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors()[:10]:
        loc = ".".join(str(p) for p in e["loc"] if p not in ("RuleTag", "TextTag", "ModelTag"))
        # a union error repeats per member; the member names carry no meaning for a user
        loc = re.sub(r"\.(rule|text|model)\b", "", loc)
        lines.append(f"  {loc}: {e['msg']}")
    return f"{source}: invalid tag definitions\n" + "\n".join(dict.fromkeys(lines))


def parse_definitions(document: Any, *, source: str, features: Mapping[str, str],
                      dictionaries: set[str], scores: set[str] | None = None,
                      labels: Mapping[str, str] | None = None) -> list[TagDefinition]:
    """Validate a parsed tags document; ``ConfigError`` says which tag and field is wrong.

    ``labels`` maps each label id of the tenant's chat taxonomy to the side that speaks it
    (``customer`` or ``advisor``); without it no taxonomy label is known.
    """
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping with a 'tags' key")
    tags = document.get("tags") or {}
    if not isinstance(tags, dict):
        raise ConfigError(f"{source}: invalid tag definitions: 'tags' must map tag ids to "
                          "definitions")
    kinds = {k: v.get("kind") for k, v in tags.items() if isinstance(v, dict)}
    for tag_id, kind in kinds.items():
        if kind not in ("rule", "text", "model"):
            raise ConfigError(f"{source}: tags.{tag_id}.kind: must be rule, text or model "
                              f"(got {kind!r})")
    try:
        doc = _Document.model_validate(document)
    except ValidationError as err:
        raise ConfigError(_format_pydantic(source, err)) from None
    if doc.version != FORMAT_VERSION:
        raise ConfigError(f"{source}: format version {doc.version} is not supported "
                          f"(this caifu reads version {FORMAT_VERSION})")
    out: list[TagDefinition] = []
    for tag_id, spec in doc.tags.items():
        where = f"{source}: tags.{tag_id}"
        if not TAG_ID.match(tag_id):
            raise ConfigError(f"{where}: a tag id is 1–64 letters, digits, _ . - or Chinese "
                              "characters other than 且 或 非")
        expression = None
        if isinstance(spec, RuleTag):
            try:
                expression = ex.compile_checked(spec.when, features, tags=None)
            except ex.ExpressionError as err:
                raise ConfigError(f"{where}.when: {err}") from None
        elif isinstance(spec, TextTag):
            if not spec.labels and not spec.dictionaries and not spec.patterns:
                raise ConfigError(f"{where}: a text tag needs labels (or, the older form, "
                                  "dictionaries or patterns)")
            _check_labels(where, spec, labels or {})
            unknown = [d for d in spec.dictionaries
                       if d not in dictionaries and not MASTER_DICTIONARY.match(d)]
            if unknown:
                raise ConfigError(f"{where}.dictionaries: unknown dictionary {unknown[0]!r} "
                                  "(seed dictionaries: board.*, index.*, intent.*, emotion.*, "
                                  "industry.*, theme.*; security.<code> and fund.<code> from "
                                  "master data; see docs/tags-and-segments.md)")
            if any(not p.strip() for p in spec.patterns):
                raise ConfigError(f"{where}.patterns: a pattern may not be empty")
        elif isinstance(spec, ModelTag) and scores is not None and spec.score not in scores:
            raise ConfigError(f"{where}.score: no model score named {spec.score!r} "
                              f"(known: {', '.join(sorted(scores)) or 'none yet'})")
        out.append(TagDefinition(tag_id, spec, expression))
    return out


def _check_labels(where: str, spec: TextTag, known: Mapping[str, str]) -> None:
    """Every label is in the taxonomy (or names a security or fund) and is spoken by the
    side whose messages the tag reads."""
    for label in spec.labels:
        if MASTER_LABEL.match(label):
            side = "customer"
        elif label in known:
            side = known[label]
        else:
            close = difflib.get_close_matches(label, list(known), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"{where}.labels: unknown label {label!r}{hint} (a label is an "
                              "id of the chat taxonomy — caifu/data/text/taxonomy.yaml plus "
                              "the tenant's text/<tenant>/taxonomy.yaml — or security:<code> "
                              "or fund:<code>; see docs/tags-and-segments.md)")
        if spec.sender != "any" and side != spec.sender:
            raise ConfigError(f"{where}.labels: {label!r} is said by the {side}, but the tag "
                              f"reads {spec.sender} messages (set sender: {side} or any)")
