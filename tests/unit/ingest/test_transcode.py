"""GBK/GB18030 → UTF-8 transcoding with its ASCII fast path, at chunk boundaries.

Chunks are made tiny so that every case below crosses several of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from caifu.adapters.sources import encoding as source_bytes
from caifu.core.errors import EncodingError

CHUNK = 16


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_bytes, "_CHUNK", CHUNK)


def _transcoded(tmp_path: Path, data: bytes, encoding: str = "gbk") -> bytes:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_bytes(data)
    source_bytes.transcode(src, encoding, out)
    return out.read_bytes()


def test_an_empty_file_is_ascii_and_transcodes_to_nothing(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(b"")
    assert source_bytes.is_ascii(tmp_path / "in.csv")
    assert _transcoded(tmp_path, b"") == b""


def test_ascii_files_are_copied(tmp_path: Path) -> None:
    data = b"trade_id,quantity\n" + b"".join(b"T%05d,%d\n" % (i, i) for i in range(50))
    (tmp_path / "in.csv").write_bytes(data)
    assert source_bytes.is_ascii(tmp_path / "in.csv")
    assert _transcoded(tmp_path, data) == data


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_the_only_non_ascii_character_in_the_last_chunk(tmp_path: Path, encoding: str) -> None:
    text = "branch_id,name\n" + "".join(f"B{i},x\n" for i in range(20)) + "B99,北京"
    data = text.encode(encoding)
    assert len(data) > 5 * CHUNK and data[-CHUNK:].isascii() is False
    assert data[:-CHUNK].isascii()
    (tmp_path / "in.csv").write_bytes(data)
    assert not source_bytes.is_ascii(tmp_path / "in.csv")
    assert _transcoded(tmp_path, data, encoding) == text.encode("utf-8")


def test_a_character_cut_by_a_chunk_with_an_ascii_trail_byte(tmp_path: Path) -> None:
    # 丂 is 0x81 0x40 in GBK: its trail byte '@' is ASCII, so the chunk after the cut is all
    # ASCII and must still go through the decoder, which holds the lead byte.
    assert "丂".encode("gbk") == b"\x81\x40"
    text = "a" * (CHUNK - 1) + "丂" + "b" * (2 * CHUNK) + "\n"
    data = text.encode("gbk")
    assert data[CHUNK:2 * CHUNK].isascii()
    assert _transcoded(tmp_path, data) == text.encode("utf-8")


def test_a_bad_byte_in_the_last_chunk_names_its_line_and_offset(tmp_path: Path) -> None:
    good = "".join(f"B{i},x\n" for i in range(10)).encode("gbk")  # 10 lines, all ASCII
    data = good + b"B10,\x80\n"
    with pytest.raises(EncodingError, match=rf"line 11: byte 0x80 at offset {len(good) + 4} "):
        _transcoded(tmp_path, data)


def test_a_file_cut_inside_a_character_after_ascii_chunks(tmp_path: Path) -> None:
    data = b"x" * (3 * CHUNK) + b"\n" + "上".encode("gbk")[:1]
    with pytest.raises(EncodingError, match=rf"line 2: byte 0x[0-9a-f]{{2}} at offset {3 * CHUNK + 1} "):
        _transcoded(tmp_path, data)


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
@pytest.mark.parametrize("cut", [0, 1, 2], ids=["whole", "cut-after-1", "cut-after-2"])
def test_utf8_declared_gbk_is_refused_wherever_its_first_non_ascii_byte_is(
        tmp_path: Path, encoding: str, cut: int) -> None:
    # many ASCII chunks, then UTF-8 Chinese, its first character split by a chunk boundary
    head = b"".join(b"B%03d,x\n" % i for i in range(30))
    head += b"y" * (CHUNK - len(head) % CHUNK - cut)
    data = head + "北京金融街\n".encode()
    assert data[len(head):].decode("gbk", "replace") != "北京金融街\n"  # it would be garbled
    with pytest.raises(EncodingError, match=(
            rf"line 31: declared {encoding} but the bytes are UTF-8 \(first non-ASCII byte "
            rf"at offset {len(head)}\)")):
        _transcoded(tmp_path, data, encoding)


def test_gbk_whose_first_characters_happen_to_be_valid_utf8_transcodes(tmp_path: Path) -> None:
    text = "b" * (3 * CHUNK) + "说" + "x" * (2 * CHUNK) + "北京\n"  # 说 is CB B5 in GBK
    assert "说".encode("gbk").decode("utf-8")
    assert _transcoded(tmp_path, text.encode("gbk")) == text.encode("utf-8")
