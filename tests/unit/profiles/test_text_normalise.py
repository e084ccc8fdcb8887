"""caifu.text.normalise: t2s + NFKC + lower case, always the same length as the input."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import opencc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caifu.text.normalise import fold, normalise, normalise_many


@pytest.mark.parametrize(("text", "expected"), [
    ("請問創業板怎麼開通", "请问创业板怎么开通"),
    ("開通創業板需要什麼條件？", "开通创业板需要什么条件?"),
    ("ＣｈｉＮｅｘｔ權限", "chinext权限"),
    ("LEVEL2 Level-2 L2", "level2 level-2 l2"),
    ("Ｌｅｖｅｌ－２", "level-2"),
    ("Level–2 Level—2", "level-2 level-2"),  # en and em dash
    ("上证５０ＥＴＦ", "上证50etf"),
    ("万  科Ａ", "万  科a"),
    ("\u3000全角空格", " 全角空格"),
    ("乾隆 乾燥", "乾隆 干燥"),  # phrase-level: 乾隆 is a name, 乾燥 becomes 干燥
    ("涨幅１２．５％", "涨幅12.5%"),
    ("", ""),
])
def test_normalise_values(text: str, expected: str) -> None:
    assert normalise(text) == expected
    assert len(normalise(text)) == len(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("…", "…"),         # NFKC "..." would be 3 characters: kept
    ("㈱", "㈱"),         # NFKC "(株)"
    ("ﬁ", "ﬁ"),         # NFKC "fi"
    ("İ", "İ"),          # lower() gives two code points
    ("e\u0301", "e\u0301"),  # no composition across characters
    ("①", "1"),
    ("😀創業板", "😀创业板"),
    ("a\x00b\x1f\x7f請", "a\x00b\x1f\x7f请"),
    ("請\ud800問", "请\ufffd问"),  # a lone surrogate cannot reach OpenCC
])
def test_edge_characters_keep_length(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_fold_does_not_convert_script() -> None:
    assert fold("請問ＡＢＣ") == "請問abc"


def test_normalise_many_matches_one_by_one() -> None:
    texts = ["請問\n創業板", "", "ＡＢ", "乾燥", "😀\ud800", "line\r\nbreak", "末尾\n"]
    assert normalise_many(texts) == [normalise(t) for t in texts]
    assert normalise_many([]) == []


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_length_preserved_for_any_text(text: str) -> None:
    out = normalise(text)
    assert len(out) == len(text)
    assert normalise_many([text, text]) == [out, out]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=40))
def test_length_preserved_for_cjk_runs(text: str) -> None:
    # dense CJK exercises OpenCC's phrase dictionary, the only step that could shift offsets
    assert len(normalise(text)) == len(text)


def test_opencc_t2s_dictionaries_are_one_to_one(tmp_path: Path) -> None:
    """Every entry OpenCC's t2s uses maps to a value of the key's length (what normalise relies on)."""
    clib = Path(opencc.__file__).parent / "clib"
    tool = shutil.which("opencc_dict", path=str(clib / "bin"))
    if tool is None:
        pytest.skip(reason="this OpenCC build ships no opencc_dict tool to read its dictionaries")
    checked = 0
    for name in ("TSPhrases", "TSCharacters", "TSCharactersExt", "CJK_Compatibility_Ideographs"):
        out = tmp_path / f"{name}.txt"
        subprocess.run([tool, "-i", str(clib / "share" / "opencc" / f"{name}.ocd2"), "-o",
                        str(out), "-f", "ocd2", "-t", "text"], check=True, capture_output=True)
        for line in out.read_text(encoding="utf-8").splitlines():
            key, values = line.split("\t")
            assert len(values.split(" ")[0]) == len(key), line
            checked += 1
    assert checked > 6000
