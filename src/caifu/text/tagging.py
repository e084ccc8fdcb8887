"""Chat-message tagging: dictionary patterns → tag hits with evidence, minus negated mentions.

A ``ChatTagger`` is built once from ``TextRule``s (one Aho-Corasick automaton over every
pattern and every negation cue) and then tags messages: ``tag(text)`` returns one ``TextHit``
per (tag, span), each quoting the original message at its offsets (``normalise`` keeps
lengths, so offsets in the normalised text are offsets in the original).

Matching, in order:

1. **Normalise** message and patterns alike (``caifu.text.normalise``: NFKC per character,
   lower case, dashes folded, OpenCC t2s), so ``請問創業板`` matches ``创业板`` and ``LEVEL２``
   matches ``level2``.
2. **Scan** once with the automaton: every pattern occurrence and every negation cue.
3. **Token edges.** A pattern that starts (ends) with an ASCII digit does not match right after
   (before) another digit, and one that starts (ends) with an ASCII letter not right after
   (before) another letter: ``300750`` is not found in ``1300750`` and ``l2`` not in ``html2``,
   but ``sz300750`` and ``300750.sz`` do match. A digit run followed by a unit (``元 块 万 亿 千
   百 年 月 日 号 天 个 次 倍 %``) or preceded by ``¥ $`` is an amount, not a code. A pattern
   ending in ``#`` characters matches its literal prefix followed by exactly that many digits
   (``300###``: any 300xxx code).
4. **Longest match wins.** Overlapping occurrences are taken longest first (then leftmost);
   an occurrence overlapping one already taken is dropped, so ``创业板50ETF`` yields the index
   and not also ``创业板``. Several tags on exactly the same span all stay (a code that is both
   a security and an index ETF, a security and its board).
5. **Negation**, for rules with ``negatable=True``. A mention is dropped when, in the same
   clause (clauses end at ``，。！？；,.!?;`` and line breaks):

   - a **negator** (``不 没 没有 别 未 勿 莫 无意 尚未 拒绝 放弃`` and longer forms such as
     ``不考虑 不打算 暂不``) ends at most ``negation_window`` characters before it, with no
     **scope breaker** (``但 但是 可是 而是 还是 只是 只想``) in between; or
   - a **refusal** (``就算了 算了 不想开 不考虑 不需要 不要了 不用了 不感兴趣 没兴趣 不开了``)
     starts at most ``negation_window`` characters after it.

   Words that contain a negator character but do not negate — ``不知道 不懂 要不要 能不能
   是不是 有没有 不错 不少 不过 特别 别人 未来 没问题`` … (``PSEUDO_NEGATORS``) — are cues
   too, and the longest cue wins, so ``不知道创业板怎么开通`` keeps its tags. A cue inside a
   matched pattern (``稳赚不赔``, ``不满意``) negates nothing. Double negation is not resolved.

Complaints and the like are built with ``negatable=False``: ``我不想投诉，但是…`` is still
worth a look.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import ahocorasick

from caifu.text.normalise import normalise, normalise_many

__all__ = [
    "NEGATORS",
    "POST_REFUSALS",
    "PSEUDO_NEGATORS",
    "SCOPE_BREAKERS",
    "ChatTagger",
    "TextHit",
    "TextRule",
]

NEGATORS = (
    "不", "没", "没有", "别", "未", "勿", "莫", "无意", "尚未", "拒绝", "放弃", "不要", "不想",
    "不打算", "不考虑", "暂不", "暂时不", "并不", "从不", "绝不", "不再", "不会考虑", "不准备",
)
PSEUDO_NEGATORS = (
    "不知道", "不懂", "不清楚", "不了解", "不明白", "不确定", "不太懂", "不太清楚", "不太了解",
    "不会弄", "不会操作", "要不要", "能不能", "可不可以", "是不是", "会不会", "行不行", "好不好",
    "有没有", "需不需要", "用不用", "该不该", "值不值", "买不买", "开不开", "想不想", "要不",
    "不错", "不少", "不过", "不断", "不仅", "不但", "不久", "不然", "差不多", "不管", "不论",
    "不得不", "不一定", "没问题", "没事", "没关系", "没想到", "忍不住", "不用谢", "不客气",
    "特别", "区别", "级别", "类别", "分别", "别人", "别的", "未来", "莫名",
)
POST_REFUSALS = (
    "就算了", "算了", "不想开", "不考虑", "不需要", "不要了", "不用了", "不感兴趣", "没兴趣",
    "不开了", "不打算开", "不想要",
)
SCOPE_BREAKERS = ("但", "但是", "可是", "而是", "还是", "只是", "只想")

_NEG, _PSEUDO, _POST, _BREAK = 1, 2, 4, 8
_DIGITS = "0123456789"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# a digit run next to these is an amount or a date, not a code: 300000元, ¥800000, 688000%
_UNITS = "元块万亿千百年月日号天个次倍%"
_MONEY = "¥$"
_CLAUSE_END = re.compile(r"[,.!?;。\n\r]")


@dataclass(frozen=True)
class TextRule:
    """A dictionary entry: ``tag`` is found wherever any of ``patterns`` occurs.

    Patterns are normalised like messages (write them simplified and in any case). A pattern
    ending in ``#`` matches its prefix followed by exactly that many digits (``300###``).
    ``negatable=False`` keeps the tag even after a negator (complaints). A tag starting with
    ``_`` is a stop list: its patterns win longest-match contests but are never reported
    (``银行卡`` keeps ``银行`` from being found).
    """

    tag: str
    patterns: tuple[str, ...]
    negatable: bool = True


@dataclass(frozen=True)
class TextHit:
    """One tag found once: ``matched`` is ``text[start:end]`` of the original message."""

    tag: str
    matched: str
    start: int
    end: int


def _left_edge(ch: str) -> str:
    """Characters that may not come right before a pattern starting with ``ch``."""
    if ch in _DIGITS:
        return _DIGITS + _MONEY
    return _LETTERS if ch in _LETTERS else ""


def _right_edge(ch: str) -> str:
    """Characters that may not come right after a pattern ending with ``ch``."""
    if ch in _DIGITS:
        return _DIGITS + _UNITS
    return _LETTERS if ch in _LETTERS else ""


def _split_digits(pattern: str) -> tuple[str, int]:
    stripped = pattern.rstrip("#")
    return stripped, len(pattern) - len(stripped)


class ChatTagger:
    """Tags chat messages with the rules it was built from; build once, reuse everywhere."""

    def __init__(self, rules: Sequence[TextRule], negation_window: int = 8) -> None:
        if negation_window < 0:
            raise ValueError(f"negation_window must be >= 0, got {negation_window}")
        self._window = negation_window
        # key -> {digits: {tag: negatable}}, and key -> cue mask
        variants: dict[str, dict[int, dict[str, bool]]] = {}
        cues: dict[str, int] = {}
        for rule in rules:
            if not isinstance(rule.tag, str) or not rule.tag:
                raise ValueError(f"rule with an empty tag: {rule!r}")
            for pattern in rule.patterns:
                literal, digits = _split_digits(pattern)
                key = normalise(literal)
                if not key.strip():
                    raise ValueError(f"rule {rule.tag!r}: pattern {pattern!r} has no literal text")
                tags = variants.setdefault(key, {}).setdefault(digits, {})
                # a tag listed twice on one key is negatable only if every rule says so
                tags[rule.tag] = tags.get(rule.tag, True) and rule.negatable
        for words, mask in ((NEGATORS, _NEG), (PSEUDO_NEGATORS, _PSEUDO),
                            (POST_REFUSALS, _POST), (SCOPE_BREAKERS, _BREAK)):
            for word in words:
                key = normalise(word)
                if mask == _POST and word.startswith(NEGATORS):
                    mask |= _NEG  # 不想开 also negates what follows it
                cues[key] = cues.get(key, 0) | mask
        self._automaton = ahocorasick.Automaton()
        for key in variants.keys() | cues.keys():
            found = tuple(
                (digits, _right_edge("0" if digits else key[-1]), tuple(sorted(tags.items())))
                for digits, tags in sorted(variants.get(key, {}).items())
            )
            self._automaton.add_word(key, (len(key), cues.get(key, 0), _left_edge(key[0]), found))
        self._automaton.make_automaton()
        self._tags = frozenset(t for v in variants.values() for d in v.values() for t in d
                               if t[0] != "_")
        self._pattern_count = len(variants)

    @property
    def tags(self) -> frozenset[str]:
        """Every tag this tagger can emit."""
        return self._tags

    @property
    def pattern_count(self) -> int:
        """Distinct normalised patterns (negation cues not counted)."""
        return self._pattern_count

    def tag(self, text: str) -> list[TextHit]:
        """Tag hits in ``text``, negated ones dropped, sorted by position then tag."""
        if not text:
            return []
        return self.tag_normalised(text, normalise(text))

    def tag_batch(self, texts: Sequence[str | None]) -> list[list[TextHit]]:
        """``[tag(t) for t in texts]``; ``None`` and empty messages give ``[]``."""
        present = [t for t in texts if t]
        norms = iter(normalise_many(present))
        return [self.tag_normalised(t, next(norms)) if t else [] for t in texts]

    def tag_normalised(self, text: str, s: str,
                       negated: list[TextHit] | None = None) -> list[TextHit]:
        """``tag(text)`` for a caller that already holds ``s = normalise(text)`` (and may
        have edited it, lengths kept). The hits dropped as negated go to ``negated`` when it
        is given: what a negated clause mentioned."""
        found: list[tuple[int, int, tuple[tuple[str, bool], ...]]] = []
        cues: list[tuple[int, int, int]] = []
        n = len(s)
        for last, (length, mask, left, variants) in self._automaton.iter(s):
            start = last - length + 1
            if left and start and s[start - 1] in left:
                continue
            if mask:
                cues.append((start, last + 1, mask))
            for digits, right, tags in variants:
                stop = last + 1
                if digits:
                    run = s[stop:stop + digits]
                    if len(run) != digits or not (run.isascii() and run.isdigit()):
                        continue
                    stop += digits
                if right and stop < n and s[stop] in right:
                    continue
                found.append((start, stop, tags))
        if not found:
            return []
        if len(found) == 1:  # the common case: one mention
            start, stop, tags = found[0]
            spans = {(start, stop): tags}
            taken = [(start, stop)]
        else:
            merged: dict[tuple[int, int], dict[str, bool]] = {}
            for start, stop, tags in found:
                into = merged.setdefault((start, stop), {})
                for tag, negatable in tags:
                    into[tag] = into.get(tag, True) and negatable
            spans = {span: tuple(sorted(tags.items())) for span, tags in merged.items()}
            taken = _longest_first(list(spans))
        negators = self._cues(cues, taken) if cues else None
        hits = []
        for start, stop in taken:  # in text order, tags sorted within a span
            tags = spans[(start, stop)]
            is_negated = (negators is not None and any(neg for _, neg in tags)
                          and self._negated(s, start, stop, negators))
            matched = text[start:stop]
            for tag, negatable in tags:
                if tag[0] == "_":
                    continue
                if not (is_negated and negatable):
                    hits.append(TextHit(tag, matched, start, stop))
                elif negated is not None:
                    negated.append(TextHit(tag, matched, start, stop))
        return hits

    @staticmethod
    def _cues(cues: list[tuple[int, int, int]], taken: list[tuple[int, int]]) -> _Cues | None:
        """The negation cues that count, or None if none does.

        A negator or refusal inside a pseudo-negator (不 in 不知道) does not count, nor one
        inside a matched pattern (不 in 稳赚不赔); one overlapping a pattern's edge (不想开 +
        开通) counts for the part outside the pattern.
        """
        pseudo = _longest_first([(a, b) for a, b, m in cues if m & _PSEUDO])
        p_starts = [a for a, _ in pseudo]
        starts = [a for a, _ in taken]
        neg, post, brk = [], [], []
        for a, b, mask in cues:
            if not mask & (_NEG | _POST | _BREAK):
                continue
            k = bisect_right(p_starts, a) - 1
            if k >= 0 and pseudo[k][1] >= b and pseudo[k] != (a, b):
                continue
            i = bisect_right(starts, a) - 1
            if i >= 0 and taken[i][1] > a:
                a = taken[i][1]
            j = bisect_left(starts, a)
            if j < len(taken) and taken[j][0] < b:
                b = taken[j][0]
            if a >= b:
                continue
            if mask & _NEG:
                neg.append((b, a))
            if mask & _POST:
                post.append((a, b))
            if mask & _BREAK:
                brk.append(a)
        if not (neg or post):
            return None
        return _Cues(sorted(neg), sorted(post), sorted(brk))

    def _negated(self, s: str, start: int, stop: int, cues: _Cues) -> bool:
        w = self._window
        # a negator ending in [start - w, start], same clause, no scope breaker in between
        i = bisect_left(cues.neg, (start - w, -1))
        while i < len(cues.neg) and cues.neg[i][0] <= start:
            end = cues.neg[i][0]
            if not _CLAUSE_END.search(s, end, start) and not _between(cues.brk, end, start):
                return True
            i += 1
        # a refusal starting in [stop, stop + w], same clause
        j = bisect_left(cues.post, (stop, -1))
        while j < len(cues.post) and cues.post[j][0] <= stop + w:
            if not _CLAUSE_END.search(s, stop, cues.post[j][0]):
                return True
            j += 1
        return False


@dataclass(frozen=True, slots=True)
class _Cues:
    neg: list[tuple[int, int]]  # (end, start) of negators, sorted
    post: list[tuple[int, int]]  # (start, end) of refusals, sorted
    brk: list[int]  # starts of scope breakers, sorted


def _between(points: list[int], lo: int, hi: int) -> bool:
    i = bisect_left(points, lo)
    return i < len(points) and points[i] < hi


def _longest_first(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Non-overlapping spans, longest first then leftmost; identical spans are one span."""
    if len(spans) == 1:
        return spans
    spans.sort(key=lambda sp: (sp[0] - sp[1], sp[0]))
    starts: list[int] = []
    ends: list[int] = []
    for a, b in spans:
        i = bisect_right(starts, a)
        if i and ends[i - 1] > a:
            continue
        if i < len(starts) and starts[i] < b:
            continue
        starts.insert(i, a)
        ends.insert(i, b)
    return list(zip(starts, ends, strict=True))
