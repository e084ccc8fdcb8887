"""Applying stored WeCom callbacks: the follow relation, customer groups, corp tags.

Runs off the request path (a worker thread of the service, or ``caifu wecom apply``). Each
pending row of ``wecom_callbacks`` ends ``applied`` or ``failed`` with the reason; a failed
one is retried by ``retry_failed``. An event is applied whole or not at all: WeCom API reads
come first, then every write of the event and its ``applied`` mark in one transaction; what
cannot be undone (the welcome message, the audit record of a link) happens after the commit.
What each event does:

| event · change type | effect |
|---|---|
| contact add / add_half | follow active (State kept: channel attribution), contact details fetched, identity linked, compliant welcome sent with the WelcomeCode |
| contact edit | details fetched again, identity re-linked |
| contact del_external_contact | follow ``deleted_by_advisor`` |
| contact del_follow_user | follow ``deleted_by_customer`` — the churn signal the profile reads |
| contact transfer_fail | recorded with WeCom's FailReason; the follow stays |
| contact msg_audit_approved | the follow's chat-archive consent time |
| chat create / update / dismiss | group and members; a gap between the stored member version and LastMemVer means missed events: the group is resynced through the API |
| tag create / update / delete / shuffle | corp tags refreshed through the API |

Changes caifu itself makes through the API (mark_tag, remark …) produce no callbacks, so the
code that makes them updates these tables directly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update

from caifu.adapters.sor.repos import scrm as scrm_repo
from caifu.adapters.sor.repos import wecom_groups as groups_repo
from caifu.adapters.sor.scrm_models import wecom_callbacks
from caifu.adapters.wecom.errors import WeComError
from caifu.scrm.callback import Event, parse_event
from caifu.scrm.linking import ContactFacts
from caifu.services.container import Container
from caifu.services.scrm import identity_links
from caifu.services.scrm.wecom_app import client_for, get_app

log = logging.getLogger(__name__)
BATCH = 200


class ApplyError(Exception):
    """An event that cannot be applied; the message is the stored reason (``field:RULE``)."""


@dataclass
class Applied:
    applied: int = 0
    failed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    resynced_groups: int = 0
    welcomes: int = 0
    welcome_failed: int = 0


def _ts(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


class WeComEvents:
    def __init__(self, container: Container,
                 welcome: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.c = container
        self._welcome = welcome or welcome_text
        self._lock = threading.Lock()

    # --- the loop -----------------------------------------------------------------------

    def pending_tenants(self) -> list[str]:
        with self.c.engine.connect() as conn:
            return list(conn.execute(select(wecom_callbacks.c.tenant_id).where(
                wecom_callbacks.c.status == "pending").distinct()).scalars())

    def apply_pending(self, tenant: str, limit: int = BATCH) -> Applied:
        """Apply up to ``limit`` pending callbacks of ``tenant``, oldest first."""
        out = Applied()
        with self._lock:
            with self.c.engine.connect() as conn:
                rows = conn.execute(select(wecom_callbacks.c.digest, wecom_callbacks.c.xml,
                                           wecom_callbacks.c.received_at).where(
                    (wecom_callbacks.c.tenant_id == tenant)
                    & (wecom_callbacks.c.status == "pending"))
                    .order_by(wecom_callbacks.c.received_at).limit(limit)).all()
            client = _LazyClient(self.c, tenant)
            for r in rows:
                self._apply_one(tenant, r, client, out)
            client.close()
        return out

    def _apply_one(self, tenant: str, r: Any, client: _LazyClient, out: Applied) -> None:
        after: list[Callable[[Applied], None]] = []  # what runs once the event's writes committed
        try:
            event = parse_event(r.xml.encode())
            with self.c.engine.begin() as conn:
                self._apply(conn, tenant, event, client.get(), r.received_at, after)
                self._mark(conn, tenant, r.digest, "applied", None)
        except Exception as e:  # rolled back whole: the row stays, failed with its reason
            if isinstance(e, ApplyError):
                error = str(e)
            else:  # the WeCom API or the database: kept, retried later
                log.exception("applying a WeCom callback failed", extra={"tenant": tenant})
                error = f"{type(e).__name__}: {e}"[:500]
            with self.c.engine.begin() as conn:
                self._mark(conn, tenant, r.digest, "failed", error)
            out.failed += 1
            return
        kind = f"{event.event}:{event.change_type}"
        out.applied += 1
        out.by_kind[kind] = out.by_kind.get(kind, 0) + 1
        for step in after:
            step(out)

    def _mark(self, conn: Any, tenant: str, digest: str, status: str, error: str | None) -> None:
        conn.execute(update(wecom_callbacks).where(
            (wecom_callbacks.c.tenant_id == tenant) & (wecom_callbacks.c.digest == digest))
            .values(status=status, error=error, applied_at=self.c.clock.now()))

    def retry_failed(self, tenant: str) -> int:
        with self.c.engine.begin() as conn:
            return int(conn.execute(update(wecom_callbacks).where(
                (wecom_callbacks.c.tenant_id == tenant)
                & (wecom_callbacks.c.status == "failed")).values(status="pending",
                                                                  error=None)).rowcount)

    def status(self, tenant: str) -> dict[str, Any]:
        """Callbacks by status, failures by stored reason, and how many groups wait for a
        resync (``caifu wecom status``)."""
        cb = wecom_callbacks
        with self.c.engine.connect() as conn:
            by_status = conn.execute(select(cb.c.status, func.count()).where(
                cb.c.tenant_id == tenant).group_by(cb.c.status).order_by(cb.c.status)).all()
            failed = conn.execute(select(cb.c.error, func.count()).where(
                (cb.c.tenant_id == tenant) & (cb.c.status == "failed"))
                .group_by(cb.c.error).order_by(cb.c.error)).all()
            resync = len(groups_repo.groups_needing_resync(conn, tenant))
        return {"by_status": [(s, int(n)) for s, n in by_status],
                "failed": [(e, int(n)) for e, n in failed], "groups_to_resync": resync}

    def resync_pending(self, tenant: str, client: Any) -> tuple[int, int]:
        """Reload from WeCom every group that missed events, then the corp tags:
        ``(groups, corp tags)``."""
        with self.c.engine.connect() as conn:
            chats = groups_repo.groups_needing_resync(conn, tenant)
        for chat_id in chats:
            self.resync_group(tenant, chat_id, client)
        return len(chats), self.sync_tags(tenant, client)

    def run_worker(self, stop: threading.Event, poll_seconds: float = 0.2,
                   flush: Callable[[], Any] | None = None,
                   every_minute: Callable[[], Any] | None = None) -> None:
        """Apply pending callbacks of every tenant until ``stop``; ``flush`` (the rejection
        counter's) runs on each pass, ``every_minute`` (scheduled campaign sends) once a
        minute."""
        next_minute = 0.0
        while not stop.is_set():
            busy = False
            try:
                if flush is not None:
                    flush()
                if every_minute is not None and time.monotonic() >= next_minute:
                    next_minute = time.monotonic() + 60
                    every_minute()
                for t in self.pending_tenants():
                    done = self.apply_pending(t)
                    busy |= done.applied + done.failed > 0
            except Exception:  # the worker outlives a bad moment of the database; logged
                log.exception("WeCom callback worker pass failed")
            if not busy:
                stop.wait(poll_seconds)

    # --- one event ----------------------------------------------------------------------

    def _apply(self, conn: Any, tenant: str, e: Event, client: Any, received: dt.datetime,
               after: list[Callable[[Applied], None]]) -> None:
        at = e.create_time or received
        if e.event == "change_external_contact":
            self._contact(conn, tenant, e, client, at, after)
        elif e.event == "change_external_chat":
            self._chat(conn, tenant, e, client, at, after)
        elif e.event == "change_external_tag":
            self._tags(conn, tenant, e, client, at)
        # other messages (text sent to the app, menu clicks …) are stored and applied as-is

    def _advisor(self, conn: Any, tenant: str, userid: str | None) -> dict[str, Any]:
        if not userid:
            raise ApplyError("UserID:MISSING")
        row = scrm_repo.advisor_by_userid(conn, tenant, userid)
        if row is None:
            raise ApplyError("UserID:UNKNOWN_ADVISOR")
        return row

    def _contact(self, conn: Any, tenant: str, e: Event, client: Any, at: dt.datetime,
                 after: list[Callable[[Applied], None]]) -> None:
        ext = e.get("ExternalUserID")
        if not ext:
            raise ApplyError("ExternalUserID:MISSING")
        advisor = self._advisor(conn, tenant, e.get("UserID"))
        key = (tenant, advisor["advisor_id"], ext)
        change = e.change_type
        refresh = change in {"add_external_contact", "add_half_external_contact",
                             "edit_external_contact"} and client is not None
        # the API first: a failing call leaves nothing written
        details = client.get_external_contact(ext) if refresh else None
        existing = scrm_repo.follow_row(conn, *key)
        if change in {"add_external_contact", "add_half_external_contact"}:
            values = {"status": "active", "removed_at": None, "state": e.get("State")}
            if existing is None:
                scrm_repo.insert_follow(conn, *key, added_at=at, **values)
            else:
                scrm_repo.update_follow(conn, *key, added_at=at, **values)
        elif existing is None:
            raise ApplyError("ExternalUserID:UNKNOWN_FOLLOW")
        elif change == "del_external_contact":
            scrm_repo.update_follow(conn, *key, status="deleted_by_advisor", removed_at=at)
        elif change == "del_follow_user":
            scrm_repo.update_follow(conn, *key, status="deleted_by_customer", removed_at=at)
        elif change == "msg_audit_approved":
            scrm_repo.update_follow(conn, *key, archive_consent_at=at)
        elif change == "transfer_fail":
            log.info("WeCom handover failed", extra={"tenant": tenant,
                                                    "reason": (e.get("FailReason") or "-")[:40]})
        elif change != "edit_external_contact":
            raise ApplyError(f"ChangeType:UNKNOWN ({change[:40]})")
        if details is None:
            return
        decision, linked = self._refresh_contact(conn, tenant, advisor, ext, details)
        after.append(lambda _: identity_links.audit_link(self.c, tenant, "wecom-callback",
                                                         decision, linked))
        code = e.get("WelcomeCode")
        if code:
            after.append(lambda out: self._send_welcome(tenant, advisor, code, client, out))

    def _send_welcome(self, tenant: str, advisor: dict[str, Any], code: str, client: Any,
                      out: Applied) -> None:
        # the code lives 20 s and works once: a late or repeated event cannot greet, and that
        # must not undo the follow it recorded — so it is sent after the commit
        try:
            client.send_welcome_msg(code, text=self._welcome(advisor))
            out.welcomes += 1
        except WeComError as err:
            out.welcome_failed += 1
            log.warning("welcome message not sent", extra={
                "tenant": tenant, "reason": f"errcode {err.errcode}"})

    def _refresh_contact(self, conn: Any, tenant: str, advisor: dict[str, Any], ext: str,
                         data: dict[str, Any]) -> tuple[Any, list[str]]:
        """The contact's details from WeCom onto the follow, then identity linking."""
        contact = data.get("external_contact") or {}
        mine = next((f for f in data.get("follow_user") or []
                     if f.get("userid") == advisor["wecom_userid"]), {})
        mobiles = [m for m in mine.get("remark_mobiles") or [] if m]
        scrm_repo.update_follow(conn, tenant, advisor["advisor_id"], ext,
                                unionid=contact.get("unionid") or None,
                                remark_mobile=mobiles[0] if mobiles else None)
        facts = ContactFacts(ext, advisor_ids=(advisor["advisor_id"],),
                             unionid=contact.get("unionid") or None,
                             remark_mobiles=tuple(mobiles), remark=mine.get("remark") or None,
                             name=contact.get("name") or None)
        return identity_links.link_contact_in(conn, tenant, ext, facts, actor="wecom-callback",
                                              now=self.c.clock.now())

    def _chat(self, conn: Any, tenant: str, e: Event, client: Any, at: dt.datetime,
              after: list[Callable[[Applied], None]]) -> None:
        chat_id = e.get("ChatId")
        if not chat_id:
            raise ApplyError("ChatId:MISSING")
        group = groups_repo.group(conn, tenant, chat_id)
        change = e.change_type
        if change == "dismiss":
            self._ensure_group(conn, tenant, chat_id, group, at)
            groups_repo.dismiss_group(conn, tenant, chat_id, at)
            return
        if change not in {"create", "update"}:
            raise ApplyError(f"ChangeType:UNKNOWN ({change[:40]})")
        detail = e.get("UpdateDetail") or ""
        gap = (change == "update" and group is not None and group.member_version is not None
               and e.get("LastMemVer") is not None and group.member_version != e.get("LastMemVer"))
        if change == "create" or group is None or gap or detail in {
                "change_owner", "change_name", "change_notice"}:
            if client is None:  # no API: apply what the event says, resync when one exists
                self._ensure_group(conn, tenant, chat_id, group, at, needs_resync=True)
                self._members(conn, tenant, chat_id, e, detail, at)
                return
            self.resync_group(tenant, chat_id, client, at, conn=conn)
            if gap:
                after.append(lambda out: setattr(out, "resynced_groups",
                                                 out.resynced_groups + 1))
            return
        self._members(conn, tenant, chat_id, e, detail, at)
        groups_repo.update_group(conn, tenant, chat_id,
                                 member_version=e.get("CurMemVer") or group.member_version,
                                 updated_at=at)

    def _ensure_group(self, conn: Any, tenant: str, chat_id: str, group: Any, at: dt.datetime,
                      needs_resync: bool = False) -> None:
        if group is None:
            groups_repo.save_group(conn, tenant, chat_id, at, status="active",
                                   needs_resync=needs_resync, updated_at=at)
        elif needs_resync:
            groups_repo.update_group(conn, tenant, chat_id, needs_resync=True, updated_at=at)

    def _members(self, conn: Any, tenant: str, chat_id: str, e: Event, detail: str,
                 at: dt.datetime) -> None:
        if detail not in {"add_member", "del_member"}:
            return
        joined = detail == "add_member"
        scene = e.get("JoinScene" if joined else "QuitScene")
        for member in e.members:
            values: dict[str, Any] = (
                {"active": True, "joined_at": at, "join_scene": _int(scene), "left_at": None,
                 "quit_scene": None} if joined else
                {"active": False, "left_at": at, "quit_scene": _int(scene)})
            groups_repo.save_member(conn, tenant, chat_id, member, values,
                                    member_type=_member_type(member))

    def resync_group(self, tenant: str, chat_id: str, client: Any,
                     at: dt.datetime | None = None, conn: Any = None) -> int:
        """Replace the group and its member list with WeCom's (``groupchat/get``), on
        ``conn`` (an event's transaction) or a transaction of its own."""
        at = at or self.c.clock.now()
        g = client.groupchat_get(chat_id)
        members = g.get("member_list") or []
        current = {m.get("userid") for m in members if m.get("userid")}
        with _on(self.c, conn) as conn:
            groups_repo.save_group(
                conn, tenant, chat_id, _ts(g.get("create_time")) or at, name=g.get("name"),
                owner=g.get("owner"), notice=g.get("notice"), status="active",
                member_version=g.get("member_version"), needs_resync=False, updated_at=at)
            before = groups_repo.chat_members(conn, tenant, chat_id)
            for m in members:
                uid = m.get("userid")
                if not uid:
                    continue
                kind = "internal" if m.get("type") == 1 else "external"
                groups_repo.save_member(
                    conn, tenant, chat_id, uid,
                    {"member_type": kind, "active": True,
                     "joined_at": _ts(m.get("join_time")) or at,
                     "join_scene": _int(m.get("join_scene")), "left_at": None,
                     "quit_scene": None}, member_type=kind)
            groups_repo.end_memberships(
                conn, tenant, chat_id,
                [uid for uid, r in before.items() if uid not in current and r.active], at)
        return len(current)

    def _tags(self, conn: Any, tenant: str, e: Event, client: Any, at: dt.datetime) -> None:
        tag_id = e.get("Id")
        change = e.change_type
        if change == "delete" and tag_id:
            groups_repo.delete_corp_tag(conn, tenant, tag_id, at)
            return
        if change not in {"create", "update", "shuffle", "delete"}:
            raise ApplyError(f"ChangeType:UNKNOWN ({change[:40]})")
        if client is None:
            raise ApplyError("wecom_apps:NO_API_CLIENT")
        self.sync_tags(tenant, client, at, conn=conn)

    def sync_tags(self, tenant: str, client: Any, at: dt.datetime | None = None,
                  conn: Any = None) -> int:
        """Replace the tenant's corp tags with WeCom's list, keeping caifu's tag mapping (on
        ``conn``, an event's transaction, or a transaction of its own)."""
        at = at or self.c.clock.now()
        groups = client.get_corp_tag_list()
        rows = [{"tag_id": t["id"], "group_id": grp.get("group_id"),
                 "group_name": grp.get("group_name"), "name": t.get("name") or t["id"],
                 "deleted": bool(t.get("deleted") or grp.get("deleted"))}
                for grp in groups for t in grp.get("tag") or []]
        with _on(self.c, conn) as conn:
            return groups_repo.replace_corp_tags(conn, tenant, rows, at)


class _LazyClient:
    """The tenant's WeCom client, made on first use (most events need no API call), or None
    when the tenant has no app."""

    def __init__(self, c: Container, tenant: str) -> None:
        self.c, self.tenant, self.client = c, tenant, None
        self.has_app = get_app(c, tenant) is not None

    def get(self) -> Any:
        return self if self.has_app else None

    def __getattr__(self, name: str) -> Any:
        if self.client is None:
            self.client = client_for(self.c, self.tenant)
        return getattr(self.client, name)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _on(c: Container, conn: Any) -> Any:
    """``conn`` as is (the caller commits), or a new transaction."""
    return contextlib.nullcontext(conn) if conn is not None else c.engine.begin()


def _member_type(member_id: str) -> str:
    # WeCom's external user ids start with wm (customers) or wo (WeChat users)
    return "external" if member_id.startswith(("wm", "wo")) else "internal"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def welcome_text(advisor: dict[str, Any]) -> str:
    """A compliant welcome: who is speaking, his SAC registration, the risk warning."""
    sac = advisor.get("sac_number") or "（未登记）"
    return (f"您好，我是{advisor.get('name') or '您的投资顾问'}，证券业协会执业注册编号 {sac}。"
            "很高兴为您服务，如需了解账户、基金或业务办理，可随时在此留言。"
            "市场有风险，投资需谨慎。")
