"""Chat and content compliance: the lexicon of what may not be said, and the risk footer.

Rules are in the reference's "What may not be said"; the default lexicon is
``caifu/data/compliance/lexicon.yaml`` (its header explains the document). A tenant's compliance
team replaces it or ``extends: default``; ``Lexicon.from_document`` validates either
(``text/compliance_document``) and raises ``ConfigError`` naming the field.

``lexicon.check(text, sender)`` returns ``Finding``s with spans in the original text:

- **phrases** are found with one Aho-Corasick scan over ``normalise``d text (traditional and
  full-width forms match; offsets are the original's), longest match first; a hit overlapping
  an ``allow`` term (无风险利率) is dropped.
- **negation**: a hit is *negated* when a ``before`` cue ends at most ``window`` characters
  ahead of it in the same clause (clauses end at ``，。！？；,.!?;`` and line breaks) with no
  scope breaker between, or an ``after`` cue starts within ``window`` after it. A cue inside
  a matched phrase (不 in 稳赚不赔) or inside a longer non-negator (不断) counts for nothing.
  Hits separated by at most two characters form a run and share the run's negation
  (不承诺保本保收益, 保本保收益的说法都是骗人的).
- **detectors** (sensitive data): 18-character resident IDs passing GB 11643, 16–19 digit
  cards starting 3–6 and passing Luhn (order numbers and dates starting 1/2 are not cards),
  and a secret keyword (密码, 验证码 …) followed by 4+ ASCII characters. Their findings carry
  the masked value only: findings end up in a review queue and logs.
- **action**: an advisor's non-negated hit → ``review``, a negated one → ``none`` (kept to
  measure precision). From a customer only categories with ``customer: alert`` count → ``alert``
  (a customer sending his own ID or password is warned, never blocked).

``excerpt`` cuts what the review queue stores; ``footer`` and ``check_content`` serve the
campaign gate; ``text/compliance_eval.evaluate`` scores a lexicon on the labelled sample
shipped beside it.
"""

from __future__ import annotations

import copy
import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import ahocorasick
import yaml

from caifu.core.errors import ConfigError
from caifu.core.ids import luhn_valid, validate_resident_id, validate_sac_number
from caifu.core.levels import mask_bank_card, mask_mobile, mask_resident_id
from caifu.text.compliance_document import (
    CategorySpec,
    LexiconDocument,
    default_document,
    parse_document,
)
from caifu.text.normalise import normalise, normalise_many

__all__ = ["ContentCheck", "Finding", "Lexicon", "check", "check_content", "default_lexicon",
           "excerpt", "footer"]

RISK_WARNING = "市场有风险，投资需谨慎。"
RESEARCH_DISCLAIMER = "仅供参考，不构成投资建议。"
Sender = Literal["advisor", "customer"]
Action = Literal["review", "none", "alert"]

_BEFORE, _AFTER, _PSEUDO, _BREAK, _ALLOW = 1, 2, 4, 8, 16
_CLAUSE_WIDE = 10_000  # a negation window longer than any message: the clause is the scope
_CLAUSE_END = re.compile(r"[,.!?;。，！？；\n\r]")
_DIGITS, _LETTERS = frozenset("0123456789"), frozenset("abcdefghijklmnopqrstuvwxyz")
_ID = re.compile(r"(?<![0-9a-z])(\d{6})[ -]?(\d{8})[ -]?(\d{3}[0-9x])(?![0-9a-z])")
_CARD = re.compile(r"(?<![0-9a-z])[3-6](?:[ -]?\d){15,18}(?![0-9a-z])")
_LONG_DIGITS = re.compile(r"(?<![0-9])\d(?:[ -]?\d){13,}[0-9x]?(?![0-9])")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86)?1[3-9]\d{9}(?![0-9])")
_SECRET_VALUE = r"(?:是|为|:|,|\s)*([0-9a-z!@#$%^&*._+=~-]{4,32})"


@dataclass(frozen=True, slots=True)
class Finding:
    """One hit; ``matched`` is the original text, or the masked value for sensitive data."""

    category: str
    phrase: str  # the lexicon phrase, or the detector (resident_id, bank_card, secret)
    start: int
    end: int
    matched: str
    negated: bool
    severity: str
    action: Action


@dataclass(frozen=True, slots=True)
class ContentCheck:
    """Campaign content: its findings and which parts of the footer are missing."""

    findings: tuple[Finding, ...]
    footer_missing: tuple[str, ...]
    footer_required: bool

    @property
    def footer_present(self) -> bool:
        return not self.footer_missing

    @property
    def passed(self) -> bool:
        """No finding for review and, where required, the full footer."""
        clean = not any(f.action == "review" for f in self.findings)
        return clean and (self.footer_present or not self.footer_required)


class Lexicon:
    """A validated, versioned lexicon compiled into one automaton; build once, reuse."""

    def __init__(self, doc: LexiconDocument, *, source: str, based_on: str | None = None) -> None:
        self.version, self.source, self.based_on = str(doc.version), source, based_on
        self.window = doc.negation.window
        self.categories = dict(doc.categories)
        self._automaton = ahocorasick.Automaton()
        entries: dict[str, list[Any]] = {}  # normalised key -> [phrase, category, cue mask]
        for cid, cat in doc.categories.items():
            for phrase in cat.phrases:
                entry = entries.setdefault(normalise(phrase), [None, None, 0])
                if entry[1] not in (None, cid):
                    raise ConfigError(f"{source}: categories.{cid}.phrases: {phrase!r} is "
                                      f"also listed under categories.{entry[1]}")
                entry[0], entry[1] = phrase, cid
        cue_lists = ((doc.negation.before, _BEFORE), (doc.negation.after, _AFTER),
                     (doc.negation.not_negators, _PSEUDO),
                     (doc.negation.scope_breakers, _BREAK), (doc.allow, _ALLOW))
        for words, mask in cue_lists:
            for word in words:
                entries.setdefault(normalise(word), [None, None, 0])[2] |= mask
        for key, (phrase, cid, mask) in entries.items():
            self._automaton.add_word(key, (len(key), phrase, cid, mask))
        self._automaton.make_automaton()
        self._detectors = [(cid, d) for cid, cat in doc.categories.items() for d in cat.detectors]
        keywords = sorted({normalise(k) for cat in doc.categories.values()
                           for k in cat.secret_keywords}, key=len, reverse=True)
        self._secret = (re.compile("(" + "|".join(map(re.escape, keywords)) + ")"
                                   + _SECRET_VALUE) if keywords else None)

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_document(cls, document: Any, *, source: str) -> Lexicon:
        """Validate a parsed document (``ConfigError`` names ``source`` and the field)."""
        doc, based_on = parse_document(document, source=source)
        return cls(doc, source=source, based_on=based_on)

    @classmethod
    def from_yaml(cls, text: str, *, source: str) -> Lexicon:
        """Parse a tenant's YAML text (read by the caller) and validate it."""
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{source}: not valid YAML: {err}") from None
        return cls.from_document(document, source=source)

    @classmethod
    def load(cls) -> Lexicon:
        """The packaged default lexicon."""
        return default_lexicon()

    # --- checking ----------------------------------------------------------------------------

    def check(self, text: str | None, sender: Sender) -> list[Finding]:
        """Findings in one message, in text order."""
        _check_sender(sender)
        return self._check(text, normalise(text), sender) if text else []

    def check_many(self, texts: Sequence[str | None], sender: Sender) -> list[list[Finding]]:
        """``[check(t, sender) for t in texts]`` with one normalisation call for the batch."""
        _check_sender(sender)
        present = [t for t in texts if t]
        norms = iter(normalise_many(present))
        return [self._check(t, next(norms), sender) if t else [] for t in texts]

    def check_normalised(self, text: str, s: str, sender: Sender) -> list[Finding]:
        """``check(text, sender)`` for a caller that already holds ``s = normalise(text)`` (and
        may have edited it, lengths kept)."""
        _check_sender(sender)
        return self._check(text, s, sender) if text else []

    def clause_scoped(self) -> Lexicon:
        """This lexicon with negation reaching the whole clause instead of ``window``
        characters (the hybrid tagger's scope); same phrases, version and automaton."""
        clone = copy.copy(self)
        clone.window = _CLAUSE_WIDE
        return clone

    def check_content(self, text: str, *, footer_required: bool = True, research: bool = False,
                      advisor_name: str | None = None, risk_level: str | None = None
                      ) -> ContentCheck:
        """Campaign content judged as an advisor's words, plus the footer's presence."""
        s = normalise(text)
        missing = []
        if not re.search(r"市场有风险[,，\s]*投资需谨慎", s):
            missing.append("risk_warning")
        if advisor_name and normalise(advisor_name.strip()) not in s:
            missing.append("advisor_name")
        sacs = re.findall(r"(?<![0-9a-z])[a-z]\d{13}(?![0-9])", s)
        if not any(validate_sac_number(x.upper()) is None for x in sacs):
            missing.append("sac_number")
        levels = re.findall(r"风险等级[:：\s]*(r[1-5])(?![0-9])", s)
        if not levels or (risk_level and risk_level.lower() not in levels):
            missing.append("risk_level")
        if research and not ("仅供参考" in s and "不构成投资建议" in s):
            missing.append("research_disclaimer")
        return ContentCheck(tuple(self._check(text, s, "advisor")), tuple(missing),
                            footer_required)

    def _check(self, text: str, s: str, sender: Sender) -> list[Finding]:
        hits, cues = self._scan(s)
        negated = self._negation(s, hits, cues) if hits else []
        out = [(cid, phrase, a, b, text[a:b], neg)
               for (a, b, phrase, cid), neg in zip(hits, negated, strict=True)]
        numbers = _numbers(s) if self._detectors else []
        for cid, detector in self._detectors:
            if detector == "secret" and self._secret is not None:
                out += [(cid, detector, m.start(), m.end(), text[m.start():m.start(2)] + "******",
                         False) for m in self._secret.finditer(s)]
            out += [(cid, detector, a, b, masked, False)
                    for (a, b), masked, kind in numbers if kind == detector]
        cats = self.categories
        findings = [Finding(cid, phrase, a, b, matched, neg and cats[cid].negatable,
                            cats[cid].severity, action)
                    for cid, phrase, a, b, matched, neg in out
                    if (action := _action(sender, cats[cid], neg)) is not None]
        return sorted(findings, key=lambda f: (f.start, f.end, f.category))

    def _scan(self, s: str) -> tuple[list[tuple[int, int, str, str]], list[tuple[int, int, int]]]:
        """Phrase hits (longest first, minus allowed terms) and negation cues."""
        found, cues, allows = [], [], []
        for last, (length, phrase, cid, mask) in self._automaton.iter(s):
            start, end = last - length + 1, last + 1
            if phrase is not None and _edges_ok(s, start, end):
                found.append((start, end, phrase, cid))
            if mask & _ALLOW:
                allows.append((start, end))
            elif mask:
                cues.append((start, end, mask))
        found.sort(key=lambda h: (h[0] - h[1], h[0]))  # longest first, then leftmost
        hits: list[tuple[int, int, str, str]] = []
        for h in found:
            if not any(a < h[1] and h[0] < b for a, b, _, _ in hits):
                hits.append(h)
        hits = [h for h in hits if not any(a < h[1] and h[0] < b for a, b in allows)]
        return sorted(hits), cues

    def _negation(self, s: str, hits: list[tuple[int, int, str, str]],
                  cues: list[tuple[int, int, int]]) -> list[bool]:
        pseudo = [(a, b) for a, b, m in cues if m & _PSEUDO]
        before, after, breaks = [], [], []
        for a, b, m in cues:
            if any(a < e and st < b for st, e, _, _ in hits):
                continue  # a cue inside or across a phrase: 不 in 稳赚不赔, 不保证 + 保证收益
            if any(pa <= a and b <= pb and (pa, pb) != (a, b) for pa, pb in pseudo):
                continue  # 不 inside 不断
            if m & _BEFORE and not m & _PSEUDO:
                before.append((a, b))
            if m & _AFTER and not m & _PSEUDO:
                after.append((a, b))
            if m & _BREAK:
                breaks.append(a)
        if not (before or after):
            return [False] * len(hits)
        ends = [m.start() for m in _CLAUSE_END.finditer(s)]
        w = self.window

        def same_clause(lo: int, hi: int) -> bool:
            i = bisect_left(ends, lo)
            return i == len(ends) or ends[i] >= hi

        runs: list[list[int]] = []
        for i, (start, _, _, _) in enumerate(hits):
            prev_end = hits[i - 1][1] if i else None
            if (prev_end is not None and start - prev_end <= 2 and same_clause(prev_end, start)
                    and not any(prev_end <= p < start for p in breaks)):
                runs[-1].append(i)
            else:
                runs.append([i])
        out = [False] * len(hits)
        for run in runs:
            pre = [any(start - w <= b <= start and same_clause(b, start)
                       and not any(b <= p < start for p in breaks) for _, b in before)
                   for start, _, _, _ in (hits[i] for i in run)]
            last_end = hits[run[-1]][1]
            post = any(last_end <= a <= last_end + w and same_clause(last_end, a)
                       for a, _ in after)
            for k, i in enumerate(run):
                out[i] = any(pre[:k + 1]) or post
        return out


def _action(sender: Sender, cat: CategorySpec, negated: bool) -> Action | None:
    if sender == "advisor":
        return "none" if negated and cat.negatable else "review"
    if cat.customer == "alert" and not (negated and cat.negatable):
        return "alert"
    return None  # what a customer says is his own business, bar his own secrets


def _check_sender(sender: str) -> None:
    if sender not in ("advisor", "customer"):
        raise ValueError(f"sender must be 'advisor' or 'customer', got {sender!r}")


def _edges_ok(s: str, start: int, end: int) -> bool:
    """An ASCII phrase edge may not continue a word or a number (100%涨 not in 1100%涨)."""
    for inside, outside in ((start, start - 1), (end - 1, end)):
        if 0 <= outside < len(s):
            a, b = s[inside], s[outside]
            if (a in _DIGITS and b in _DIGITS) or (a in _LETTERS and b in _LETTERS):
                return False
    return True


def _numbers(s: str) -> list[tuple[tuple[int, int], str, str]]:
    """Resident IDs and bank cards in normalised text: ((start, end), masked value, kind)."""
    if not _LONG_DIGITS.search(s):
        return []
    # a long number inside a link is a document id, not a card: it must not block a campaign
    urls = [m.span() for m in _URL.finditer(s)] if "://" in s else []
    out: list[tuple[tuple[int, int], str, str]] = []
    for m in _ID.finditer(s):
        value = "".join(m.groups()).upper()
        in_url = any(a <= m.start() < b for a, b in urls)
        if not in_url and validate_resident_id(value) is None:
            out.append((m.span(), mask_resident_id(value), "resident_id"))
    for m in _CARD.finditer(s):
        digits = re.sub(r"[ -]", "", m.group())
        taken = any(a < m.end() and m.start() < b for (a, b), _, _ in out)
        taken = taken or any(a <= m.start() < b for a, b in urls)
        if not taken and luhn_valid(digits):
            out.append((m.span(), mask_bank_card(digits), "bank_card"))
    return out


def excerpt(text: str, finding: Finding, width: int = 20,
            lexicon: Lexicon | None = None) -> str:
    """``width`` characters either side of ``finding``, with IDs, cards, long digit runs,
    mobiles and secrets masked — what the review queue stores instead of the message."""
    s = normalise(text)
    spans: list[tuple[int, int, str]] = []
    for m in _LONG_DIGITS.finditer(s):
        value = re.sub(r"[ -]", "", m.group()).upper()
        spans.append((*m.span(), mask_resident_id(value) if len(value) == 18
                      else mask_bank_card(value)))
    for m in _MOBILE.finditer(s):
        if not any(a < m.end() and m.start() < b for a, b, _ in spans):
            spans.append((*m.span(), mask_mobile(m.group())))
    secret = (lexicon or default_lexicon())._secret
    if secret is not None:
        for m in secret.finditer(s):
            if not any(a < m.end() and m.start() < b for a, b, _ in spans):
                spans.append((m.start(2), m.end(), "******"))
    lo, hi = max(0, finding.start - width), min(len(text), finding.end + width)
    for a, b, _ in spans:  # never cut a number in half: half a number is still a number
        if a < lo < b:
            lo = a
        if a < hi < b:
            hi = b
    parts, pos = [], lo
    for a, b, masked in sorted(x for x in spans if lo <= x[0] and x[1] <= hi):
        parts += [text[pos:a], masked]
        pos = b
    parts.append(text[pos:hi])
    return ("…" if lo else "") + "".join(parts) + ("…" if hi < len(text) else "")


def footer(advisor_name: str, sac_number: str, risk_level: str, research: bool = False) -> str:
    """The footer pushed content must carry (``ValueError`` for a bad SAC number or level)."""
    if not advisor_name.strip():
        raise ValueError("advisor_name: empty")
    if validate_sac_number(sac_number) is not None:
        raise ValueError("sac_number: not an SAC registration number (letter + 13 digits)")
    if risk_level not in ("R1", "R2", "R3", "R4", "R5"):
        raise ValueError(f"risk_level: expected R1-R5, got {risk_level!r}")
    text = (f"{RISK_WARNING}投资顾问：{advisor_name.strip()}（执业编号：{sac_number}）。"
            f"本内容风险等级：{risk_level}。")
    return text + (RESEARCH_DISCLAIMER if research else "")


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The packaged default lexicon, compiled once."""
    return Lexicon(default_document(), source="caifu/data/compliance/lexicon.yaml")


def check(text: str | None, sender: Sender, lexicon: Lexicon | None = None) -> list[Finding]:
    """``(lexicon or default_lexicon()).check(text, sender)``."""
    return (lexicon or default_lexicon()).check(text, sender)


def check_content(text: str, footer_required: bool = True, *, research: bool = False,
                  advisor_name: str | None = None, risk_level: str | None = None,
                  lexicon: Lexicon | None = None) -> ContentCheck:
    """``(lexicon or default_lexicon()).check_content(...)``, for the campaign gate."""
    return (lexicon or default_lexicon()).check_content(
        text, footer_required=footer_required, research=research, advisor_name=advisor_name,
        risk_level=risk_level)
