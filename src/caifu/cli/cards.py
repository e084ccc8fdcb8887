"""``caifu cards``: build every customer's card (holdings, trades, P&L, stages, scores,
suitability) into the system of record, where the customer 360 and the sidebar read it."""

from __future__ import annotations

from rich.table import Table as RichTable

from caifu.cli.common import (
    AsOfOpt,
    EngineOpt,
    TenantOpt,
    WorkspaceOpt,
    _container,
    _fail,
    app,
    console,
)
from caifu.core.errors import CaifuError

SECTION_NAMES = {"stocks": "股票持仓", "funds": "基金持仓", "recent_trades": "最近成交",
                 "losing_positions": "亏损持仓", "suitability": "适当性", "lifecycle": "生命周期",
                 "scores": "模型评分", "value": "客户价值", "tasks": "待办任务"}


@app.command()
def cards(tenant: TenantOpt, as_of: AsOfOpt = None, engine: EngineOpt = "duckdb",
          workspace: WorkspaceOpt = None) -> None:
    """Customer cards as of a date (default: the newest data): one per customer, replacing
    the tenant's previous cards in one transaction."""
    from caifu.services.build import check_as_of
    from caifu.services.cards import Cards

    try:
        c = _container(workspace)
        with console.status(f"cards {tenant}", spinner="dots") as status:
            result = Cards(c, lambda m: status.update(f"cards {tenant}: {m}")).build(
                tenant, check_as_of(as_of), engine=engine)
    except CaifuError as exc:
        _fail(exc)
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
