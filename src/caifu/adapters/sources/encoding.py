"""A source file's bytes before DuckDB reads them: encoding checks, transcoding, line endings.

DuckDB reads UTF-8 only without an extension it would have to download, so a GBK/GB18030
file is transcoded here first; a file declared GBK whose bytes are UTF-8 is refused rather
than read as garbled text; and a CSV mixing CRLF and LF line ends is normalised to LF, which
DuckDB's sniffer otherwise trips over. Everything streams in chunks: broker exports run to GBs.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from caifu.core.errors import EncodingError

_CHUNK = 8 << 20
_NON_ASCII = re.compile(rb"[\x80-\xff]")


class Utf8Watch:
    """Whether a file declared GBK/GB18030 is really UTF-8, decided on the whole file.

    UTF-8 Chinese often decodes as GBK (and almost any bytes as GB18030) into garbled text,
    while GBK text is valid UTF-8 only by accident and never for long. So a declared-GBK file
    whose every non-ASCII byte is valid UTF-8 is UTF-8, and is refused. Fed every chunk that
    holds non-ASCII bytes (or follows one), in order; ASCII chunks need no decoding.
    """

    def __init__(self, path: Path, encoding: str) -> None:
        self.path, self.encoding = path, encoding
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self.valid = True
        self.first: tuple[int, int] | None = None  # (offset, line) of the first non-ASCII byte

    def holding(self) -> bool:
        return self.valid and bool(self.decoder.getstate()[0])

    def feed(self, chunk: bytes, offset: int, lines_before: int, final: bool = False) -> None:
        if self.first is None and not chunk.isascii():
            i = _NON_ASCII.search(chunk).start()  # type: ignore[union-attr]
            self.first = (offset + i, lines_before + chunk.count(b"\n", 0, i) + 1)
        if self.valid:
            try:
                self.decoder.decode(chunk, final=final)
            except UnicodeDecodeError:
                self.valid = False

    def refuse_if_utf8(self) -> None:
        if self.valid and self.first is not None:
            offset, line = self.first
            raise EncodingError(
                f"declared {self.encoding} but the bytes are UTF-8 (first non-ASCII byte at "
                f"offset {offset}); set encoding: utf-8 for this source",
                path=str(self.path), line=line)


def transcode(path: Path, encoding: str, out: Path) -> None:
    """Stream ``path`` from ``encoding`` to UTF-8, failing with the line of the first bad byte,
    or when the whole file is UTF-8 (``Utf8Watch``)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    utf8 = Utf8Watch(path, encoding)
    lines_before = 0
    offset = 0
    with path.open("rb") as src, out.open("wb") as dst:
        while True:
            chunk = src.read(_CHUNK)
            final = not chunk
            # ASCII bytes are the same characters in GBK, GB18030 and UTF-8: copy them, unless
            # a decoder holds a lead byte (a GBK trail byte can be ASCII). Decoding ran at
            # ~180 MB/s; an all-ASCII 2 GB trades export spent 11 s here. An empty chunk is
            # ASCII too, hence ``not final``: it must reach the decoder to end the loop.
            if not final and chunk.isascii() and not decoder.getstate()[0] \
                    and not utf8.holding():
                dst.write(chunk)
                lines_before += chunk.count(b"\n")
                offset += len(chunk)
                continue
            utf8.feed(chunk, offset, lines_before, final)
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                utf8.refuse_if_utf8()  # not GBK, and UTF-8 so far: say so
                # exc.object is what the decoder saw: bytes it held back from the previous
                # chunk, then this chunk (empty at the end of the file).
                held = len(exc.object) - len(chunk)
                bad = offset - held + exc.start
                line = lines_before + exc.object[: exc.start].count(b"\n") + 1
                raise EncodingError(
                    f"byte 0x{exc.object[exc.start]:02x} at offset {bad} is not valid {encoding}; "
                    f"is the file in another encoding? (set encoding in sources.yaml)",
                    path=str(path),
                    line=line,
                ) from None
            dst.write(text.encode("utf-8"))
            lines_before += chunk.count(b"\n")
            offset += len(chunk)
            if final:
                break
    utf8.refuse_if_utf8()


def is_ascii(path: Path) -> bool:
    """Every byte is ASCII: the file reads the same as GBK, GB18030 or UTF-8.

    One pass at memory speed (≈ 0.5 s for 2 GB); it stops at the first chunk with another
    byte, so a GBK file with Chinese headers costs one chunk.
    """
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            if not chunk.isascii():
                return False
    return True


def mixed_line_endings(path: Path) -> bool:
    """Some lines end in CRLF and others in a bare LF.

    Line breaks inside quoted values count too, so a CRLF file with an LF inside a quoted
    value is a false alarm; ``to_lf`` leaves quoted values alone, so that costs a copy and
    never a changed value. A chunk without CR is found by memchr; only files with CRs count.
    """
    crlf = lf = False
    prev_cr = False
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            joined = prev_cr and chunk.startswith(b"\n")
            if chunk.find(b"\r") < 0 and not joined:
                lf = lf or chunk.find(b"\n") >= 0
            else:
                pairs = chunk.count(b"\r\n") + joined
                crlf = crlf or pairs > 0
                lf = lf or chunk.count(b"\n") > pairs
            if crlf and lf:
                return True
            prev_cr = chunk.endswith(b"\r")
    return False


def to_lf(src: Path, dst: Path) -> None:
    """Copy ``src`` with every CRLF outside double quotes as LF; quoted values unchanged.

    A '"' toggles quoting (a doubled "" inside a value toggles twice), so the pieces between
    quotes alternate between outside and inside; a CR ending a chunk waits for the next one.
    """
    inside = False
    held = b""
    with src.open("rb") as f, dst.open("wb") as out:
        while True:
            chunk = f.read(_CHUNK)
            data = held + chunk
            held = b""
            if chunk and data.endswith(b"\r"):
                data, held = data[:-1], b"\r"
            pieces = data.split(b'"')
            for i in range(len(pieces)):
                if (i % 2 == 1) == inside:  # outside quotes
                    pieces[i] = pieces[i].replace(b"\r\n", b"\n")
            out.write(b'"'.join(pieces))
            inside ^= len(pieces) % 2 == 0
            if not chunk:
                break


def decode_line(raw_line: bytes, encoding: str, declared: str, *, path: Path, line: int,
                start: int, utf8: Utf8Watch | None) -> str:
    """One line of a JSON Lines file as text, or the file refused at its first bad byte."""
    try:
        return raw_line.decode(encoding)
    except UnicodeDecodeError as exc:
        if utf8 is not None:
            utf8.refuse_if_utf8()
        raise EncodingError(
            f"byte 0x{raw_line[exc.start]:02x} at offset {start + exc.start} is not valid "
            f"{declared}; is the file in another encoding? "
            f"(set encoding in sources.yaml)", path=str(path), line=line) from None
