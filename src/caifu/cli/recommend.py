"""``caifu recommend``: next best action (issue 16).

    caifu recommend evaluate -t T [-w WS] [--window 30] [--k 10] [--json FILE]
    caifu recommend batch -t T [-w WS] [--k 10] --out FILE.parquet|FILE.csv
    caifu recommend publish -t T [-w WS] [--k 10] [--spares 10]
    caifu recommend show -t T CUSTOMER_ID [--k 10] [--text]
    caifu recommend outcomes -t T [-w WS] [--window 14]
    caifu recommend ope -t T [-w WS] [--target newest|popularity|logging]
        [--reward clicked|converted] [--since 30] [--k 10] [--bootstrap 0]

``evaluate`` stands at a past day, makes every ranker's top-k lists behind the suitability
mask, and compares them with what the customers took up afterwards (NDCG@k, recall@k, MAP,
coverage, novelty), with the suitability re-check's violations (must be 0). ``batch`` writes
every customer's list to a file; ``publish`` ranks every customer as of the newest day and
writes the lists the sidebar and the API serve; ``show`` previews what the sidebar would show
a customer now; ``outcomes`` marks logged recommendations converted from the interaction log;
``ope`` estimates another policy's clicks or conversions per list from the log.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from caifu.cli.common import EngineOpt, TenantOpt, WorkspaceOpt, _container, app, console, err
from caifu.cli.text import _spinner
from caifu.core.errors import ConfigError
from caifu.core.identity import Principal

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
    from caifu.services.recommend.evaluate import default_truth, save
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
    console.print("propensity (actions): lists only actions, so over every item it is judged "
                  "on what it is not for; the comparison below is the one that counts")
    if result.actions:
        ka = result.action_k
        acts = Table(title=f"actions only: each ranker's top-{ka} eligible actions vs the "
                           f"actions taken up ({result.actions[0].observed['evaluated']:,} "
                           "customers took one)")
        for col in ("ranker", f"NDCG@{ka}", f"recall@{ka}", "MAP", "coverage",
                    "violations"):
            acts.add_column(col, justify="left" if col == "ranker" else "right")
        for r in result.actions:
            o = r.observed
            acts.add_row(r.name, f"{o['ndcg']:.3f}", f"{o['recall']:.3f}", f"{o['map']:.3f}",
                         f"{o['coverage']:.1%}", str(r.violations))
        console.print(acts)
    for a in result.by_action:
        per = Table(title=f"{a['item_id']}: the {a['eligible']:,} customers eligible on the "
                          f"cutoff ranked for it; {a['took_up']:,} took it up")
        for col in ("ranker", "AUC", "PR-AUC", "lift top 10%"):
            per.add_column(col, justify="left" if col == "ranker" else "right")
        for name, m in a["rankers"].items():
            per.add_row(name, f"{m['auc']:.3f}", f"{m['pr_auc']:.3f}",
                        f"{m['lift_top_decile']:.2f}")
        console.print(per)
    for note in result.notes:
        console.print(f"[yellow]{note}[/yellow]")
    saved = save(c, result)
    console.print(f"saved for the value report: {saved}")
    if json_out is not None:
        json_out.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=1) + "\n",
                            "utf-8")
    if any(r.violations for r in [*result.rankers, *result.actions]):
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


SIDEBAR_K = 10  # what the sidebar lists (services/scrm/sidebar.RANKED_SHOWN)


@recommend_app.command("publish")
def publish(tenant: TenantOpt, workspace: WorkspaceOpt = None,
            k: Annotated[int, typer.Option("--k", min=1, max=50, help="List length")] = 10,
            spares: Annotated[int, typer.Option(
                min=0, max=50, help="Items kept behind each list, to fill refused places")] = 10,
            engine: EngineOpt = "duckdb") -> None:
    """Rank every customer as of the newest day and publish the lists the sidebar and the
    API serve (replacing the previous ones in one transaction)."""
    from caifu.services.recommend import serving

    c = _container(workspace)
    with _spinner("fitting the policy") as spin:
        task = spin.tasks[0].id
        fitted = serving.fit_newest(c, tenant, engine=engine,
                                    progress=lambda m: spin.update(task, description=m))
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task("ranking and publishing", total=len(fitted.ids))
        done = serving.publish(c, fitted, k, spares,
                               progress=lambda n, total: bar.update(task, completed=n,
                                                                    total=total))
    t = Table(title=f"{tenant}: recommendation lists as of {done.as_of} "
                    f"(policy {done.policy_version})")
    for col in ("customers", "items", f"fewer than {k}", "none eligible", "storage only",
                "seconds"):
        t.add_column(col, justify="right")
    t.add_row(f"{done.customers:,}", f"{done.items:,}", f"{done.short:,}", f"{done.empty:,}",
              f"{done.skipped_restricted:,}", f"{done.seconds:.1f}")
    console.print(t)


@recommend_app.command("show")
def show(customer_id: Annotated[str, typer.Argument(help="The customer id")],
         tenant: TenantOpt, workspace: WorkspaceOpt = None,
         k: Annotated[int, typer.Option("--k", min=1, max=50, help="List length")] = SIDEBAR_K,
         text: Annotated[bool, typer.Option(help="Also print each item's send text")] = False
         ) -> None:
    """What the sidebar would show for a customer now, with reasons — a preview: nothing is
    logged."""
    from caifu.services.recommend import serving

    c = _container(workspace)
    served = serving.for_customer(c, Principal(tenant, getpass.getuser(), "ops"), customer_id,
                                  k, "sidebar", record=False)
    if not served.published:
        for note in served.notes:
            console.print(f"[yellow]{escape(note)}[/yellow]")
        raise typer.Exit(1)
    t = Table(title=f"{escape(customer_id)}: top {k} as of {served.as_of} "
                    f"({served.investor_level or '未测评'}; policy {served.policy_version})")
    for col in ("#", "item", "type", "risk", "score", "reason", "suitability"):
        t.add_column(col, justify="right" if col in ("#", "score") else "left")
    for item in served.items:
        score = "" if item["score"] is None else f"{item['score']:.3f}"
        t.add_row(str(item["rank"]), escape(f"{item['title']} ({item['item_id']})"),
                  item["type"], item["risk_level"], score, escape(item["reason"] or ""),
                  escape(item["suitability"]))
    console.print(t)
    if served.blocked:
        console.print(f"[yellow]{escape(served.blocked)}[/yellow]")
    for what, counts in (("refused now", served.refused), ("held back", served.withheld)):
        if counts:
            console.print(f"{what}: " + ", ".join(f"{r} {n}" for r, n in sorted(counts.items())))
    if text:
        for item in served.items:
            console.print(f"\n[bold]{item['rank']}.[/bold] {escape(item['text'])}")


@recommend_app.command("outcomes")
def outcomes(tenant: TenantOpt, workspace: WorkspaceOpt = None,
             window: Annotated[int, typer.Option(min=1, max=365,
                                                 help="Attribution window in days")] = 14
             ) -> None:
    """Mark logged recommendations converted where the customer took the item up within
    the window (read the content, bought the fund, took the action)."""
    from caifu.adapters.sor.repos import recommend as repo
    from caifu.services.recommend import outcomes as run

    c = _container(workspace)
    with _spinner("attributing conversions") as spin:
        task = spin.tasks[0].id
        done = run.convert(c, tenant, window,
                           progress=lambda m: spin.update(task, description=m))
    console.print(f"{done.converted:,} of {done.checked:,} open recommendations converted "
                  f"within {window} days (interaction log to {done.newest or '—'})")
    with c.engine.connect() as conn:
        counts = repo.outcome_counts(conn, tenant)
    t = Table(title=f"{tenant}: recommendation log")
    for col in counts:
        t.add_column(col, justify="right")
    t.add_row(*(f"{n:,}" for n in counts.values()))
    console.print(t)


@recommend_app.command("ope")
def off_policy(tenant: TenantOpt, workspace: WorkspaceOpt = None,
               target: Annotated[str, typer.Option(
                   help="The policy judged: newest (the fitted policy), popularity, or "
                        "logging (the served policy itself: a check)")] = "newest",
               reward: Annotated[str, typer.Option(help="clicked or converted")] = "clicked",
               since: Annotated[int, typer.Option(min=1, max=3650,
                                                  help="Lists shown in the last DAYS")] = 30,
               k: Annotated[int, typer.Option("--k", min=1, max=50,
                                              help="The target's list length")] = SIDEBAR_K,
               bootstrap: Annotated[int, typer.Option(
                   min=0, max=100_000, help="Bootstrap resamples of customers (0: normal "
                                            "intervals)")] = 0,
               engine: EngineOpt = "duckdb") -> None:
    """Estimate a target policy's clicks (or conversions) per list from the recommendation
    log, with 95 % intervals, the effective sample size and the unsupported share."""
    from caifu.services.recommend import offpolicy

    c = _container(workspace)
    with _spinner("reading the log") as spin:
        task = spin.tasks[0].id
        done = offpolicy.evaluate(c, tenant, target=target, reward=reward, since_days=since,
                                  k=k, bootstrap=bootstrap, engine=engine,
                                  progress=lambda m: spin.update(task, description=m))
    e = done.estimate
    method = "bootstrap" if bootstrap else "normal"
    t = Table(title=f"{tenant}: {reward} per list for target {target}"
                    f"{'' if target == 'logging' else f' (top {k})'} — {e.lists:,} lists of "
                    f"{e.customers:,} customers shown since {done.since:%Y-%m-%d}")
    for col in ("estimator", "per list", "95 % low", "95 % high", "±"):
        t.add_column(col, justify="left" if col == "estimator" else "right")
    for name, iv in (("IPS", e.ips), ("SNIPS", e.snips), (f"clipped IPS (cap {e.cap:g})",
                                                          e.clipped),
                     ("logging (on-policy)", e.logging)):
        t.add_row(name, f"{iv.value:.4f}", f"{iv.low:.4f}", f"{iv.high:.4f}",
                  f"{iv.half_width:.4f}")
    console.print(t)
    facts = Table(show_header=True)
    for col in ("lists", "customers", "explored lists", "shown items", "ESS",
                "target items / list", "unsupported share", "unsupported ≤ / list",
                "clipped rows"):
        facts.add_column(col, justify="right")
    facts.add_row(f"{e.lists:,}", f"{e.customers:,}", f"{done.explored_lists:,}",
                  f"{e.shown_rows:,}", f"{e.effective_sample_size:,.1f}",
                  f"{e.target_items_per_list:.2f}", f"{e.unsupported_share:.1%}",
                  f"{e.unsupported_per_list:.3f}", f"{e.clipped_rows:,}")
    console.print(facts)
    console.print(f"intervals: {method}, clustered by customer; exploration rate(s) "
                  f"{', '.join(f'{x:g}' for x in done.epsilons) or '—'}; shown on "
                  f"{len(done.days)} day(s), {done.days[0]} … {done.days[-1]}"
                  + (f"; target policy {', '.join(done.target_versions)}"
                     if done.target_versions else ""))
    for note in done.notes:
        console.print(f"[yellow]{escape(note)}[/yellow]")
