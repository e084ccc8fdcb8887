"""Company linking for news and announcements: who is a document about?

    from caifu.text.companies import CompanyLinker
    linker = CompanyLinker()                       # the shipped A-share list; build once
    linker.link("*ST 围海控股股东所持股份被冻结", published=date(2021, 11, 17))
    # [CompanyMention(name='*ST 围海', start=0, end=6, code='002586', listed=True,
    #                 rule='prefixed_short_name', score=0.95, evidence=...)]

``CompanyLinker(master, aliases, relations)`` builds one Aho-Corasick automaton over every name
(short names and their bases, full names, former names and aliases, relation parties) and every
context cue; ``link(text, published)`` scans the normalised text once, finds codes with one
regular expression and organisation names by their suffix (``company_context``), keeps the
longest of overlapping candidates (``东方财富`` over a shorter name inside it; a whole
``…股份有限公司`` over a short name inside it), scores each and returns those scoring at least
``threshold``, in text order. Each mention quotes the original text at its offsets.

Rules and their prior scores:

========================  =====  ===============================================================
rule                      prior  when
========================  =====  ===============================================================
``code_suffix``           0.97   a code with its exchange (``600519.SH``, ``SH600519``, ``沪市600519``)
``code``                  0.92   a code in brackets or after ``股票代码``; a bare one 0.75
``full_name``             0.97   a full name in the master; 0.8 for a ``…股份有限公司`` containing
                                 a short name, or one the text defines (``(以下简称“风华高科”)``)
``prefixed_short_name``   0.95   the short name's base behind ``ST *ST 退市 N XD`` … (``*ST 围海``)
``short_name``            0.9    a short name that is not ambiguous; an ambiguous one 0.3
``former_name``           0.85   a former name valid on ``published`` (see ``NameAlias``)
``alias``                 0.8    a tenant alias
``relation``              0.8    an unlisted party in the relation table (``listed=False``)
``party``                 0.6    another organisation name not in the master (``code=None``)
========================  =====  ===============================================================

Context adds to the prior of an ambiguous name only (``evidence.because`` lists each step):
+0.2 per cue word within 10 characters in the same sentence (at most +0.4; for a two-character
name only a cue right beside it counts), +0.5 for a code right after the name, +0.4 when the same
company is linked elsewhere in the document without ambiguity, +0.3 for a name followed by ``:``
(a headline's subject), +0.15 for the sentence's subject; -0.3 for a ``NEGATIVE_CUES`` word
right after it (``太阳能电池``) and for a two-character name that ends a longer word (``神州长城``
holds ``长城``). A base shared by several companies links only when the document names one of
them otherwise. ``ST`` plus the first two characters of exactly one company's name links at 0.7
(``ST联建`` → 联建光电). A name with a code written right after it takes that code. Scores are
capped at 1.0; the default threshold is 0.5.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

import ahocorasick

from caifu.text.company_context import (
    CUES,
    NEGATIVE_CUES,
    STOP_PHRASES,
    CodeHit,
    find_codes,
    find_orgs,
    sentence_bounds,
)
from caifu.text.company_master import (
    CompanyMaster,
    CompanyName,
    NameAlias,
    PartyRelation,
    compact,
    strip_markers,
)
from caifu.text.normalise import normalise

__all__ = ["CompanyLinker", "CompanyMention", "Evidence"]

_PRIOR = {"code_suffix": 0.97, "code": 0.92, "full_name": 0.97, "prefixed_short_name": 0.95,
          "short_name": 0.9, "former_name": 0.85, "alias": 0.8, "relation": 0.8, "party": 0.6}
_AMBIGUOUS_PRIOR = 0.3
_WINDOW = 10
_MARKER_BEFORE = re.compile(r"(s\*st|\*st|sst|st|退市|xd|xr|dr|pt|(?<![a-z])[nc])\s?$")
_DEFINED = re.compile(r"\s*[(（]\s*(?:以下简称|以下称|下称|简称)\s*[:：]?\s*[“\"「‘']([^”\"」’']{2,12})[”\"」’']")
_SUBJECT = re.compile(r"^[\s\W\d年月日号晚间早间上午下午讯据悉]*$")
_CODE_RIGHT_AFTER = re.compile(r"\s?[(（]?\s?(?:sh|sz|bj)?\d{6}")
_ABBREVIATED = re.compile(r"(?<![a-z])(s\*st|\*st|sst|st)\s?([\u3400-\u9fff]{2})")
_CJK = re.compile(r"[\u3400-\u9fff]")
_JOINERS = set("的和与及被由向对在是为从据除、")
_PLACE_END = ("省", "市", "区", "县")
_CUE, _NEG = 1, 2


@dataclass(frozen=True)
class Evidence:
    """Why a mention was linked: the sentence quoted from the original text, the score's steps,
    and the ambiguity the context had to overcome (None if the name can link alone)."""

    sentence: str
    because: tuple[str, ...]
    ambiguity: str | None = None


@dataclass(frozen=True)
class CompanyMention:
    """One company named once: ``name`` is ``text[start:end]`` of the original document."""

    name: str
    start: int
    end: int
    code: str | None
    listed: bool
    rule: str
    score: float
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class _Cand:
    start: int
    end: int
    code: str | None
    listed: bool
    rule: str
    prior: float
    ambiguity: str | None
    because: tuple[str, ...]


class CompanyLinker:
    """Links documents to the master's companies; build once, reuse for every document."""

    def __init__(self, master: CompanyMaster | None = None, aliases: Sequence[NameAlias] = (),
                 relations: Sequence[PartyRelation] = (), threshold: float = 0.5) -> None:
        self.master = master if master is not None else CompanyMaster.shipped()
        self.threshold = threshold
        self._listed = set(self.master.short_names)
        self._names: dict[str, list[CompanyName]] = {}
        for entry in self.master.names(aliases):
            if entry.key:
                self._names.setdefault(entry.key, []).append(entry)
        self._relations: dict[str, list[PartyRelation]] = {}
        for rel in relations:
            self._relations.setdefault(compact(rel.party), []).append(rel)
        self._short_keys = {e.key: e.code for v in self._names.values() for e in v
                            if e.rule == "short_name" and not e.ambiguity}
        self._bases = {strip_markers(e.key): e.code for v in self._names.values() for e in v
                       if e.rule == "short_name"}
        heads: dict[str, set[str]] = {}
        for code, name in self.master.short_names.items():
            base = strip_markers(compact(name))
            if len(base) >= 4:
                heads.setdefault(base[:2], set()).add(code)
        self._heads = {h: next(iter(c)) for h, c in heads.items()
                       if len(c) == 1 and h not in self._bases}
        self._automaton = ahocorasick.Automaton()
        keys = set(self._names) | set(self._relations)
        cues = {normalise(c): _CUE for c in CUES} | {normalise(c): _NEG for c in NEGATIVE_CUES}
        stops = {normalise(p) for p in STOP_PHRASES}
        for key in keys | set(cues) | stops:
            self._automaton.add_word(key, (len(key), key in keys, cues.get(key, 0)))
        self._stops = stops
        self._automaton.make_automaton()

    @property
    def pattern_count(self) -> int:
        """Distinct names in the automaton (cues not counted)."""
        return len(self._names) + len(self._relations)

    def link(self, text: str, published: date | None = None) -> list[CompanyMention]:
        """Company mentions in ``text`` scoring at least ``threshold``, in text order."""
        if not text:
            return []
        return self._link(text, normalise(text), published)

    # --- internals ---------------------------------------------------------------------------

    def _link(self, text: str, s: str, published: date | None) -> list[CompanyMention]:
        cands: list[_Cand] = []
        cues: list[tuple[int, int, int]] = []
        for last, (length, is_name, cue) in self._automaton.iter(s):
            start = last - length + 1
            if cue:
                cues.append((start, last + 1, cue))
            if is_name:
                cands.extend(self._name_cands(s, start, last + 1, published))
            elif length > 1 and s[start:last + 1] in self._stops:
                cands.append(_Cand(start, last + 1, None, False, "_stop", 0.0, None, ()))
        if "st" in s:
            cands.extend(self._abbreviated(s))
        for hit in find_codes(s):
            if hit.code in self._listed or hit.marked:
                cands.append(self._code_cand(hit))
        for org in find_orgs(s):
            cands.append(self._org_cand(s, org.start, org.end))
        if not cands:
            return []
        taken = _longest_first(self._defined_names(s, cands))
        taken = [self._beside_code(s, c) for c in taken]
        sure = {c.code for c in taken if c.code and c.ambiguity is None and c.listed}
        out = []
        for c in taken:
            if c.rule == "_stop":
                continue
            score, because = self._score(s, c, cues, sure)
            if score >= self.threshold:
                lo, hi = sentence_bounds(s, c.start, c.end)
                out.append(CompanyMention(text[c.start:c.end], c.start, c.end, c.code, c.listed,
                                          c.rule, round(score, 3),
                                          Evidence(text[lo:hi].strip(), because, c.ambiguity)))
        return out

    def _name_cands(self, s: str, start: int, end: int, published: date | None) -> list[_Cand]:
        key = s[start:end]
        out = []
        for rel in self._relations.get(key, ()):
            out.append(_Cand(start, end, rel.code, False, "relation", _PRIOR["relation"], None,
                             (f"relation table: {rel.relation} of {rel.code}",)))
        entries = self._names.get(key, ())
        former = [e for e in entries if e.alias is not None]
        valid = [e for e in former if e.alias is not None and e.alias.valid_on(published)]
        if former and not valid:
            stated = re.search(r"(原名|原简称|曾用名|更名前|原)\s?[:：]?\s?$", s[max(0, start - 6):start])
            if stated:
                valid = [replace(e, rule="former_name") for e in former]
        for e in [e for e in entries if e.alias is None] + valid:
            if e.rule == "short_name":
                m = _MARKER_BEFORE.search(s, max(0, start - 5), start)
                if m and e.key == strip_markers(e.key):
                    exact = compact(s[m.start():end]) in self._names  # *ST 围海 is *ST围海
                    rule = "short_name" if exact else "prefixed_short_name"
                    out.append(_Cand(m.start(), end, e.code, True, rule, _PRIOR[rule], None,
                                     (f"marker {s[m.start():start].strip()!r} before the name",)))
                    continue
            prior = _AMBIGUOUS_PRIOR if e.ambiguity else _PRIOR[e.rule]
            note = f"{e.rule} {e.key!r}"
            if e.alias is not None and e.alias.kind == "former":
                note += f" (valid {e.alias.valid_from or '…'}..{e.alias.valid_to or '…'})"
                if published is None:
                    prior -= 0.2
                    note += ", no publication date"
            out.append(_Cand(start, end, e.code, True, e.rule, prior, e.ambiguity, (note,)))
        return out

    def _beside_code(self, s: str, c: _Cand) -> _Cand:
        """A name with a code written right after it (``*ST丹化(000498.SZ)``) is that code's."""
        if not c.listed or c.rule.startswith("code"):
            return c
        m = _CODE_RIGHT_AFTER.match(s, c.end)
        written = m and s[m.end() - 6:m.end()]
        if written and written != c.code and written in self._listed:
            return replace(c, code=written, because=(*c.because, f"code {written} written beside it"))
        return c

    def _abbreviated(self, s: str) -> list[_Cand]:
        """``ST宁科``: a marker and the first two characters of exactly one company's name."""
        out = []
        for m in _ABBREVIATED.finditer(s):
            code = self._heads.get(m.group(2))
            if code:
                out.append(_Cand(m.start(), m.end(), code, True, "prefixed_short_name", 0.7, None,
                                 (f"marker {m.group(1)!r} and {m.group(2)!r}, the start of "
                                  f"{self.master.short_names[code]!r}",)))
        return out

    def _code_cand(self, hit: CodeHit) -> _Cand:
        known = hit.code in self._listed
        rule = "code_suffix" if hit.marked and not hit.mismatch else "code"
        prior = _PRIOR[rule] if hit.marked else 0.75
        note = [f"code {hit.code}"]
        if hit.mismatch:
            prior, note = 0.7, [*note, "exchange written differs from the code's"]
        if not known:
            prior, note = 0.6, [*note, "not in the master"]
        return _Cand(hit.start, hit.end, hit.code, True, rule, prior, None, tuple(note))

    def _org_cand(self, s: str, start: int, end: int) -> _Cand:
        key = s[start:end]
        for rel in self._relations.get(key, ()):
            return _Cand(start, end, rel.code, False, "relation", _PRIOR["relation"], None,
                         (f"relation table: {rel.relation} of {rel.code}",))
        if key.endswith("股份有限公司"):
            inner = self._contained_short_name(key[:-6])
            if inner:
                return _Cand(start, end, inner[1], True, "full_name", 0.8, None,
                             (f"company name containing short name {inner[0]!r}",))
        return _Cand(start, end, None, False, "party", _PRIOR["party"], None,
                     ("organisation name not in the master",))

    def _contained_short_name(self, stem: str) -> tuple[str, str] | None:
        """The longest short name inside ``stem``; a two-character one only at its start or
        after a place (浙江省围海建设集团 → 围海, 起步 → 起步)."""
        best: tuple[str, str] | None = None
        for last, (length, is_name, _) in self._automaton.iter(stem):
            start = last - length + 1
            key = stem[start:last + 1]
            code = self._short_keys.get(key) or self._bases.get(key)
            if not is_name or not code or len(key) < 2:
                continue
            if len(key) == 2 and not (start == 0 or stem[:start].endswith(_PLACE_END)):
                continue
            if best is None or len(key) > len(best[0]):
                best = (key, code)
        return best

    def _defined_names(self, s: str, cands: list[_Cand]) -> list[_Cand]:
        """``X股份有限公司(以下简称“Y”)``: X takes Y's company if Y is a short name; otherwise
        the quoted Y and every later Y are mentions of the party X."""
        out = list(cands)
        for i, c in enumerate(cands):
            if c.rule != "party":
                continue
            m = _DEFINED.match(s, c.end)
            if not m:
                continue
            short = "".join(m.group(1).split())
            code = self._short_keys.get(short) or self._bases.get(short)
            if code:
                out[i] = replace(c, code=code, listed=True, rule="full_name", prior=0.8,
                                 because=(f"defined in the text as {short!r}",))
                continue
            pos = m.start(1)
            while pos >= 0:
                out.append(replace(c, start=pos, end=pos + len(m.group(1)),
                                   because=(f"defined in the text for {s[c.start:c.end]!r}",)))
                pos = s.find(m.group(1), pos + len(m.group(1)))
        return out

    def _score(self, s: str, c: _Cand, cues: list[tuple[int, int, int]],
               sure: set[str | None]) -> tuple[float, tuple[str, ...]]:
        score, because = c.prior, list(c.because)
        because.append(f"prior {c.prior:.2f}")
        if c.rule not in ("short_name", "former_name", "alias") or c.ambiguity is None:
            return score, tuple(because)
        if c.ambiguity == "shared":  # which of the companies? only the document can tell
            if c.code in sure:
                return 0.8, (*because, "+0.5 same company linked elsewhere in the document")
            return score, (*because, "ambiguous (shared by several companies)")
        lo, hi = sentence_bounds(s, c.start, c.end)
        # a name of two characters needs its cue right next to it (中弘股份, 华铁公告)
        window = 1 if c.ambiguity == "short" else _WINDOW
        found = sorted({s[a:b] for a, b, kind in cues if kind == _CUE
                        and max(lo, c.start - window - 4) <= a and b <= min(hi, c.end + window + 4)
                        and (c.start - window <= b <= c.start or c.end <= a <= c.end + window)})
        if found:
            bonus = min(0.4, 0.2 * len(found))
            score += bonus
            because.append(f"+{bonus:.1f} cues {'、'.join(found)}")
        after = s[c.end:c.end + 12]
        if _CODE_RIGHT_AFTER.match(s, c.end):
            score += 0.5
            because.append("+0.5 code right after")
        if c.code in sure:
            score += 0.4
            because.append("+0.4 same company linked elsewhere in the document")
        if after[:1] in (":", "：") or after.startswith(" :"):
            score += 0.3
            because.append("+0.3 headline subject (name:)")
        if _SUBJECT.match(s[lo:c.start]):
            score += 0.15
            because.append("+0.15 subject of the sentence")
        before = s[c.start - 1:c.start]
        if c.ambiguity == "short" and _CJK.match(before) and before not in _JOINERS:
            score -= 0.3
            because.append(f"-0.3 tail of a longer word ({before} before it)")
        neg = [w for w in NEGATIVE_CUES if after.startswith(normalise(w))]
        if neg:
            score -= 0.3
            because.append(f"-0.3 ordinary-word use ({neg[0]} follows)")
        because.append(f"ambiguous ({c.ambiguity})")
        return min(1.0, score), tuple(because)


def _longest_first(cands: list[_Cand]) -> list[_Cand]:
    """Non-overlapping candidates, longest first; at equal spans a listed company beats a
    party, a specific name an ambiguous one. Several companies on one span all stay."""
    order = sorted(cands, key=lambda c: (c.start - c.end, not c.listed, c.ambiguity is not None,
                                         -c.prior, c.start))
    kept: list[_Cand] = []
    spans: list[tuple[int, int]] = []
    codes: dict[tuple[int, int], set[str | None]] = {}
    for c in order:
        span = (c.start, c.end)
        if span in codes:
            if c.code not in codes[span] and c.listed == kept[spans.index(span)].listed \
                    and c.prior >= kept[spans.index(span)].prior:
                kept.append(c)
                spans.append(span)
                codes[span].add(c.code)
            continue
        if any(a < c.end and c.start < b for a, b in spans):
            continue
        kept.append(c)
        spans.append(span)
        codes[span] = {c.code}
    return sorted(kept, key=lambda c: (c.start, c.code or ""))
