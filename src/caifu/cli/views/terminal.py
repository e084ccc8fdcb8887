"""Terminal views for the CLI: Rich progress and summaries around the services."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from caifu.core.money import pct
from caifu.data.demo import DemoSummary
from caifu.services.container import Container
from caifu.services.ingest.load import BatchResult, Ingest
from caifu.services.profiles.tag_definitions import load_definitions
from caifu.settings import Settings

if TYPE_CHECKING:
    from caifu.services.profiles.build import BuildResult
    from caifu.services.value.scoring import ScoringResult


def ingest_with_progress(c: Container, tenant: str, paths: list[Path], mapping: Path | None,
                         table: str | None, console: Console,
                         outcomes: list[BatchResult] | None = None
                         ) -> tuple[list[BatchResult], float]:
    service = Ingest(c)
    total = len(service.plan(paths, mapping, table))
    t0 = time.perf_counter()
    with _ingest_bar(console, total) as on_phase:
        results = service.ingest(tenant, paths, mapping=mapping, table=table, progress=on_phase,
                                 outcomes=outcomes)
    return results, time.perf_counter() - t0


def print_outcomes(outcomes: list[BatchResult], console: Console) -> None:
    """Per file, after a failed run: what landed, what failed and why, what was not tried."""
    t = Table("file", "table", "outcome", title="ingest stopped: per file")
    t.columns[2].overflow = "fold"
    for r in outcomes:
        what = {"loaded": f"[green]loaded[/] {r.loaded:,} rows ({r.quarantined:,} quarantined)",
                "failed": f"[red]failed[/]: {r.error}",
                "skipped": "[yellow]skipped[/]: not attempted"}[r.status]
        t.add_row(r.path.name, r.table, what)
    console.print(t)


@contextmanager
def _ingest_bar(console: Console, total: int) -> Iterator[Callable[[str, str], None]]:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} files"), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task("ingest", total=total)

        def on_phase(name: str, phase: str) -> None:
            if phase == "done":
                bar.advance(task)
            if phase.startswith("waiting"):  # a line of its own: the bar may sit a while
                bar.console.print(f"{name}: {phase}", highlight=False)
            bar.update(task, description=f"{name}: {phase}")

        yield on_phase
        bar.update(task, description="ingest done")


def print_batches(results: list[BatchResult], elapsed: float, console: Console) -> None:
    t = Table("file", "table", "rows in", "loaded", "quarantined", "duplicates", "s",
              title="ingest: rows in = loaded + quarantined + duplicates")
    for col in t.columns[:2]:
        col.overflow = "fold"
    reasons: Counter[str] = Counter()
    for r in results:
        t.add_row(r.path.name, r.table, f"{r.rows_in:,}", f"{r.loaded:,}", f"{r.quarantined:,}",
                  f"{r.duplicates:,}", f"{sum(r.timings.values()):.1f}")
        reasons.update({f"{r.table}.{k}": v for k, v in r.reasons.items()})
    t.add_row("[bold]total", "", f"{sum(r.rows_in for r in results):,}",
              f"{sum(r.loaded for r in results):,}", f"{sum(r.quarantined for r in results):,}",
              f"{sum(r.duplicates for r in results):,}", f"{elapsed:.1f}")
    console.print(t)
    if reasons:
        rt = Table("reason (table.column:RULE)", "rows", title="top quarantine reasons")
        for code, n in reasons.most_common(10):
            rt.add_row(code, f"{n:,}")
        console.print(rt)


@contextmanager
def _generate_bar(console: Console) -> Iterator[Callable[[str, int, int], None]]:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("demo broker", total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=f"demo broker: {stage}", completed=done, total=total)

        yield on_progress


def generate_with_progress(out: Path, customers: int, seed: int, console: Console) -> DemoSummary:
    from caifu.data.demo import generate

    with _generate_bar(console) as on_progress:
        return generate(out, customers=customers, seed=seed, progress=on_progress)


def sidebar_hint(workspace: Path, port: int, sidebar: dict[str, str]) -> str:
    """Where to open the advisor sidebar once ``caifu demo --serve --port PORT`` runs."""
    serve = "caifu demo --serve" + ("" if port == DEFAULT_PORT else f" --port {port}")
    return (f"advisor sidebar: {serve} -w {workspace}, then open "
            f"http://127.0.0.1:{port}/wecom/demo/sidebar?ctx={sidebar['external_userid']}"
            f" (signs in as advisor {sidebar['advisor_id']} through the fake WeCom)")


DEFAULT_PORT = 8000


def run_demo(workspace: Path, settings: Settings, customers: int, seed: int,
             console: Console, port: int = DEFAULT_PORT) -> None:
    from caifu.services.demo import broker as demo

    t0 = time.perf_counter()
    console.rule("[bold]caifu demo — 演示券商")
    c = demo.prepare_workspace(workspace, settings)
    data_dir = c.root / "demo-data"
    summary = generate_with_progress(data_dir, customers, seed, console)
    console.print(f"generated {sum(summary.rows_per_file.values()):,} rows in "
                  f"{len(summary.rows_per_file)} files ({summary.elapsed_seconds:.1f} s)")
    results, elapsed = ingest_with_progress(c, demo.TENANT, [data_dir], None, None, console)
    print_batches(results, elapsed, console)
    demo.create_demo_segments(c)
    # models first: the build turns their scores into model tags
    print_scores(score_with_progress(c, demo.TENANT, None, None, console), console)
    result = build_with_progress(c, demo.TENANT, "duckdb", None, console)
    names = {d.id: d.name for d in load_definitions(c, demo.TENANT)[0]}
    print_build(result, console, names)
    print_examples(c, demo.TENANT, console, names)
    report_path = value_report(c, demo.TENANT, console)
    with console.status("redemption answers and advisor tasks for the API"):
        job = demo.record_redemption_answers(c)
    if job["status"] != "succeeded":
        console.print(f"[yellow]note:[/] the redemption job failed: {job['error']}")
    with console.status("customer cards (360 and sidebar)") as st:
        cards = demo.build_cards(c, lambda m: st.update(f"customer cards: {m}"))
    console.print(f"customer cards: {cards.cards:,} written "
                  f"({cards.timings['total']:.0f} s)", soft_wrap=True)
    scrm = scrm_with_progress(c, demo.TENANT, cards.as_of, console)
    console.print(f"[bold green]demo ready[/] in {time.perf_counter() - t0:.0f} s — workspace "
                  f"{c.root}")
    w = f"-t demo -w {workspace}"
    console.print(f"open the value report in a browser: {report_path}", soft_wrap=True)
    if scrm.sidebar:
        console.print(sidebar_hint(workspace, port, scrm.sidebar), soft_wrap=True,
                      highlight=False)
    console.print(f"next: caifu customer CUSTOMER_ID {w}  |  caifu segment list {w}  |  "
                  f"caifu tags list {w}  |  caifu value {w}  |  caifu lifecycle {w}  |  "
                  f"caifu redemption {w}  |  caifu quarantine {w}", soft_wrap=True)


def scrm_with_progress(c: Container, tenant: str, as_of: date, console: Console) -> Any:
    """The fake WeCom against the demo broker: callbacks, links, chat compliance, groups, a
    campaign with its funnel (services/scrm_demo)."""
    from caifu.services.demo import scrm as scrm_demo

    t0 = time.perf_counter()
    with console.status("WeCom: callbacks, identity links, chat compliance, groups, campaign"):
        r = scrm_demo.run(c, tenant, as_of)
    console.rule(f"[bold]WeCom SCRM (fake WeCom, real callbacks and API calls; "
                 f"{time.perf_counter() - t0:.0f} s)")
    short = {"change_external_contact": "contact", "change_external_chat": "group",
             "change_external_tag": "tag"}
    failed = r.callbacks.pop("failed", 0)
    kinds = ", ".join(f"{short.get(k.split(':')[0], k.split(':')[0])} {k.split(':')[-1]} {v:,}"
                      for k, v in sorted(r.callbacks.items()))
    console.print(f"callbacks applied: {kinds}; groups resynced after a missed event: "
                  f"{r.resynced_groups}; compliant welcomes sent {r.welcomes[0]:,}"
                  + (f"; failed {failed:,} (caifu wecom status says why)" if failed else "")
                  + (f" (not sent {r.welcomes[1]:,})" if r.welcomes[1] else "")
                  + "; forged or replayed callbacks refused: "
                  + f"{sum(r.rejected.values())} ({', '.join(sorted(r.rejected))})",
                  soft_wrap=True, highlight=False)
    console.print(f"identity links: {r.links.get('linked', 0):,} linked on evidence, "
                  f"{r.links.get('review', 0):,} in the review queue; {r.links['none']:,} WeCom "
                  "contacts without evidence stay unlinked", soft_wrap=True)
    console.print(f"chat compliance over the chat history: {r.chat_flags.get('review', 0):,} "
                  f"advisor phrases for review, {r.chat_flags.get('alert', 0):,} customer "
                  f"alerts; lexicon precision {r.lexicon['precision']:.2f}, recall "
                  f"{r.lexicon['recall']:.2f} on {r.lexicon['samples']} labelled lines",
                  soft_wrap=True)
    g = Table("group", "policy", "judged at", "invite", "member", "left", "excluded",
              title="preference groups", title_justify="left")
    for row in r.groups:
        g.add_row(row["name"], row["policy"], row["lowest"] or "—", f"{row['invite']:,}",
                  f"{row['member']:,}", f"{row['left']:,}", f"{row['excluded']:,}")
    console.print(g)
    f = r.funnel["funnel"]
    blocked = ", ".join(f"{k} {v:,}" for k, v in sorted(r.run["blocked"].items(),
                                                        key=lambda kv: -kv[1]))
    console.print(f"campaign {r.funnel['name']} ({r.funnel['channel']}, gate "
                  f"{r.run['rule_version']}): {r.run['targeted']:,} targeted, "
                  f"{r.run['allowed']:,} passed the gate; blocked: {blocked or 'none'}",
                  soft_wrap=True, highlight=False)
    t = Table("stage", "customers", "rate from the stage before",
              title="campaign funnel (opens and clicks simulated; conversions from the data)",
              title_justify="left")
    names = {"targeted": "目标", "sent": "发送", "delivered": "送达", "opened": "打开",
             "clicked": "点击", "converted": "转化"}
    for stage, name in names.items():
        rate = f.get(f"{stage}_rate")
        t.add_row(f"{name} {stage}", f"{f[stage]:,}", "" if rate is None else f"{rate:.0%}")
    console.print(t)
    cmp = Table("campaign", "source", "channel", "targeted", "sent", "clicked", "converted",
                "conversion", title=f"campaigns compared ({len(r.compare):,}; newest 8)",
                title_justify="left")
    for row in r.compare[:8]:
        rate = row.get("conversion_rate")
        cmp.add_row(str(row.get("name") or row["campaign_id"]), str(row["source"]),
                    str(row.get("channel") or ""), f"{row['targeted']:,}", f"{row['sent']:,}",
                    f"{row['clicked']:,}", f"{row['converted']:,}",
                    pct(rate, none=""))
    console.print(cmp)
    return r


def value_report(c: Container, tenant: str, console: Console, as_of: date | None = None,
                 out: Path | None = None) -> Path:
    """Customer value, lifecycle and fund redemptions as of a date, a short summary on the
    terminal, and the self-contained HTML report with the charts."""
    from caifu.services.value.report import gather
    from caifu.web.report import write

    with console.status(f"report {tenant}: customer value, lifecycle, fund redemptions"):
        report = gather(c, tenant, as_of)
        path = write(report, out or c.root / "reports" / f"value-{tenant}-{report.as_of}.html")
    console.rule("[bold]customer value and lifecycle")
    for view in report.value.views:
        t = view.totals
        console.print(f"{view.name} view: CLV ({view.months} months, discounted) "
                      f"{t['clv']:,.0f} yuan over {t['customers']:,} customers; acquisition "
                      f"{t['acquisition_cost']:,.0f}, retention {t['retention_cost']:,.0f}; "
                      f"efficiency {t['efficiency']:,.0f} ({t['negative_share']:.0%} of "
                      "customers below zero)", soft_wrap=True)
    stages = ", ".join(f"{k} {v:,}" for k, v in sorted(report.lifecycle.counts.items(),
                                                        key=lambda kv: -kv[1]))
    console.print(f"lifecycle stages: {stages}", soft_wrap=True)
    if report.reassurance is not None:
        top = report.reassurance.reassurance.num_rows
        console.print(f"fund holders to reassure: {top:,} (ranked, with reasons)",
                      soft_wrap=True)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    return path


def print_examples(c: Container, tenant: str, console: Console,
                   names: dict[str, str]) -> None:
    """A few customers with their tags and evidence: one per kind of story."""
    from caifu.services.profiles.customers import customer_view, examples

    console.rule("[bold]example customers (personal data masked)")
    shown: set[str] = set()
    for group in (["interest_chinext", "chinext_trader_without_permission"],
                  ["intent_redeem", "fund_heavy", "loss_anxiety"],
                  ["dormant", "high_net_worth"], ["churn_risk", "chinext_lead"]):
        for cid in examples(c, tenant, group, n=3):
            if cid not in shown:
                shown.add(cid)
                print_customer(customer_view(c, tenant, cid), console, names, EXAMPLE_FEATURES)
                break


# --- scores: churn and propensity models ---------------------------------------------------------


def score_with_progress(c: Container, tenant: str, as_of: Any, targets: list[str] | None,
                        console: Console) -> ScoringResult:
    from caifu.services.value.scoring import Scoring

    with console.status("score", spinner="dots") as status:
        def step(message: str) -> None:
            status.update(f"score {tenant}: {message}")

        return Scoring(c, step).run(tenant, as_of=as_of, targets=targets)


def print_scores(r: ScoringResult, console: Console) -> None:
    test = r.cutoffs["backtest_test"][0]
    t = Table("target", "model", "AUC", "PR-AUC", "lift top 10%", "Brier", "positives",
                  title=f"backtest: trained on profiles at {', '.join(r.cutoffs['backtest_train'])}, "
                        f"tested on {test} with the 90 days after it")
    for tr in r.targets:
        if tr.problem:
            t.add_row(tr.target, "—", tr.problem, "", "", "", "")
            continue
        for model in ("lightgbm", "logistic", "heuristic"):
            m = tr.backtest[model]
            label = model if model != "heuristic" else f"heuristic ({m['feature']})"
            brier = f"{m['brier']:.4f}" if "brier" in m else "—"
            t.add_row(tr.target if model == "lightgbm" else "", label, f"{m['auc']:.3f}",
                      f"{m['pr_auc']:.3f}", f"{m['lift_top_decile']:.2f}×", brier,
                      f"{m['positives']:,} / {m['rows']:,}" if model == "lightgbm" else "")
    console.print(t)
    s = Table("target", "名称", "customers scored", "mean score", "model version",
                  title=f"scores as of {r.as_of} (lake table model_scores)")
    for tr in r.targets:
        if not tr.problem:
            s.add_row(tr.target, tr.title, f"{tr.scored:,}", f"{tr.mean_score:.3f}",
                      tr.model_version)
    console.print(s)
    for note in r.notes:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    console.print(f"models and evaluation: {r.folder}", soft_wrap=True)


# --- build: profiles, tags, segments ----------------------------------------------------------

EXAMPLE_FEATURES = ("aum", "aum_trend_30d", "unrealised_pnl", "worst_security_code",
                    "days_since_last_trade", "trades_365d", "fund_value", "c_level",
                    "chinext_opened")


def build_with_progress(c: Container, tenant: str, engine: str, as_of: date | None,
                        console: Console) -> BuildResult:
    from caifu.services.profiles.build import Build

    with console.status("build", spinner="dots") as status:
        def step(message: str) -> None:
            status.update(f"build {tenant} on {engine}: {message}")

        return Build(c, step).build(tenant, engine=engine, as_of=as_of)


def print_build(r: BuildResult, console: Console, names: dict[str, str]) -> None:
    t = Table("tag", "name", "customers", "gained", "lost",
                  title=f"tags — {r.tenant} as of {r.as_of} ({r.customers:,} customers, "
                        f"{r.engine})")
    for tag_id in sorted(set(r.tags) | set(r.lost), key=lambda k: (-r.tags.get(k, 0), k)):
        t.add_row(tag_id, names.get(tag_id, ""), f"{r.tags.get(tag_id, 0):,}",
                  f"{r.gained.get(tag_id, 0):,}", f"{r.lost.get(tag_id, 0):,}")
    console.print(t)
    if r.segments:
        s = Table("segment", "members", title="segments")
        for seg, n in sorted(r.segments.items()):
            s.add_row(seg, f"{n:,}")
        console.print(s)
    for note in r.notes:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items())
    console.print(f"profile snapshot v{r.feature_version} in the lake; "
                  f"{'serving rows updated' if r.served else 'serving rows unchanged'}; {phases}")


def print_customer(view: dict[str, Any], console: Console, names: dict[str, str],
                   features: tuple[str, ...] = ()) -> None:
    cust = view["customer"]
    console.print(f"[bold]{cust['customer_id']}[/] {cust['name']} · {cust['mobile']} · "
                  f"{cust['id_number']} · {cust['branch_id']} · 渠道 {cust['channel']} · "
                  f"profile as of {view['as_of']}", soft_wrap=True)
    shown = features or tuple(view["features"])
    if view["features"] and shown:
        values = {k: view["features"].get(k) for k in shown}
        line = ", ".join(f"{k}={round(v, 4) if isinstance(v, float) else v}"
                         for k, v in values.items())
        console.print(f"  {line}", soft_wrap=True, highlight=False)
    for tag in view["tags"]:
        ev = tag["evidence"]
        if tag["kind"] == "text":
            why = f"「{ev.get('matched')}」 in message {ev.get('message_id')} ({ev.get('mentions')}×)"
        elif tag["kind"] == "rule":
            why = f"{ev.get('when')}  ← " + ", ".join(
                f"{k}={v}" for k, v in ev.get("features", {}).items())
        else:
            why = f"{ev.get('score')} = {ev.get('value')} ≥ {ev.get('min_score')}"
            if ev.get("reasons"):
                why += "  ← " + ", ".join(f"{r['feature']}={r['value']} (+{r['contribution']})"
                                          for r in ev["reasons"])
        console.print(f"  [cyan]{names.get(tag['tag_id'], tag['tag_id'])}[/] "
                      f"({tag['tag_id']} v{tag['tag_version']}): {why}",
                      soft_wrap=True, highlight=False)


def push_events(c: Container, tenant: str, kind: str, path: Path, batch: int,
                console: Console) -> None:
    """Submit a file's events (one per line) and apply them, with the latency of each."""
    import statistics

    from caifu.core.errors import UnreadableSourceError
    from caifu.services.ingest.realtime import Events

    try:
        lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableSourceError(f"cannot read events: {exc}", path=str(path)) from None
    events = Events(c)
    submitted = events.submit_many(tenant, kind, lines)
    bad = [s for s in submitted if s.status == "rejected"]
    latencies: list[float] = []
    applied = duplicates = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed:,}/{task.total:,}"), console=console) as bar:
        task = bar.add_task("applying", total=len(submitted) - len(bad))
        while True:
            done = events.process(tenant, limit=batch)
            if done.batch_id is None:
                break
            applied, duplicates = applied + done.applied, duplicates + done.duplicates
            latencies += done.latencies
            bar.advance(task, done.applied + done.duplicates)
    console.print(f"{len(submitted):,} events: {applied:,} applied, {duplicates:,} duplicate, "
                  f"{len(bad):,} rejected")
    for s in bad[:10]:
        console.print(f"  rejected #{s.event_seq}: {'; '.join(s.reasons)}", soft_wrap=True)
    if latencies:
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
        console.print(f"latency received → applied: p50 {q[49]:.2f} s, p99 {q[98]:.2f} s "
                      f"(submitted in one go, so it includes waiting for earlier batches)")


def serve_demo(workspace: Path, settings: Settings, port: int, console: Console) -> None:
    """Demo users (one per role, printed) and the API on the demo workspace."""
    import secrets

    import uvicorn

    from caifu.api import create_app
    from caifu.api.logs import configure
    from caifu.services.container import build
    from caifu.services.demo import broker as demo

    if settings.secret_problem():  # the demo may invent its secret; a deployment may not
        settings = settings.model_copy(update={"secret_key": secrets.token_urlsafe(48)})
    settings = settings.model_copy(update={"workspace": workspace})
    c = build(settings, workspace)
    users = demo.create_demo_users(c)
    base = f"http://127.0.0.1:{port}"
    t = Table("user", "role", "password", "sees", title=f"demo users — API on {base} "
              f"(OpenAPI: {base}/docs)")
    for u in users:
        t.add_row(u.user_id, u.role, u.password, u.sees)
    console.print(t)
    advisor = next(u for u in users if u.role == "advisor")
    console.print(
        f"curl -s {base}/v1/auth/login -H 'Content-Type: application/json' -d "
        f"'{{\"user_id\": \"{advisor.user_id}\", \"password\": \"{advisor.password}\"}}'",
        soft_wrap=True, highlight=False)
    console.print(f"curl -s {base}/v1/customers/<id> -H 'Authorization: Bearer <token>'",
                  soft_wrap=True, highlight=False)
    sidebar_url = _start_fake_wecom(c, port + 1)
    if sidebar_url:
        console.print(f"fake WeCom on http://127.0.0.1:{port + 1} (signs the demo advisor in); "
                      f"advisor sidebar: {base}{sidebar_url}", soft_wrap=True, highlight=False)
    configure("warning")
    uvicorn.run(create_app(settings, c), host="127.0.0.1", port=port, log_config=None,
                access_log=False)


def _start_fake_wecom(c: Container, port: int) -> str | None:
    """The fake WeCom stub in a thread, seeded from the demo broker, for the sidebar's sign-in
    and API calls; the sidebar path to open, or None when the demo has no WeCom app."""
    import threading

    import uvicorn

    from caifu.services.demo import scrm as scrm_demo
    from caifu.services.scrm import wecom_app

    if wecom_app.get_app(c, "demo") is None:
        return None
    fake = scrm_demo.seeded_fake(c, "demo")
    target = scrm_demo.sidebar_target(c, "demo")
    fake.signed_in = target.get("wecom_userid")
    scrm_demo.configure(c, "demo", api_base_url=f"http://127.0.0.1:{port}/cgi-bin/")
    server = uvicorn.Server(uvicorn.Config(fake.asgi_app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, name="fake-wecom", daemon=True).start()
    return f"/wecom/demo/sidebar?ctx={target['external_userid']}" if target else None
