"""Profiles: build, one customer, tags, segments, cards and lifecycle stages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from rich.table import Table as RichTable

from caifu.cli.common import (
    AsOfOpt,
    EngineOpt,
    TenantOpt,
    WorkspaceOpt,
    _container,
    app,
    console,
    operator,
)
from caifu.cli.views import cited, count

# --- profiles, tags, segments -----------------------------------------------------------------

tags_app = typer.Typer(no_args_is_help=True, help="Tag definitions and who holds which tag.")
app.add_typer(tags_app, name="tags")
segment_app = typer.Typer(no_args_is_help=True, help="Segments: expressions over features and tags.")
app.add_typer(segment_app, name="segment")


def _tag_names(c, tenant: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from caifu.services.profiles.tag_definitions import load_definitions

    definitions, _ = load_definitions(c, tenant)
    return {d.id: d.name for d in definitions}


@app.command("build")
def build_cmd(tenant: TenantOpt, engine: EngineOpt = "duckdb", as_of: AsOfOpt = None,
              workspace: WorkspaceOpt = None) -> None:
    """Build profiles, tags (with evidence) and segment sizes as of a date (default: newest data)."""
    from caifu.cli.views.profiles import build_with_progress, print_build
    from caifu.services.profiles.build import check_as_of

    c = _container(workspace)
    result = build_with_progress(c, tenant, engine, check_as_of(as_of), console)
    print_build(result, console, _tag_names(c, tenant))


@app.command()
def customer(customer_id: str, tenant: TenantOpt,
             unmask: Annotated[bool, typer.Option(
                 help="Show level-3 data in clear; needs --reason, written to the audit log")] = False,
             reason: Annotated[str, typer.Option(help="Why the data is needed (audited)")] = "",
             actor: Annotated[str | None, typer.Option(
                 help="Who reads it [default: the OS user]")] = None,
             workspace: WorkspaceOpt = None) -> None:
    """One customer's profile and tags with evidence (personal data masked unless --unmask)."""
    import getpass

    from caifu.cli.views.profiles import print_customer
    from caifu.services.profiles.customers import Unmask, customer_view

    c = _container(workspace)
    who = Unmask(actor or getpass.getuser(), reason) if unmask else None
    print_customer(customer_view(c, tenant, customer_id, who), console,
                   _tag_names(c, tenant))


@tags_app.command("list")
def tags_list(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Tag definitions in force and how many customers hold each now (the metric
    tag_holders)."""
    from caifu.services.profiles.figures import tag_holders
    from caifu.services.profiles.tag_definitions import load_definitions

    c = _container(workspace)
    definitions, source = load_definitions(c, tenant)
    held = tag_holders(c, operator(tenant))
    t = RichTable("tag", "name", "kind", "v", "customers", "definition",
                  title=f"tags — {tenant} ({source})", caption=f"customers: {cited(held.metrics)}")
    for d in definitions:
        spec = d.spec
        what = (getattr(spec, "when", None) or ", ".join(getattr(spec, "dictionaries", ())
                + getattr(spec, "patterns", ())) or f"{getattr(spec, 'score', '')} ≥ "
                f"{getattr(spec, 'min_score', '')}")
        t.add_row(d.id, d.name, d.kind, str(d.version), count(held.get(d.id)), what)
    console.print(t)


@tags_app.command("init")
def tags_init(tenant: TenantOpt, force: bool = False, workspace: WorkspaceOpt = None) -> None:
    """Copy the default tag definitions into the workspace to edit."""
    from caifu.services.profiles.tag_definitions import init_config

    path = init_config(_container(workspace), tenant, force)
    console.print(f"wrote {path}; edit it, then `caifu build -t {tenant}`")


@segment_app.command("create")
def segment_create(segment_id: str, tenant: TenantOpt,
                   where: Annotated[str, typer.Option(help="Expression, e.g. \"tag:dormant and aum > 100000\"")],
                   name: Annotated[str, typer.Option(help="Display name")] = "",
                   workspace: WorkspaceOpt = None) -> None:
    """Create or replace a segment."""
    from caifu.services.profiles.segments import Segments

    Segments(_container(workspace)).save(tenant, segment_id, name or segment_id, where)
    console.print(f"segment [bold]{segment_id}[/] saved; its size is recorded by each build")


@segment_app.command("list")
def segment_list(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Segments with their size on the newest build date (the metric segment_size)."""
    from caifu.services.profiles.figures import segment_sizes
    from caifu.services.profiles.segments import Segments

    c = _container(workspace)
    rows = Segments(c).list(tenant)
    day, sizes, sized = segment_sizes(c, operator(tenant))
    t = RichTable("segment", "name", "members", "as of", "expression",
                  title=f"segments — {tenant}", caption=f"members: {cited(sizes.metrics)}")
    for r in rows:
        known = day is not None and r["segment_id"] in sized
        t.add_row(r["segment_id"], r["name"], count(sizes.get(r["segment_id"])) if known else "–",
                  str(day) if known else "–", r["expression"])
    console.print(t)


@segment_app.command("members")
def segment_members(segment_id: str, tenant: TenantOpt, as_of: AsOfOpt = None,
                    out: Annotated[Path | None, typer.Option(help="Export to .csv or .parquet")] = None,
                    engine: EngineOpt = "duckdb", limit: int = 20,
                    workspace: WorkspaceOpt = None) -> None:
    """Members of a segment as of a date (default: the newest profile); export with --out."""
    from caifu.services.profiles.build import check_as_of
    from caifu.services.profiles.segments import Segments, export

    day, members = Segments(_container(workspace)).members(
        tenant, segment_id, check_as_of(as_of), engine)
    if out is not None:
        export(members, out)
    console.print(f"{segment_id}: {members.num_rows:,} members as of {day}")
    if out is not None:
        console.print(f"wrote {out}")
    for cid in members["customer_id"].to_pylist()[:limit]:
        console.print(f"  {cid}")


@segment_app.command("change")
def segment_change(segment_id: str, tenant: TenantOpt,
                   before: Annotated[str, typer.Option("--from", help="Earlier date")],
                   after: Annotated[str, typer.Option("--to", help="Later date")],
                   workspace: WorkspaceOpt = None) -> None:
    """How a segment's membership changed between two dates."""
    from caifu.services.profiles.build import check_as_of
    from caifu.services.profiles.segments import Segments

    d1, d2 = check_as_of(before), check_as_of(after)
    assert d1 is not None and d2 is not None
    ch = Segments(_container(workspace)).size_change(tenant, segment_id, d1, d2)
    console.print(f"{segment_id}: {ch.members_before:,} on {ch.before} → {ch.members_after:,} on "
                  f"{ch.after} ({ch.members_after - ch.members_before:+,}; "
                  f"{ch.joined:,} joined, {ch.left:,} left)")


SECTION_NAMES = {"stocks": "股票持仓", "funds": "基金持仓", "recent_trades": "最近成交",
                 "losing_positions": "亏损持仓", "suitability": "适当性", "lifecycle": "生命周期",
                 "scores": "模型评分", "value": "客户价值", "tasks": "待办任务"}


@app.command()
def cards(tenant: TenantOpt, as_of: AsOfOpt = None, engine: EngineOpt = "duckdb",
          workspace: WorkspaceOpt = None) -> None:
    """Customer cards as of a date (default: the newest data): one per customer, replacing
    the tenant's previous cards in one transaction."""
    from caifu.services.profiles.build import check_as_of
    from caifu.services.profiles.cards import Cards

    c = _container(workspace)
    with console.status(f"cards {tenant}", spinner="dots") as status:
        result = Cards(c, lambda m: status.update(f"cards {tenant}: {m}")).build(
            tenant, check_as_of(as_of), engine=engine)
    console.print(f"[bold]{tenant}[/] {result.cards:,} customer cards as of {result.as_of} "
                  f"({result.timings['total']:.1f} s)")
    t = RichTable("section", "", "cards with it", title="what the cards hold",
                  title_justify="left")
    for key, n in result.sections.items():
        t.add_row(key, SECTION_NAMES.get(key, ""), f"{n:,}")
    console.print(t)
    if result.skipped_restricted:
        console.print(f"{result.skipped_restricted:,} customers under storage only have no card")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)


def _names() -> dict[str, str]:
    from caifu.analytics.lifecycle import STAGE_NAMES

    return {**STAGE_NAMES, "new": "新开户"}


def _counts(counts: dict[str, int | None], as_of: dt.date, caption: str) -> RichTable:
    names = _names()
    total = sum(n or 0 for n in counts.values()) or 1  # shares: arithmetic on governed counts
    t = RichTable(title=f"生命周期阶段（{as_of}）", title_justify="left", caption=caption,
                  caption_justify="left")
    for col in ("阶段", "stage", "客户数", "占比"):
        t.add_column(col, justify="right" if col in ("客户数", "占比") else "left")
    for stage, n in counts.items():
        t.add_row(names[stage], stage, count(n), "–" if n is None else f"{100 * n / total:.1f}%")
    return t


def _flows(cells: dict[tuple[str, str], int], start: dt.date, end: dt.date, caption: str
           ) -> RichTable:
    from caifu.analytics.lifecycle import REPORT_ORDER

    names = _names()
    rows = [s for s in ("new", *REPORT_ORDER) if any(k[0] == s for k in cells)]
    cols = [s for s in REPORT_ORDER if any(k[1] == s for k in cells)]
    t = RichTable(title=f"阶段流转 {start} → {end}（行：起点阶段，列：终点阶段）",
                  title_justify="left", caption=caption, caption_justify="left")
    t.add_column("从 \\ 到")
    for c in cols:
        t.add_column(names[c], justify="right")
    for r in rows:
        t.add_row(names[r], *(f"{cells[(r, c)]:,}" if (r, c) in cells else "·" for c in cols))
    return t


def _history(rows: pa.Table, customer: str) -> RichTable:
    names = _names()
    t = RichTable(title=f"客户 {customer} 的阶段变化", title_justify="left")
    for col in ("日期", "从", "到", "触发", "说明"):
        t.add_column(col, overflow="fold")
    for r in rows.to_pylist():
        t.add_row(str(r["date"]), names.get(r["from_stage"] or "", "—"),
                  names[r["to_stage"]], r["trigger"], r["trigger_text"])
    return t


@app.command()
def lifecycle(tenant: TenantOpt, as_of: AsOfOpt = None,
              customer: Annotated[str | None, typer.Option(
                  "--customer", help="Show this customer's dated transitions")] = None,
              engine: EngineOpt = "duckdb", workspace: WorkspaceOpt = None) -> None:
    """Lifecycle stages as of a date: counts per stage, the flows of the last three months,
    and (with --customer) one customer's transitions with their triggers."""
    from caifu.analytics.lifecycle import REPORT_ORDER
    from caifu.services.profiles.build import check_as_of
    from caifu.services.profiles.figures import lifecycle as lifecycle_figures
    from caifu.services.profiles.lifecycle import Lifecycle

    c = _container(workspace)
    result = Lifecycle(c).run(tenant, check_as_of(as_of), engine=engine)
    # the counts: the metrics over the stages and flows the run has just written
    fig = lifecycle_figures(c, operator(tenant), result.as_of)
    counts = {stage: fig.stages.get(stage) for stage in REPORT_ORDER}
    flows = {k: n for k, n in fig.flows.values.items() if n}
    console.print(f"[bold]{tenant}[/] lifecycle as of {result.as_of}: "
                  f"{sum(n or 0 for n in counts.values()):,} customers, facts from {result.history_start}, "
                  f"thresholds from {result.rules_source}")
    console.print(_counts(counts, result.as_of, cited(fig.stages.metrics)))
    console.print(_flows(flows, result.flow_start, result.as_of, cited(fig.flows.metrics)))
    if customer is not None:
        rows = result.history(customer)
        if rows.num_rows:
            console.print(_history(rows, customer))
        else:
            console.print(f"[yellow]note:[/] no customer {customer} opened by {result.as_of}")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"{result.transitions.num_rows:,} transitions written to lifecycle_transitions, "
                  f"stages to lifecycle_stages, flows to lifecycle_flows ({result.seconds:.1f} s)")
