"""The hybrid tagger: clause-scoped negation, the lexicon gated by the classifier, evidence."""

from __future__ import annotations

import copy

import numpy as np
import pyarrow as pa
import pytest

from caifu.text.classifier import TextModel
from caifu.text.compliance import default_lexicon
from caifu.text.dictionaries import seed_rules
from caifu.text.hybrid import HybridTagger
from caifu.text.tagging import ChatTagger


def _silent(model: TextModel, **forced: float) -> TextModel:
    """The model with every margin far below its threshold, bar ``forced`` labels' intercepts."""
    m = copy.deepcopy(model)
    for side in m.sides.values():
        side.weights = np.zeros_like(side.weights)
        side.thresholds = np.zeros_like(side.thresholds)
        side.intercepts = np.array([forced.get(label, -20.0) for _, label in side.labels],
                                   dtype=np.float32)
    return m


def _tagger(model: TextModel, slack: float = 0.0, **kw: object) -> HybridTagger:
    t = HybridTagger(model, seed_rules(**kw), default_lexicon())  # type: ignore[arg-type]
    t.slack = {"intents": slack, "emotions": slack, "violations": slack}
    return t


def test_negation_reaches_the_whole_clause_not_a_window(fixture_model: TextModel) -> None:
    tagger = _tagger(_silent(fixture_model))
    text = "我不考虑风险这么高又这么难开的创业板"
    assert text.index("创业板") - text.index("不考虑") - 3 > 8
    old = ChatTagger(seed_rules())  # the fixed 8-character window misses it
    assert any(h.tag == "board.chinext" for h in old.tag(text))
    assert tagger.tag(text, "customer").interests == []
    # a new clause, or a scope breaker, ends the negation
    kept = tagger.tag("我不想开科创板，创业板可以考虑", "customer")
    assert kept.interests == ["chinext"]
    assert tagger.tag("我不想开科创板但是创业板可以", "customer").interests == ["chinext"]
    assert tagger.tag("不知道创业板怎么开通", "customer").interests == ["chinext"]  # not a negator
    # a space between two clauses of Chinese is a clause end too
    assert tagger.tag("我不想开科创板 创业板要开", "customer").interests == ["chinext"]
    assert not any(h.tag == "board.chinext" for h in old.tag("我不想开科创板 创业板要开"))


def test_a_negated_mention_also_vetoes_the_classifier(fixture_model: TextModel) -> None:
    tagger = _tagger(_silent(fixture_model, chinext=5.0, guaranteed_return=5.0))
    assert "chinext" in tagger.tag("创业板怎么开通", "customer").interests
    assert "chinext" not in tagger.tag("我不想开创业板", "customer").interests
    assert tagger.tag("我们不承诺保本", "advisor").violations == []
    assert tagger.tag("不用担心，保本的", "advisor").violations == ["guaranteed_return"]


def test_a_permission_word_alone_does_not_make_an_open_permission(
        fixture_model: TextModel) -> None:
    text = "创业板开通了以后涨跌幅限制是多少"
    assert "intent.open_permission" in {h.tag for h in ChatTagger(seed_rules()).tag(text)}
    gated = _tagger(_silent(fixture_model)).tag(text, "customer")
    assert gated.intents == [] and gated.interests == ["chinext"]
    agreed = _tagger(_silent(fixture_model, open_permission=5.0)).tag(text, "customer")
    assert agreed.intents == ["open_permission"]
    sources = [e["source"] for e in agreed.evidence["open_permission"]]
    assert sources == ["dictionary", "model"]
    # slack ∞ is the old behaviour: every dictionary hit counts
    assert _tagger(_silent(fixture_model), slack=float("inf")).tag(text, "customer").intents == [
        "open_permission"]


def test_evidence_spans_quote_the_original_message(fixture_model: TextModel) -> None:
    tagger = _tagger(fixture_model, slack=float("inf"))
    text = "基金贖回是什麼?可以隨時贖回嗎?"  # corpus line cv-0207
    tags = tagger.tag(text, "customer")
    assert "redeem" in tags.intents and "fund" in tags.interests
    seen = 0
    for items in tags.evidence.values():
        for e in items:
            spans = [e] if "span" in e else e["ngrams"]
            for s in spans:
                a, b = s["span"]
                assert text[a:b] == s["matched"]
                seen += 1
    assert seen >= 4
    assert tags.to_json()["evidence"] is tags.evidence
    assert tagger.versions["model"] == fixture_model.version


def test_tenant_securities_are_named_interests(fixture_model: TextModel) -> None:
    securities = pa.table({"security_code": ["600519", "300750"],
                           "short_name": ["贵州茅台", "宁德时代"], "board": ["main", "chinext"]})
    funds = pa.table({"fund_code": ["110011"], "name": ["易方达优质精选混合"]})
    tagger = _tagger(_silent(fixture_model), securities=securities, funds=funds)
    tags = tagger.tag("宁德时代和易方达优质精选混合还能拿吗", "customer")
    # a security's name is not talk about its board
    assert tags.interests == ["fund:110011", "security:300750"]
    assert tags.evidence["security:300750"][0]["matched"] == "宁德时代"
    assert tagger.tag("我不想要宁德时代了", "customer").interests == []


def test_side_is_checked(fixture_model: TextModel) -> None:
    with pytest.raises(ValueError, match="side must be"):
        _tagger(fixture_model).tag_batch(["x"], "broker")
