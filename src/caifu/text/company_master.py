"""The security master as the company linker reads it: names, their variants and which are ambiguous.

Input (any of: a ``pyarrow.Table``, a pandas ``DataFrame``, or a list of mappings), one row per
security:

=================  ========  ==========================================================================
column             required  meaning
=================  ========  ==========================================================================
``code``           yes       6-digit code (``stock_code`` and ``security_code`` are accepted as names)
``short_name``     yes       the exchange's short name as published (``万  科Ａ``, ``*ST围海``)
``full_name``      no        registered name (``万科企业股份有限公司``); the shipped list has none
``former_names``   no        list of names, each a string or ``{name, valid_from, valid_to}``
=================  ========  ==========================================================================

``CompanyMaster.shipped()`` reads the vendored A-share list (``caifu.data.reference``). A tenant's
alias table is a list of ``NameAlias`` (name, code, valid_from, valid_to, kind ``former`` or
``alias``); its relation table a list of ``PartyRelation`` (party, code, relation).

**Variants** of a short name (all normalised: width, case, t2s, spaces removed): the name itself
(``万科a``) and its *base* without the markers the exchanges add — prefixes ``ST *ST S*ST SST S
退市 PT N C XD XR DR`` and suffixes share class ``A``/``B``, ``退``, ``-U``/``-W``/``-UW``
(``万科``, ``围海``, ``中弘`` from ``中弘退``). A name written with internal spaces in the master
(``九 芝 堂``) also matches with single spaces.

**Ambiguous** names link only with context (``caifu.text.companies`` scores it). A base or name
is ambiguous when, computed from the master:

- ``short``: it has at most two characters (``万科``, ``华铁``, ``星源``);
- ``prefix``: it is a proper prefix of another company's base (``东旭`` of ``东旭光电``);
- ``shared``: two different companies have it as a base;

or it is in ``COMMON_WORDS``, kept by hand below: short names (each checked to be in the shipped
list by a test) that are also ordinary words, places or phrases in news text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa

from caifu.text.normalise import normalise

__all__ = [
    "COMMON_WORDS",
    "CompanyMaster",
    "CompanyName",
    "NameAlias",
    "PartyRelation",
    "compact",
    "strip_markers",
]

# Short names that are also ordinary words, places or phrases (each is a shipped short name).
COMMON_WORDS = (
    "太阳能", "中关村", "陆家嘴", "外高桥", "机器人", "国际医学", "创新医疗", "同花顺", "大智慧",
    "新希望", "百合花", "老百姓", "好想你", "信息发展", "农产品", "健康元", "东方通",
)
_PREFIX = re.compile(r"^(s\*st|\*st|sst|st|退市|pt|xd|xr|dr|s|n|c)\s?(?=[\u3400-\u9fff])")
_SUFFIX = re.compile(r"(?<=[\u3400-\u9fff])\s?(a|b|退|-uw|-u|-w)$")
_CODE = re.compile(r"^\d{6}$")
_CODE_COLUMNS = ("code", "stock_code", "security_code")


def compact(name: str) -> str:
    """``name`` normalised (fold, t2s) with every space removed: ``万  科Ａ`` → ``万科a``."""
    return "".join(normalise(name).split())


def strip_markers(name: str) -> str:
    """The base of a compact short name: ``*st围海`` → ``围海``, ``万科a`` → ``万科``."""
    base = _PREFIX.sub("", name)
    base = _SUFFIX.sub("", base)
    return base if len(base) >= 2 else name


@dataclass(frozen=True)
class NameAlias:
    """A name that stands for ``code``: a ``former`` name valid in [valid_from, valid_to], or
    an ``alias`` (a nickname the tenant wants linked). ``links_after`` lets a former name link
    in documents published after ``valid_to`` too."""

    name: str
    code: str
    valid_from: date | None = None
    valid_to: date | None = None
    kind: str = "former"
    links_after: bool = False

    def valid_on(self, day: date | None) -> bool:
        if day is None or self.kind != "former":
            return True
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.links_after or self.valid_to is None or day <= self.valid_to


@dataclass(frozen=True)
class PartyRelation:
    """An unlisted ``party`` (controlling shareholder, bond issuer, subsidiary) tied to ``code``."""

    party: str
    code: str
    relation: str


@dataclass(frozen=True)
class CompanyName:
    """One matchable name: ``key`` is compact; ``rule`` says what kind of name it is."""

    key: str
    code: str
    rule: str  # short_name | full_name | former_name | alias
    ambiguity: str | None = None
    alias: NameAlias | None = None


@dataclass
class CompanyMaster:
    """Codes, short names and the names derived from them; build with a ``from_*`` method."""

    short_names: dict[str, str]  # code -> short name as published
    full_names: dict[str, str] = field(default_factory=dict)
    aliases: list[NameAlias] = field(default_factory=list)

    @classmethod
    def shipped(cls) -> CompanyMaster:
        """The vendored lists: a code's 2026 short name is its name, and its 2023 name, when
        different (a rename, an ST mark put on or taken off), a former name without dates;
        codes only in the 2023 list (B shares, companies delisted since) keep that name."""
        from caifu.data.reference import a_share_codes, a_share_names_2026

        old = dict(zip(a_share_codes()["stock_code"].to_pylist(),
                       a_share_codes()["short_name"].to_pylist(), strict=True))
        new = dict(zip(a_share_names_2026()["stock_code"].to_pylist(),
                       a_share_names_2026()["short_name"].to_pylist(), strict=True))
        rows = []
        for code in sorted(old.keys() | new.keys()):
            name, former = new.get(code) or old[code], old.get(code)
            if former and compact(former) == compact(name):
                name, former = former, None  # the 2023 form keeps its padding (万  科Ａ)
            rows.append({"code": code, "short_name": name,
                         "former_names": [former] if former else []})
        return cls.from_records(rows)

    @classmethod
    def from_table(cls, table: Any) -> CompanyMaster:
        """From a ``pyarrow.Table`` or a pandas ``DataFrame`` with the columns above."""
        if not isinstance(table, pa.Table):
            table = pa.Table.from_pandas(table, preserve_index=False)
        return cls.from_records(table.to_pylist())

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> CompanyMaster:
        short: dict[str, str] = {}
        full: dict[str, str] = {}
        aliases: list[NameAlias] = []
        for i, row in enumerate(records):
            code = next((str(row[c]).strip() for c in _CODE_COLUMNS if row.get(c)), "")
            name = str(row.get("short_name") or "").strip()
            if not _CODE.match(code) or not name:
                raise ValueError(f"master row {i}: needs a 6-digit code and a short_name, "
                                 f"got {dict(row)!r}")
            short.setdefault(code, name)
            if row.get("full_name"):
                full[code] = str(row["full_name"]).strip()
            for former in row.get("former_names") or ():
                if isinstance(former, str):
                    aliases.append(NameAlias(former, code))
                else:
                    aliases.append(NameAlias(str(former["name"]), code, former.get("valid_from"),
                                             former.get("valid_to")))
        return cls(short, full, aliases)

    def names(self, extra_aliases: Sequence[NameAlias] = ()) -> list[CompanyName]:
        """Every matchable name, with its ambiguity reason (None when it can link alone)."""
        out: list[CompanyName] = []
        base_codes: dict[str, set[str]] = {}
        exact: dict[str, str] = {}
        for code, name in sorted(self.short_names.items(), key=_a_share_first):
            key = compact(name)
            exact.setdefault(key, code)
            base_codes.setdefault(strip_markers(key), set()).add(_company(code, self.short_names))
        bases = sorted(base_codes)
        prefixes = {b for i, b in enumerate(bases)
                    if i + 1 < len(bases) and bases[i + 1].startswith(b)}
        common = {compact(w) for w in COMMON_WORDS}
        seen: set[str] = set()
        for code, name in sorted(self.short_names.items(), key=_a_share_first):
            key = compact(name)
            base = strip_markers(key)
            for variant in dict.fromkeys((key, base, *_spaced(name))):
                if variant in seen:
                    continue
                seen.add(variant)
                owner = exact.get(variant, code)
                out.append(CompanyName(variant, owner, "short_name",
                                       _ambiguity(variant, base, base_codes, prefixes, common)))
        for code, name in self.full_names.items():
            out.append(CompanyName(compact(name), code, "full_name"))
        for alias in [*self.aliases, *extra_aliases]:
            rule = "former_name" if alias.kind == "former" else "alias"
            out.append(CompanyName(compact(alias.name), alias.code, rule, None, alias))
        return out


def _a_share_first(item: tuple[str, str]) -> tuple[int, str]:
    """A/B shares of one company share a base; the A share (not 2xxxxx/9xxxxx) owns it."""
    code = item[0]
    return (1 if code.startswith(("2", "900")) else 0, code)


def _company(code: str, short: dict[str, str]) -> str:
    """A key naming the company behind a code, so 万科A and 万科B count as one company."""
    return strip_markers(compact(short[code])) if code.startswith(("2", "900")) else code


def _spaced(name: str) -> list[str]:
    """A master name written with inner spaces (``九 芝 堂``) as text copies it: one space."""
    inner = name.strip()
    if " " not in inner and "\u3000" not in inner:
        return []
    return [" ".join(normalise(inner).split())]


def _ambiguity(variant: str, base: str, base_codes: dict[str, set[str]], prefixes: set[str],
               common: set[str]) -> str | None:
    if variant in common or base in common and variant == base:
        return "common_word"
    if variant != base:
        return None  # the full written form with its markers (*st围海, 万科a) is specific
    if len(base_codes.get(base, ())) > 1:
        return "shared"
    if len(base) <= 2:
        return "short"
    if base in prefixes:
        return "prefix"
    return None
