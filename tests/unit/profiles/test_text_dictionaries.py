"""caifu.text.dictionaries: seed rules from the vendored lexicons and the tenant's masters."""

from __future__ import annotations

import re
from importlib.resources import files

import pyarrow as pa
import pytest

from caifu.text import dictionaries
from caifu.text.dictionaries import (
    board_catalogue,
    dictionary_ids,
    fund_rules,
    security_rules,
    seed_rules,
)

LEXICON = files("caifu.data.reference").joinpath("lexicon")


def rule(tag: str, rules: list | None = None):  # type: ignore[no-untyped-def]
    found = [r for r in (rules if rules is not None else seed_rules()) if r.tag == tag]
    assert len(found) == 1, tag
    return found[0]


def test_dictionary_ids_cover_the_seed_families() -> None:
    ids = dictionary_ids()
    assert ids == sorted(set(ids))
    assert {
        "board.main", "board.chinext", "board.star", "board.bse",
        "index.sse50", "index.csi300", "index.chinext", "index.chinext50", "index.star50",
        "intent.redeem", "intent.add", "intent.open_account", "intent.open_permission",
        "intent.level2", "intent.fee", "emotion.loss_anxiety", "emotion.complaint",
        "theme.新能源", "theme.光伏", "theme.人工智能", "industry.半导体", "industry.白酒",
    } <= set(ids)
    assert all(re.fullmatch(r"(board|index|theme|industry|intent|emotion)\.\S+", i) for i in ids)
    assert not any(i.startswith(("security.", "fund.", "_")) for i in ids)


def test_board_catalogue_is_the_432_cnequity_boards() -> None:
    boards = board_catalogue()
    assert len(boards) == 432
    assert sum(kind == "industry" for kind, _ in boards) == 90
    assert ("concept", "光伏概念") in boards and ("industry", "半导体") in boards


def test_catalogue_selection() -> None:
    ids = set(dictionary_ids())
    themes = sum(i.startswith(("theme.", "industry.")) for i in ids)
    assert 380 <= themes <= 432
    # excluded: listing status, trading programmes, the catalogue owner's own lists
    assert not ids & {"theme.融资融券", "theme.沪股通", "industry.综合", "theme.ST板块",
                      "theme.同花顺漂亮100"}
    # 白酒概念 is folded into the 白酒 industry
    assert "theme.白酒" not in ids and "industry.白酒" in ids
    assert rule("theme.光伏").patterns[:2] == ("光伏概念", "光伏")
    # a company's name alone is not a theme: only the full board name matches
    assert "苹果" not in rule("theme.苹果").patterns and "苹果概念" in rule("theme.苹果").patterns
    assert {"车联网", "车路协同", "车联网(车路协同)"} <= set(rule("theme.车联网").patterns)
    assert "theme.WiFi_6" in ids


def test_bad_catalogue_configuration_is_refused() -> None:
    seed = {"board_catalogue": {"exclude": ["不存在的板块"], "keep_suffix": []}}
    with pytest.raises(ValueError, match="不存在的板块"):
        dictionaries._board_rules(seed)


def test_loss_anxiety_words_come_from_the_yao_lexicon() -> None:
    text = LEXICON.joinpath("cntext_yao2021_informal_negative.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("# ") and "姚加权" in text and "2021" in lines[2]
    words = [w for w in lines if not w.startswith("#")]
    assert len(words) == 964 and "被套" in words
    patterns = rule("emotion.loss_anxiety").patterns
    assert {"被套", "割肉", "焦虑", "亏了", "回本"} <= set(patterns)
    assert "亏" not in patterns and "暴跌" not in patterns
    assert rule("emotion.loss_anxiety").negatable
    assert not rule("emotion.complaint").negatable
    assert all(r.negatable for r in seed_rules() if r.tag.startswith(("board.", "intent.")))


def test_board_code_prefixes() -> None:
    assert {"300###", "301###"} <= set(rule("board.chinext").patterns)
    assert {"688###", "689###"} <= set(rule("board.star").patterns)
    assert {"8#####", "4#####", "92####"} <= set(rule("board.bse").patterns)
    assert not any(p.endswith("#") for p in rule("board.main").patterns)


SECURITIES = pa.table({
    "security_code": ["300750", "000002", "000004", None, "510050"],
    "short_name": ["宁德时代", "万  科Ａ", "*ST全新", "无代码", "上证50ETF"],
    "board": ["chinext", "main", "main", "main", None],
    "industry": ["电力设备", "房地产", None, None, None],
})


def test_security_rules() -> None:
    rules = security_rules(SECURITIES)
    assert rule("security.300750", rules).patterns == ("300750", "宁德时代")
    assert rule("security.000002", rules).patterns == ("000002", "万科a", "万科")
    assert rule("security.000004", rules).patterns == ("000004", "*st全新", "st全新")
    assert rule("security.510050", rules).patterns == ("510050", "上证50etf")
    assert {r.tag for r in rules} == {"security.300750", "security.000002", "security.000004",
                                      "security.510050", "board.chinext", "board.main"}
    assert rule("board.chinext", rules).patterns == ("300750", "宁德时代")


def test_security_board_merges_into_the_seed_board() -> None:
    merged = rule("board.chinext", seed_rules(SECURITIES))
    assert merged.patterns[0] == "创业板" and "宁德时代" in merged.patterns


def test_fund_rules() -> None:
    funds = pa.table({"fund_code": ["005827", "005828", "011901", "011902"],
                      "name": ["易方达蓝筹精选混合A", "易方达蓝筹精选混合C",
                               "兴证全球蓝筹精选混合", "兴证全球蓝筹精选混合A"],
                      "fund_type": ["hybrid"] * 4})
    rules = fund_rules(funds)
    assert rule("fund.005827", rules).patterns == ("005827", "易方达蓝筹精选混合a", "易方达蓝筹精选混合")
    assert rule("fund.005828", rules).patterns == ("005828", "易方达蓝筹精选混合c", "易方达蓝筹精选混合")
    # a class-less name that is another fund's own name stays that fund's
    assert rule("fund.011902", rules).patterns == ("011902", "兴证全球蓝筹精选混合a")


def test_master_tables_need_their_columns() -> None:
    with pytest.raises(ValueError, match="short_name"):
        security_rules(pa.table({"security_code": ["300750"], "board": ["chinext"]}))
    with pytest.raises(ValueError, match="name"):
        fund_rules(pa.table({"fund_code": ["005827"]}))


def test_seed_rules_one_rule_per_tag() -> None:
    funds = pa.table({"fund_code": ["005827"], "name": ["易方达蓝筹精选混合A"]})
    rules = seed_rules(SECURITIES, funds)
    assert len({r.tag for r in rules}) == len(rules)
    assert {"security.300750", "fund.005827", "_stop"} <= {r.tag for r in rules}
    assert all(r.patterns for r in rules)


def test_vendored_files_and_licences() -> None:
    names = {p.name for p in LEXICON.iterdir()}
    assert {"caifu_seed.yaml", "cnequity_boards.csv", "cntext_yao2021_informal_negative.txt",
            "LICENSE.cnequity", "NOTICE.cnequity", "LICENSE.cntext"} <= names
    assert "Apache License" in LEXICON.joinpath("LICENSE.cnequity").read_text(encoding="utf-8")
    assert "MIT License" in LEXICON.joinpath("LICENSE.cntext").read_text(encoding="utf-8")
    size = sum(len(LEXICON.joinpath(n).read_bytes()) for n in names
               if LEXICON.joinpath(n).is_file())
    assert size < 2 * 1024 * 1024
