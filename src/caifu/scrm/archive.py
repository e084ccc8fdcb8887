"""Chat-archive intake: decrypted 会话内容存档 messages (JSON Lines) → ``chat_messages`` rows.

Tencent's native SDK runs as a separate process and hands over decrypted messages in the shape
of the reference's "Chat archive" section (msgid, action, from, tolist, roomid, msgtime in ms,
msgtype and a body named after it). This module only converts; it reads nothing and stores
nothing, so the same function serves a file drop, an API batch and the tests.

Every input line is accounted for — ``len(rows) + len(rejections) + sum(skipped.values())``
equals ``lines`` — because a chat archive is compliance evidence: a message that cannot be
imported is a *rejection* (line number, msgid, ``field:REASON``) someone has to look at, and
one that is deliberately not a chat message is *skipped* and counted by reason.

=============================  ===================================================  =========
input                          outcome                                              kind
=============================  ===================================================  =========
line over 64 KiB               ``line:TOO_LARGE`` (not parsed at all)               rejection
bytes not UTF-8                ``line:INVALID_ENCODING``                            rejection
not JSON / not an object       ``line:INVALID_JSON`` / ``line:NOT_AN_OBJECT``       rejection
blank line                     ``line:BLANK``                                       skipped
``action: switch``             ``action:SWITCH`` (a user switched enterprise)       skipped
agree / disagree               ``msgtype:CONSENT_AGREE`` / ``CONSENT_DISAGREE``     skipped
                               (consent events belong to the consent record)
roomid set                     ``roomid:GROUP_CHAT_NOT_SUPPORTED``                  rejection
advisor → advisor              ``tolist:INTERNAL_CHAT``                             skipped
same msgid again               ``msgid:DUPLICATE`` (the SDK re-delivers on resume)  skipped
=============================  ===================================================  =========

Attribution: ``from`` in the advisor map (``advisors.wecom_userid`` → ``advisor_id``) is an
advisor's message to the single external member of ``tolist``; ``from`` that looks external
(WeCom external ids start ``wm``/``wo``) is a customer's message to the single advisor in
``tolist``. Anything else — an employee who is not an advisor, a bot (``wb``) — is
``from:UNKNOWN_PARTICIPANT`` rather than a guess. ``customer_id`` stays ``None``: linking an
external contact to a customer is identity resolution's job.

Message types onto the contract's enum: text, chatrecord (forwarded history: its title and
texts) and mixed (its text parts; ``image`` when it has none) → ``text``; image and emotion
(stickers) → ``image``; voice → ``voice``; file → ``file`` with the file name as content;
**video → ``file``**: like a file it is an attachment fetched by ``sdkfileid`` with no text
to check, and calling it an image would skew image counts; link and weapp (mini-program
cards) → ``link`` with title, description and URL as content, since their titles are what a
customer reads; revoke → ``revoke`` without content (the recalled ``pre_msgid`` has no column
yet). Other types (card, location, calendar, redpacket …) are ``msgtype:UNSUPPORTED``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from caifu.data.contracts.rows import FUTURE_SLACK

__all__ = ["MAX_LINE_BYTES", "ArchiveBatch", "Rejection", "convert_archive"]

MAX_LINE_BYTES = 64 * 1024
MAX_CONTENT_CHARS = 20_000  # the contract's max_length for chat_messages.content
MAX_ID_CHARS = 64
EARLIEST = dt.datetime(2010, 1, 1)  # before WeCom existed: a unit error, not a message
EXTERNAL_PREFIXES = ("wm", "wo")
_EPOCH = dt.datetime(1970, 1, 1)
_SURROGATE = re.compile("[\ud800-\udfff]")  # a JSON "\\ud800" escape decodes to one
_SKIP_TYPES = {"agree": "msgtype:CONSENT_AGREE", "disagree": "msgtype:CONSENT_DISAGREE"}
_TYPES = {"text": "text", "chatrecord": "text", "mixed": "text", "image": "image",
          "emotion": "image", "voice": "voice", "video": "file", "file": "file",
          "link": "link", "weapp": "link", "revoke": "revoke"}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line that could not become a row: 1-based line number, msgid if known, reason."""

    line: int
    msgid: str | None
    reason: str


@dataclass
class ArchiveBatch:
    """Rows for ``chat_messages`` in input order, plus what did not become one and why."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    lines: int = 0

    @property
    def accounted(self) -> bool:
        """Whether every input line is a row, a rejection or a skip (always, by construction)."""
        return len(self.rows) + len(self.rejections) + sum(self.skipped.values()) == self.lines


class _Reject(Exception):
    pass


class _Skip(Exception):
    pass


def convert_archive(lines: Iterable[bytes | str], advisors: Mapping[str, str], *,
                    now: dt.datetime | None = None, max_line_bytes: int = MAX_LINE_BYTES,
                    external_prefixes: tuple[str, ...] | None = EXTERNAL_PREFIXES
                    ) -> ArchiveBatch:
    """Convert decrypted archive messages, one JSON object per line.

    ``advisors`` maps WeCom userids to advisor ids. ``now`` (naive UTC) bounds ``msgtime``,
    with the contract's slack for clock drift; ``external_prefixes=None`` treats every
    non-advisor as an external contact.
    """
    limit = (now or dt.datetime.now(dt.UTC).replace(tzinfo=None)) + FUTURE_SLACK
    batch = ArchiveBatch()
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        batch.lines = number
        msgid: str | None = None
        try:
            message = _parse(raw, max_line_bytes)
            msgid = _msgid(message)
            row = _row(message, msgid, advisors, limit, external_prefixes)
            if msgid in seen:
                raise _Skip("msgid:DUPLICATE")
            seen.add(msgid)
            batch.rows.append(row)
        except _Reject as reject:
            batch.rejections.append(Rejection(number, msgid, str(reject)))
        except _Skip as skip:
            batch.skipped[str(skip)] += 1
    return batch


def _parse(raw: bytes | str, max_line_bytes: int) -> dict[str, Any]:
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_line_bytes:
        raise _Reject("line:TOO_LARGE")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Reject("line:INVALID_ENCODING") from None
    text = raw.strip().removeprefix("\ufeff")
    if not text:
        raise _Skip("line:BLANK")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise _Reject("line:INVALID_JSON") from None
    if not isinstance(message, dict):
        raise _Reject("line:NOT_AN_OBJECT")
    return message


def _msgid(message: dict[str, Any]) -> str:
    if message.get("action") == "switch":  # switch records carry no chat fields to check
        raise _Skip("action:SWITCH")
    msgid = message.get("msgid")
    if not isinstance(msgid, str) or not msgid.strip():
        raise _Reject("msgid:MISSING")
    if len(msgid) > MAX_ID_CHARS:
        raise _Reject("msgid:TOO_LONG")
    if _SURROGATE.search(msgid):
        raise _Reject("msgid:INVALID")
    return msgid


def _row(message: dict[str, Any], msgid: str, advisors: Mapping[str, str],
         limit: dt.datetime, external_prefixes: tuple[str, ...] | None) -> dict[str, Any]:
    if message.get("action") not in ("send", "recall"):
        raise _Reject("action:UNKNOWN")
    roomid = message.get("roomid")
    if roomid not in (None, ""):
        raise _Reject("roomid:GROUP_CHAT_NOT_SUPPORTED" if isinstance(roomid, str)
                      else "roomid:INVALID")
    msgtype = message.get("msgtype")
    if not isinstance(msgtype, str) or not msgtype:
        raise _Reject("msgtype:MISSING")
    if msgtype in _SKIP_TYPES:
        raise _Skip(_SKIP_TYPES[msgtype])
    if msgtype not in _TYPES:
        raise _Reject("msgtype:UNSUPPORTED")
    msg_time = _msg_time(message.get("msgtime"), limit)
    sender, advisor_id, external = _attribute(message, advisors, external_prefixes)
    kind, content = _content(msgtype, message)
    return {"msg_id": msgid, "advisor_id": advisor_id, "external_userid": external,
            "customer_id": None, "msg_time": msg_time, "sender": sender, "msg_type": kind,
            "content": content}


def _msg_time(value: Any, limit: dt.datetime) -> dt.datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Reject("msgtime:INVALID")
    if not 0 <= value < 10**14:  # beyond year 5138: not milliseconds
        raise _Reject("msgtime:OUT_OF_RANGE")
    at = _EPOCH + dt.timedelta(milliseconds=value)
    if not EARLIEST <= at <= limit:
        raise _Reject("msgtime:OUT_OF_RANGE")
    return at


def _attribute(message: dict[str, Any], advisors: Mapping[str, str],
               external_prefixes: tuple[str, ...] | None) -> tuple[str, str, str]:
    """(sender, advisor_id, external_userid) of a one-to-one chat message."""
    sender, tolist = message.get("from"), message.get("tolist")
    if not isinstance(sender, str) or not sender:
        raise _Reject("from:MISSING")
    if not isinstance(tolist, list) or not all(isinstance(u, str) and u for u in tolist):
        raise _Reject("tolist:INVALID")

    def external(userid: str) -> bool:
        return userid not in advisors and (
            external_prefixes is None or userid.startswith(external_prefixes))

    if sender in advisors:
        if len(tolist) != 1:
            raise _Reject("tolist:NOT_SINGLE_RECIPIENT")
        if tolist[0] in advisors:
            raise _Skip("tolist:INTERNAL_CHAT")
        if not external(tolist[0]):
            raise _Reject("tolist:UNKNOWN_PARTICIPANT")
        role, advisor_id, contact = "advisor", advisors[sender], tolist[0]
    elif external(sender):
        if len(tolist) != 1:
            raise _Reject("tolist:NOT_SINGLE_RECIPIENT")
        if tolist[0] not in advisors:
            raise _Reject("tolist:UNKNOWN_ADVISOR")
        role, advisor_id, contact = "customer", advisors[tolist[0]], sender
    else:
        raise _Reject("from:UNKNOWN_PARTICIPANT")
    if len(contact) > MAX_ID_CHARS:
        raise _Reject("external_userid:TOO_LONG")
    if _SURROGATE.search(contact):
        raise _Reject("external_userid:INVALID")
    return role, advisor_id, contact


def _texts(*values: Any) -> str | None:
    parts = [v.strip() for v in values if isinstance(v, str) and v.strip()]
    return "\n".join(parts) if parts else None


def _item_text(item: Any, kind: str) -> str | None:
    """Text of one mixed/chatrecord item, whose ``content`` is itself a JSON string."""
    if not isinstance(item, dict) or item.get("type") != kind:
        return None
    body = item.get("content")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    return body.get("content") if isinstance(body, dict) else None


def _content(msgtype: str, message: dict[str, Any]) -> tuple[str, str | None]:
    body = message.get(msgtype)
    body = body if isinstance(body, dict) else {}
    kind, content = _TYPES[msgtype], None
    if msgtype == "text":
        content = body.get("content")
        if not isinstance(content, str):
            raise _Reject("text.content:MISSING")
    elif msgtype == "file":
        content = _texts(body.get("filename"))
    elif msgtype in ("link", "weapp"):
        content = _texts(body.get("title"), body.get("description"), body.get("link_url"))
    elif msgtype in ("mixed", "chatrecord"):
        items = body.get("item")
        items = items if isinstance(items, list) else []
        wanted = "text" if msgtype == "mixed" else "ChatRecordText"
        title = body.get("title") if msgtype == "chatrecord" else None
        content = _texts(title, *(_item_text(i, wanted) for i in items))
        if msgtype == "mixed" and content is None:
            kind = "image"
    if content is not None:
        if len(content) > MAX_CONTENT_CHARS:
            raise _Reject("content:TOO_LONG")  # truncated evidence is worse than none
        if "\x00" in content:
            raise _Reject("content:NUL_CHARACTER")
        # half an emoji cannot be stored as UTF-8; the rest of the message is still evidence
        content = _SURROGATE.sub("\ufffd", content)
    return kind, content
