"""What the company linker finds besides names: codes, unlisted organisations, context cues.

Pure functions over the *normalised* text (``caifu.text.normalise``: same length as the
original, so every offset here is an offset in the document).

**Codes** (``find_codes``): six ASCII digits (full-width ones are folded) not inside a longer
digit or letter run, in any written form — ``600519``, ``600519.sh``/``.sz``/``.ss``/``.bj``,
``sh600519``, ``sz.000001``, ``沪市600519``, ``深市000001``, ``(600519)``, ``股票代码:600519``.
Not codes: amounts (``600519元``, ``¥600519``), decimals (``1.600519``), numbers after
``电话 邮编 编号 债券代码`` or an area code (``0755-123456``), parts of dates.

**Organisations** (``find_orgs``): a name ending in ``股份有限公司 有限责任公司 有限公司`` (up to
25 characters) or in a bare ``集团 控股 投资`` (up to 8), found by walking left from the suffix
over Chinese characters until a boundary word (``控股股东 股东 收到 获悉 通过 与 及 的`` …).
A bare ``控股`` is not one before ``股东 子公司 权``; a bare ``投资`` only after a party word
(``控股股东应流投资``) or before punctuation.

**Stop phrases** (``STOP_PHRASES``) hold a short name but never mean the company.

**Cues** (``CUES``): words that say a listed company is meant nearby (``公告 股价 涨停 董事长
控股股东 证券代码`` …); ``NEGATIVE_CUES`` right after a name say it is used as an ordinary word
(``太阳能电池``, ``中关村科技园``). Where each list comes from: written for this linker from
the phrasing of exchange announcements and financial news (the fixture headlines show them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CUES",
    "NEGATIVE_CUES",
    "STOP_PHRASES",
    "CodeHit",
    "OrgHit",
    "find_codes",
    "find_orgs",
    "sentence_bounds",
]

CUES = (
    "股份", "公司", "集团", "公告", "股价", "股票", "涨停", "跌停", "停牌", "复牌", "证券代码",
    "证券简称", "股票代码", "股票简称", "董事", "董事长", "董事会", "控股股东", "实际控制人",
    "股东", "高管", "总经理", "年报", "半年报", "季报", "业绩", "净利润", "营收", "市值", "披露",
    "立案", "处罚", "质押", "减持", "增持", "回购", "分红", "退市", "风险警示", "晚间", "发布",
    "互动平台", "涨幅", "跌幅", "收盘", "开盘", "一字", "st", "*st", "旗下", "子公司", "上市",
    "冻结", "股权", "持股",
)
NEGATIVE_CUES = (
    "电池", "发电", "光伏", "组件", "产业", "行业", "板块", "概念", "园", "大街", "科技园",
    "示范区", "地区", "街道", "阶段", "热水器", "路", "金融城", "自贸区", "业",
)
# Phrases that contain a short name but never mean the company; they win longest-match
# contests and are not reported (一致行动人 holds 一致, 中国银行业 holds 中国银行).
STOP_PHRASES = (
    "一致行动", "中国银行业", "中国银行间", "中国银行保险", "未来", "起步阶段", "海洋经济",
)
_SENTENCE_END = re.compile(r"[。！？!?;；\n]")
_CODE = re.compile(
    r"(?<![0-9a-z.])(?:(?P<pre>sh|sz|bj|ss)[.:]?)?(?P<code>\d{6})"
    r"(?:\.(?P<suf>sh|sz|ss|bj|xshg|xshe))?(?![0-9a-z]|\.\d)")
_AMOUNT_AFTER = set("元块万亿千百年月日号天个次倍%‰")
_NOT_CODE_BEFORE = re.compile(r"(电话|邮编|邮政编码|编号|债券代码|传真|qq|\d{3,4}-|[¥$])\s*[:：]?\s*$")
_CODE_CUE_BEFORE = re.compile(r"(股票代码|证券代码|代码|a股|沪市|深市|北交所|沪|深)\s*[:：]?\s*$")
_EXCHANGE_OF = {"6": "sh", "9": "sh", "0": "sz", "3": "sz", "2": "sz", "4": "bj", "8": "bj"}
_MARKET = {"sh": "sh", "ss": "sh", "xshg": "sh", "sz": "sz", "xshe": "sz", "bj": "bj",
           "沪市": "sh", "沪": "sh", "深市": "sz", "深": "sz", "北交所": "bj"}
_ORG_SUFFIX = re.compile(r"(?:集团|控股)?(?:股份有限公司|有限责任公司|有限公司)|集团|控股|投资")
_BOUNDARIES = (
    "控股股东", "实际控制人", "一致行动人", "股东", "收到", "获悉", "通过", "作为", "成为",
    "公告", "显示", "称", "讯", "当事人", "与", "及", "和", "的", "是", "被", "由", "向", "对",
    "其", "该", "本", "据", "经", "即", "等", "为", "旗下", "子公司", "母公司", "发行人",
    "以及", "包括", "其中", "关于", "来自", "出具", "签发", "联合", "宣布", "查询", "以", "除",
    "分别为", "决定书",
)
_DATE_TAIL = re.compile(r"\d[年月日号]")
_PARTY_BEFORE = ("控股股东", "股东", "实际控制人", "一致行动人", "母公司", "发行人")
_BARE_CONTROL_AFTER = re.compile(r"^(股东|子公司|权|公司|地位|比例)")
_BARE_INVEST_AFTER = re.compile(r"^[\s,，。、;；:：)）”\"'’]|^$")
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True, slots=True)
class CodeHit:
    start: int
    end: int
    code: str
    marked: bool  # an exchange prefix or suffix, or a 沪市/深市/股票代码 cue before it
    mismatch: bool  # the exchange written is not the code's exchange


@dataclass(frozen=True, slots=True)
class OrgHit:
    start: int
    end: int
    bare: bool  # ends in a bare 集团/控股/投资, not in a company form


def sentence_bounds(s: str, start: int, end: int) -> tuple[int, int]:
    """The sentence around ``s[start:end]``: from after the previous end mark to the next."""
    left = max((m.end() for m in _SENTENCE_END.finditer(s, max(0, start - 200), start)),
               default=max(0, start - 200))
    m = _SENTENCE_END.search(s, end)
    return left, (m.start() if m else len(s))


def find_codes(s: str) -> list[CodeHit]:
    """Every written stock code in normalised text ``s``."""
    out: list[CodeHit] = []
    if not any(ch.isdigit() for ch in s):
        return out
    for m in _CODE.finditer(s):
        start, end = m.span()
        if end < len(s) and s[end] in _AMOUNT_AFTER:
            continue
        before = s[max(0, start - 8):start]
        if _NOT_CODE_BEFORE.search(before):
            continue
        code = m.group("code")
        market = m.group("pre") or m.group("suf")
        cue = _CODE_CUE_BEFORE.search(before)
        written = _MARKET.get(market or "") or (_MARKET.get(cue.group(1)) if cue else None)
        paren = start > 0 and s[start - 1] in "(（" and end < len(s) and s[end] in ")）"
        mismatch = written is not None and _EXCHANGE_OF.get(code[0]) != written
        out.append(CodeHit(start, end, code, bool(market or cue or paren), mismatch))
    return out


def find_orgs(s: str) -> list[OrgHit]:
    """Organisation names by their legal-form or group suffix (see the module docstring)."""
    out: list[OrgHit] = []
    for m in _ORG_SUFFIX.finditer(s):
        suffix = m.group()
        bare = suffix in ("集团", "控股", "投资")
        after = s[m.end():m.end() + 3]
        if suffix == "控股" and _BARE_CONTROL_AFTER.match(after):
            continue
        if suffix == "集团" and after.startswith(("股份", "有限", "控股")):
            continue  # the longer company form is matched from here
        start = _walk_left(s, m.start(), 8 if bare else 25)
        if start is None:
            continue
        if suffix == "投资" and not (_BARE_INVEST_AFTER.match(after)
                                   or s[:start].endswith(_PARTY_BEFORE)):
            continue
        out.append(OrgHit(start, m.end(), bare))
    return out


def _walk_left(s: str, stop: int, limit: int) -> int | None:
    """Where the organisation name ending at ``stop`` starts, or None if it is too short."""
    i = stop
    while i > 0 and stop - i < limit and (_CJK.match(s[i - 1]) or s[i - 1] in "()（）"):
        i -= 1
    name = s[i:stop]
    cut = 0
    for word in _BOUNDARIES:
        k = name.rfind(word)
        if k >= 0:
            cut = max(cut, k + len(word))
    if i > 0 and _DATE_TAIL.match(s, i - 1):  # 11月东辰控股: the month is not the name
        cut = max(cut, 1)
    depth = 0
    for k, ch in enumerate(name):  # an unmatched ")" ends the text before the name
        if ch in "(（":
            depth += 1
        elif ch in ")）":
            if depth == 0:
                cut = max(cut, k + 1)
            depth = max(0, depth - 1)
    opened = [k for k, ch in enumerate(name) if ch in "(（"]
    if opened and not any(ch in ")）" for ch in name[opened[-1]:]):
        cut = max(cut, opened[-1] + 1)  # 决定书(华晨…: an unclosed "(" starts the name
    start = i + cut
    return start if stop - start >= 2 else None
