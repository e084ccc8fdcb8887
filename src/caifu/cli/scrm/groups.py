"""WeCom identity links and preference groups.

    caifu wecom links -t demo [--review] [--status linked]
    caifu wecom link-all -t demo
    caifu wecom decide EXTERNAL_USERID CUSTOMER_ID --approve|--reject -t demo --note …
    caifu wecom unlink EXTERNAL_USERID -t demo --reason …
    caifu groups list|plan|seed-demo -t demo
    caifu groups content GROUP_ID -t demo [--n 5] [--k 10] [--on 2026-10-30]

``groups`` registers itself on import; the link commands join the ``wecom`` command group
through ``add_link_commands(wecom_cmd)``.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table as RichTable

from caifu.cli.common import (
    TenantOpt,
    WorkspaceOpt,
    _container,
    app,
    console,
    operator,
    option_date,
)
from caifu.cli.views import cited, count

ActorOpt = Annotated[str | None, typer.Option(help="Who decides [default: OS user]")]
groups_app = typer.Typer(no_args_is_help=True,
                         help="Preference groups: WeCom customer groups planned by tags.")
app.add_typer(groups_app, name="groups")


def _evidence(items: list[dict[str, str]]) -> str:
    return "; ".join(f"{e['kind']} {e['value']}" for e in items)


def links(tenant: TenantOpt,
          review: Annotated[bool, typer.Option("--review", help="Only the review queue")] = False,
          status: Annotated[str | None, typer.Option(
              help="Only this status: linked, review, rejected, unlinked")] = None,
          limit: Annotated[int, typer.Option(help="Rows to show")] = 50,
          workspace: WorkspaceOpt = None) -> None:
    """Identity links between WeCom contacts and customers, with their (masked) evidence."""
    from caifu.services.scrm import identity_links as svc

    c = _container(workspace)
    rows = svc.review_queue(c, tenant) if review else svc.links(c, tenant, status)
    t = RichTable("external_userid", "customer", "name", "status", "score", "evidence", "note",
                  title=f"{'review queue' if review else 'links'}: {len(rows)}")
    for r in rows[:limit]:
        t.add_row(r["external_userid"], r["customer_id"], r["customer_name"] or "", r["status"],
                  f"{r['score']:.2f}", _evidence(r["evidence"]), r["note"] or "")
    console.print(t)


def link_all(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Link every WeCom follow without a customer: strong unique evidence links, the rest is
    queued for review."""
    from caifu.services.scrm.identity_links import link_all as run

    r = run(_container(workspace), tenant)
    console.print(f"{r.contacts} contacts without a customer: {r.linked} linked, "
                  f"{r.review} to review, {r.none} without evidence")


def decide(external_userid: str, customer_id: str, tenant: TenantOpt,
           approve: Annotated[bool, typer.Option("--approve/--reject",
                                                 help="Link them, or never propose them")],
           note: Annotated[str, typer.Option(help="Why")] = "",
           actor: ActorOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Decide a candidate from the review queue (approving also restores an unlinked pair)."""
    from caifu.services.scrm.identity_links import decide as run

    r = run(_container(workspace), tenant, external_userid, customer_id, approve,
            actor or getpass.getuser(), note)
    console.print(f"{r['external_userid']} ↔ {r['customer_id']}: {r['status']}")


def unlink(external_userid: str, tenant: TenantOpt,
           reason: Annotated[str, typer.Option(help="Why (kept in the audit log)")],
           customer_id: Annotated[str | None, typer.Option(help="Only this customer")] = None,
           actor: ActorOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Undo a link: the customer's trades, chats and APP history stay as they are."""
    from caifu.services.scrm.identity_links import unlink as run

    done = run(_container(workspace), tenant, external_userid, actor or getpass.getuser(),
               reason, customer_id)
    console.print(f"{external_userid} unlinked from {', '.join(done)} (audited)")


def add_link_commands(wecom_cmd: typer.Typer) -> None:
    """Add ``links``, ``link-all``, ``decide`` and ``unlink`` to the ``wecom`` command group."""
    wecom_cmd.command("links")(links)
    wecom_cmd.command("link-all")(link_all)
    wecom_cmd.command("decide")(decide)
    wecom_cmd.command("unlink")(unlink)


@groups_app.command("list")
def groups_list(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """The tenant's preference groups and the customers in each part of their last plan
    (the metric preference_group_customers)."""
    from caifu.services.scrm.pref_groups import group_sizes, list_groups, plan_sizes

    c = _container(workspace)
    rows = list_groups(c, tenant)
    sizes = plan_sizes(c, operator(tenant))
    t = RichTable("group", "name", "rule", "level policy", "chat", "member", "invite", "left",
                  "excluded", caption=f"customers: {cited(sizes.metrics)}")
    for g in rows:
        policy = g["level_policy"] + (f" {g['risk_level']}" if g["risk_level"] else "")
        n = group_sizes(sizes, g["group_id"])
        t.add_row(g["group_id"], g["name"], g["rule"], policy, g["chat_id"] or "",
                  *(count(n[s]) for s in ("member", "invite", "left", "excluded")))
    console.print(t)


@groups_app.command("plan")
def groups_plan(group_id: str, tenant: TenantOpt,
                show: Annotated[int, typer.Option(help="Rows to show per status")] = 10,
                workspace: WorkspaceOpt = None) -> None:
    """Plan a group: who to invite, who is in, who left, who is excluded and why."""
    from caifu.services.scrm.pref_groups import group_sizes, plan, plan_sizes

    c = _container(workspace)
    result = plan(c, tenant, group_id)
    p, g = result.plan, result.group
    sizes = plan_sizes(c, operator(tenant))  # the plan just stored, counted by the metric
    counts = ", ".join(f"{s} {count(n)}" for s, n in group_sizes(sizes, group_id).items())
    console.print(f"{g['name']} ({g['group_id']}) · rule {g['rule']} · {counts}")
    console.print(f"[dim]customers: {cited(sizes.metrics)}[/]", highlight=False)
    console.print(f"content is judged against: {p.lowest_level or 'unassessed (blocked)'}"
                  + (f" · {p.unidentified} chat members not linked to a customer"
                     if p.unidentified else ""))
    t = RichTable("status", "customer", "level", "reason")
    for status in ("invite", "member", "left", "excluded"):
        for r in [r for r in p.rows if r.status == status][:show]:
            t.add_row(r.status, r.customer_id, r.risk_level or "", r.reason)
    console.print(t)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{rule} {n}" for rule, n in counts.items()) or "none"


@groups_app.command("content")
def groups_content(group_id: str, tenant: TenantOpt,
                   n: Annotated[int, typer.Option("--n", help="Items to plan")] = 5,
                   k: Annotated[int, typer.Option(
                       "--k", help="Places of each member's list that vote")] = 10,
                   on: Annotated[str | None, typer.Option(
                       "--on", help="Plan day YYYY-MM-DD [default: today]")] = None,
                   workspace: WorkspaceOpt = None) -> None:
    """The next content items to post in the group's chat: ranked by the members' published
    recommendation lists, only what may be pushed to the group as a whole (its level
    policy, validity, the compliance lexicon, not posted within the resend window)."""
    from caifu.services.scrm.group_content import content_plan

    day = option_date(on, "--on")
    p = content_plan(_container(workspace), tenant, group_id, n, k, day)
    console.print(f"{p.name} ({p.group_id}) · plan day {p.day} · judged: {p.judged} · "
                  f"may receive up to {p.max_level or 'nothing'}")
    console.print(f"reach {p.reach} ({p.reach_source}) · {p.with_lists} with a published list"
                  + (f" ({', '.join(p.policy_versions)})" if p.policy_versions else "")
                  + f" · ranked by: {p.basis}")
    console.print(f"content items {p.catalogue} · eligible {p.eligible} · refused: "
                  f"{_counts(p.refused)}")
    console.print(f"in the members' top {p.k}: {p.voted} content items · refused: "
                  f"{_counts(p.voted_refused)}")
    for note in p.notes:
        console.print(f"note: {note}", highlight=False)
    t = RichTable("#", "item", "level", "type", "basis", "score", "title", "reason",
                  title=f"content plan: {len(p.items)} of {p.n}")
    for i in p.items:
        t.add_row(str(i.rank), i.item_id, i.risk_level, i.label, i.basis, f"{i.score:g}",
                  i.title, i.reason)
    console.print(t)


@groups_app.command("seed-demo")
def groups_seed_demo(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Create the demo's 新能源, 上证50 ETF and 基金定投 groups."""
    from caifu.services.scrm.pref_groups import seed_demo_groups

    ids = seed_demo_groups(_container(workspace), tenant)
    console.print(f"preference groups ready: {', '.join(ids)}")
