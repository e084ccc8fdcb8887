"""``caifu quality``: data-quality history, freshness and alerts (docs/data-quality.md).

    caifu quality status -t T                      per table: last load, rows, quarantine
                                                   rate, newest date, lag, open alerts
    caifu quality history -t T [--table X] [--since 2026-11-01] [--json]
    caifu quality check -t T                       judge every threshold now
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from caifu.cli.common import TenantOpt, WorkspaceOpt, _container, app, console, option_date

quality_app = typer.Typer(no_args_is_help=True,
                          help="Data quality: per-load history, freshness and alerts.")
app.add_typer(quality_app, name="quality")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}"


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


@quality_app.command("status")
def status(tenant: TenantOpt, as_json: JsonOpt = False, workspace: WorkspaceOpt = None) -> None:
    """Per table: the last load, its rows and quarantine rate, the newest business date, its
    lag behind today, and the open alerts."""
    from caifu.services.quality.history import alerts
    from caifu.services.quality.history import status as read_status

    c = _container(workspace)
    rows = read_status(c, tenant)
    open_alerts = alerts(c, tenant, "open")
    if as_json:
        typer.echo(json.dumps({"tables": rows, "open_alerts": open_alerts}, default=_plain,
                              ensure_ascii=False, indent=1))
        return
    t = RichTable("table", "last load (UTC)", "rows in", "loaded", "quarantine", "date column",
                  "newest", "lag (days)", "max lag", "open alerts",
                  title=f"data quality — {tenant}, today {rows[0]['today'] if rows else ''}")
    for r in rows:
        lag = "" if r["lag_days"] is None else str(r["lag_days"])
        if r["stale"]:
            lag = f"[red]{lag}[/red]"
        n = r["open_alerts"]
        t.add_row(r["table"], str(r["last_load"])[:19], f"{r['last_rows_in']:,}",
                  f"{r['last_loaded']:,}", _pct(r["last_quarantine_rate"]),
                  r["date_column"] or "", str(r["newest_date"] or ""), lag,
                  "" if r["max_lag_days"] is None else str(r["max_lag_days"]),
                  f"[red]{n}[/red]" if n else "0")
    console.print(t)
    if open_alerts:
        a = RichTable("table", "rule", "column", "observed", "threshold", "since (UTC)",
                      "detail", title="open alerts")
        for x in open_alerts:
            days = x["rule"] == "freshness"
            fmt = (lambda v: "" if v is None else f"{v:.0f} d") if days else _pct
            a.add_row(x["table_name"], x["rule"], x["subject"], fmt(x["observed"]),
                      fmt(x["threshold"]), str(x["raised_at"])[:19], escape(x["detail"]))
        console.print(a)


@quality_app.command("history")
def history(tenant: TenantOpt,
            table: Annotated[str | None, typer.Option(help="Only this table")] = None,
            since: Annotated[str | None, typer.Option(help="Batches started on or after "
                                                      "YYYY-MM-DD (UTC)")] = None,
            limit: int = 50, as_json: JsonOpt = False, workspace: WorkspaceOpt = None) -> None:
    """Committed batches, newest first: rows, quarantine rate, the highest null rates and the
    business dates each load wrote."""
    from caifu.services.quality.history import history as read_history

    rows = read_history(_container(workspace), tenant, table,
                        option_date(since, "--since"), limit)
    if as_json:
        typer.echo(json.dumps(rows, default=_plain, ensure_ascii=False, indent=1))
        return
    t = RichTable("started (UTC)", "batch", "table", "rows in", "loaded", "quarantine",
                  "oldest", "newest", "most null (rate)", title=f"load history — {tenant}")
    for r in rows:
        rates = r["null_rates"] or {}
        top = sorted(((v, k) for k, v in rates.items() if v > 0), reverse=True)[:3]
        t.add_row(str(r["started_at"])[:19], r["batch_id"][:12], r["table"],
                  f"{r['rows_in']:,}", f"{r['loaded']:,}", _pct(r["quarantine_rate"]),
                  str(r["oldest_date"] or ""), str(r["newest_date"] or ""),
                  ", ".join(f"{k} {v:.0%}" for v, k in top)
                  if r["profiled"] else "(not profiled)")
    console.print(t)


@quality_app.command("check")
def check(tenant: TenantOpt, as_json: JsonOpt = False, workspace: WorkspaceOpt = None) -> None:
    """Judge every threshold now: raise alerts for breaches, resolve those that pass."""
    from caifu.services.quality.checks import check as run_check

    run = run_check(_container(workspace), tenant)
    if as_json:
        typer.echo(json.dumps(run.plain(), ensure_ascii=False, indent=1))
        return
    breached = [(ch, o) for ch, o in run.outcomes if ch.breached]
    console.print(f"{len(run.outcomes)} checks on {run.today}: {len(breached)} breached "
                  f"({run.count('raised')} new alerts), {run.count('resolved')} alerts resolved")
    if breached:
        t = RichTable("table", "rule", "column", "outcome", "detail")
        for ch, o in breached:
            t.add_row(ch.table, ch.rule, ch.subject, o, escape(ch.detail))
        console.print(t)
