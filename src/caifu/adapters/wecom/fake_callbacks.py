"""Callback requests as WeCom sends them: event XML, encrypted and signed into the POST the
callback endpoint receives (``../shared/reference/wecom.md``, "Events").

The cryptography itself is the endpoint's (``caifu.scrm.crypto.WeComCrypto``), passed in as
any object with ``encrypt`` and ``sign``: adapters sit below ``scrm`` and may not import it,
and the fake has no business owning a second copy of the AES code.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Protocol


class CallbackCrypto(Protocol):
    def encrypt(self, msg: bytes, random16: bytes | None = None) -> str: ...

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str: ...


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside one CDATA section: split it across two
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _element(name: str, value: str | int | None, *, cdata: bool = True) -> str:
    if value is None:
        return ""
    text = _cdata(str(value)) if cdata else str(value)
    return f"<{name}>{text}</{name}>"


def _envelope(corp_id: str, create_time: int, event: str, change_type: str,
              fields: str) -> str:
    return ("<xml>" + _element("ToUserName", corp_id) + _element("FromUserName", "sys")
            + _element("CreateTime", create_time, cdata=False) + _element("MsgType", "event")
            + _element("Event", event) + _element("ChangeType", change_type) + fields
            + "</xml>")


def contact_event(corp_id: str, create_time: int, change_type: str, userid: str,
                  external_userid: str, *, state: str | None = None,
                  welcome_code: str | None = None, source: str | None = None,
                  fail_reason: str | None = None) -> str:
    """``change_external_contact``: add_external_contact, add_half_external_contact,
    edit_external_contact, del_external_contact, del_follow_user, transfer_fail,
    msg_audit_approved."""
    fields = (_element("UserID", userid) + _element("ExternalUserID", external_userid)
              + _element("State", state) + _element("WelcomeCode", welcome_code)
              + _element("Source", source) + _element("FailReason", fail_reason))
    return _envelope(corp_id, create_time, "change_external_contact", change_type, fields)


def group_event(corp_id: str, create_time: int, change_type: str, chat_id: str, *,
                update_detail: str | None = None, members: Sequence[str] = (),
                join_scene: int | None = None, quit_scene: int | None = None,
                last_mem_ver: str | None = None, cur_mem_ver: str | None = None) -> str:
    """``change_external_chat``: create, update (with UpdateDetail add_member, del_member,
    change_owner, change_name, change_notice), dismiss."""
    fields = _element("ChatId", chat_id) + _element("UpdateDetail", update_detail)
    if update_detail in ("add_member", "del_member"):
        fields += _element("JoinScene", join_scene if join_scene is not None else 0,
                           cdata=False)
        fields += _element("QuitScene", quit_scene if quit_scene is not None else 0,
                           cdata=False)
        fields += _element("MemChangeCnt", len(members), cdata=False)
        fields += ("<MemChangeList>" + "".join(_element("Item", m) for m in members)
                   + "</MemChangeList>")
    fields += _element("LastMemVer", last_mem_ver) + _element("CurMemVer", cur_mem_ver)
    return _envelope(corp_id, create_time, "change_external_chat", change_type, fields)


def tag_event(corp_id: str, create_time: int, change_type: str, tag_id: str, tag_type: str,
              *, strategy_id: int | None = None) -> str:
    """``change_external_tag``: create, update, delete, shuffle; TagType tag or tag_group."""
    fields = (_element("Id", tag_id) + _element("TagType", tag_type)
              + _element("StrategyId", strategy_id, cdata=False))
    return _envelope(corp_id, create_time, "change_external_tag", change_type, fields)


def seal(crypto: CallbackCrypto, corp_id: str, agent_id: str, event_xml: str, *,
         timestamp: int, nonce: str | None = None,
         random16: bytes | None = None) -> tuple[dict[str, str], bytes]:
    """The query parameters and body of the POST WeCom would make for ``event_xml``."""
    nonce = nonce or str(secrets.randbelow(10**10))
    encrypt = crypto.encrypt(event_xml.encode("utf-8"), random16)
    ts = str(timestamp)
    params = {"msg_signature": crypto.sign(ts, nonce, encrypt), "timestamp": ts, "nonce": nonce}
    body = ("<xml>" + _element("ToUserName", corp_id) + _element("Encrypt", encrypt)
            + _element("AgentID", agent_id) + "</xml>")
    return params, body.encode("utf-8")
