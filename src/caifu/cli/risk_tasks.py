"""``caifu risk``: a story's companies and event, its exposed holders, alerts and tasks.

    caifu risk link-story -t T STORY              companies named in the story (stored on it)
    caifu risk classify-story -t T STORY --event-type X --polarity negative   (audited)
    caifu risk exposure -t T STORY                alerts + advisor tasks for every holder
    caifu risk alerts -t T [--status S]           caifu risk tasks -t T [--advisor A]
    caifu risk task ID --set acknowledged|contacted|done|dismissed [--reason R]   (audited)

The CLI works as the tenant's operator (the whole tenant in scope); ``--actor`` (default the
OS user) is who the audit log records.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from caifu.cli.common import TenantOpt, WorkspaceOpt, _container, console
from caifu.cli.risk import risk_app
from caifu.core.identity import Principal

StoryArg = Annotated[str, typer.Argument(help="The story id")]
ActorOpt = Annotated[str | None, typer.Option(help="Who does it [default: OS user]")]


def _operator(tenant: str, actor: str | None) -> Principal:
    return Principal(tenant, actor or getpass.getuser(), "ops")


@risk_app.command("link-story")
def link_story(story_id: StoryArg, tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Link the companies a story names (shipped A-share list) and store them on it."""
    from caifu.services.risk.linking import link_story as link

    found = link(_container(workspace), tenant, story_id)
    t = RichTable("name as written", "code", "listed", "rule", "score", "where",
                  title=f"companies in {story_id[:12]} ({len(found)})")
    for m in found:
        t.add_row(escape(m["name"]), m["code"] or "", "yes" if m["listed"] else "no",
                  m["rule"], f"{m['score']:.2f}", f"{m['field']} {m['start']}–{m['end']}")
    console.print(t)


@risk_app.command("classify-story")
def classify_story(story_id: StoryArg, tenant: TenantOpt,
                   event_type: Annotated[str, typer.Option(
                       "--event-type", help="regulatory_investigation … earnings_warning, none")],
                   polarity: Annotated[str, typer.Option(
                       help="negative | neutral | positive")] = "negative",
                   actor: ActorOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Set a story's event type and polarity by hand (the classifier's columns); audited."""
    from caifu.services.risk.linking import classify_story as classify

    who = actor or getpass.getuser()
    classify(_container(workspace), tenant, story_id, event_type, polarity, who)
    console.print(f"story {story_id}: {event_type}, {polarity} (by {escape(who)}, audited)")


@risk_app.command("exposure")
def exposure(story_id: StoryArg, tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Alerts and advisor tasks for every customer holding the story's listed companies on
    the latest positions snapshot; a repeat of an alerted event raises nothing new."""
    from caifu.services.risk.exposure import raise_alerts

    r = raise_alerts(_container(workspace), tenant, story_id)
    console.print(f"story {story_id} ({r.event_type}): securities {', '.join(r.codes) or '—'}"
                  f"; snapshot {r.snapshot_date or '—'}; holders {r.holders:,} (fund routes "
                  f"{r.fund_routes:,}); new alerts "
                  f"and tasks {r.new_alerts:,}; repeats of alerted events {r.repeats:,}")


@risk_app.command("alerts")
def alerts(tenant: TenantOpt,
           status: Annotated[str | None, typer.Option(help="Task status")] = None,
           limit: int = 50, workspace: WorkspaceOpt = None) -> None:
    """Risk alerts, newest event first: holder (masked), security, event, value at risk, P&L."""
    from caifu.services.risk.tasks import list_alerts

    page = list_alerts(_container(workspace), _operator(tenant, None), status, None, limit)
    t = RichTable("alert", "customer", "security", "event", "via", "value at risk",
                  "unrealised P&L", "task", "status", "send?",
                  title=f"risk alerts — {tenant} ({page['total']:,})")
    for a in page["items"]:
        t.add_row(a["alert_id"][:12], f"{a['customer_id']} {escape(a['customer_name'] or '')}",
                  f"{a['security_code']} {escape(a['company_name'])}", a["event_type"],
                  escape(a["via"]), f"{a['value_at_risk']:,.2f}",
                  "—" if a["unrealised_pnl"] is None else f"{a['unrealised_pnl']:,.2f}",
                  a["task_id"], a["status"], "yes" if a["message_may_send"] else "no")
    console.print(t)


@risk_app.command("tasks")
def tasks(tenant: TenantOpt,
          advisor: Annotated[str | None, typer.Option(help="Advisor id")] = None,
          status: Annotated[str | None, typer.Option(help="Task status")] = None,
          limit: int = 50, workspace: WorkspaceOpt = None) -> None:
    """Advisor tasks, newest first."""
    from caifu.services.risk.tasks import list_tasks

    page = list_tasks(_container(workspace), _operator(tenant, None), advisor, status, None,
                      limit)
    t = RichTable("task", "advisor", "customer", "security", "event", "status", "updated",
                  title=f"risk tasks — {tenant} ({page['total']:,})")
    t.columns[0].no_wrap = True
    for x in page["items"]:
        t.add_row(x["task_id"], x["advisor_id"] or "",
                  f"{x['customer_id']} {escape(x['customer_name'] or '')}",
                  f"{x['security_code']} {escape(x['company_name'])}", x["event_type"],
                  x["status"], f"{x['updated_at']:%Y-%m-%d %H:%M} {escape(x['updated_by'])}")
    console.print(t)


@risk_app.command("task")
def task(task_id: Annotated[str, typer.Argument(help="The task id")], tenant: TenantOpt,
         set_: Annotated[str, typer.Option(
             "--set", help="acknowledged | contacted | done | dismissed")],
         reason: Annotated[str, typer.Option(help="Why (required to dismiss)")] = "",
         actor: ActorOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Move a task one step of its workflow; audited with who and when."""
    from caifu.services.risk.tasks import set_status

    moved = set_status(_container(workspace), _operator(tenant, actor), task_id, set_, reason)
    console.print(f"task {task_id}: {moved['history'][-2]['to_status']} → {moved['status']}"
                  f" (by {escape(moved['updated_by'])})")
