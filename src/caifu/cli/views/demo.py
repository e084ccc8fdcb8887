"""Terminal views for ``caifu demo``: generate, ingest, score, build and report the demo broker
in one run, then serve it with demo users and the fake WeCom."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from caifu.cli.views.ingest import ingest_with_progress, print_batches
from caifu.cli.views.profiles import (
    build_with_progress,
    print_build,
    print_examples,
    print_held,
)
from caifu.cli.views.recommend import recommend_with_progress
from caifu.cli.views.scrm import scrm_with_progress
from caifu.cli.views.value import print_scores, score_with_progress, value_report
from caifu.core.identity import Principal
from caifu.data.demo import DemoSummary
from caifu.services.container import Container
from caifu.services.profiles.tag_definitions import load_definitions
from caifu.services.quality.checks import today
from caifu.settings import Settings

if TYPE_CHECKING:
    from caifu.services.demo.replay import Replay


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
    from caifu.services.demo.replay import replay

    t0 = time.perf_counter()
    console.rule("[bold]caifu demo — 演示券商")
    c = demo.prepare_workspace(workspace, settings)
    data_dir = c.root / "demo-data"
    summary = generate_with_progress(data_dir, customers, seed, console)
    console.print(f"generated {sum(summary.rows_per_file.values()):,} rows in "
                  f"{len(summary.rows_per_file)} files ({summary.elapsed_seconds:.1f} s)")
    started = today(c, demo.TENANT)
    results, elapsed = ingest_with_progress(c, demo.TENANT, [data_dir], None, None, console)
    print_batches(results, elapsed, console, demo.ingest_totals(c, started))
    demo.create_demo_segments(c)
    ref = demo.load_risk_reference(c)
    console.print(f"risk reference: {ref['aliases']} company aliases (former names), "
                  f"{ref['relations']} relations (caifu risk aliases list -t demo)")
    # models first: the build turns their scores into model tags
    print_scores(score_with_progress(c, demo.TENANT, None, None, console), console)
    result = build_with_progress(c, demo.TENANT, "duckdb", None, console)
    names = {d.id: d.name for d in load_definitions(c, demo.TENANT)[0]}
    print_build(result, console, names, counts=False)
    print_held(c, Principal(demo.TENANT, "demo", "ops"), console, names)
    print_examples(c, demo.TENANT, console, names)
    # before the value report (its section 5) and the sidebar (which serves the lists)
    recommend_with_progress(c, demo.TENANT, console)
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
    with console.status("risk replay: real headlines through intake, linking, the event "
                        "classifier and exposure"):
        replayed = replay(c, demo.TENANT, summary.end_date)
    print_replay(c, demo.TENANT, replayed, console)
    console.print(f"[bold green]demo ready[/] in {time.perf_counter() - t0:.0f} s — workspace "
                  f"{c.root}")
    w = f"-t demo -w {workspace}"
    console.print(f"open the value report in a browser: {report_path}", soft_wrap=True)
    if scrm.sidebar:
        console.print(sidebar_hint(workspace, port, scrm.sidebar), soft_wrap=True,
                      highlight=False)
    console.print(f"next: caifu customer CUSTOMER_ID {w}  |  caifu segment list {w}  |  "
                  f"caifu tags list {w}  |  caifu value {w}  |  caifu lifecycle {w}  |  "
                  f"caifu redemption {w}  |  caifu quarantine {w}  |  caifu risk tasks {w}",
                  soft_wrap=True)


def print_replay(c: Container, tenant: str, replayed: Replay, console: Console,
                 tasks_shown: int = 6) -> None:
    """The replayed headlines (what each became) and a few of the advisor tasks raised."""
    from caifu.risk.alerts import EVENT_NAMES, STATUS_NAMES
    from caifu.services.risk.tasks import list_tasks

    if not replayed.lines:
        console.print("risk replay: no corpus line names a company the demo's customers hold")
        return
    t = Table("headline", "published", "event", "severity", "companies", "holders",
              "new alerts = tasks", title="risk replay — real headlines (corpus train split) "
              "about held companies", title_justify="left")
    t.columns[0].no_wrap = True
    for x in replayed.lines:
        o = x.outcome
        event = "rejected" if o is None else (
            "none — not a risk" if o.event_type in (None, "none") else
            EVENT_NAMES.get(o.event_type, o.event_type))
        companies = "、".join(f"{name} {code}" for code, name in x.linked) or "—"
        if x.unlinked_labels:  # the corpus names a company the linker did not find
            companies += f" [dim](labelled {', '.join(x.unlinked_labels)}: not linked)[/]"
        new = "—" if o is None else str(o.new_alerts) + (
            f" ({o.repeats} repeats)" if o.repeats else "")
        t.add_row(escape(_short(x.item.text)), x.published[:10], event,
                  (o.severity if o else None) or "", companies, f"{x.holders:,}", new)
    console.print(t)
    if replayed.intake is not None:
        r = replayed.intake
        console.print(f"intake batch {r.batch_id}: {r.received} received, {r.new_stories} new "
                      f"stories, {r.duplicates} already taken in, {r.rejected} rejected — "
                      f"{replayed.new_alerts:,} alerts and tasks raised", soft_wrap=True)
    if replayed.unlinked:
        console.print(f"[dim]left out: {replayed.unlinked} of {replayed.candidates} train "
                      "lines about held companies, where the linker finds none of them[/]",
                      soft_wrap=True)
    page = list_tasks(c, Principal(tenant, "demo", "ops"), limit=500)
    shown: list[dict[str, Any]] = []
    for task in page["items"]:  # one per story, then more while there is room
        if len(shown) < tasks_shown and task["story_id"] not in {s["story_id"] for s in shown}:
            shown.append(task)
    shown += [x for x in page["items"] if x not in shown][:tasks_shown - len(shown)]
    if not shown:
        return
    tt = Table("task", "advisor", "customer", "holding", "event", "value at risk", "status",
               title=f"advisor tasks ({page['total']:,}; caifu risk tasks -t {tenant})",
               title_justify="left")
    for task in shown:
        tt.add_row(task["task_id"], task["advisor_id"] or "",
                   f"{task['customer_id']} {escape(task['customer_name'] or '')}",
                   f"{task['security_code']} {escape(task['company_name'])}",
                   EVENT_NAMES.get(task["event_type"], task["event_type"]),
                   f"{task['value_at_risk']:,.2f}",
                   STATUS_NAMES.get(task["status"], task["status"]))
    console.print(tt)


def _short(text: str, n: int = 26) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 1] + "…"


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
    console.print(f"operations console: {base}/console/ (sign in as one of the users above)",
                  soft_wrap=True, highlight=False)
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
