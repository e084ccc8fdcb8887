"""Text tags from the hybrid chat tagger: label validation, and tags over real labelled text.

The expectations come from the corpus's labels (``caifu/data/text/corpus``: verbatim public
messages, labelled by its guide), never from the tagger's own output.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import pyarrow as pa
import pytest

from caifu.core.errors import ConfigError
from caifu.pipelines.tags import TagHit, text_rules, text_tag_hits
from caifu.services.profiles.tag_definitions import default_text, parse_text
from caifu.text.corpus import CorpusItem, load_corpus
from caifu.text.dictionaries import seed_rules
from caifu.text.hybrid import HybridTagger
from caifu.text.tagging import ChatTagger
from caifu.text.taxonomy import default_taxonomy

AS_OF = dt.date(2026, 10, 30)
WHEN = dt.datetime(2026, 10, 30, 2)  # 10:00 in Shanghai, UTC stored


@cache
def _tagger() -> HybridTagger:
    return HybridTagger.load()


@cache
def _items(split: str, side: str) -> tuple[CorpusItem, ...]:
    return tuple(load_corpus(None, default_taxonomy()).split(split, side))


def _messages(items: list[tuple[str, str, str]]) -> pa.Table:
    """``(message id = customer id, sender, text)`` rows, all sent at ``WHEN``."""
    return pa.table({"msg_id": [i for i, _, _ in items], "customer_id": [i for i, _, _ in items],
                     "msg_time": [WHEN] * len(items), "sender": [s for _, s, _ in items],
                     "content": [t for _, _, t in items]})


def _tag(yaml_tags: str, items: list[tuple[str, str, str]], rules: bool = False
         ) -> list[TagHit]:
    defs = parse_text("tags:\n" + yaml_tags, "t.yaml")
    chat = ChatTagger(text_rules(defs, seed_rules())) if rules else None
    return text_tag_hits(_messages(items), defs, _tagger(), AS_OF, 8, chat)


# --- validation ----------------------------------------------------------------------------


def test_labels_are_checked_against_the_tenants_taxonomy() -> None:
    tag = "  x:\n    name: X\n    kind: text\n    version: 1\n    labels: [{}]\n"
    assert parse_text("tags:\n" + tag.format("redeem, 'security:600519', 'fund:110011'"), "t")
    with pytest.raises(ConfigError, match=r"t: tags\.x\.labels: unknown label 'dividend_stock'"):
        parse_text("tags:\n" + tag.format("dividend_stock"), "t")
    extended = default_taxonomy().extend(
        {"extends": "default", "add": {"interests": {"dividend_stock": "高股息"}}}, source="x")
    (d,) = parse_text("tags:\n" + tag.format("dividend_stock"), "t", extended)
    assert d.spec.labels == ("dividend_stock",)  # type: ignore[union-attr]


def test_a_label_must_be_said_by_the_tags_sender() -> None:
    tag = "  x:\n    name: X\n    kind: text\n    version: 1\n    labels: [{}]\n    sender: {}\n"
    with pytest.raises(ConfigError, match="'redeem' is said by the customer, but the tag reads "
                                          "advisor messages"):
        parse_text("tags:\n" + tag.format("redeem", "advisor"), "t")
    assert parse_text("tags:\n" + tag.format("guaranteed_return", "advisor"), "t")
    assert parse_text("tags:\n" + tag.format("guaranteed_return, redeem", "any"), "t")


def test_a_text_tag_needs_labels_or_the_older_form() -> None:
    with pytest.raises(ConfigError, match="tags.x: a text tag needs labels"):
        parse_text("tags:\n  x:\n    name: X\n    kind: text\n    version: 1\n", "t")
    (d,) = parse_text("tags:\n  x:\n    name: X\n    kind: text\n    version: 1\n"
                      "    dictionaries: [board.chinext]\n    patterns: [打新]\n", "t")
    assert d.spec.labels == ()  # type: ignore[union-attr]


def test_default_text_tags_all_use_labels() -> None:
    text = [d for d in parse_text(default_text(), "default") if d.kind == "text"]
    assert text and all(d.spec.labels and not d.spec.dictionaries for d in text)  # type: ignore[union-attr]
    assert {d.id for d in text} >= {"intent_transfer_out", "relief", "anger"}


# --- the older form still works, beside labels ---------------------------------------------


def test_dictionaries_and_patterns_still_tag_and_a_message_counts_once() -> None:
    # cq-0001 of the corpus: "开通创业板需要什么条件20日日均怎么算", labelled chinext
    item = next(i for i in _items("train", "customer") if i.id == "cq-0001")
    assert "chinext" in item.labels["interests"]
    tags = ("  old:\n    name: 旧\n    kind: text\n    version: 1\n    patterns: [20日日均]\n"
            "  both:\n    name: 两者\n    kind: text\n    version: 1\n    labels: [chinext]\n"
            "    patterns: [创业板]\n")
    hits = {h.tag_id: h.evidence for h in _tag(tags, [("c1", "customer", item.text)],
                                               rules=True)}
    assert (hits["old"]["matched"], hits["old"]["start"], hits["old"]["end"],
            hits["old"]["rule"]) == ("20日日均", 11, 16, "dictionaries/patterns")
    assert "label" not in hits["old"]
    # the label and the pattern both match the one message: one mention, the label's evidence
    assert (hits["both"]["label"], hits["both"]["mentions"]) == ("chinext", 1)


def test_sender_decides_the_side_the_tagger_reads() -> None:
    # ad-0001: an advisor's pitch quoted in a penalty case, labelled guaranteed_return
    pitch = next(i for i in _items("train", "advisor") + _items("dev", "advisor")
                 + _items("test", "advisor") if i.id == "ad-0001")
    assert "guaranteed_return" in pitch.labels["violations"]
    tags = ("  promise:\n    name: 承诺收益\n    kind: text\n    version: 1\n"
            "    labels: [guaranteed_return]\n    sender: advisor\n")
    hits = _tag(tags, [("adv", "advisor", pitch.text), ("cust", "customer", pitch.text)])
    assert [(h.customer_id, h.evidence["label"]) for h in hits] == [("adv", "guaranteed_return")]


# --- tags over the corpus's held-out test split --------------------------------------------

GOALS = {"interests": 0.85, "intents": 0.85, "emotions": 0.80}  # issue 14, micro-F1


def _family_f1(family: str) -> tuple[float, int]:
    """Micro-F1 of the default text tags of ``family``: a customer per test-split message,
    holding a tag vs the message carrying one of the tag's labels."""
    items = _items("test", "customer")
    tax = default_taxonomy()
    defs = [d for d in parse_text(default_text(), "default") if d.kind == "text"
            and tax.family_of(d.spec.labels[0]) == family]  # type: ignore[union-attr]
    hits = text_tag_hits(_messages([(i.id, "customer", i.text) for i in items]), defs,
                         _tagger(), AS_OF, 8)
    held = {(h.customer_id, h.tag_id) for h in hits}
    truth = {(i.id, d.id) for i in items for d in defs
             if set(d.spec.labels) & set(i.labels[family])}  # type: ignore[union-attr]
    tp, fp, fn = len(held & truth), len(held - truth), len(truth - held)
    for h in hits:  # evidence quotes the message, whichever part of the tagger found it
        text = next(i.text for i in items if i.id == h.customer_id)
        ev = h.evidence
        assert "matched" not in ev or text[ev["start"]:ev["end"]] == ev["matched"]
        assert all(text[g["span"][0]:g["span"][1]] == g["matched"] for g in ev.get("ngrams", []))
    return (2 * tp / (2 * tp + fp + fn) if tp else 0.0), len(truth)


@pytest.mark.parametrize("family", [
    "interests",
    pytest.param("intents", marks=pytest.mark.xfail(
        strict=True, reason="issue 14's goal is not met yet: the default intent tags reach "
                            "micro-F1 0.60 on the test split (docs/chat-understanding.md)")),
    pytest.param("emotions", marks=pytest.mark.xfail(
        strict=True, reason="issue 14's goal is not met yet: the default emotion tags reach "
                            "micro-F1 0.56 on the test split (docs/chat-understanding.md)")),
])
def test_default_text_tags_reach_the_goal_on_real_text(family: str) -> None:
    f1, support = _family_f1(family)
    assert support >= 5  # the test split is small (149 customer messages)
    assert f1 >= GOALS[family], f"{family}: micro-F1 {f1:.3f} < {GOALS[family]}"
