"""Customer 360 under load over loopback HTTP: latency at a fixed request rate.

    python bench/api.py --workspace caifu-demo --tenant demo          # after `make demo`
    python bench/api.py --workspace W --tenant T --rate 200 --seconds 30

The service runs as `caifu serve` in its own process (uvicorn, one worker, the workspace's
SQLite or PostgreSQL); this process is an open-loop load generator: requests start on a
fixed schedule (``--rate`` per second) whether or not earlier ones have finished, so a slow
server shows up as latency, not as a lower rate. Customer ids are drawn at random from the
tenant; each request carries an API key created for the run (quota high enough not to
limit). Reported: p50/p95/p99/max latency, errors, the achieved rate; beside them the
reference measured in the same run — the same customer views called in-process through
``services.access.customer_360`` (no HTTP, no JSON), which is the floor the HTTP layer adds
to. Goal (issue 5): p99 ≤ 50 ms at 200 requests/s with zero errors, at 1M customers.

Then the events endpoint (``--events-seconds``, 0 to skip): ``--clients`` closed-loop
clients each POST batches of ``--batch`` valid APP events for random customers; reported are
the events accepted per second and the request latency, beside the same batches stored
in-process through ``Events.submit_many`` (the floor), and how long the service's real-time
worker then takes to apply everything pushed (events applied per second).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _measure import pct
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.core.identity import Principal
from caifu.services.container import build
from caifu.services.platform import access, users
from caifu.settings import Settings

console = Console(width=None if sys.stdout.isatty() else 140)
GOAL_P99_MS = 50.0


async def load(base: str, key: str, ids: list[str], rate: float, seconds: float
               ) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        async def one(cid: str) -> None:
            nonlocal errors
            t0 = time.perf_counter()
            try:
                r = await client.get(f"/v1/customers/{cid}")
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            errors += 0 if ok else 1

        n = int(rate * seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(ids[i % len(ids)])))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return latencies, errors, n / elapsed


def app_events(ids: list[str], n: int, rng: random.Random, tag: str) -> list[dict[str, str]]:
    now = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).replace(tzinfo=None)
    kinds = ("login", "view_quote", "view_fund", "view_position", "search")
    return [{"event_id": f"B{tag}-{i}", "customer_id": rng.choice(ids),
             "event_time": now.isoformat(timespec="seconds"), "event_type": rng.choice(kinds),
             "device": "ios"} for i in range(n)]


async def push(base: str, key: str, ids: list[str], clients: int, batch: int,
               seconds: float) -> tuple[list[float], int, int, float]:
    """Closed loop: each client sends its next batch when the last one is answered."""
    latencies: list[float] = []
    accepted = errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        end = time.perf_counter() + seconds

        async def one(n: int) -> None:
            nonlocal accepted, errors
            rng, k = random.Random(n), 0
            while time.perf_counter() < end:
                body = {"events": app_events(ids, batch, rng, f"{n}-{k}")}
                k += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/events/app_event", json=body)
                    ok = r.status_code == 202
                    accepted += r.json()["accepted"] if ok else 0
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += 0 if ok else 1

        start = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, accepted, errors, elapsed


def events_bench(args: argparse.Namespace, base: str, key: str, ids: list[str]) -> None:
    from caifu.services.ingest.realtime import Events, inbox_counts

    c = build(Settings(), args.workspace)
    ev = Events(c)
    rng = random.Random(3)
    t0 = time.perf_counter()  # the floor: the same checks and inserts, no HTTP
    ref_n = 0
    while time.perf_counter() - t0 < 5:
        ev.submit_many(args.tenant, "app_event", app_events(ids, args.batch, rng,
                                                             f"ref{ref_n}"))
        ref_n += args.batch
    ref_rate = ref_n / (time.perf_counter() - t0)
    lat, accepted, errors, elapsed = asyncio.run(
        push(base, key, ids, args.clients, args.batch, args.events_seconds))
    t1 = time.perf_counter()
    while (pending := inbox_counts(c, args.tenant).get("pending", 0)) and \
            time.perf_counter() - t1 < 1800:
        time.sleep(0.5)
    drain = time.perf_counter() - t1
    c.close()
    ms = [x * 1000 for x in lat]
    table = Table("clients × batch", "requests", "errors", "events accepted/s", "p50 ms",
                  "p99 ms", "in-process events/s", "ratio", "applied after push",
                  title="POST /v1/events/app_event over loopback (closed loop)")
    table.add_row(f"{args.clients} × {args.batch}", f"{len(ms):,}", str(errors),
                  f"{accepted / elapsed:,.0f}", f"{statistics.median(ms):.1f}",
                  f"{pct(ms, 0.99):.1f}", f"{ref_rate:,.0f}",
                  f"{accepted / elapsed / ref_rate:.2f}",
                  f"{drain:.1f} s" + (f" ({pending:,} still pending)" if pending else ""))
    console.print(table)
    console.print(f"{ref_n + accepted:,} events pushed in all; the worker applied the backlog "
                  f"left after the push in {drain:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workspace", type=Path, default=Path("caifu-demo"))
    ap.add_argument("--tenant", default="demo")
    ap.add_argument("--rate", type=float, nargs="+", default=[50, 200])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--events-seconds", type=float, default=20)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=False).stdout.strip()
    c = build(Settings(), args.workspace)
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(t.c.customer_id)
                                          .where(t.c.tenant_id == args.tenant))]
    random.Random(7).shuffle(ids)
    console.rule(f"bench/api.py — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, source {rev}, "
                 f"{len(ids):,} customers in {args.tenant}, {c.engine.dialect.name}")
    key = users.create_key(c, args.tenant, "ops", "bench/api.py", "bench",
                              quota_per_minute=100_000)
    # the reference: the same views in-process, no HTTP
    p = Principal(args.tenant, "bench", "ops")
    ref = []
    for cid in ids[:500]:
        t0 = time.perf_counter()
        access.customer_360(c, p, cid)
        ref.append(time.perf_counter() - t0)
    c.close()
    port = args.port or _free_port()
    env = {**os.environ, "CAIFU_SECRET_KEY": os.environ.get("CAIFU_SECRET_KEY")
           or "bench-" + os.urandom(24).hex()}
    # the service logs a JSON line per request: to a file, not a pipe nobody reads (a full
    # pipe would stall the server)
    log_path = Path(tempfile.gettempdir()) / f"caifu-bench-api-{port}.log"
    log_file = log_path.open("w")
    server = subprocess.Popen([str(Path(sys.executable).parent / "caifu"), "serve", "-w",
                               str(args.workspace), "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=log_file)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        asyncio.run(load(base, key.secret, ids, 20, 3))  # warm-up
        table = Table("rate (req/s)", "requests", "achieved/s", "errors", "p50 ms", "p95 ms",
                      "p99 ms", "max ms", "in-process p99 ms", "verdict",
                      title="GET /v1/customers/{id} over loopback (open loop)")
        for rate in args.rate:
            lat, errors, achieved = asyncio.run(load(base, key.secret, ids, rate, args.seconds))
            ms = [x * 1000 for x in lat]
            p99 = pct(ms, 0.99)
            verdict = "PASS" if p99 <= GOAL_P99_MS and errors == 0 else "FAIL"
            table.add_row(f"{rate:g}", f"{len(ms):,}", f"{achieved:.0f}", str(errors),
                          f"{statistics.median(ms):.1f}", f"{pct(ms, 0.95):.1f}", f"{p99:.1f}",
                          f"{max(ms):.1f}", f"{pct([x * 1000 for x in ref], 0.99):.1f}",
                          verdict)
        console.print(table)
        console.print(f"reference: customer_360 in-process over 500 customers: median "
                      f"{statistics.median(ref) * 1000:.1f} ms, p99 {pct(ref, 0.99) * 1000:.1f} ms; "
                      f"goal p99 ≤ {GOAL_P99_MS:.0f} ms at 200 req/s with zero errors")
        if args.events_seconds > 0:
            events_bench(args, base, key.secret, ids)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log_file.close()
        console.print(f"service log: {log_path}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
