"""The WeCom (企业微信) server API client for the SCRM: customer contacts, corp tags, group
chats, channel QR codes, mass sends, handover, statistics, and the sidebar's OAuth + JS-SDK.

    WeComClient ── httpx.Client(transport=…)   the one seam; tests pass
    │                                           httpx.MockTransport(FakeWeCom().handler)
    ├── TokenCache    access_token and agent-config ticket, shared per corp + app
    └── RateLimiter   2000/min and 30000/h per corp per API path

Every call goes through ``_call``, which (1) paces itself through the limiter, (2) retries
with exponential backoff and jitter on WeCom's "try later" answers (45009, 45033, -1), on
HTTP 429/5xx and on network errors, (3) refreshes the token once on 40014/42001/40001, and
(4) otherwise raises ``WeComError``. Calls that create something (a mass send, a QR code, a
tag, a handover) are not resent after a failure that may have reached WeCom — a read timeout
or a 500 — because a second mass send is worse than an error; they are resent only when the
request cannot have been processed (connection refused, 429, 503, or WeCom's own refusals).

The secret and tokens never appear in an exception or a log line (``tokens.redact``).
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from caifu.adapters.wecom.errors import (
    BUSY_ERRCODES,
    NOT_A_MEMBER,
    TOKEN_ERRCODES,
    WeComError,
)
from caifu.adapters.wecom.ratelimit import RateLimiter
from caifu.adapters.wecom.tokens import TokenCache, install_log_redaction, jsapi_signature

log = logging.getLogger("caifu.wecom")

BASE_URL = "https://qyapi.weixin.qq.com/cgi-bin/"
SEND_STATUS = {0: "pending", 1: "sent", 2: "not_friend", 3: "quota_reached"}
_SEND_RANK = {0: 0, 2: 1, 3: 2, 1: 3}  # one advisor's success beats another's failure
@dataclass(frozen=True)
class Page:
    """One page of a cursor-paginated answer; ``next_cursor`` is "" on the last page."""
    items: list[dict[str, Any]]
    next_cursor: str


@dataclass(frozen=True)
class ContactWay:
    config_id: str
    qr_code: str


@dataclass(frozen=True)
class MassSend:
    msgid: str
    fail_list: list[str]  # external_userids WeCom will not send to (invalid or not a friend)


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    """Drop unset optional fields: WeCom treats an explicit empty value as "set to empty"."""
    return {k: v for k, v in body.items() if v is not None}


def _text(text: str | None) -> dict[str, str] | None:
    return None if text is None else {"content": text}


class WeComClient:
    """One WeCom app of one corp (a tenant's self-built app)."""

    def __init__(self, corp_id: str, secret: str, *,
                 transport: httpx.BaseTransport | None = None, base_url: str = BASE_URL,
                 token_cache: TokenCache | None = None, limiter: RateLimiter | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, max_retries: int = 4,
                 rng: random.Random | None = None, agent_id: str | int | None = None,
                 timeout: httpx.Timeout | None = None) -> None:
        install_log_redaction()
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self._tokens = token_cache or TokenCache(clock=clock)
        self._limiter = limiter or RateLimiter(clock=clock, sleep=sleep)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.max_retries = max_retries
        self._http = httpx.Client(base_url=base_url, transport=transport,
                                  timeout=timeout or httpx.Timeout(10.0, connect=5.0),
                                  headers={"Accept": "application/json"})

    def __repr__(self) -> str:  # the default would be harmless, but make sure: no secret
        return f"WeComClient(corp_id={self.corp_id!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the call machinery -------------------------------------------------------------

    def _backoff(self, attempt: int, errcode: int) -> float:
        """Exponential with up to 50 % jitter, so each wait is longer than the last; a
        frequency limit starts higher since WeCom counts by the minute."""
        base = 2.0 if errcode in (45009, 45033) else 0.5
        return min(60.0, base * 2.0 ** attempt) * (1.0 + 0.5 * self._rng.random())

    def _fetch_token(self) -> tuple[str, float]:
        data = self._call("GET", "gettoken", params={"corpid": self.corp_id,
                                                     "corpsecret": self._secret}, auth=False)
        return str(data["access_token"]), float(data.get("expires_in", 7200))

    def _token(self) -> str:
        return self._tokens.get(TokenCache.key(self.corp_id, self._secret), self._fetch_token)

    def _scrub(self, text: str) -> str:
        for secret in (self._secret, *self._live_tokens()):
            if secret:
                text = text.replace(secret, "***")
        return text[:300]

    def _live_tokens(self) -> list[str]:
        values = (self._tokens.peek(TokenCache.key(self.corp_id, self._secret, kind))
                  for kind in ("access_token", "ticket:agent_config"))
        return [v for v in values if v]

    def _call(self, method: str, api: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None, auth: bool = True,
              creates: bool = False) -> dict[str, Any]:
        """One API call with pacing, token refresh and retries; the decoded answer."""
        attempt = 0
        refreshed = False
        while True:
            self._limiter.acquire((self.corp_id, api))
            query = dict(params or {})
            token = self._token() if auth else ""
            if auth:
                query["access_token"] = token
            content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
            headers = {"Content-Type": "application/json; charset=utf-8"} if content else None
            failure: WeComError
            try:
                resp = self._http.request(method, api, params=query, content=content,
                                          headers=headers)
            except httpx.TransportError as exc:
                failure = WeComError(-1, f"network error: {type(exc).__name__}", api)
                # a request that never connected cannot have been processed
                retry = not creates or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            else:
                status = resp.status_code
                data = self._decode(resp) if status == 200 else None
                if data is None:
                    failure = WeComError(-1, f"HTTP {status}" + (" (not JSON)" if status == 200
                                                                 else ""), api,
                                         upstream_status=status)
                    retry = status in (429, 503) or (not creates and (status >= 500 or
                                                                       status == 200))
                else:
                    errcode = int(data.get("errcode", 0) or 0)
                    if errcode == 0:
                        return data
                    if auth and errcode in TOKEN_ERRCODES and not refreshed:
                        self._tokens.invalidate(TokenCache.key(self.corp_id, self._secret), token)
                        refreshed = True
                        continue
                    failure = WeComError(errcode, self._scrub(str(data.get("errmsg", ""))), api)
                    retry = errcode in BUSY_ERRCODES
            if not retry or attempt >= self.max_retries:
                raise failure
            delay = self._backoff(attempt, failure.errcode)
            log.warning("WeCom %s: errcode %s (%s), retry %d/%d in %.1f s", api,
                        failure.errcode, failure.errmsg, attempt + 1, self.max_retries, delay)
            self._sleep(delay)
            attempt += 1

    @staticmethod
    def _decode(resp: httpx.Response) -> dict[str, Any] | None:
        try:
            data = resp.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _post(self, api: str, body: dict[str, Any], *, creates: bool = False) -> dict[str, Any]:
        return self._call("POST", api, body=_compact(body), creates=creates)

    def _get(self, api: str, **params: Any) -> dict[str, Any]:
        return self._call("GET", api, params=_compact(params))

    def _pages(self, api: str, body: dict[str, Any], items: str) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paginated POST API."""
        cursor = ""
        while True:
            data = self._post(api, {**body, "cursor": cursor or None})
            yield from data.get(items) or []
            cursor = data.get("next_cursor") or ""
            if not cursor:
                return

    # --- customers (客户联系) -------------------------------------------------------------

    def get_follow_user_list(self) -> list[str]:
        """Userids of the members allowed to have customers (the advisors)."""
        return list(self._get("externalcontact/get_follow_user_list").get("follow_user", []))

    def list_external_contacts(self, userid: str) -> list[str]:
        """External userids of one advisor's customers."""
        try:
            data = self._get("externalcontact/list", userid=userid)
        except WeComError as e:
            if e.errcode == 84061:  # WeCom's answer for "this advisor has no customers"
                return []
            raise
        return list(data.get("external_userid", []))

    def get_external_contact(self, external_userid: str) -> dict[str, Any]:
        """A customer with *all* advisors following them (WeCom pages ``follow_user`` at 500):
        ``{"external_contact": {...}, "follow_user": [...]}``."""
        cursor = ""
        follow: list[dict[str, Any]] = []
        while True:
            data = self._get("externalcontact/get", external_userid=external_userid,
                             cursor=cursor or None)
            follow.extend(data.get("follow_user") or [])
            cursor = data.get("next_cursor") or ""
            if not cursor:
                return {"external_contact": data.get("external_contact", {}),
                        "follow_user": follow}

    def batch_get_by_user(self, userid_list: Sequence[str], cursor: str = "",
                          limit: int = 100) -> Page:
        """One page of ``external_contact_list`` entries (``external_contact`` +
        ``follow_info``) for up to 100 advisors."""
        if not 1 <= limit <= 100 or not 1 <= len(userid_list) <= 100:
            raise ValueError("batch_get_by_user takes 1–100 userids and a limit of 1–100")
        data = self._post("externalcontact/batch/get_by_user",
                          {"userid_list": list(userid_list), "cursor": cursor or None,
                           "limit": limit})
        return Page(list(data.get("external_contact_list") or []), data.get("next_cursor") or "")

    def iter_batch_get_by_user(self, userid_list: Iterable[str],
                               limit: int = 100) -> Iterator[dict[str, Any]]:
        """Every (customer, follow_info) pair of any number of advisors (asked 100 at a
        time), page after page."""
        for userids in _chunks(userid_list, 100):
            cursor = ""
            while True:
                page = self.batch_get_by_user(userids, cursor, limit)
                yield from page.items
                if not page.next_cursor:
                    break
                cursor = page.next_cursor

    def remark(self, userid: str, external_userid: str, *, remark: str | None = None,
               description: str | None = None, remark_company: str | None = None,
               remark_mobiles: Sequence[str] | None = None,
               remark_pic_mediaid: str | None = None) -> None:
        """Set the advisor's remark fields on a customer; unset arguments are left alone."""
        self._post("externalcontact/remark", {
            "userid": userid, "external_userid": external_userid, "remark": remark,
            "description": description, "remark_company": remark_company,
            "remark_mobiles": None if remark_mobiles is None else list(remark_mobiles),
            "remark_pic_mediaid": remark_pic_mediaid})

    # --- corp tags (企业标签) ---------------------------------------------------------------

    def get_corp_tag_list(self, tag_ids: Sequence[str] = (),
                          group_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        data = self._post("externalcontact/get_corp_tag_list",
                          {"tag_id": list(tag_ids) or None, "group_id": list(group_ids) or None})
        return list(data.get("tag_group", []))

    def add_corp_tag(self, tags: Sequence[str | dict[str, Any]], *,
                     group_id: str | None = None, group_name: str | None = None,
                     order: int | None = None) -> dict[str, Any]:
        """Add tags to a group (by id) or to a group by name, created if new; the
        ``tag_group`` WeCom returns, with the new tags' ids."""
        if (group_id is None) == (group_name is None):
            raise ValueError("give exactly one of group_id and group_name")
        tag = [t if isinstance(t, dict) else {"name": t} for t in tags]
        return dict(self._post("externalcontact/add_corp_tag", {
            "group_id": group_id, "group_name": group_name, "order": order, "tag": tag,
            "agentid": self.agent_id}, creates=True)["tag_group"])

    def edit_corp_tag(self, id: str, *, name: str | None = None,
                      order: int | None = None) -> None:
        self._post("externalcontact/edit_corp_tag",
                   {"id": id, "name": name, "order": order, "agentid": self.agent_id})

    def del_corp_tag(self, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> None:
        self._post("externalcontact/del_corp_tag", {"tag_id": list(tag_ids) or None,
                                                    "group_id": list(group_ids) or None,
                                                    "agentid": self.agent_id})

    def mark_tag(self, userid: str, external_userid: str, add_tag: Sequence[str] = (),
                 remove_tag: Sequence[str] = ()) -> None:
        """Tag a customer as seen by one advisor. WeCom sends no callback for this: update
        local state directly."""
        self._post("externalcontact/mark_tag", {
            "userid": userid, "external_userid": external_userid,
            "add_tag": list(add_tag) or None, "remove_tag": list(remove_tag) or None})

    # --- group chats (客户群) ---------------------------------------------------------------

    def groupchat_list(self, *, status_filter: int = 0, owner_userids: Sequence[str] = (),
                       limit: int = 1000) -> Iterator[dict[str, Any]]:
        """Every ``{"chat_id", "status"}`` of the corp's customer groups (optionally of some
        owners), following the cursor."""
        body: dict[str, Any] = {"status_filter": status_filter, "limit": limit}
        if owner_userids:
            body["owner_filter"] = {"userid_list": list(owner_userids)}
        return self._pages("externalcontact/groupchat/list", body, "group_chat_list")

    def groupchat_get(self, chat_id: str, need_name: bool = True) -> dict[str, Any]:
        """A group with ``member_list`` and ``member_version`` (compare with the callback's
        LastMemVer to detect missed events)."""
        return dict(self._post("externalcontact/groupchat/get",
                               {"chat_id": chat_id, "need_name": int(need_name)})["group_chat"])

    # --- channels (联系我 / 渠道活码) ----------------------------------------------------------

    def add_contact_way(self, type: int, scene: int, *,
                        user: Sequence[str] = (), party: Sequence[int] = (),
                        state: str | None = None, remark: str | None = None,
                        skip_verify: bool = True, style: int | None = None,
                        is_temp: bool = False, expires_in: int | None = None) -> ContactWay:
        """A channel QR code; ``state`` (≤ 30 characters) comes back in the
        add_external_contact callback and attributes the customer to the channel."""
        if type not in (1, 2) or scene not in (1, 2):
            raise ValueError("type is 1 (single) or 2 (multi); scene is 1 (mini program) or 2 (QR)")
        if type == 1 and len(user) + len(party) != 1:
            raise ValueError("a single-person contact way takes exactly one user")
        if state is not None and len(state) > 30:
            raise ValueError(f"state is at most 30 characters, got {len(state)}: {state!r}")
        data = self._post("externalcontact/add_contact_way", {
            "type": type, "scene": scene, "style": style, "remark": remark,
            "skip_verify": skip_verify, "state": state, "user": list(user) or None,
            "party": list(party) or None, "is_temp": is_temp or None,
            "expires_in": expires_in}, creates=True)
        return ContactWay(str(data["config_id"]), str(data.get("qr_code", "")))

    # --- mass send (群发) -------------------------------------------------------------------

    def add_msg_template(self, *, chat_type: str = "single",
                         external_userid: Sequence[str] = (), chat_id_list: Sequence[str] = (),
                         sender: str | None = None, text: str | None = None,
                         attachments: Sequence[dict[str, Any]] = (),
                         allow_select: bool | None = None) -> MassSend:
        """Create a mass send; it goes out only when the advisor confirms it in WeCom. Not
        resent after an ambiguous failure: check ``get_groupmsg_list_v2`` instead."""
        if chat_type not in ("single", "group"):
            raise ValueError("chat_type is 'single' or 'group'")
        if text is None and not attachments:
            raise ValueError("a mass send needs text or attachments")
        if len(attachments) > 9 or len(external_userid) > 10000:
            raise ValueError("at most 9 attachments and 10000 customers per mass send")
        data = self._post("externalcontact/add_msg_template", {
            "chat_type": chat_type, "external_userid": list(external_userid) or None,
            "chat_id_list": list(chat_id_list) or None, "sender": sender,
            "allow_select": allow_select, "text": _text(text),
            "attachments": list(attachments) or None}, creates=True)
        return MassSend(str(data["msgid"]), list(data.get("fail_list") or []))

    def get_groupmsg_list_v2(self, chat_type: str, start_time: int, end_time: int, *,
                             creator: str | None = None, filter_type: int = 2,
                             limit: int = 100) -> Iterator[dict[str, Any]]:
        return self._pages("externalcontact/get_groupmsg_list_v2", {
            "chat_type": chat_type, "start_time": start_time, "end_time": end_time,
            "creator": creator, "filter_type": filter_type, "limit": limit}, "group_msg_list")

    def get_groupmsg_task(self, msgid: str, limit: int = 1000) -> list[dict[str, Any]]:
        """Each advisor's task for a mass send: status 0 not yet sent, 2 sent."""
        return list(self._pages("externalcontact/get_groupmsg_task",
                                {"msgid": msgid, "limit": limit}, "task_list"))

    def get_groupmsg_send_result(self, msgid: str, userid: str, cursor: str = "",
                                 limit: int = 1000) -> Page:
        data = self._post("externalcontact/get_groupmsg_send_result", {
            "msgid": msgid, "userid": userid, "cursor": cursor or None, "limit": limit})
        return Page(list(data.get("send_list") or []), data.get("next_cursor") or "")

    def poll_mass_send(self, msgid: str) -> dict[str, int]:
        """Status per recipient (external_userid, or chat_id for a group send) over every
        advisor's results: 0 pending, 1 sent, 2 not a friend, 3 monthly quota reached
        (``SEND_STATUS``). A customer reached by any advisor counts as sent."""
        statuses: dict[str, int] = {}
        for task in self.get_groupmsg_task(msgid):
            cursor = ""
            while True:
                page = self.get_groupmsg_send_result(msgid, task["userid"], cursor)
                for row in page.items:
                    target = row.get("external_userid") or row.get("chat_id") or ""
                    status = int(row.get("status", 0))
                    if _SEND_RANK[status] >= _SEND_RANK[statuses.get(target, 0)]:
                        statuses[target] = status
                cursor = page.next_cursor
                if not cursor:
                    break
        return statuses

    def send_welcome_msg(self, welcome_code: str, text: str | None = None,
                         attachments: Sequence[dict[str, Any]] = ()) -> None:
        """The welcome message for a new customer: once per code, within 20 s of the event."""
        self._post("externalcontact/send_welcome_msg", {
            "welcome_code": welcome_code, "text": _text(text),
            "attachments": list(attachments) or None}, creates=True)

    # --- handover (在职 / 离职继承) -----------------------------------------------------------

    def transfer_customer(self, handover_userid: str, takeover_userid: str,
                          external_userids: Sequence[str], *, resigned: bool = False,
                          transfer_success_msg: str | None = None) -> dict[str, int]:
        """Hand customers to another advisor; errcode per external_userid (0 accepted)."""
        api = ("externalcontact/resigned/transfer_customer" if resigned
               else "externalcontact/transfer_customer")
        data = self._post(api, {
            "handover_userid": handover_userid, "takeover_userid": takeover_userid,
            "external_userid": list(external_userids),
            "transfer_success_msg": None if resigned else transfer_success_msg}, creates=True)
        return {c["external_userid"]: int(c.get("errcode", 0)) for c in data.get("customer", [])}

    def resigned_transfer_customer(self, handover_userid: str, takeover_userid: str,
                                   external_userids: Sequence[str]) -> dict[str, int]:
        return self.transfer_customer(handover_userid, takeover_userid, external_userids,
                                      resigned=True)

    def transfer_result(self, handover_userid: str, takeover_userid: str, *,
                        resigned: bool = False) -> list[dict[str, Any]]:
        """``{"external_userid", "status", "takeover_time"}`` per customer; status 1 done,
        2 waiting, 3 refused by the customer, 4 takeover's limit reached, 5 no record."""
        api = ("externalcontact/resigned/transfer_result" if resigned
               else "externalcontact/transfer_result")
        return list(self._pages(api, {"handover_userid": handover_userid,
                                      "takeover_userid": takeover_userid}, "customer"))

    # --- statistics ------------------------------------------------------------------------

    def get_user_behavior_data(self, userids: Sequence[str], start_time: int, end_time: int,
                               partyids: Sequence[int] = ()) -> list[dict[str, Any]]:
        data = self._post("externalcontact/get_user_behavior_data", {
            "userid": list(userids) or None, "partyid": list(partyids) or None,
            "start_time": start_time, "end_time": end_time})
        return list(data.get("behavior_data", []))

    def groupchat_statistic(self, day_begin_time: int, day_end_time: int | None = None, *,
                            owner_userids: Sequence[str] = (), order_by: int = 1,
                            order_asc: bool = False, limit: int = 500) -> list[dict[str, Any]]:
        """Group statistics per owner, every page (this API pages by offset, not cursor)."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            data = self._post("externalcontact/groupchat/statistic", {
                "day_begin_time": day_begin_time, "day_end_time": day_end_time,
                "owner_filter": {"userid_list": list(owner_userids)} if owner_userids else None,
                "order_by": order_by, "order_asc": int(order_asc), "offset": offset,
                "limit": limit})
            page = list(data.get("items", []))
            items.extend(page)
            offset = int(data.get("next_offset", offset + len(page)))
            if not page or len(items) >= int(data.get("total", 0)):
                return items

    # --- sidebar: OAuth and JS-SDK ----------------------------------------------------------

    def auth_getuserinfo(self, code: str) -> str:
        """The advisor's userid for an OAuth ``code`` (single-use, 5 minutes). Someone outside
        the corp gets a ``WeComError`` with errcode ``NOT_A_MEMBER``."""
        data = self._get("auth/getuserinfo", code=code)
        userid = data.get("userid") or data.get("UserId")
        if not userid:
            raise WeComError(NOT_A_MEMBER, "the code belongs to someone outside the corp",
                             "auth/getuserinfo")
        return str(userid)

    def get_jsapi_ticket(self) -> str:
        """The app's agent-config jsapi ticket, cached like the token."""
        def fetch() -> tuple[str, float]:
            data = self._get("ticket/get", type="agent_config")
            return str(data["ticket"]), float(data.get("expires_in", 7200))

        key = TokenCache.key(self.corp_id, self._secret, "ticket:agent_config")
        return self._tokens.get(key, fetch)

    def agent_config(self, url: str, *, noncestr: str | None = None,
                     timestamp: int | None = None) -> dict[str, Any]:
        """What ``ww.register``'s ``getAgentConfigSignature`` must return for ``url``."""
        noncestr = noncestr or secrets.token_hex(8)
        timestamp = int(time.time()) if timestamp is None else timestamp
        return {"timestamp": timestamp, "nonceStr": noncestr,
                "signature": jsapi_signature(self.get_jsapi_ticket(), noncestr, timestamp, url)}


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
