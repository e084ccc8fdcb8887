"""Risk alerts and advisor tasks as their readers see them: scoped, masked, audited moves.

    list_alerts(c, p, status, customer)       alerts of the customers ``p`` may see
    list_tasks(c, p, advisor, status, customer)
    set_status(c, p, task_id, status, reason) one workflow step (core rules in risk/alerts),
                                              audited (``risk_task``) and kept in the task's
                                              history (who, when, from, to, why)
    open_alerts_of(c, p, customer)            one customer's alerts whose task is not final,
                                              as the advisor's sidebar shows them
    set_status_of(c, p, customer, task_id, …) ``set_status`` for a task of that customer only

Scope is ``services/platform/access``: an advisor sees the tasks of his customers, a branch
manager his branch's, tenant-wide roles all; another tenant's or an out-of-scope task is
``NotFoundError``, as for customers. Customers are shown by id and masked name only.
"""

from __future__ import annotations

import json
from typing import Any

from caifu.adapters.sor.repos import customer_scope as scope_repo
from caifu.adapters.sor.repos import risk as repo
from caifu.adapters.sor.repos import scrm as scrm_repo
from caifu.core.errors import ConfigError, NotFoundError
from caifu.core.identity import Principal
from caifu.risk.alerts import (
    EVENT_NAMES,
    OPEN_STATUSES,
    OPTED_OUT,
    STATUS_NAMES,
    STATUSES,
    check_transition,
    next_status,
)
from caifu.services.container import Container
from caifu.services.platform.access import scope_of, tenant_of
from caifu.services.profiles.customers import masked_row


def _scope(p: Principal) -> scope_repo.Scope:
    return scope_of(p)  # tenant-wide roles too: storage-only customers stay out


def _names(c: Container, tenant: str, ids: list[str]) -> dict[str, str]:
    with c.engine.connect() as conn:
        rows = scope_repo.search_rows(conn, tenant, sorted(set(ids)), ("customer_id", "name"))
    return {r["customer_id"]: masked_row(r)["name"] for r in rows}


def _status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise ConfigError(f"unknown task status {status!r}; one of {', '.join(STATUSES)}")


def list_alerts(c: Container, p: Principal, status: str | None = None,
                customer_id: str | None = None, limit: int = 100, offset: int = 0
                ) -> dict[str, Any]:
    tenant = tenant_of(p)
    _status(status)
    with c.engine.connect() as conn:
        total, rows = repo.alerts(conn, tenant, _scope(p), status, customer_id, limit, offset)
    names = _names(c, tenant, [r["customer_id"] for r in rows])
    items = []
    for r in rows:
        evidence = json.loads(r.pop("evidence_json"))
        r["repeat_story_ids"] = json.loads(r.pop("repeat_story_ids_json"))
        routes = r.pop("routes_json")
        r["routes"] = json.loads(routes) if routes else [{"via": "position"}]
        r["message_notes"] = r["message_notes"].split("\n") if r["message_notes"] else []
        items.append({**r, "customer_name": names.get(r["customer_id"]),
                      "evidence": evidence})
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def list_tasks(c: Container, p: Principal, advisor_id: str | None = None,
               status: str | None = None, customer_id: str | None = None, limit: int = 100,
               offset: int = 0) -> dict[str, Any]:
    tenant = tenant_of(p)
    _status(status)
    with c.engine.connect() as conn:
        total, rows = repo.tasks(conn, tenant, _scope(p), advisor_id, status, customer_id,
                                 limit, offset)
    names = _names(c, tenant, [r["customer_id"] for r in rows])
    return {"total": total, "limit": limit, "offset": offset,
            "items": [{**r, "customer_name": names.get(r["customer_id"])} for r in rows]}


def set_status(c: Container, p: Principal, task_id: str, status: str, reason: str = ""
               ) -> dict[str, Any]:
    """Move a task one step; audited before it is written. A task the caller may not see is
    ``NotFoundError``; a move the workflow does not allow is a ``ConfigError`` naming the
    allowed ones."""
    from caifu.services.compliance import audit

    tenant = tenant_of(p)
    with c.engine.connect() as conn:
        task = repo.task(conn, tenant, task_id, _scope(p))
    if task is None:
        raise NotFoundError(f"no risk task {task_id!r}")
    check_transition(task["status"], status, reason)
    audit.append(c, tenant, p.subject, "risk_task", customer_ids=[task["customer_id"]],
                 fields=["status"],
                 reason=f"task {task_id}: {task['status']} → {status}"
                        + (f"; {reason.strip()}" if reason.strip() else ""))
    with c.engine.begin() as conn:
        moved = repo.move_task(conn, tenant, task_id, task["status"], status, p.subject,
                               reason.strip() or None, c.clock.now())
        history = repo.task_history(conn, tenant, task_id)
    if not moved:
        raise ConfigError(f"task {task_id} changed meanwhile (it is no longer "
                          f"{task['status']}): read it again")
    with c.engine.connect() as conn:
        after = repo.task(conn, tenant, task_id)
    assert after is not None
    return {**after, "history": history}


STEP_NAMES = {"acknowledged": "确认知悉", "contacted": "已联系客户", "done": "完成"}  # buttons


def open_alerts_of(c: Container, p: Principal, customer_id: str, limit: int = 20
                   ) -> list[dict[str, Any]]:
    """The customer's alerts whose task is open, acknowledged or contacted, newest event
    first, each with what the advisor needs beside the chat: the story's title and how many
    sites carry it now, the evidence sentence, the position, the message and whether it may be
    sent *today* (his consent is read again: an opt-out after the alert withholds it), the
    task's status and its next step. Empty for a customer ``p`` may not see."""
    tenant = tenant_of(p)
    with c.engine.connect() as conn:
        _, rows = repo.alerts(conn, tenant, _scope(p), None, customer_id, limit, 0,
                              among=OPEN_STATUSES)
        stories = {sid: repo.story(conn, tenant, sid) for sid in {r["story_id"] for r in rows}}
        consent = {m.customer_id: m.marketing_consent
                   for m in scrm_repo.marketing_masters(conn, tenant, [customer_id])}
    out = []
    for r in rows:
        evidence = json.loads(r["evidence_json"])
        sources = evidence.get("sources") or []
        story = stories.get(r["story_id"]) or {}  # the story now: later copies fold into it
        notes = r["message_notes"].split("\n") if r["message_notes"] else []
        may_send = bool(r["message_may_send"])
        if consent.get(customer_id) is False:
            may_send = False
            if OPTED_OUT not in notes:
                notes.append(OPTED_OUT)
        out.append({
            "alert_id": r["alert_id"], "task_id": r["task_id"], "status": r["status"],
            "status_name": STATUS_NAMES.get(r["status"], r["status"]),
            "next_status": next_status(r["status"]),
            "next_name": STEP_NAMES.get(next_status(r["status"]) or "", ""),
            "story_id": r["story_id"],
            "title": story.get("title") or (sources[0]["title"] if sources else ""),
            "site_count": story.get("site_count") or len({s["site"] for s in sources}),
            "document_count": story.get("document_count") or len(sources),
            "company_name": r["company_name"], "security_code": r["security_code"],
            "event_type": r["event_type"],
            "event_name": EVENT_NAMES.get(r["event_type"], r["event_type"]),
            "event_at": r["event_at"], "sentence": (evidence.get("mention") or {}).get("sentence"),
            "quantity": r["quantity"], "market_value": r["market_value"],
            "unrealised_pnl": r["unrealised_pnl"], "snapshot_date": r["snapshot_date"],
            "customer_risk_level": r["customer_risk_level"], "message": r["message"],
            "message_may_send": may_send, "message_notes": notes,
            "repeats": len(json.loads(r["repeat_story_ids_json"]))})
    return out


def set_status_of(c: Container, p: Principal, customer_id: str, task_id: str, status: str,
                  reason: str = "") -> dict[str, Any]:
    """``set_status`` for a task of ``customer_id`` only (the sidebar's chat customer): a task
    of anyone else is ``NotFoundError``, as one outside the scope is."""
    tenant = tenant_of(p)
    with c.engine.connect() as conn:
        task = repo.task(conn, tenant, task_id, _scope(p))
    if task is None or task["customer_id"] != customer_id:
        raise NotFoundError(f"no risk task {task_id!r}")
    return set_status(c, p, task_id, status, reason)
