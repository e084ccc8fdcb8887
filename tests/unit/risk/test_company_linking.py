"""Company linking (caifu.text.companies): code forms, name variants, former names by date,
ambiguous short names, unlisted parties and relations, evidence, and P/R on real headlines."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from caifu.data.reference import a_share_codes
from caifu.text.companies import CompanyLinker, CompanyMention
from caifu.text.company_master import COMMON_WORDS, CompanyMaster, NameAlias, PartyRelation, compact

FIXTURES = Path(__file__).parent / "fixtures" / "headlines.jsonl"


@pytest.fixture(scope="module")
def linker() -> CompanyLinker:
    return CompanyLinker()


def codes(mentions: list[CompanyMention]) -> set[str]:
    return {m.code for m in mentions if m.listed and m.code}


@pytest.mark.parametrize("text, written, rule", [
    ("贵州茅台600519今日公告", "600519", "code"),
    ("关注600519.SH的走势", "600519.SH", "code_suffix"),
    ("买入SH600519", "SH600519", "code_suffix"),
    ("买入sh600519", "sh600519", "code_suffix"),
    ("行情600519.SS", "600519.SS", "code_suffix"),
    ("贵州茅台(600519)公告", "600519", "code_suffix"),
    ("沪市600519领涨", "600519", "code_suffix"),
    ("股票代码：600519", "600519", "code_suffix"),
    ("股票代码：６００５１９", "６００５１９", "code_suffix"),
])
def test_every_written_form_of_a_code(linker: CompanyLinker, text: str, written: str,
                                      rule: str) -> None:
    found = [m for m in linker.link(text) if m.rule.startswith("code")]
    assert [(m.name, m.code, m.rule) for m in found] == [(written, "600519", rule)]
    assert text[found[0].start:found[0].end] == written


def test_deep_market_code(linker: CompanyLinker) -> None:
    [m] = linker.link("深市000001成交放量")
    assert (m.code, m.rule) == ("000001", "code_suffix")


@pytest.mark.parametrize("text", [
    "本次转让价款为600519元", "编号1600519号文件", "金额2600519.5", "日期20230601",
    "联系电话0755-600519", "邮编600519", "涨幅1.600519", "¥600519",
])
def test_digits_that_are_not_codes(linker: CompanyLinker, text: str) -> None:
    assert codes(linker.link(text)) == set()


@pytest.mark.parametrize("text, code, rule", [
    ("万 科Ａ发布公告", "000002", "short_name"),
    ("万科A发布公告", "000002", "short_name"),
    ("九 芝 堂复牌", "000989", "short_name"),
    ("ST星源发布公告", "000005", "short_name"),
    ("*ST 围海公告", "002586", "short_name"),
    ("ST围海公告", "002586", "prefixed_short_name"),
    ("ST 吉药被出具无法表示意见", "300108", "prefixed_short_name"),
    ("S*ST吉药", "300108", "prefixed_short_name"),
    ("華塑控股今日發布公告", "000509", "short_name"),
    ("東方財富(300059.SZ)旗下券商", "300059", "short_name"),
])
def test_short_name_variants(linker: CompanyLinker, text: str, code: str, rule: str) -> None:
    names = [m for m in linker.link(text) if not m.rule.startswith("code")]
    assert (names[0].code, names[0].rule, names[0].listed) == (code, rule, True)


def test_longest_match_wins(linker: CompanyLinker) -> None:
    found = linker.link("東方財富發布公告")
    assert [(m.name, m.code) for m in found] == [("東方財富", "300059")]


def test_former_name_links_only_while_valid() -> None:
    alias = NameAlias("神州长城", "000018", date(2016, 1, 1), date(2021, 6, 30))
    linker = CompanyLinker(aliases=[alias])
    text = "神州長城發布公告稱,公司控股股東所持股份被司法輪候凍結。"
    [m] = [m for m in linker.link(text, published=date(2018, 9, 21)) if m.listed]
    assert (m.name, m.code, m.rule) == ("神州長城", "000018", "former_name")
    assert not codes(linker.link(text, published=date(2023, 1, 1)))
    assert not codes(linker.link(text, published=date(2015, 1, 1)))
    stated = "原名神州长城的公司发布公告"
    assert codes(linker.link(stated, published=date(2023, 1, 1))) == {"000018"}


def test_former_names_from_the_master_records() -> None:
    master = CompanyMaster.from_records([
        {"code": "600753", "short_name": "庚星股份", "full_name": "福建庚星股份有限公司",
         "former_names": [{"name": "东方银星", "valid_from": date(1996, 9, 27),
                           "valid_to": date(2022, 5, 1)}]},
    ])
    linker = CompanyLinker(master)
    [m] = linker.link("东方银星控股股东股份被冻结", published=date(2021, 11, 11))
    assert (m.code, m.rule) == ("600753", "former_name")
    [f] = linker.link("福建庚星股份有限公司公告")
    assert (f.code, f.rule) == ("600753", "full_name")


def test_master_from_pandas() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"stock_code": ["000002"], "short_name": ["万  科Ａ"]})
    assert codes(CompanyLinker(CompanyMaster.from_table(frame)).link("万科A公告")) == {"000002"}


@pytest.mark.parametrize("bare, with_context", [
    ("太阳能电池组件价格下跌", "太阳能(000591):关于回购公司股份进展情况的公告"),
    ("中关村的创业者很多", "中关村:国美电器所持有的1050万股股份被冻结"),
    ("起步阶段的企业", "ST起步未及时披露业绩预告"),
    ("他们从中弘处得知", "中弘股份晚间公告"),
])
def test_ambiguous_names_need_context(linker: CompanyLinker, bare: str, with_context: str) -> None:
    assert codes(linker.link(bare)) == set()
    assert codes(linker.link(with_context))


def test_ambiguous_name_supported_by_the_document(linker: CompanyLinker) -> None:
    text = "太阳能(000591)发布公告。太阳能表示将继续扩大装机"
    found = [m for m in linker.link(text) if m.name == "太阳能"]
    assert len(found) == 2 and all(m.code == "000591" for m in found)
    assert found[1].evidence.ambiguity == "common_word"
    assert any("elsewhere in the document" in b for b in found[1].evidence.because)


def test_stop_phrases_hold_short_names(linker: CompanyLinker) -> None:
    assert codes(linker.link("控股股东的一致行动人减持")) == set()


def test_common_words_are_shipped_short_names() -> None:
    # a current short name or, since the 2026 list, a former one (东方通 is *ST东通 now)
    names = {compact(n) for n in CompanyMaster.shipped().short_names.values()}
    names |= {compact(n) for n in a_share_codes()["short_name"].to_pylist()}
    assert [w for w in COMMON_WORDS if compact(w) not in names] == []


def test_unlisted_party_and_relation() -> None:
    text = "东方银星(600753.SH)控股股东中庚置业集团有限公司(简称“中庚集团”)持有的股份被冻结"
    plain = [m for m in CompanyLinker().link(text) if not m.listed]
    assert [(m.name, m.code, m.rule) for m in plain] == [
        ("中庚置业集团有限公司", None, "party"), ("中庚集团", None, "party")]
    rel = PartyRelation("中庚置业集团有限公司", "600753", "controlling_shareholder")
    linked = [m for m in CompanyLinker(relations=[rel]).link(text) if not m.listed]
    assert [(m.name, m.code, m.rule) for m in linked][0] == (
        "中庚置业集团有限公司", "600753", "relation")
    assert "controlling_shareholder" in linked[0].evidence.because[0]


def test_full_name_defined_in_the_text(linker: CompanyLinker) -> None:
    text = "经查明,广东风华高新科技股份有限公司(以下简称“风华高科”,000636.SZ)存在以下违法事实:"
    full = [m for m in linker.link(text) if m.name.endswith("股份有限公司")]
    assert (full[0].code, full[0].rule, full[0].listed) == ("000636", "full_name", True)


def test_evidence_quotes_the_original_text(linker: CompanyLinker) -> None:
    text = "ST華鐵同樣因未按時披露年報被立案。另一句"
    [m] = linker.link(text)
    assert (m.name, m.code) == ("ST華鐵", "000976")
    assert text[m.start:m.end] == m.name
    assert m.evidence.sentence == "ST華鐵同樣因未按時披露年報被立案"
    assert 0.5 <= m.score <= 1.0


def _rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines()]


def test_fixture_headlines_are_sourced() -> None:
    rows = _rows()
    assert 40 <= len(rows) <= 80
    assert all(r["url"].startswith("http") and r["text"] for r in rows)


def test_linking_precision_recall_on_real_headlines(linker: CompanyLinker) -> None:
    tp = fp = fn = 0
    for row in _rows():
        gold = {c["code"] for c in row["companies"] if c["code"]}
        pred = codes(linker.link(row["text"]))
        tp, fp, fn = tp + len(gold & pred), fp + len(pred - gold), fn + len(gold - pred)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    summary = f"P {precision:.3f} R {recall:.3f} (tp {tp}, fp {fp}, fn {fn})"
    print(f"\nlinking on {len(_rows())} headlines: {summary}")  # noqa: T201
    assert precision >= 0.95  # measured 0.983 (57/58)
    assert recall >= 0.77  # measured 0.792 (57/72)
