"""An in-memory WeCom server, for tests and the demo: the same paths, fields and errcodes
as ``qyapi.weixin.qq.com/cgi-bin/``, with state a test can set up and inspect.

    fake = FakeWeCom(clock=clock)
    fake.seed_from(["adv1"], [{"name": "张三", "userid": "adv1"}])
    client = WeComClient(fake.corp_id, fake.secret,
                         transport=httpx.MockTransport(fake.handler))
    fake.fail_next("externalcontact/get", 45009, times=2)   # prove the client retries

Run it as an HTTP stub with ``uvicorn --factory caifu.adapters.wecom.fake:stub_app``.

What it holds to: access tokens are checked (41001 missing, 40014 unknown, 42001 expired);
each API allows ``rate_limit`` calls a minute (45009 beyond); OAuth codes are single-use
and live 5 minutes; welcome codes 20 s. What WeCom's *users* do in the client (a customer
adds an advisor, a member joins a group) changes state and returns the callback event;
what the *API* does changes state silently, as WeCom does.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from caifu.adapters.wecom.fake_callbacks import (
    CallbackCrypto,
    contact_event,
    group_event,
    seal,
    tag_event,
)
from caifu.adapters.wecom.fake_campaigns import CampaignRoutes
from caifu.adapters.wecom.fake_routes import FakeRoutes
from caifu.adapters.wecom.fake_state import ERRMSG, Refusal

TOKEN_LIFE = 7200
Fault = int | str  # an errcode, an HTTP status (100–599), or "network" / "timeout"


@dataclass(frozen=True)
class ClientAction:
    """Something a person did in the WeCom client, and the callback WeCom sends for it."""
    event_xml: str
    external_userid: str = ""
    welcome_code: str = ""


class FakeWeCom(FakeRoutes, CampaignRoutes):
    ROUTES = {**FakeRoutes.ROUTES, **CampaignRoutes.ROUTES,
              "gettoken": "_gettoken", "ticket/get": "_ticket_get"}

    def __init__(self, corp_id: str = "wwcaifu0000000demo", secret: str = "caifu-fake-secret",
                 agent_id: str = "1000002", *, clock: Callable[[], float] = time.time,
                 rate_limit: int = 2000, callback_crypto: CallbackCrypto | None = None) -> None:
        super().__init__(corp_id, secret, agent_id, clock=clock)
        self.rate_limit = rate_limit
        self.signed_in: str | None = None  # who the fake OAuth page signs in (the demo's)
        self.callback_crypto = callback_crypto
        self.calls: list[str] = []  # every API path asked for, in order
        self._tokens: dict[str, float] = {}  # access_token → expiry
        self._ticket: tuple[str, float] = ("", 0.0)
        self._faults: dict[str, deque[Fault]] = {}
        self._windows: dict[str, deque[float]] = {}

    # --- test controls ------------------------------------------------------------------

    def fail_next(self, api: str, fault: Fault, times: int = 1) -> None:
        """The next ``times`` calls to ``api`` (e.g. "externalcontact/get") fail with an
        errcode, an HTTP status, or a network error ("network" refuses the connection,
        "timeout" times out the read; through ``asgi_app`` both become HTTP 502)."""
        with self.lock:
            self._faults.setdefault(api, deque()).extend([fault] * times)

    def expire_tokens(self) -> None:
        """Every access token issued so far is expired from now on (42001)."""
        with self.lock:
            self._tokens = dict.fromkeys(self._tokens, self.clock())

    def call_count(self, api: str) -> int:
        return self.calls.count(api)

    # --- serving ------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Answer one request; pass to ``httpx.MockTransport``."""
        path = request.url.path
        api = path.split("/cgi-bin/", 1)[1] if "/cgi-bin/" in path else path.lstrip("/")
        with self.lock:
            self.calls.append(api)
            faults = self._faults.get(api)
            if faults:
                return self._fault(faults.popleft(), request)
            route = self.ROUTES.get(api)
            if route is None:
                return httpx.Response(404, json={"errcode": 404, "errmsg": f"no API {api}"})
            query = dict(request.url.params)
            try:
                body = json.loads(request.content) if request.content else {}
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except ValueError:
                return self._answer(Refusal(47001))
            try:
                if api != "gettoken":
                    self._check_token(query.get("access_token"))
                self._check_rate(api)
                data = getattr(self, route)({**query, **body})
            except Refusal as refusal:
                return self._answer(refusal)
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", **data})

    @staticmethod
    def _answer(refusal: Refusal) -> httpx.Response:
        return httpx.Response(200, json={"errcode": refusal.errcode, "errmsg": str(refusal)})

    def _fault(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault == "network":
            raise httpx.ConnectError("fake WeCom: connection refused", request=request)
        if fault == "timeout":
            raise httpx.ReadTimeout("fake WeCom: read timed out", request=request)
        if isinstance(fault, int) and 100 <= fault <= 599:
            return httpx.Response(fault, text=f"fake WeCom: HTTP {fault}")
        return self._answer(Refusal(int(fault)))

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise Refusal(41001)
        if token not in self._tokens:
            raise Refusal(40014)
        if self.clock() >= self._tokens[token]:
            raise Refusal(42001)

    def _check_rate(self, api: str) -> None:
        now = self.clock()
        window = self._windows.setdefault(api, deque())
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= self.rate_limit:
            raise Refusal(45009)
        window.append(now)

    def _gettoken(self, r: dict[str, Any]) -> dict[str, Any]:
        if r.get("corpid") != self.corp_id:
            raise Refusal(40013)
        if r.get("corpsecret") != self.secret:
            raise Refusal(40001)
        now = self.clock()
        live = [(exp, t) for t, exp in self._tokens.items() if exp > now]
        if live:  # WeCom answers the same token while it is valid
            exp, token = max(live)
            return {"access_token": token, "expires_in": int(exp - now)}
        token = self.new_id("tok", 40)
        self._tokens[token] = now + TOKEN_LIFE
        return {"access_token": token, "expires_in": TOKEN_LIFE}

    def _ticket_get(self, r: dict[str, Any]) -> dict[str, Any]:
        if r.get("type") != "agent_config":
            raise Refusal(40058, "type must be agent_config")
        now = self.clock()
        if now >= self._ticket[1]:
            self._ticket = (self.new_id("tkt", 40), now + TOKEN_LIFE)
        return {"ticket": self._ticket[0], "expires_in": int(self._ticket[1] - now)}

    @property
    def jsapi_ticket(self) -> str:
        """The agent-config ticket last issued (to check a signature in a test)."""
        return self._ticket[0]

    def asgi_app(self) -> Any:
        """The same routes under ``/cgi-bin/`` as a Starlette app, for ``uvicorn``."""
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        async def endpoint(request: Request) -> Response:
            req = httpx.Request(request.method, str(request.url), content=await request.body())
            try:
                resp = self.handler(req)
            except httpx.TransportError:
                return Response("fake WeCom: upstream failure", status_code=502)
            return Response(resp.content, status_code=resp.status_code,
                            media_type=resp.headers.get("content-type", "application/json"))

        async def authorize(request: Request) -> Response:
            # WeCom's OAuth page knows who is signed in to the client; the fake's stand-in is
            # ``signed_in`` (or ``?userid=`` for trying another advisor)
            q = request.query_params
            userid = q.get("userid") or self.signed_in
            redirect = q.get("redirect_uri", "")
            if not userid or not redirect.startswith(("http://", "https://")):
                return Response("fake WeCom: no signed-in member or no redirect_uri", 400)
            code = self.issue_oauth_code(userid)
            sep = "&" if "?" in redirect else "?"
            target = f"{redirect}{sep}{urlencode({'code': code, 'state': q.get('state', '')})}"
            return Response(status_code=302, headers={"Location": target})

        return Starlette(routes=[Route("/cgi-bin/{api:path}", endpoint,
                                       methods=["GET", "POST"]),
                                 Route("/connect/oauth2/authorize", authorize)])

    # --- callbacks ------------------------------------------------------------------------

    def callback(self, event_xml: str, *, timestamp: int | None = None,
                 nonce: str | None = None) -> tuple[dict[str, str], bytes]:
        """The query parameters and body of WeCom's POST to the callback URL for an event."""
        if self.callback_crypto is None:
            raise RuntimeError("FakeWeCom(callback_crypto=WeComCrypto(token, aes_key, corp_id))"
                               " is needed to produce callbacks")
        return seal(self.callback_crypto, self.corp_id, self.agent_id, event_xml,
                    timestamp=self.now() if timestamp is None else timestamp, nonce=nonce)

    def contact_event(self, change_type: str, userid: str, external_userid: str,
                      state: str | None = None, welcome_code: str | None = None,
                      source: str | None = None, fail_reason: str | None = None) -> str:
        """A ``change_external_contact`` event from this corp, now (state is not changed)."""
        return contact_event(self.corp_id, self.now(), change_type, userid, external_userid,
                             state=state, welcome_code=welcome_code, source=source,
                             fail_reason=fail_reason)

    def group_event(self, change_type: str, chat_id: str, update_detail: str | None = None,
                    members: Sequence[str] = (), last_mem_ver: str | None = None,
                    cur_mem_ver: str | None = None, join_scene: int | None = None,
                    quit_scene: int | None = None) -> str:
        """A ``change_external_chat`` event from this corp, now (state is not changed)."""
        return group_event(self.corp_id, self.now(), change_type, chat_id,
                           update_detail=update_detail, members=members,
                           join_scene=join_scene, quit_scene=quit_scene,
                           last_mem_ver=last_mem_ver, cur_mem_ver=cur_mem_ver)

    def tag_event(self, change_type: str, tag_id: str, tag_type: str = "tag",
                  strategy_id: int | None = None) -> str:
        """A ``change_external_tag`` event from this corp, now (state is not changed)."""
        return tag_event(self.corp_id, self.now(), change_type, tag_id, tag_type,
                         strategy_id=strategy_id)

    # --- what people do in the WeCom client (these do produce callbacks) -------------------

    def customer_adds(self, userid: str, external_userid: str | None = None, *,
                      name: str = "客户", state: str | None = None, unionid: str | None = None,
                      half: bool = False) -> ClientAction:
        """A customer adds an advisor (e.g. by scanning a channel QR code with ``state``)."""
        with self.lock:
            self.member(userid)
            ext = (external_userid if external_userid in self.contacts
                   else self.add_contact(external_userid, name, unionid=unionid))
            self.add_follow(userid, ext, state=state, add_way=1 if state is None else 202)
            code = self.issue_welcome_code(userid, ext)
            change = "add_half_external_contact" if half else "add_external_contact"
            xml = self.contact_event(change, userid, ext, state=state, welcome_code=code)
            return ClientAction(xml, ext, code)

    def customer_deletes(self, userid: str, external_userid: str) -> ClientAction:
        """The customer deletes the advisor (churn signal: del_follow_user)."""
        with self.lock:
            self.follow(userid, external_userid)
            del self.follows[(userid, external_userid)]
            self.customer_deletions.append((userid, external_userid, self.clock()))
            xml = self.contact_event("del_follow_user", userid, external_userid)
            return ClientAction(xml, external_userid)

    def advisor_deletes(self, userid: str, external_userid: str) -> ClientAction:
        with self.lock:
            self.follow(userid, external_userid)
            del self.follows[(userid, external_userid)]
            xml = self.contact_event("del_external_contact", userid, external_userid)
            return ClientAction(xml, external_userid)

    def advisor_edits(self, userid: str, external_userid: str, *, remark: str | None = None,
                      add_tags: Sequence[str] = ()) -> ClientAction:
        """The advisor edits the remark or tags in the client (edit_external_contact)."""
        with self.lock:
            entry = self.follow(userid, external_userid)
            if remark is not None:
                entry["remark"] = remark
            entry["tag_ids"] += [t for t in map(self.tag_ref, add_tags)
                                 if t not in entry["tag_ids"]]
            xml = self.contact_event("edit_external_contact", userid, external_userid)
            return ClientAction(xml, external_userid)

    def members_join_chat(self, chat_id: str, member_ids: Sequence[str], *,
                          join_scene: int = 1) -> ClientAction:
        with self.lock:
            last, cur = self.join_chat(chat_id, member_ids, join_scene=join_scene)
            return ClientAction(self.group_event("update", chat_id, "add_member", member_ids,
                                                 last, cur, join_scene=join_scene))

    def members_leave_chat(self, chat_id: str, member_ids: Sequence[str], *,
                           quit_scene: int = 0) -> ClientAction:
        with self.lock:
            last, cur = self.leave_chat(chat_id, member_ids)
            return ClientAction(self.group_event("update", chat_id, "del_member", member_ids,
                                                 last, cur, quit_scene=quit_scene))


def stub_app() -> Any:
    """A small demo world over HTTP: ``uvicorn --factory caifu.adapters.wecom.fake:stub_app
    --port 8088``; corp id ``wwcaifu0000000demo``, secret ``caifu-fake-secret``."""
    fake = FakeWeCom()
    fake.seed_from(
        [{"userid": "adv001", "name": "王顾问"}, {"userid": "adv002", "name": "李顾问"}],
        [{"external_userid": f"wmdemo{i:04d}", "name": f"客户{i}",
          "follow": [{"userid": "adv001" if i % 2 else "adv002", "remark": f"客户{i}",
                      "tags": ["稳健型"] if i % 3 else ["进取型"]}]} for i in range(1, 21)],
        tag_groups={"风险偏好": ["稳健型", "进取型"]},
        chats=[{"owner": "adv001", "name": "基金定投交流群",
                "members": [f"wmdemo{i:04d}" for i in range(1, 8)]}])
    return fake.asgi_app()


__all__ = ["ERRMSG", "ClientAction", "FakeWeCom", "stub_app"]
