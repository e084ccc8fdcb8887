"""One news article or exchange announcement, as read from a file line or a request item.

``check(record, …)`` returns a ``Document`` or a ``Rejection`` that names the field and the
rule; the intake stores both, so nothing sent is lost. Reason codes (stable; scripts and the
API switch on them):

    NOT_JSON        the line is not JSON              BAD_ENCODING   bytes not in the encoding
    NOT_OBJECT      JSON, but not an object           BAD_FIELD      a field of the wrong type
    MISSING_TITLE   no title (or only whitespace)     MISSING_URL    no url
    MISSING_PUBLISHED  no published time              BAD_URL        not an http(s) URL
    BAD_TIME        published time not readable       FUTURE_TIME    published after now
    BODY_TOO_LARGE  body over ``max_body_chars``      TOO_LONG       title/source/url too long

A time without a zone is read in the tenant's zone, like every other caifu input (DESIGN:
timestamps are stored naive UTC); ``published_zone`` says which it was.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

FIELDS = ("source", "url", "published", "title", "body", "language", "script")
ALIASES = {"published_at": "published", "content": "body", "link": "url"}
MAX_BODY_CHARS = 200_000
MAX_TITLE_CHARS = 1_000
MAX_URL_CHARS = 2_000
# a feed's clock may run a little ahead of ours; beyond this, "future" is a bad time
FUTURE_TOLERANCE = dt.timedelta(minutes=10)
_SLASH_DATE = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})")
_CJK_DATE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日\s*")
_TAG = re.compile(r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$")


@dataclass(frozen=True)
class Document:
    where: str  # "line 3", "item 2", "row 5": what the sender can find
    source: str
    site: str  # the URL's host, lower case
    url: str
    published_at: dt.datetime  # naive UTC
    published_zone: str  # "given" (the input had an offset) | the tenant's zone it was read in
    title: str
    body: str
    language: str | None
    script: str | None


@dataclass(frozen=True)
class Rejection:
    where: str
    field: str | None
    reason: str
    message: str

    def text(self) -> str:
        at = f", field {self.field!r}" if self.field else ""
        return f"{self.where}{at}: {self.reason}: {self.message}"


def _text(record: Mapping[str, Any], name: str) -> str | None | Rejection:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return Rejection("", name, "BAD_FIELD", f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    return text or None


def parse_time(value: str, zone: ZoneInfo) -> tuple[dt.datetime, bool]:
    """``value`` as naive UTC and whether it carried its own offset; ValueError if unreadable.

    ISO 8601 (``T`` or a space, ``Z`` or ``+08:00``), ``YYYY/MM/DD HH:MM``, ``YYYY年M月D日
    HH:MM``, a date alone (midnight), or Unix seconds / milliseconds (UTC by definition).
    """
    text = value.strip()
    if re.fullmatch(r"\d{10}(\d{3})?", text):
        seconds = int(text) / (1000 if len(text) == 13 else 1)
        return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None), True
    if m := _CJK_DATE.match(text):
        text = f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d} " + text[m.end():]
    elif m := _SLASH_DATE.match(text):
        text = f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}" + text[m.end():]
    parsed = dt.datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=zone).astimezone(dt.UTC).replace(tzinfo=None), False
    return parsed.astimezone(dt.UTC).replace(tzinfo=None), True


def check_url(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL with a host, or None when it is."""
    if any(ch.isspace() for ch in url):
        return "contains whitespace"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'!r} is not http or https"
    if not host or "." not in host and host != "localhost":
        return "no host name"
    return None


def check(record: Any, where: str, zone: ZoneInfo, now: dt.datetime,
          max_body_chars: int = MAX_BODY_CHARS) -> Document | Rejection:
    """One decoded record → a Document, or the first Rejection found (``now``: naive UTC)."""

    def reject(field: str | None, reason: str, message: str) -> Rejection:
        return Rejection(where, field, reason, message)

    if not isinstance(record, Mapping):
        return reject(None, "NOT_OBJECT", f"expected a JSON object, got {type(record).__name__}")
    record = {ALIASES.get(k, k): v for k, v in record.items()}
    values: dict[str, str | None] = {}
    for name in FIELDS:
        got = _text(record, name)
        if isinstance(got, Rejection):
            return reject(name, got.reason, got.message)
        values[name] = got
    title, url, published = values["title"], values["url"], values["published"]
    if title is None:
        return reject("title", "MISSING_TITLE", "a document needs a title")
    if len(title) > MAX_TITLE_CHARS:
        return reject("title", "TOO_LONG", f"{len(title):,} characters, at most "
                      f"{MAX_TITLE_CHARS:,}")
    if published is None:
        return reject("published", "MISSING_PUBLISHED",
                      "a document needs its published time (ISO 8601; without an offset it "
                      "is read in the tenant's time zone)")
    if url is None:
        return reject("url", "MISSING_URL", "a document needs the URL it was published at")
    if len(url) > MAX_URL_CHARS:
        return reject("url", "TOO_LONG", f"{len(url):,} characters, at most {MAX_URL_CHARS:,}")
    if why := check_url(url):
        return reject("url", "BAD_URL", f"{url[:200]!r}: {why}")
    try:
        published_at, given = parse_time(published, zone)
    except (ValueError, OverflowError, OSError):
        return reject("published", "BAD_TIME", f"{published[:100]!r} is not a time "
                      "(use ISO 8601, e.g. 2025-03-31T18:02:00+08:00)")
    if published_at > now + FUTURE_TOLERANCE:
        return reject("published", "FUTURE_TIME",
                      f"{published!r} is {published_at:%Y-%m-%d %H:%M} UTC, after now "
                      f"({now:%Y-%m-%d %H:%M} UTC)")
    body = values["body"] or ""
    if len(body) > max_body_chars:
        return reject("body", "BODY_TOO_LARGE", f"{len(body):,} characters, at most "
                      f"{max_body_chars:,}")
    site = (urlsplit(url).hostname or "").lower()
    source = values["source"] or site
    if len(source) > 200:
        return reject("source", "TOO_LONG", f"{len(source):,} characters, at most 200")
    language, script = values["language"], values["script"]
    for name, tag in (("language", language), ("script", script)):
        if tag is not None and not _TAG.match(tag):
            return reject(name, "BAD_FIELD", f"{tag[:40]!r} is not a language or script tag "
                          "(e.g. zh, zh-Hant, Hans)")
    return Document(where, source, site, url, published_at, "given" if given else zone.key,
                    title, body, language, script)
