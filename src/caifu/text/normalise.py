"""Text normalisation for matching: fold width and case, convert traditional to simplified.

``normalise(text)`` returns a string of **exactly the same length** as ``text``, character for
character, so an offset found in the normalised text is the offset in the original message
and a tag's evidence can quote the customer's own words (traditional characters, full-width
letters and all). Two steps, both 1:1 per code point:

1. **fold** — each character becomes ``NFKC(char).lower()`` when that is a single character
   (full-width ``Ａ１，`` → ``a1,``, ``Ｌｅｖｅｌ－２`` → ``level-2``, CJK compatibility ideographs
   → unified ones, ``ChiNext`` → ``chinext``), every Unicode dash (category Pd) becomes ``-``
   and every space separator becomes ``" "``. Characters whose NFKC form is longer than one
   character (``…`` → ``...``, ``㈱`` → ``(株)``, ``ﬁ`` → ``fi``) keep their lower-case form,
   or stay as they are; NFKC's composition of combining sequences is not applied either. No
   dictionary pattern depends on either.
2. **t2s** — OpenCC's ``t2s`` configuration (``請問創業板怎麼開通`` → ``请问创业板怎么开通``).
   OpenCC converts phrases, not only characters, but every entry of the dictionaries it
   ships (``TSPhrases``, ``TSCharacters``, ``TSCharactersExt``, ``CJK_Compatibility_Ideographs``;
   OpenCC 1.4.2) maps a key to a value of the same length in code points — checked for the
   installed release by ``tests/unit/test_text_normalise.py``. Should a future dictionary break
   that, the converted text's length differs and ``normalise`` falls back to converting one
   character at a time, keeping any character whose conversion is not a single character.
   (Two such changes cancelling out within one message would go unnoticed: the test is what
   guards the dictionaries.)

Lone surrogates (which OpenCC cannot encode) become U+FFFD before conversion, so nothing a
chat archive can hold makes ``normalise`` raise. ``normalise_many`` converts a batch in one
OpenCC call (about five times faster than one call per message).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence

__all__ = ["fold", "normalise", "normalise_many"]

_SURROGATE = re.compile("[\ud800-\udfff]")
# Extra planes with foldable characters: mathematical alphanumerics, enclosed alphanumerics,
# CJK compatibility ideographs supplement.
_EXTRA_RANGES = ((0x1D400, 0x1D800), (0x1F100, 0x1F200), (0x2F800, 0x2FA20))
_SEPARATOR = "\n"  # joins a batch for one OpenCC call; no dictionary entry contains it

_lock = threading.Lock()
_fold_table: dict[int, str] | None = None
_converter: object | None = None
_char_t2s: dict[str, str] = {}


def _fold_char(ch: str) -> str:
    cat = unicodedata.category(ch)
    if cat == "Pd":
        return "-"
    if cat == "Zs":
        return " "
    nfkc = unicodedata.normalize("NFKC", ch).lower()
    if len(nfkc) == 1:
        return nfkc
    low = ch.lower()
    return low if len(low) == 1 else ch


def _build_fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    ranges = ((0, 0xD800), (0xE000, 0x10000), *_EXTRA_RANGES)
    for lo, hi in ranges:
        for cp in range(lo, hi):
            ch = chr(cp)
            folded = _fold_char(ch)
            if folded != ch:
                table[cp] = folded
    return table


def _table() -> dict[int, str]:
    global _fold_table
    if _fold_table is None:
        with _lock:
            if _fold_table is None:
                _fold_table = _build_fold_table()
    return _fold_table


def _opencc() -> object:
    global _converter
    if _converter is None:
        with _lock:
            if _converter is None:
                import opencc  # imported lazily: loading the dictionaries takes ~50 ms

                _converter = opencc.OpenCC("t2s")
    return _converter


def fold(text: str) -> str:
    """Width, case and dash folding only (no t2s); same length as ``text``."""
    if text.isascii():
        return text.lower()
    return text.translate(_table())


def _t2s_by_char(text: str) -> str:
    convert = _opencc().convert  # type: ignore[attr-defined]
    out = []
    for ch in text:
        conv = _char_t2s.get(ch)
        if conv is None:
            conv = convert(ch) if not _SURROGATE.match(ch) else "\ufffd"
            conv = conv if len(conv) == 1 else ch
            _char_t2s[ch] = conv
        out.append(conv)
    return "".join(out)


def _t2s(text: str) -> str:
    if text.isascii():
        return text
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    out: str = _opencc().convert(text)  # type: ignore[attr-defined]
    if len(out) != len(text):  # a length-changing dictionary entry: go character by character
        out = _t2s_by_char(text)
    return out


def normalise(text: str) -> str:
    """``text`` folded (NFKC per character, lower case, dashes) and converted t2s, same length.

    >>> normalise("請問ＣｈｉＮｅｘｔ創業板，Level–2？")
    '请问chinext创业板,level-2?'
    """
    return _t2s(fold(text))


def normalise_many(texts: Sequence[str]) -> list[str]:
    """``[normalise(t) for t in texts]``, with one OpenCC call for the whole batch."""
    if not texts:
        return []
    folded = [fold(t) for t in texts]
    # Joined by a newline, which no dictionary phrase contains, so no conversion crosses from
    # one message into the next; the result is cut at the same offsets (conversion is 1:1).
    joined = _t2s(_SEPARATOR.join(folded))
    out, pos = [], 0
    for t in folded:
        out.append(joined[pos:pos + len(t)])
        pos += len(t) + 1
    return out
