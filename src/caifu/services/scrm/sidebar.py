"""The advisor's WeCom sidebar (聊天工具栏): who the advisor is, which customer he may see.

    /wecom/{tenant}/sidebar            no session → 302 to WeCom OAuth (state = signed nonce)
    /wecom/{tenant}/sidebar/oauth      code → ``auth/getuserinfo`` → advisor → session cookie
    /wecom/{tenant}/sidebar/context    the page posts the chat's external_userid → the view
    /wecom/{tenant}/sidebar/risk-task  a risk task of the chat's customer moved one step
    /wecom/{tenant}/sidebar/recommendation  a recommendation sent or dismissed (audited)

Trust: the advisor comes from WeCom's OAuth code exchange, never from the page. The
external_userid comes from the page's JS-SDK call and is *client-asserted*: before anything
is shown, ``customer_for`` checks that (advisor, external_userid) is an active follow in
``wecom_follows`` that names a customer, and that the advisor may see that customer under
``services/access`` (storage-only customers are out). Every refusal is the same ``Denied``
with the same words, whether the customer exists or not. Every view is audited
(``sidebar_view``) before the data is read.

Risk alerts (``services/risk/tasks``): the chat customer's alerts whose task is still open,
read through the advisor's scope; a task is moved only if it is that customer's, through the
same ``set_status`` as ``POST /v1/risk/tasks/{id}/status`` (audited ``risk_task``).

Tokens are signed like console sessions (``services/sessions``) but under their own purpose
string and prefix (``sb_``), so a sidebar cookie is never a console or API credential and
the reverse. A session lasts ``SESSION_MINUTES``; the advisor row is re-read per request, so
an advisor who left, or whose WeCom userid changed, is out at once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from caifu.adapters.sor.repos import profiles as profiles_repo
from caifu.adapters.sor.repos import scrm as repo
from caifu.core import roles
from caifu.core.clock import SYSTEM, aware_utc
from caifu.core.errors import CaifuError, ConfigError, NotFoundError
from caifu.core.identity import Principal
from caifu.core.suitability import Investor, investor_of, judge
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform import access
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles.cards import FEATURE_LABELS
from caifu.services.profiles.customers import card, masked_master
from caifu.services.risk import tasks as risk_tasks
from caifu.services.scrm.wecom_app import WeComApp, client_for, get_app

SESSION_MINUTES = 15
STATE_MINUTES = 10  # a WeCom OAuth code lives 5 minutes; the round trip must fit in this
SESSION_COOKIE = "caifu_sidebar"
STATE_COOKIE = "caifu_sidebar_state"
OAUTH_AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"
CONTENT_SHOWN = 5  # suitable items listed before any recommendation list is published
RANKED_SHOWN = 10  # recommendations listed once one is
CONTENT_CANDIDATES = 200  # newest items judged
EXTERNAL_USERID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DENIED = "无法查看该客户：仅可查看与你有企业微信好友关系、且在你服务范围内的客户。"
RISK_FOOTER = "市场有风险，投资需谨慎。"
RESEARCH_NOTE = "仅供参考，不构成投资建议"
TASK_NAMES = {"reassure_fund_holder": "赎回前安抚"}
KIND_NAMES = {"rule": "规则", "model": "模型", "text": "聊天"}
CONTENT_TYPES = {"research_report": "研报", "advisor_view": "投顾观点", "event": "事件",
                 "product_intro": "产品介绍", "fund": "基金", "action": "服务"}


class Denied(CaifuError):
    """The sidebar refuses: ``message`` is what the advisor reads (Chinese), and it never
    says anything about a customer."""

    code = "sidebar.denied"
    http_status = 403

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Session:
    tenant: str
    advisor_id: str
    wecom_userid: str
    expires: int  # Unix seconds


# --- signed tokens ---------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _sign(secret: str, purpose: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), f"{purpose}:{payload}".encode(),
                         hashlib.sha256).digest())


def _seal(secret: str, purpose: str, prefix: str, body: dict[str, Any]) -> str:
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{prefix}{payload}.{_sign(secret, purpose, payload)}"


def _open(secret: str, purpose: str, prefix: str, token: str, now: dt.datetime
          ) -> dict[str, Any] | None:
    if not token.startswith(prefix) or token.count(".") != 1 or len(token) > 2000:
        return None
    payload, sig = token[len(prefix):].split(".")
    if not hmac.compare_digest(sig, _sign(secret, purpose, payload)):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    if not isinstance(body, dict) or int(body.get("exp", 0)) <= now.timestamp():
        return None
    return body


def issue_state(secret: str, tenant: str, ctx: str | None, now: dt.datetime | None = None
                ) -> tuple[str, str]:
    """``(state, nonce)``: the state for the OAuth URL and the nonce for the browser's state
    cookie. The callback needs both — a state replayed into another browser fails."""
    nonce = secrets.token_urlsafe(16)
    exp = int((aware_utc(now or SYSTEM.now()) + dt.timedelta(minutes=STATE_MINUTES)).timestamp())
    return _seal(secret, "sidebar-state", "st_",
                 {"n": nonce, "t": tenant, "ctx": ctx, "exp": exp}), nonce


def check_state(secret: str, tenant: str, state: str, nonce: str | None,
                now: dt.datetime | None = None) -> str | None:
    """The ``ctx`` the state carries if the state is ours, fresh, for this tenant and this
    browser (its nonce cookie); else ``Denied``."""
    body = _open(secret, "sidebar-state", "st_", state, aware_utc(now or SYSTEM.now()))
    if (body is None or body.get("t") != tenant or not nonce
            or not hmac.compare_digest(str(body.get("n", "")), nonce)):
        raise Denied("登录校验失败（state 无效或已过期），请从企业微信重新打开侧边栏。", 400)
    ctx = body.get("ctx")
    return ctx if isinstance(ctx, str) else None


def issue_session(secret: str, s: Session) -> str:
    return _seal(secret, "sidebar-session", "sb_", {"t": s.tenant, "a": s.advisor_id,
                                                    "u": s.wecom_userid, "exp": s.expires})


def read_session(secret: str, token: str | None, tenant: str,
                 now: dt.datetime | None = None) -> Session | None:
    body = _open(secret, "sidebar-session", "sb_", token or "", aware_utc(now or SYSTEM.now()))
    if body is None or body.get("t") != tenant:
        return None
    return Session(tenant, str(body["a"]), str(body["u"]), int(body["exp"]))


# --- OAuth -----------------------------------------------------------------------------------

def wecom_app(c: Container, tenant: str) -> WeComApp:
    app = get_app(c, tenant)
    if app is None:
        raise Denied("该机构尚未配置企业微信应用，请联系管理员。", 404)
    return app


def oauth_url(app: WeComApp, redirect_uri: str, state: str) -> str:
    query = urlencode({"appid": app.corp_id, "redirect_uri": redirect_uri,
                       "response_type": "code", "scope": "snsapi_base", "state": state,
                       "agentid": app.agent_id}, quote_via=quote)
    # a tenant whose API goes to a gateway or to the fake WeCom signs in there too
    base = OAUTH_AUTHORIZE
    if app.api_base_url:
        origin = app.api_base_url.split("/cgi-bin", 1)[0].rstrip("/")
        base = f"{origin}/connect/oauth2/authorize"
    return f"{base}?{query}#wechat_redirect"


def sign_in(c: Container, tenant: str, code: str, now: dt.datetime | None = None) -> Session:
    """Exchange the OAuth code (single-use) for the advisor's WeCom userid, and that for an
    active advisor of the tenant."""
    from caifu.adapters.wecom.errors import WeComError

    if not code or len(code) > 512:
        raise Denied("登录失败：缺少授权码，请从企业微信重新打开侧边栏。", 400)
    client = client_for(c, tenant)
    try:
        userid = client.auth_getuserinfo(code)
    except WeComError:
        raise Denied("登录失败：授权码无效、已使用或已过期，请从企业微信重新打开侧边栏。",
                     401) from None
    finally:
        client.close()
    with c.engine.connect() as conn:  # once per sign-in: a tenant has hundreds of advisors
        rows = repo.active_advisor_ids(conn, tenant, userid)
    if len(rows) != 1:  # none, or ambiguous: refuse rather than guess
        raise Denied("你的企业微信账号未关联在职投顾，无法使用侧边栏。请联系管理员。", 403)
    exp = int((aware_utc(now or c.clock.now()) + dt.timedelta(minutes=SESSION_MINUTES))
              .timestamp())
    return Session(tenant, rows[0], userid, exp)


def principal(c: Container, s: Session) -> tuple[Principal, dict[str, Any]] | None:
    """The advisor behind a session as a ``Principal`` (and his row), or None when he has
    left or his WeCom account is no longer his."""
    with c.engine.connect() as conn:
        row = repo.advisor(conn, s.tenant, s.advisor_id)
    if row is None or row.status != "active" or row.wecom_userid != s.wecom_userid:
        return None
    p = Principal(s.tenant, f"wecom:{s.wecom_userid}", "advisor", row.branch_id, row.advisor_id)
    return p, dict(row._mapping)


def agent_config(c: Container, tenant: str, url: str) -> dict[str, Any]:
    """What ``ww.register``'s ``getAgentConfigSignature`` returns for the page at ``url``."""
    app = wecom_app(c, tenant)
    client = client_for(c, tenant)
    try:
        signed = client.agent_config(url)
    finally:
        client.close()
    return {"corpId": app.corp_id, "agentId": app.agent_id, **signed}


# --- the customer ----------------------------------------------------------------------------

def customer_for(c: Container, p: Principal, external_userid: str) -> str:
    """The customer behind the chat, if the advisor may see him here; else ``Denied``."""
    if not EXTERNAL_USERID.match(external_userid or ""):
        raise Denied(DENIED)
    if p.tenant_id is None or p.advisor_id is None:
        raise Denied(DENIED)
    with c.engine.connect() as conn:
        row = repo.follow(conn, p.tenant_id, p.advisor_id, external_userid)
    if row is None or row.status != "active" or not row.customer_id:
        raise Denied(DENIED)
    if not access.visible(c, p, row.customer_id):
        raise Denied(DENIED)
    return str(row.customer_id)


def view(c: Container, p: Principal, advisor: dict[str, Any], external_userid: str,
         link_base: str | None = None) -> dict[str, Any]:
    """Everything the sidebar shows for the chat's customer, masked; audited first.

    Content: the customer's published recommendations, ranked, each with its reason, judged
    again now (``services/recommend/serving``: what is shown is logged; a content item's
    send text carries a tracking link under ``link_base``); before the tenant's first
    ``caifu recommend publish``, or for a customer the last one did not cover, the newest
    content he may be sent — the same for everyone, and labelled so."""
    from caifu.services.recommend import serving

    tenant = p.tenant_id
    assert tenant is not None
    customer_id = customer_for(c, p, external_userid)
    audit.append(c, tenant, p.subject, "sidebar_view", customer_ids=[customer_id],
                 reason="企业微信侧边栏：投顾查看会话客户")
    master = masked_master(c, tenant, customer_id)
    master.pop("id_number", None)  # not needed in a chat, even masked
    today = dt.datetime.now(ZoneInfo(get_tenant(c, tenant).timezone)).date()
    with c.engine.connect() as conn:
        the_card, note = card(conn, tenant, customer_id)
        tags = _tags(conn, tenant, customer_id)
    ranked = serving.for_customer(c, p, customer_id, RANKED_SHOWN, "sidebar", advisor=advisor,
                                  link_base=link_base)
    content = None
    if not ranked.published:
        content = suitable_content(c, tenant, _investor(c, tenant, customer_id), today,
                                   advisor, _held_codes(the_card))
    return {"customer": master, "advisor": {"advisor_id": advisor["advisor_id"],
                                            "name": advisor["name"]},
            "card": the_card, "card_note": note, "tags": tags, "today": today.isoformat(),
            "tasks": [{**t, "title": TASK_NAMES.get(t.get("kind", ""), t.get("kind"))}
                      for t in ((the_card or {}).get("tasks") or {}).get("open") or []],
            "recommended": ranked.as_dict() if ranked.published else None,
            "content": content, "risk": risk_alerts(c, p, customer_id)}


def recommendation_outcome(c: Container, p: Principal, external_userid: str, rec_id: str,
                           outcome: str) -> bool:
    """The advisor sent (from WeCom) or dismissed a recommendation shown for the chat's
    customer — audited (``services/recommend/outcomes.mark``). Another customer's
    recommendation is the same ``Denied`` as a customer the advisor may not see."""
    from caifu.services.recommend import outcomes

    customer_id = customer_for(c, p, external_userid)
    try:
        return outcomes.mark(c, p, customer_id, rec_id, outcome)
    except NotFoundError:
        raise Denied(DENIED) from None


def risk_alerts(c: Container, p: Principal, customer_id: str) -> list[dict[str, Any]]:
    """The customer's open risk alerts with their tasks (empty without the right to see them)."""
    if not roles.may(p.role, "risk.alerts.read"):
        return []
    return risk_tasks.open_alerts_of(c, p, customer_id)


def move_risk_task(c: Container, p: Principal, external_userid: str, task_id: str,
                   status: str, reason: str = "") -> str:
    """Move the chat customer's risk task one step (audited by ``set_status``); the customer's
    id. Another customer's task, or one out of scope, is the same ``Denied`` as a customer
    the advisor may not see; a move the workflow refuses is ``Denied`` 422 saying why."""
    customer_id = customer_for(c, p, external_userid)
    if not roles.may(p.role, "risk.tasks.update"):
        raise Denied(DENIED)
    if status == "dismissed" and len(reason.strip()) < 4:
        raise Denied("忽略该提示需要填写原因（至少 4 个字）。", 422)
    try:
        risk_tasks.set_status_of(c, p, customer_id, task_id, status, reason)
    except NotFoundError:
        raise Denied(DENIED) from None
    except ConfigError as exc:  # a step the workflow does not allow, or moved meanwhile
        raise Denied(f"任务状态已变化，请刷新后重试（{exc}）。", 422) from None
    return customer_id


def _tags(conn: Any, tenant: str, customer_id: str) -> list[dict[str, Any]]:
    rows = profiles_repo.assignments(conn, tenant, customer_id=customer_id)
    if not rows:
        return []
    names = profiles_repo.tag_names(conn, tenant, [r["tag_id"] for r in rows])
    out = []
    for r in rows:
        evidence = json.loads(r["evidence_json"])
        out.append({"tag_id": r["tag_id"], "name": names.get((r["tag_id"], r["tag_version"]),
                                                             r["tag_id"]),
                    "kind": KIND_NAMES.get(r["kind"], r["kind"]), "as_of": r["as_of"],
                    "why": evidence_text(r["kind"], evidence), "evidence": evidence})
    return out


def evidence_text(kind: str, ev: dict[str, Any]) -> str:
    """A tag's evidence in one line the advisor can read."""
    if kind == "rule":
        feats = "，".join(f"{FEATURE_LABELS.get(k, k)} {_short(v)}"
                         for k, v in (ev.get("features") or {}).items())
        return f"规则 {ev.get('when', '')}；本客户：{feats}" if feats else f"规则 {ev.get('when', '')}"
    if kind == "model":
        top = [FEATURE_LABELS.get(str(x.get("feature")), x.get("feature")) for x in
               (ev.get("reasons") or [])[:3] if isinstance(x, dict)]
        text = f"模型分 {_short(ev.get('value'))} ≥ 阈值 {_short(ev.get('min_score'))}"
        return text + (f"；主要因素：{'、'.join(str(t) for t in top)}" if top else "")
    if kind == "text":
        return (f"聊天中{text_quote(ev)} {ev.get('mentions', 1)} 次，"
                f"最近 {str(ev.get('msg_time', ''))[:10]}")
    return json.dumps(ev, ensure_ascii=False)[:200]


def text_quote(ev: dict[str, Any]) -> str:
    """What a text tag's evidence quotes: the matched span, else the classifier's top
    n-grams with its score (``caifu.pipelines.tags``)."""
    if ev.get("matched"):
        return f"提及「{ev['matched']}」"
    grams = "」「".join(str(g.get("matched", "")) for g in ev.get("ngrams") or [])
    score = f"（模型 {_short(ev.get('score'))}）" if ev.get("score") is not None else ""
    return f"说到「{grams}」{score}" if grams else f"判为 {ev.get('label', '')}{score}"


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "空" if v is None else str(v)


def _held_codes(the_card: dict[str, Any] | None) -> dict[str, str]:
    """Codes the customer holds → their names, to mark related content."""
    held: dict[str, str] = {}
    for section, code in (("stocks", "security_code"), ("funds", "fund_code")):
        for pos in ((the_card or {}).get(section) or {}).get("positions") or []:
            held[str(pos.get(code))] = str(pos.get("name") or pos.get(code))
    return held


def _investor(c: Container, tenant: str, customer_id: str) -> Investor:
    """The newest suitability assessment, read from the system of record (not the card, which
    may be a day old): an assessment made this morning counts now."""
    with c.engine.connect() as conn:
        row = repo.latest_assessments(conn, tenant, [customer_id]).get(customer_id)
    return investor_of(row)


def suitable_content(c: Container, tenant: str, investor: Investor, today: dt.date,
                     advisor: dict[str, Any], held: dict[str, str]) -> dict[str, Any]:
    """The newest content items the advisor may actively send this customer, each with the
    deciding reason and the text to send (risk footer, R-level, advisor and SAC number)."""
    with c.engine.connect() as conn:
        rows = repo.newest_content(conn, tenant, CONTENT_CANDIDATES)
    items: list[dict[str, Any]] = []
    withheld, blocked = 0, None
    for r in rows:
        verdict = judge(investor, r.risk_level, today)
        if not verdict.may_recommend:
            withheld += 1
            if verdict.rule in ("NO_ASSESSMENT", "ASSESSMENT_EXPIRED", "LOWEST_CATEGORY"):
                blocked = blocked or verdict.reasons[0]
            continue
        if len(items) >= CONTENT_SHOWN:
            continue
        related = held.get(r.security_code or "") or held.get(r.fund_code or "")
        reason = verdict.reasons[0] + (f"；与持仓「{related}」相关" if related else "")
        items.append({"content_id": r.content_id, "title": r.title,
                      "type": CONTENT_TYPES.get(r.content_type, r.content_type),
                      "risk_level": r.risk_level, "published_at": r.published_at,
                      "reason": reason, "rule": verdict.rule,
                      "rule_version": verdict.rule_version,
                      "text": send_text(r, advisor)})
    return {"items": items, "withheld": withheld, "blocked": blocked,
            "investor_level": investor.level}


def send_text(item: Any, advisor: dict[str, Any]) -> str:
    lines = [f"【{CONTENT_TYPES.get(item.content_type, '内容')}】{item.title}"]
    if item.url:
        lines.append(item.url)
    lines.append(f"风险等级：{item.risk_level}"
                 + (f"｜{RESEARCH_NOTE}" if item.content_type in ("research_report",
                                                                 "advisor_view") else ""))
    lines.append(RISK_FOOTER)
    sac = advisor.get("sac_number") or "—"
    lines.append(f"投资顾问：{advisor.get('name')}（执业编号 {sac}）")
    return "\n".join(lines)
