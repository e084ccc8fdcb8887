"""Seed dictionaries for chat tagging, from data shipped in the package and the tenant's masters.

``seed_rules(securities, funds)`` returns one ``TextRule`` per tag:

============================  =================================================================
tags                          from
============================  =================================================================
``board.*`` ``index.*``       ``caifu_seed.yaml`` (hand-written): boards with synonyms and code
                              prefixes (``300###``), indices with their ETFs' names and codes
``industry.*`` ``theme.*``    the 432 boards of the cnequity catalogue (``cnequity_boards.csv``),
                              selected and stripped as ``caifu_seed.yaml`` says, plus caifu's
                              own themes and synonyms
``intent.*``                  ``caifu_seed.yaml``: redeem, add, open account/permission,
                              Level-2, fees
``emotion.complaint``         ``caifu_seed.yaml``, not negatable
``emotion.loss_anxiety``      words chosen in ``caifu_seed.yaml`` from Yao et al. (2021)'s
                              informal-negative lexicon (``cntext_yao2021_informal_negative.txt``;
                              each must be in it), plus caifu's colloquial forms
``security.<code>``           the tenant's securities table: code (whole token) and short name
                              (spaces removed; also without a trailing share-class ``A`` and
                              without the ``*`` of ``*ST``); each security's patterns also count
                              for ``board.<its board>``
``fund.<code>``               the tenant's funds table: code and name (also without a trailing
                              share-class letter, shared by the A and C classes)
``_stop``                     stop phrases (``银行卡``): win longest-match contests, never reported
============================  =================================================================

Files are read with ``importlib.resources`` from ``caifu.data.reference/lexicon``; provenance
and licences are in ``docs/third-party.md``. ``dictionary_ids()`` lists the seed tags (not
the tenant's ``security.*``/``fund.*``) for validating configuration elsewhere.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files
from typing import Any

import pyarrow as pa
import yaml

from caifu.text.normalise import fold
from caifu.text.tagging import TextRule

__all__ = [
    "FAMILIES",
    "board_catalogue",
    "dictionary_ids",
    "fund_rules",
    "security_rules",
    "seed_rules",
]

FAMILIES = ("board", "index", "theme", "industry", "intent", "emotion")
STOP_TAG = "_stop"
_LEXICON = ("caifu.data.reference", "lexicon")
_TAG_ID = re.compile(r"^(?:" + "|".join(FAMILIES) + r")\.\S+$")
_PARENS = re.compile(r"[(（]([^)）]*)[)）]")
_CLASS_SUFFIX = re.compile(r"^(.*[^0-9a-z])[abce]$")  # 易方达新能源股票a -> 易方达新能源股票
SECURITY_COLUMNS = ("security_code", "short_name", "board")
FUND_COLUMNS = ("fund_code", "name")


def _read(name: str) -> str:
    package, folder = _LEXICON
    return files(package).joinpath(folder).joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _seed() -> dict[str, Any]:
    seed = yaml.safe_load(_read("caifu_seed.yaml"))
    if not isinstance(seed, dict) or seed.get("version") != 1:
        raise ValueError("caifu_seed.yaml: expected a mapping with version: 1")
    return seed


def board_catalogue() -> list[tuple[str, str]]:
    """The vendored cnequity boards as ``(board_type, name)``, in catalogue order."""
    rows = list(csv.DictReader(io.StringIO(_read("cnequity_boards.csv"))))
    return [(r["board_type"], r["name"]) for r in rows]


def _lexicon_words(name: str) -> set[str]:
    return {w for w in _read(name).splitlines() if w and not w.startswith("#")}


def _strip_concept(name: str, keep_suffix: frozenset[str]) -> tuple[str, list[str]]:
    """``(bare name, patterns)`` of a concept board: 光伏概念 -> (光伏, [光伏概念, 光伏])."""
    parts = [name, *(_PARENS.findall(name))]
    base = _PARENS.sub("", name).strip()
    patterns: list[str] = []
    for part in [base, *parts[1:]]:
        part = part.strip()
        bare = part[:-2] if part.endswith("概念") and len(part) > 3 else part
        patterns.append(part)
        if bare != part and part not in keep_suffix:
            patterns.append(bare)
    if base != name:
        patterns.append(name)
    first = base[:-2] if base.endswith("概念") and len(base) > 3 else base
    return first, patterns


def _board_rules(seed: dict[str, Any]) -> dict[str, list[str]]:
    conf = seed["board_catalogue"]
    exclude, keep = frozenset(conf["exclude"]), frozenset(conf["keep_suffix"])
    catalogue = board_catalogue()
    names = {name for _, name in catalogue}
    parts = {_PARENS.sub("", n).strip() for n in names} | {
        p.strip() for n in names for p in _PARENS.findall(n)}
    unknown = (exclude - names) | (keep - parts)
    if unknown:
        raise ValueError(f"caifu_seed.yaml board_catalogue names no such board: {sorted(unknown)}")
    out: dict[str, list[str]] = {}
    industries = {name for kind, name in catalogue if kind == "industry"}
    for kind, name in catalogue:
        if name in exclude:
            continue
        if kind == "industry":
            out.setdefault(f"industry.{name}", []).append(name)
            continue
        bare, patterns = _strip_concept(name, keep)
        tag = f"industry.{bare}" if bare in industries else "theme." + "_".join(bare.split())
        out.setdefault(tag, []).extend(patterns)
    return out


@lru_cache(maxsize=1)
def _seed_rules() -> tuple[TextRule, ...]:
    seed = _seed()
    rules: list[TextRule] = []
    for section in ("boards", "indices", "intents", "emotions"):
        for tag, entry in seed[section].items():
            patterns = [str(p) for p in entry.get("patterns", [])]
            lexicon = entry.get("from_lexicon")
            if lexicon:
                words = [str(w) for w in lexicon["words"]]
                missing = [w for w in words if w not in _lexicon_words(lexicon["file"])]
                if missing:
                    raise ValueError(f"caifu_seed.yaml {tag}: not in {lexicon['file']}: {missing}")
                patterns = words + patterns
            rules.append(TextRule(tag, tuple(patterns), bool(entry.get("negatable", True))))
    boards = _board_rules(seed)
    for tag, extra in seed["themes"].items():
        boards.setdefault(tag, []).extend(str(p) for p in extra)
    rules.extend(TextRule(tag, tuple(patterns)) for tag, patterns in boards.items())
    rules = _merge(rules)
    bad = [r.tag for r in rules if not _TAG_ID.match(r.tag)]
    if bad:
        raise ValueError(f"caifu_seed.yaml: tag ids must be <family>.<name> with a family "
                         f"in {FAMILIES}: {bad}")
    stops = tuple(str(p) for p in seed.get("stop_phrases", []))
    return (*rules, TextRule(STOP_TAG, stops, negatable=False))


def _merge(rules: Iterable[TextRule]) -> list[TextRule]:
    """One rule per tag, patterns de-duplicated in first-seen order."""
    merged: dict[str, tuple[dict[str, None], bool]] = {}
    for rule in rules:
        patterns, negatable = merged.get(rule.tag, ({}, True))
        patterns.update(dict.fromkeys(rule.patterns))
        merged[rule.tag] = (patterns, negatable and rule.negatable)
    return [TextRule(tag, tuple(p), neg) for tag, (p, neg) in merged.items()]


def _columns(table: pa.Table, required: tuple[str, ...], what: str) -> dict[str, list[Any]]:
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise ValueError(f"{what} table lacks column(s) {missing}; has {table.column_names}")
    return {c: table.column(c).to_pylist() for c in required}


def _name_variants(name: str, strip: re.Pattern[str] | None) -> list[str]:
    compact = "".join(fold(name).split())
    out = [compact]
    if compact.startswith(("*st", "s*st")):
        out.append(compact.replace("*", ""))
    if strip is not None:
        m = strip.match(compact)
        if m and len(m.group(1)) >= 2:
            out.append(m.group(1))
    return [v for v in dict.fromkeys(out) if len(v) >= 2]


_SHARE_A = re.compile(r"^(.*[\u3400-\u9fff])a$")  # 万科a -> 万科


def security_rules(securities: pa.Table) -> list[TextRule]:
    """``security.<code>`` rules, and the same patterns as ``board.<board>`` evidence."""
    cols = _columns(securities, SECURITY_COLUMNS, "securities")
    rules: list[TextRule] = []
    by_board: dict[str, list[str]] = {}
    boards = {r.tag for r in _seed_rules() if r.tag.startswith("board.")}
    for code, name, board in zip(*cols.values(), strict=True):
        code = (code or "").strip()
        if not code:
            continue
        patterns = [code, *(_name_variants(name, _SHARE_A) if name else [])]
        rules.append(TextRule(f"security.{code}", tuple(dict.fromkeys(patterns))))
        if board and f"board.{board}" in boards:
            by_board.setdefault(f"board.{board}", []).extend(patterns)
    rules.extend(TextRule(tag, tuple(p)) for tag, p in by_board.items())
    return rules


def fund_rules(funds: pa.Table) -> list[TextRule]:
    """``fund.<code>`` rules from the tenant's fund products (code and name)."""
    cols = _columns(funds, FUND_COLUMNS, "funds")
    exact = {"".join(fold(n).split()) for n in cols["name"] if n}
    rules = []
    for code, name in zip(*cols.values(), strict=True):
        code = (code or "").strip()
        if not code:
            continue
        variants = _name_variants(name, _CLASS_SUFFIX) if name else []
        # the class-less name is shared by the A and C classes, unless a fund is called that
        patterns = [code, *variants[:1], *(v for v in variants[1:] if v not in exact)]
        rules.append(TextRule(f"fund.{code}", tuple(dict.fromkeys(patterns))))
    return rules


def seed_rules(securities: pa.Table | None = None,
               funds: pa.Table | None = None) -> list[TextRule]:
    """Every seed rule, plus ``security.*``/``fund.*`` from the tenant's tables if given."""
    rules = list(_seed_rules())
    if securities is not None:
        rules.extend(security_rules(securities))
    if funds is not None:
        rules.extend(fund_rules(funds))
    return _merge(rules)


@lru_cache(maxsize=1)
def _ids() -> tuple[str, ...]:
    return tuple(sorted(r.tag for r in _seed_rules() if r.tag != STOP_TAG))


def dictionary_ids() -> list[str]:
    """Every seed dictionary id (``board.chinext``, ``theme.光伏`` ...), sorted."""
    return list(_ids())
