"""Mixed CRLF/LF line endings: detection and the LF copy, across tiny chunks."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caifu.adapters.sources import encoding as source_bytes

CHUNK = 4


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_bytes, "_CHUNK", CHUNK)


def _reference_lf(data: bytes) -> bytes:
    """Byte by byte: CRLF outside double quotes becomes LF."""
    out, inside, i = bytearray(), False, 0
    while i < len(data):
        b = data[i:i + 1]
        if b == b'"':
            inside = not inside
        if b == b"\r" and data[i + 1:i + 2] == b"\n" and not inside:
            i += 1
            continue
        out += b
        i += 1
    return bytes(out)


def _run(tmp_path: Path, data: bytes) -> tuple[bool, bytes]:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_bytes(data)
    source_bytes.to_lf(src, dst)
    return source_bytes.mixed_line_endings(src), dst.read_bytes()


@pytest.mark.parametrize(("data", "mixed", "lf"), [
    (b"a,b\r\n1,2\n3,4\n", True, b"a,b\n1,2\n3,4\n"),
    (b"a,b\r\n1,2\r\n3,4\n5,6\r\n", True, b"a,b\n1,2\n3,4\n5,6\n"),
    (b"abc\r\n12\n", True, b"abc\n12\n"),  # the CRLF split by a chunk boundary
    (b'a,b\n1,"x\r\ny"\n', True, b'a,b\n1,"x\r\ny"\n'),  # a quoted CRLF is the value's own
    (b'a,b\r\n1,"x""\r\n"\r\n', False, b'a,b\n1,"x""\r\n"\n'),  # doubled quotes stay inside
    (b"a,b\n1,2\n", False, b"a,b\n1,2\n"),
    (b"a,b\r\n1,2\r\n", False, b"a,b\n1,2\n"),
    (b"a,b\r", False, b"a,b\r"),
])
def test_examples(tmp_path: Path, data: bytes, mixed: bool, lf: bytes) -> None:
    assert _run(tmp_path, data) == (mixed, lf)


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.sampled_from([b"a", b",", b'"', b"\r", b"\n", b"\r\n", b"\xe4\xb8\xad"]),
                     max_size=30).map(b"".join))
def test_lf_copy_equals_the_byte_by_byte_rule(tmp_path: Path, data: bytes) -> None:
    mixed, lf = _run(tmp_path, data)
    assert lf == _reference_lf(data)
    lone_lf = data.replace(b"\r\n", b"").count(b"\n") > 0
    assert mixed == (b"\r\n" in data and lone_lf)
