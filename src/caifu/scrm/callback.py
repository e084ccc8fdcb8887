"""Reading a WeCom callback: envelope, signature, replay window, decryption, event XML.

Pure functions over bytes and strings; the service stores and counts, the API answers. The
order of checks is cheap-first and never decrypts what is not signed: size → envelope XML →
timestamp window → signature (constant time) → AES + strict PKCS#7 → receiveid → event XML.

XML is parsed by ``defusedxml`` with DTDs, entities and external references forbidden, so a
"billion laughs" or an external-entity body is a rejection, not an expansion.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from caifu.scrm.crypto import CallbackRejected, WeComCrypto

MAX_BODY_BYTES = 64 * 1024  # WeCom's event bodies are under 2 KB
REPLAY_WINDOW_SECONDS = 300
MAX_PARAM_CHARS = 128  # msg_signature is 40, timestamp 10, nonce ~10
# the Unix seconds an event's CreateTime may hold: from 2000 (WeCom is younger) to the end of
# year 9999 (``datetime``'s last); anything else is no time and the event keeps None
_FIRST_TIME, _LAST_TIME = 946_684_800, 253_402_300_799
_EPOCH = dt.datetime(1970, 1, 1)


def unix_seconds(text: str) -> int | None:
    """``text`` as Unix seconds when it is 1–12 ASCII digits, else None.

    ``str.isdigit`` alone accepts ``²`` and other digits ``int`` refuses or reads otherwise.
    """
    if not (0 < len(text) <= 12 and text.isascii() and text.isdigit()):
        return None
    return int(text)


def parse_xml(data: bytes | str) -> Element:
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as e:
        raise CallbackRejected("XML_FORBIDDEN", type(e).__name__) from e
    except (ParseError, ValueError) as e:
        raise CallbackRejected("BAD_XML") from e


def envelope_encrypt(body: bytes) -> str:
    """The ``<Encrypt>`` text of a POSTed envelope."""
    if len(body) > MAX_BODY_BYTES:
        raise CallbackRejected("TOO_LARGE")
    root = parse_xml(body)
    node = root.find("Encrypt")
    if root.tag != "xml" or node is None or not (node.text or "").strip():
        raise CallbackRejected("BAD_ENVELOPE", "no Encrypt element")
    return (node.text or "").strip()


def check_params(params: dict[str, str]) -> tuple[str, str, str]:
    """msg_signature, timestamp and nonce, present and of sane size."""
    try:
        values = (params["msg_signature"], params["timestamp"], params["nonce"])
    except KeyError as e:
        raise CallbackRejected("MISSING_PARAMETER", str(e)) from None
    if any(len(v) > MAX_PARAM_CHARS or not v for v in values) or "\x00" in "".join(values):
        raise CallbackRejected("BAD_PARAMETER")
    return values


def check_timestamp(timestamp: str, now: dt.datetime, window_seconds: int) -> dt.datetime:
    """The request's time, if within ``window_seconds`` of ``now`` (naive UTC) either way."""
    seconds = unix_seconds(timestamp)
    if seconds is None:
        raise CallbackRejected("BAD_TIMESTAMP")
    # compared as numbers: a far timestamp is stale, never a datetime out of range
    if abs((now - _EPOCH).total_seconds() - seconds) > window_seconds:
        raise CallbackRejected("STALE_TIMESTAMP")
    return _EPOCH + dt.timedelta(seconds=seconds)


def open_request(crypto: WeComCrypto, params: dict[str, str], encrypt: str,
                 now: dt.datetime | None, window_seconds: int = REPLAY_WINDOW_SECONDS) -> bytes:
    """Verify and decrypt one request (GET: ``encrypt`` is echostr; POST: the envelope's).

    ``now`` None skips the replay window — only for Tencent's published vectors, dated 2014.
    """
    signature, timestamp, nonce = check_params(params)
    if now is not None:
        check_timestamp(timestamp, now, window_seconds)
    crypto.verify(signature, timestamp, nonce, encrypt)
    return crypto.decrypt(encrypt)


@dataclass(frozen=True)
class Event:
    """A decrypted callback: the envelope fields as text, member lists as lists."""

    event: str
    change_type: str
    create_time: dt.datetime | None
    fields: dict[str, str]
    members: tuple[str, ...] = field(default=())
    digest: str = ""

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value if value else None


def parse_event(xml: bytes) -> Event:
    """The event of a decrypted message; ``digest`` identifies WeCom's retries of it."""
    root = parse_xml(xml)
    fields: dict[str, str] = {}
    members: list[str] = []
    for child in root:
        if child.tag == "MemChangeList":
            members.extend((item.text or "").strip() for item in child if (item.text or "").strip())
        elif len(child) == 0:
            fields[child.tag] = (child.text or "").strip()
    event = fields.get("Event") or fields.get("MsgType") or ""
    if not event:
        raise CallbackRejected("BAD_EVENT", "no Event or MsgType")
    # informational in the protocol: one outside it is kept as sent and read as unknown (the
    # worker then dates the event by its arrival), never a reason to lose the event
    created = unix_seconds(fields.get("CreateTime", ""))
    create_time = (_EPOCH + dt.timedelta(seconds=created)
                   if created is not None and _FIRST_TIME <= created <= _LAST_TIME else None)
    return Event(event=event[:40], change_type=fields.get("ChangeType", "")[:40],
                 create_time=create_time, fields=fields, members=tuple(members),
                 digest=hashlib.sha256(xml).hexdigest())


def plain(event: Event) -> dict[str, Any]:
    return {"event": event.event, "change_type": event.change_type, **event.fields,
            "members": list(event.members)}
