"""Tag assignment: rule tags over features (Ibis), text tags over chat messages, model tags.

Each function returns the customers that hold a tag as of a date together with the evidence
for it, as plain rows (``TagHit``). Rule and model tags are Ibis expressions evaluated on the
engine; text tags are read in Python by the tenant's hybrid chat tagger
(``caifu.text.hybrid``, passed in by the caller) on the messages the engine selected, so every
engine gives the same text hits by construction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from caifu.core import expressions as ex
from caifu.core.tags import ModelTag, RuleTag, TagDefinition, TextTag
from caifu.pipelines.expressions import compile_expression
from caifu.text.hybrid import HybridTagger
from caifu.text.tagging import ChatTagger, TextHit, TextRule


@dataclass
class TagHit:
    customer_id: str
    tag_id: str
    tag_version: int
    kind: str
    evidence: dict[str, Any]
    expires_at: dt.datetime | None = None


def _plain(value: Any) -> Any:
    """JSON-friendly evidence values (exact decimals as strings, dates ISO)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


def rule_tag_table(features: ir.Table, d: TagDefinition) -> ir.Table:
    """Customers meeting a rule tag's condition, with the features it reads (the evidence)."""
    assert isinstance(d.spec, RuleTag) and d.expression is not None
    used = sorted(ex.fields_used(d.expression) - {"customer_id"})
    hit = features.filter(compile_expression(features, d.expression))
    return hit.select("customer_id", *used)


def _local_midnight_utc(day: dt.date, utc_offset_hours: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time()) - dt.timedelta(hours=utc_offset_hours)


def rule_tag_hits(features: ir.Table, definitions: Sequence[TagDefinition],
                  as_of: dt.date, utc_offset_hours: int) -> list[TagHit]:
    hits: list[TagHit] = []
    for d in definitions:
        if not isinstance(d.spec, RuleTag):
            continue
        rows = rule_tag_table(features, d).to_pyarrow().to_pylist()
        # valid through the local day ``as_of + valid_days - 1``; stored as naive UTC
        expires = (_local_midnight_utc(as_of + dt.timedelta(days=d.spec.valid_days),
                                       utc_offset_hours) if d.spec.valid_days else None)
        for row in rows:
            cid = row.pop("customer_id")
            hits.append(TagHit(cid, d.id, d.version, "rule", {
                "definition": d.id, "version": d.version, "when": d.spec.when,
                "features": {k: _plain(v) for k, v in row.items()}}, expires))
    return hits


def latest_scores(scores: ir.Table, as_of: dt.date, utc_offset_hours: int) -> ir.Table:
    """Each customer's newest value of each score scored by the end of the local day
    ``as_of`` (a later score, or an older one superseded, never decides a tag)."""
    end = _local_midnight_utc(as_of + dt.timedelta(days=1), utc_offset_hours)
    s = scores.filter(scores.scored_at < end)
    ranked = s.mutate(rank=ibis.row_number().over(
        group_by=[s.customer_id, s.score], order_by=[s.scored_at.desc(), s.value.desc()]))
    return ranked.filter(ranked["rank"] == 0).drop("rank")


def model_tag_hits(scores: ir.Table | None, definitions: Sequence[TagDefinition],
                   as_of: dt.date, utc_offset_hours: int) -> list[TagHit]:
    """``scores`` has customer_id, score (name), value in [0, 1], scored_at (naive UTC)."""
    hits: list[TagHit] = []
    if scores is None:
        return hits
    current = latest_scores(scores, as_of, utc_offset_hours)
    for d in definitions:
        if not isinstance(d.spec, ModelTag):
            continue
        spec = d.spec
        chosen = current.filter((current.score == spec.score)
                                & (current.value >= spec.min_score))
        extra = [c for c in ("model_version", "reasons_json") if c in chosen.columns]
        for row in chosen.select("customer_id", "value", *extra).to_pyarrow().to_pylist():
            evidence: dict[str, Any] = {
                "definition": d.id, "version": d.version, "score": spec.score,
                "value": round(float(row["value"]), 6), "min_score": spec.min_score}
            if row.get("model_version"):
                evidence["model_version"] = row["model_version"]
            if row.get("reasons_json"):  # the features that raised this customer's score
                evidence["reasons"] = json.loads(row["reasons_json"])
            hits.append(TagHit(row["customer_id"], d.id, d.version, "model", evidence))
    return hits


def text_rules(definitions: Sequence[TagDefinition], seed: Sequence[TextRule]) -> list[TextRule]:
    """One ``TextRule`` per text tag with ``dictionaries`` or ``patterns`` (the older form):
    its seed dictionaries' patterns plus its own. Tags with labels only get none.

    Seed rules whose tag starts with ``_`` (stop phrases such as 银行卡) are passed through:
    they are never reported but win longest-match contests (银行卡 is not interest in banks).
    """
    by_id: dict[str, list[TextRule]] = {}
    for rule in seed:
        by_id.setdefault(rule.tag, []).append(rule)
    out: list[TextRule] = [rule for rule in seed if rule.tag.startswith("_")]
    for d in definitions:
        if not isinstance(d.spec, TextTag) or not (d.spec.dictionaries or d.spec.patterns):
            continue
        patterns: list[str] = list(d.spec.patterns)
        negatable = True
        for dict_id in d.spec.dictionaries:
            for rule in by_id.get(dict_id, []):
                patterns.extend(rule.patterns)
                negatable = negatable and rule.negatable
        out.append(TextRule(d.id, tuple(dict.fromkeys(patterns)), negatable))
    return out


def uses_rules(definitions: Sequence[TagDefinition]) -> bool:
    """Whether any text tag still uses dictionaries or patterns (needs a ``ChatTagger``)."""
    return any(isinstance(d.spec, TextTag) and (d.spec.dictionaries or d.spec.patterns)
               for d in definitions)


def window(spec: TextTag) -> int:
    """Days of messages that count: a mention older than ``valid_days`` has lapsed already."""
    return min(spec.lookback_days, spec.valid_days)


def messages_for_text_tags(messages: ir.Table, definitions: Sequence[TagDefinition],
                           as_of: dt.date, utc_offset_hours: int) -> ir.Table | None:
    """The text messages any text tag could use: the longest lookback, linked customers."""
    specs = [d.spec for d in definitions if isinstance(d.spec, TextTag)]
    if not specs:
        return None
    lookback = max(window(s) for s in specs)
    local = (messages.msg_time + ibis.interval(hours=utc_offset_hours)).date()
    first = as_of - dt.timedelta(days=lookback - 1)
    m = messages.filter(messages.customer_id.notnull() & (messages.msg_type == "text")
                        & (local >= first) & (local <= as_of) & messages.content.notnull())
    return m.select("msg_id", "customer_id", "msg_time", "sender", "content")


def text_tag_hits(messages: pa.Table, definitions: Sequence[TagDefinition],
                  tagger: HybridTagger, as_of: dt.date, utc_offset_hours: int,
                  rules: ChatTagger | None = None) -> list[TagHit]:
    """Customers whose recent messages carry a text tag's labels (or match its dictionaries
    or patterns) often enough, the newest such message as evidence.

    ``tagger`` reads each message as its sender (customer or advisor side); ``rules`` is the
    ``ChatTagger`` over ``text_rules`` for tags in the older form (``None`` when none is).
    """
    specs = {d.id: d for d in definitions if isinstance(d.spec, TextTag)}
    if not specs or messages.num_rows == 0:
        return []
    contents = messages["content"].to_pylist()
    ids = messages["msg_id"].to_pylist()
    customers = messages["customer_id"].to_pylist()
    times = messages["msg_time"].to_pylist()
    senders = messages["sender"].to_pylist()
    labelled = _read_labels(tagger, specs.values(), contents, senders)
    matched: list[dict[str, TextHit]] = [{} for _ in contents]
    if rules is not None and uses_rules(definitions):
        matched = [_first_per_tag(hits) for hits in rules.tag_batch(contents)]
    model_version = tagger.versions["model"]
    offset = dt.timedelta(hours=utc_offset_hours)
    # (customer, tag) -> [mentions, newest time, newest id, newest evidence]
    best: dict[tuple[str, str], list[Any]] = {}
    for i in range(len(contents)):
        found = labelled[i]
        if not found and not matched[i]:
            continue
        local_day = (times[i] + offset).date()
        for tag_id, d in specs.items():
            spec = d.spec
            assert isinstance(spec, TextTag)
            if spec.sender != "any" and senders[i] != spec.sender:
                continue
            if (as_of - local_day).days >= window(spec):
                continue
            why = _label_evidence(spec, found, model_version)
            if why is None and tag_id in matched[i]:
                h = matched[i][tag_id]
                why = {"rule": "dictionaries/patterns", "matched": h.matched,
                       "start": h.start, "end": h.end}
            if why is None:
                continue
            key = (customers[i], tag_id)
            entry = best.get(key)
            evidence = {"definition": d.id, "version": d.version, "message_id": ids[i],
                        "msg_time": times[i].isoformat(), **why}
            if entry is None:
                best[key] = [1, times[i], ids[i], evidence]
            else:
                entry[0] += 1
                if (times[i], ids[i]) > (entry[1], entry[2]):
                    entry[1], entry[2], entry[3] = times[i], ids[i], evidence
    out: list[TagHit] = []
    for (cid, tag_id), (count, newest, _, evidence) in sorted(best.items()):
        d = specs[tag_id]
        spec = d.spec
        assert isinstance(spec, TextTag)
        if count < spec.min_mentions:
            continue
        evidence["mentions"] = count
        out.append(TagHit(cid, tag_id, d.version, "text", evidence,
                          newest + dt.timedelta(days=spec.valid_days)))
    return out


def _read_labels(tagger: HybridTagger, definitions: Iterable[TagDefinition],
                 contents: list[str | None], senders: list[str]
                 ) -> list[dict[str, list[dict[str, Any]]]]:
    """Per message, the tagger's evidence by label — for the senders some labelled tag reads."""
    sides: set[str] = set()
    for d in definitions:
        spec = d.spec
        if isinstance(spec, TextTag) and spec.labels:
            sides |= {"customer", "advisor"} if spec.sender == "any" else {spec.sender}
    out: list[dict[str, list[dict[str, Any]]]] = [{} for _ in contents]
    for side in sorted(sides):
        rows = [i for i, s in enumerate(senders) if s == side and contents[i]]
        if not rows:
            continue
        for i, tags in zip(rows, tagger.tag_batch([contents[i] or "" for i in rows], side),
                           strict=True):
            out[i] = tags.evidence
    return out


def _label_evidence(spec: TextTag, found: dict[str, list[dict[str, Any]]],
                    model_version: str) -> dict[str, Any] | None:
    """The first of the tag's labels the message carries, with the tagger's evidence for it:
    the span a dictionary or the lexicon matched (``matched``, ``start``, ``end``, ``rule``)
    and/or the classifier's ``score`` and top ``ngrams``."""
    for label in spec.labels:
        items = found.get(label)
        if not items:
            continue
        why: dict[str, Any] = {"label": label,
                               "sources": sorted({str(x["source"]) for x in items}),
                               "model_version": model_version}
        span = next((x for x in items if "span" in x), None)
        if span is not None:
            why.update(matched=span["matched"], start=span["span"][0], end=span["span"][1],
                       rule=span["rule"])
        scored = next((x for x in items if x["source"] == "model"), None)
        if scored is not None:
            why.update(score=scored["score"], ngrams=scored.get("ngrams", []))
        return why
    return None


def _first_per_tag(hits: Iterable[TextHit]) -> dict[str, TextHit]:
    seen: dict[str, TextHit] = {}
    for h in hits:
        seen.setdefault(h.tag, h)
    return seen
