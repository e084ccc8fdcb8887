"""``caifu metrics``: the governed KPIs, declared once, answered in the caller's scope.

    caifu metrics list [--json] [-t T -w WS]             every metric: version, owner, level
    caifu metrics show aum [-t T -w WS]                  its definition, hash, dimensions
    caifu metrics query aum -t T --by branch --grain month --from 2025-11-01 --to 2026-10-31
    caifu metrics query active_traders -t T --advisor A001 --json
    caifu metrics query turnover -t T --by province --where "board = 'chinext'"

The CLI answers as the tenant's operator (the whole tenant), or with ``--branch`` /
``--advisor`` as that branch manager or advisor would see it. ``--unmask --reason R`` shows
small groups' level-3 figures (as compliance; written to the audit log first).
"""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from caifu.cli.common import EngineOpt, WorkspaceOpt, _container, app, console, option_date
from caifu.cli.metrics_osi import register as register_interchange
from caifu.core import money
from caifu.core.identity import Principal

metrics_app = typer.Typer(no_args_is_help=True,
                          help="Governed metrics: list, show and query the KPIs.")
app.add_typer(metrics_app, name="metrics")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
OptTenant = Annotated[str | None, typer.Option(
    "--tenant", "-t", help="Tenant id (its own metrics too; default: the shipped ones)")]
BAR = 24


def _catalog(tenant: str | None, workspace: Any) -> Any:
    from caifu.services.metrics.catalog import catalog

    return catalog(_container(workspace) if tenant else None, tenant)


@metrics_app.command("list")
def list_metrics(as_json: JsonOpt = False, tenant: OptTenant = None,
                 workspace: WorkspaceOpt = None) -> None:
    """Every metric: id, version, kind, owner, data level and what it measures."""
    from caifu.services.metrics.query import listing

    cat = _catalog(tenant, workspace)
    data = listing(cat)
    rows = data["metrics"]
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=1))
        return
    t = RichTable("metric", "v", "kind", "owner", "level", "名称", "description",
                  title=f"{len(rows)} metrics (catalog {cat.version})")
    for r in rows:
        t.add_row(r["name"], str(r["version"]), r["kind"], r["owner"], str(r["level"]),
                  escape(r["label"].get("zh", "")), escape(r["description"].get("en", "")))
    console.print(t)


@metrics_app.command("show")
def show(metric: Annotated[str, typer.Argument(help="Metric id")], tenant: OptTenant = None,
         workspace: WorkspaceOpt = None) -> None:
    """One metric's definition: what it reads, how, its level and the cuts it allows."""
    cat = _catalog(tenant, workspace)
    m = cat.metric(metric)
    lines = [f"[bold]{m.name}[/] v{m.version} — {escape(m.label.get('zh', ''))} / "
             f"{escape(m.label.get('en', ''))}",
             f"  {escape(m.description.get('zh', ''))}",
             f"  {escape(m.description.get('en', ''))}",
             f"  kind {m.kind}, format {m.format}, owner {m.owner}, level {cat.level(m)}"
             f"{' (reads personal data)' if cat.reads_pii(m) else ''}",
             f"  definition hash {cat.definition_hash(m.name)} (catalog {cat.version}; "
             f"{m.origin})"]
    if m.kind == "derived":
        lines.append(f"  = {escape(m.expr or '')}")
    else:
        ds = cat.datasets[m.dataset]
        time = m.valid_from if m.kind == "stock" else (m.time or ds.time)
        lines.append(f"  {escape(m.measure or '')} over {m.dataset}"
                     + (f" where {escape(m.filter)}" if m.filter else "")
                     + (f"; alive from {m.valid_from} until {m.valid_to or '—'} at each period's "
                        "end" if m.kind == "stock" else f"; dated by {time}")
                     + ("; the last snapshot of each period" if ds.snapshot else ""))
    lines.append("  reads " + ", ".join(f"{d}.{c}" for d, c in cat.columns_read(m)))
    lines.append("  cut by " + (", ".join(cat.dimensions_of(m)) or "nothing"))
    console.print("\n".join(lines))


@metrics_app.command("query")
def query(metric: Annotated[str, typer.Argument(help="Metric id (caifu metrics list)")],
          tenant: Annotated[str, typer.Option("--tenant", "-t", help="Tenant id")],
          by: Annotated[list[str] | None, typer.Option(
              "--by", help="Cut by a dimension (repeat for several)")] = None,
          grain: Annotated[str, typer.Option(
              help="day | week | month | quarter | year | all")] = "month",
          where: Annotated[str | None, typer.Option(
              help="A condition on dimensions: \"board = 'chinext' AND province = 'SH'\"")
          ] = None,
          start: Annotated[str | None, typer.Option(
              "--from", help="First day YYYY-MM-DD [default: a span before --to]")] = None,
          end: Annotated[str | None, typer.Option(
              "--to", help="Last day YYYY-MM-DD [default: today]")] = None,
          branch: Annotated[str | None, typer.Option(
              help="Answer as this branch's manager would see it")] = None,
          advisor: Annotated[str | None, typer.Option(
              help="Answer as this advisor would see it (his customers)")] = None,
          unmask: Annotated[bool, typer.Option(
              help="Show small groups' level-3 figures (audited, needs --reason)")] = False,
          reason: Annotated[str, typer.Option(help="Why (for --unmask)")] = "",
          actor: Annotated[str | None, typer.Option(
              help="Who asks [default: OS user]")] = None,
          as_json: JsonOpt = False, engine: EngineOpt = "duckdb",
          workspace: WorkspaceOpt = None) -> None:
    """A metric by period (and dimensions), in one scope, with its version and hash."""
    from caifu.services.metrics.query import answer

    who = actor or getpass.getuser()
    if branch and advisor:
        from caifu.core.errors import ConfigError

        raise ConfigError("--branch or --advisor, not both")
    if advisor:
        p = Principal(tenant, who, "advisor", advisor_id=advisor)
    elif branch:
        p = Principal(tenant, who, "branch_manager", branch_id=branch)
    else:
        p = Principal(tenant, who, "compliance" if unmask else "ops")
    a = answer(_container(workspace), p, metric, by=tuple(by or ()), grain=grain,
               start=option_date(start, "--from"), end=option_date(end, "--to"), engine=engine,
               unmask=unmask, reason=reason, where=where)
    out = a.plain()
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=1))
        return
    values = [abs(float(r["value"])) for r in a.rows if r["value"] is not None]
    top = max(values, default=0.0) or 1.0
    t = RichTable("period", *a.query.by, "value", "", "customers",
                  title=f"{out['label'].get('zh', '')} {metric} v{out['version']} · "
                        f"{out['grain']} {out['from']} … {out['to']} · {out['scope']}"
                        + (f" · where {escape(where)}" if where else ""),
                  caption=f"definition {out['definition_hash']} · level {out['level']}"
                          + (f" · {a.suppressed} row(s) withheld: fewer than "
                             f"{a.min_group_size} customers" if a.suppressed else "")
                          + (" · small groups unmasked (audited)" if a.unmasked else ""))
    for r in a.rows:
        v = r["value"]
        bar = "" if v is None else "█" * max(1, round(abs(float(v)) / top * BAR))
        t.add_row(r["period"].isoformat(), *(escape(str(r[d])) for d in a.query.by),
                  "withheld" if r["suppressed"] else money.figure(v, a.metric.format),
                  f"[{'red' if v is not None and v < 0 else 'cyan'}]{bar}[/]",
                  "" if r["customers"] is None else f"{r['customers']:,}")
    console.print(t)


register_interchange(metrics_app)  # `caifu metrics export | import` (Open Semantic Interchange)
