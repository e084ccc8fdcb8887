"""``caifu recommend``: next best action (issue 16).

    caifu recommend evaluate -t T [-w WS] [--window 30] [--k 10] [--json FILE]

``evaluate`` stands at a past day, makes every ranker's top-k lists behind the suitability
mask, and compares them with what the customers took up afterwards (NDCG@k, recall@k, MAP,
coverage, novelty), with the suitability re-check's violations (must be 0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from caifu.cli.common import EngineOpt, TenantOpt, WorkspaceOpt, _container, app, console, err
from caifu.cli.text import _spinner
from caifu.core.errors import ConfigError

recommend_app = typer.Typer(no_args_is_help=True,
                            help="Next best action: suitability-safe recommendations")
app.add_typer(recommend_app, name="recommend")


@recommend_app.command("evaluate")
def evaluate(tenant: TenantOpt, workspace: WorkspaceOpt = None,
             window: Annotated[int, typer.Option(min=7, max=365,
                                                 help="Test window in days")] = 30,
             k: Annotated[int, typer.Option("--k", min=1, max=100, help="List length")] = 10,
             engine: EngineOpt = "duckdb",
             json_out: Annotated[Path | None, typer.Option(
                 "--json", help="Also write the results as JSON")] = None,
             truth: Annotated[Path | None, typer.Option(
                 help="A demo's _ground_truth folder: also judge the lists against the "
                      "hidden preferences [the demo workspace's, when there is one]")] = None
             ) -> None:
    """Compare the rankers on a time split; exit 1 if any list breaks suitability."""
    from caifu.services.recommend.evaluate import default_truth
    from caifu.services.recommend.evaluate import evaluate as run

    c = _container(workspace)
    truth = truth or default_truth(c)
    with _spinner("evaluating the rankers") as progress:
        task = progress.tasks[0].id
        try:
            result = run(c, tenant, window=window, k=k, engine=engine, truth_dir=truth,
                         progress=lambda m: progress.update(task, description=m))
        except (ValueError, ConfigError) as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    table = Table(title=f"{tenant}: top-{k} as of {result.cutoff} vs what customers took up "
                        f"in the next {window} days ({result.customers:,} customers, "
                        f"{result.eligible_items} of {result.items} items eligible for anyone)")
    hidden = any(r.hidden for r in result.rankers)
    for col in ("ranker", f"NDCG@{k}", f"recall@{k}", "MAP", "coverage", "novelty",
                *((f"hidden NDCG@{k}", f"hidden recall@{k}") if hidden else ()),
                "violations", "seconds"):
        table.add_column(col, justify="left" if col == "ranker" else "right")
    for r in result.rankers:
        o, h = r.observed, r.hidden or {}
        table.add_row(r.name, f"{o['ndcg']:.3f}", f"{o['recall']:.3f}", f"{o['map']:.3f}",
                      f"{o['coverage']:.1%}", f"{o['novelty']:.2f}",
                      *((f"{h.get('ndcg', 0):.3f}", f"{h.get('recall', 0):.3f}")
                        if hidden else ()),
                      str(r.violations), f"{r.seconds:.1f}")
    console.print(table)
    if hidden:
        console.print("hidden: against each customer's 10 truly best eligible content items "
                      "and funds (the demo's hidden preferences); oracle: ranked by those "
                      "preferences — the best any ranker could do on this data")
    for note in result.notes:
        console.print(f"[yellow]{note}[/yellow]")
    if json_out is not None:
        json_out.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=1) + "\n",
                            "utf-8")
    if any(r.violations for r in result.rankers):
        err.print("[red]suitability violations found at the re-check[/red]")
        raise typer.Exit(1)


@recommend_app.command("batch")
def batch(tenant: TenantOpt, out: Annotated[Path, typer.Option(
              "--out", help="Output file: .parquet or .csv")],
          workspace: WorkspaceOpt = None,
          k: Annotated[int, typer.Option("--k", min=1, max=100, help="List length")] = 10,
          engine: EngineOpt = "duckdb",
          block: Annotated[int, typer.Option(min=1, max=100_000,
                                             help="Customers per block")] = 2000,
          workers: Annotated[int, typer.Option(min=1, max=64,
                                               help="Blocks listed at once (threads)")] = 2
          ) -> None:
    """Every customer's top-k list (customer id, rank, item id, item type, score, reason,
    policy version) as of the newest data; exit 1 if any row breaks suitability."""
    import datetime as dt

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from caifu.recommend.catalogue import EPOCH
    from caifu.services.recommend import batch as batch_service
    from caifu.services.recommend import inputs as rin
    from caifu.services.recommend import policy

    if out.suffix.lower() not in (".parquet", ".csv"):
        err.print(f"[red]{out}: the batch file must end in .parquet or .csv[/red]")
        raise typer.Exit(2)
    c = _container(workspace)
    try:
        config, _ = rin.load_config(c, tenant)
        with _spinner("fitting the policy") as spin:
            task = spin.tasks[0].id
            data = rin.read(c, tenant, config)
            if len(data.interactions) == 0:
                raise ValueError(f"tenant {tenant!r} has no interactions with catalogue items")
            day = EPOCH + dt.timedelta(days=int(data.interactions.day.max()))
            fitted = policy.fit(c, tenant, day, engine=engine, data=data,
                                progress=lambda m: spin.update(task, description=m))
    except (ValueError, ConfigError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    with Progress(*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task("customers", total=len(fitted.ids))
        result = batch_service.write(fitted, out, k,
                                     progress=lambda done, _n: bar.update(task, completed=done),
                                     block=block, workers=workers)
    console.print(f"{out}: {result.rows:,} rows for {result.customers:,} customers as of {day} "
                  f"({result.short:,} with fewer than {k} eligible items, {result.empty:,} "
                  f"with none) in {result.seconds:.1f} s; policy {fitted.version}; "
                  f"re-check violations: {result.violations}")
    if result.violations:
        raise typer.Exit(1)
