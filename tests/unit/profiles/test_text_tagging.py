"""caifu.text.tagging: chat messages → tag hits with evidence, negation, longest match."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caifu.text import ChatTagger, TextHit, TextRule, seed_rules
from caifu.text.tagging import _longest_first

SECURITIES = pa.table({
    "security_code": ["300750", "600519", "688981", "000002", "830799", "510050", "000001"],
    "short_name": ["宁德时代", "贵州茅台", "中芯国际", "万  科Ａ", "艾融软件", "上证50ETF", "平安银行"],
    "board": ["chinext", "main", "star", "main", "bse", None, "main"],
    "industry": ["电力设备", "食品饮料", "电子", "房地产", "计算机", None, "银行"],
})
FUNDS = pa.table({
    "fund_code": ["005827", "005828", "000001"],
    "name": ["易方达蓝筹精选混合A", "易方达蓝筹精选混合C", "华夏成长混合"],
    "fund_type": ["hybrid", "hybrid", "hybrid"],
})
GUARANTEE = TextRule("compliance.guaranteed_return", ("稳赚不赔", "保本", "保证收益"))


@pytest.fixture(scope="module")
def tagger() -> ChatTagger:
    return ChatTagger([*seed_rules(SECURITIES, FUNDS), GUARANTEE])


def tags(tagger: ChatTagger, text: str) -> set[str]:
    return {h.tag for h in tagger.tag(text)}


# --- negation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "不考虑创业板",
    "创业板就算了，不想开",
    "我不打算开通创业板",
    "暂时不考虑创业板，风险太大了",
    "不考虑创业板，谢谢",
    "我不想开通创业板",
    "创业板暂时不需要",
    "不是很想开科创板和创业板",
    "我没有开创业板的打算",
])
def test_declined_chinext_is_not_interest(tagger: ChatTagger, text: str) -> None:
    found = tags(tagger, text)
    assert "board.chinext" not in found
    assert "intent.open_permission" not in found


@pytest.mark.parametrize("text", [
    "请问创业板怎么开通？",
    "我不知道创业板怎么开通",        # 不知道 is not a negation
    "特别想开通创业板",              # nor is 特别
    "不考虑科创板，想开通创业板",    # the negator is in another clause
    "有没有办法快点开通创业板",
])
def test_chinext_interest_is_found(tagger: ChatTagger, text: str) -> None:
    assert {"board.chinext", "intent.open_permission"} <= tags(tagger, text)


def test_negation_stays_in_its_clause(tagger: ChatTagger) -> None:
    found = tags(tagger, "不考虑科创板，想开通创业板")
    assert "board.star" not in found and "board.chinext" in found


def test_scope_breaker_ends_negation(tagger: ChatTagger) -> None:
    assert tags(tagger, "不买白酒但想开创业板") == {"board.chinext"}


def test_negation_window_is_counted_in_characters() -> None:
    rules = seed_rules()
    text = "不" + "今天天气真的非常好" + "创业板"  # 9 characters between
    assert "board.chinext" in {h.tag for h in ChatTagger(rules, negation_window=8).tag(text)}
    assert "board.chinext" not in {h.tag for h in ChatTagger(rules, negation_window=9).tag(text)}
    late = "创业板" + "今天天气真的非常好" + "就算了"
    assert "board.chinext" in {h.tag for h in ChatTagger(rules, negation_window=8).tag(late)}
    assert "board.chinext" not in {h.tag for h in ChatTagger(rules, negation_window=9).tag(late)}


def test_negated_guarantee_and_cue_inside_a_pattern(tagger: ChatTagger) -> None:
    assert "compliance.guaranteed_return" not in tags(tagger, "投资没有稳赚不赔的，注意风险。")
    assert "compliance.guaranteed_return" not in tags(tagger, "我们不承诺保本，请理性投资。")
    # the 不 inside 稳赚不赔 belongs to the phrase and negates nothing
    assert "compliance.guaranteed_return" in tags(tagger, "这只基金稳赚不赔，放心买")


def test_complaint_is_not_negatable_but_anxiety_is(tagger: ChatTagger) -> None:
    assert "emotion.complaint" in tags(tagger, "我不想投诉，但是你们太过分")
    assert "emotion.loss_anxiety" not in tags(tagger, "不用担心")
    assert "emotion.loss_anxiety" in tags(tagger, "很担心这个基金")
    assert tags(tagger, "亏了这么多，我要投诉") == {"emotion.loss_anxiety", "emotion.complaint"}


def test_questions_with_negator_characters_keep_their_intent(tagger: ChatTagger) -> None:
    assert "intent.redeem" in tags(tagger, "帮我看看要不要赎回")
    assert "intent.redeem" not in tags(tagger, "不想赎回了")


# --- normalisation, codes, synonyms ------------------------------------------------------------


def test_traditional_input_quotes_the_original(tagger: ChatTagger) -> None:
    assert tagger.tag("請問創業板怎麼開通") == [
        TextHit("board.chinext", "創業板", 2, 5),
        TextHit("intent.open_permission", "開通", 7, 9),
    ]


def test_security_code_implies_board(tagger: ChatTagger) -> None:
    assert tagger.tag("300750现在可以加仓吗") == [
        TextHit("board.chinext", "300750", 0, 6),
        TextHit("security.300750", "300750", 0, 6),
        TextHit("intent.add", "加仓", 10, 12),
    ]
    assert tags(tagger, "宁德时代被套了") == {"security.300750", "board.chinext",
                                                "emotion.loss_anxiety"}


@pytest.mark.parametrize(("text", "expected"), [
    ("1300750", set()),
    ("3007501", set()),
    ("13007501", set()),
    ("sz300750", {"security.300750", "board.chinext"}),
    ("300750.SZ", {"security.300750", "board.chinext"}),
    ("３００７５０", {"security.300750", "board.chinext"}),
    ("300001怎么样", {"board.chinext"}),        # not in the master data: prefix rule
    ("301236", {"board.chinext"}),
    ("688123", {"board.star"}),
    ("920001", {"board.bse"}),
    ("830799", {"security.830799", "board.bse"}),
    ("买了300000元的基金", set()),               # an amount, not a code
    ("¥300000", set()),
    ("30075", set()),
    ("000001", {"security.000001", "board.main", "fund.000001"}),  # shared code: both
])
def test_codes_match_as_whole_tokens(tagger: ChatTagger, text: str, expected: set[str]) -> None:
    assert tags(tagger, text) == expected


@pytest.mark.parametrize("text", ["上证50ETF", "上证５０ＥＴＦ", "510050", "50ETF", "上證50"])
def test_etf_synonyms_give_the_index(tagger: ChatTagger, text: str) -> None:
    assert "index.sse50" in tags(tagger, text)


@pytest.mark.parametrize(("text", "tag"), [
    ("ChiNext", "board.chinext"), ("CHINEXT权限", "board.chinext"),
    ("Level-2", "intent.level2"), ("L2行情", "intent.level2"), ("LEVEL2", "intent.level2"),
    ("level 2", "intent.level2"), ("Ｌｅｖｅｌ－２", "intent.level2"), ("Level–2", "intent.level2"),
])
def test_latin_variants(tagger: ChatTagger, text: str, tag: str) -> None:
    assert tag in tags(tagger, text)


@pytest.mark.parametrize("text", ["html2", "XL2", "L23", "chinexts"])
def test_latin_patterns_need_token_edges(tagger: ChatTagger, text: str) -> None:
    assert not tags(tagger, text) & {"intent.level2", "board.chinext"}


# --- longest match -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("创业板50ETF", {"index.chinext50"}),
    ("创业板指最近怎么样", {"index.chinext"}),
    ("创业板ETF", {"index.chinext"}),
    ("银行卡", set()),                       # stop phrase beats 银行
    ("银行股", {"industry.银行"}),
    ("易方达蓝筹精选混合A", {"fund.005827"}),
    ("易方达蓝筹精选混合", {"fund.005827", "fund.005828"}),
])
def test_longest_match_wins(tagger: ChatTagger, text: str, expected: set[str]) -> None:
    assert tags(tagger, text) == expected


def test_one_hit_per_tag_and_span(tagger: ChatTagger) -> None:
    hits = tagger.tag("创业板，创业板，300750")
    assert [(h.tag, h.start) for h in hits] == [
        ("board.chinext", 0), ("board.chinext", 4), ("board.chinext", 8),
        ("security.300750", 8)]


# --- offsets and robustness --------------------------------------------------------------------


def test_offsets_point_into_the_original(tagger: ChatTagger) -> None:
    text = "😀😀請問ＣｈｉＮｅｘｔ和創業板50ＥＴＦ"
    assert tagger.tag(text) == [
        TextHit("board.chinext", "ＣｈｉＮｅｘｔ", 4, 11),
        TextHit("index.chinext50", "創業板50ＥＴＦ", 12, 20),
    ]


@pytest.mark.parametrize("text", [
    "", "   ", "😀" * 50, "\x00\x01\x02创业板\x1b[31m", "請\ud800問創業板", "\n\r\t", "#" * 100,
    "创业板" + "\u200b" * 10, "ｶﾀｶﾅ" * 20,
])
def test_odd_input_never_crashes(tagger: ChatTagger, text: str) -> None:
    hits = tagger.tag(text)
    assert all(text[h.start:h.end] == h.matched for h in hits)


def test_batch_handles_none_and_matches_single(tagger: ChatTagger) -> None:
    texts = [None, "", "请问创业板怎么开通？", "不考虑创业板", "請問創業板\n怎麼開通", "300750"]
    assert tagger.tag_batch(texts) == [tagger.tag(t) if t else [] for t in texts]
    assert tagger.tag_batch([]) == []


def test_very_long_message(tagger: ChatTagger) -> None:
    text = "我想开通创业板，" * 20_000 + "不考虑科创板"
    hits = tagger.tag(text)
    assert sum(h.tag == "board.chinext" for h in hits) == 20_000
    assert "board.star" not in {h.tag for h in hits}


def test_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="empty tag"):
        ChatTagger([TextRule("", ("x",))])
    with pytest.raises(ValueError, match="no literal text"):
        ChatTagger([TextRule("board.x", ("###",))])
    with pytest.raises(ValueError, match="negation_window"):
        ChatTagger([], negation_window=-1)


def test_stop_tags_are_never_reported() -> None:
    tagger = ChatTagger([TextRule("theme.bank", ("银行",)), TextRule("_stop", ("银行卡",))])
    assert tagger.tag("银行卡") == []
    assert tagger.tag("银行") == [TextHit("theme.bank", "银行", 0, 2)]
    assert tagger.tags == frozenset({"theme.bank"})


def test_same_pattern_in_two_rules_gives_both_tags() -> None:
    tagger = ChatTagger([TextRule("a.x", ("创业板",)), TextRule("b.y", ("創業板",), negatable=False)])
    assert [h.tag for h in tagger.tag("不考虑创业板")] == ["b.y"]


# --- properties --------------------------------------------------------------------------------

_ALPHABET = st.sampled_from(list("创业板科创指50ETF不考虑就算了，。300750123宁德时代開通請問LlEe-2赎回加仓"
                                 "银行卡投诉被套😀 \n"))
_TEXT = st.one_of(st.text(), st.text(alphabet=_ALPHABET, max_size=60))


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_hits_quote_the_original(text: str) -> None:
    tagger = _shared_tagger()
    hits = tagger.tag(text)
    assert all(0 <= h.start < h.end <= len(text) and text[h.start:h.end] == h.matched
               for h in hits)
    assert len({(h.tag, h.start, h.end) for h in hits}) == len(hits)
    assert hits == sorted(hits, key=lambda h: (h.start, h.end, h.tag))
    spans = sorted({(h.start, h.end) for h in hits})
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))  # no overlaps
    assert tagger.tag_batch([text, None, text]) == [hits, [], hits]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 8)), max_size=25))
def test_longest_first_keeps_longest_of_overlaps(raw: list[tuple[int, int]]) -> None:
    spans = list({(a, a + n) for a, n in raw})
    kept = _longest_first(list(spans))
    assert kept == sorted(kept)
    assert all(a[1] <= b[0] for a, b in zip(kept, kept[1:], strict=False))
    for a, b in set(spans) - set(kept):  # every dropped span lost to one at least as long
        assert any(c < b and a < d and d - c >= b - a for c, d in kept)


_TAGGER: list[ChatTagger] = []


def _shared_tagger() -> ChatTagger:
    if not _TAGGER:
        _TAGGER.append(ChatTagger([*seed_rules(SECURITIES, FUNDS), GUARANTEE]))
    return _TAGGER[0]
