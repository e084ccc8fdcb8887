"""WeCom: callback throughput and advisor-sidebar latency over loopback HTTP.

    python bench/wecom.py --workspace caifu-demo          # after `make demo`

The service runs as `caifu serve` in its own process; the fake WeCom stub (for the sidebar's
sign-in) runs in this one. Reported beside each figure is its reference measured in the same
run:

- **callbacks**: ``--clients`` closed-loop clients POST distinct signed, encrypted
  ``msg_audit_approved`` events for the demo's follows to ``/wecom/demo/callback``: accepted
  per second and the acknowledgement latency (goal: well under WeCom's 5 s; the issue asks
  < 1 s), then how long the service's worker takes to apply them all. References: the same
  kind of requests stored in-process by ``Callbacks.receive`` (no HTTP), and the same clients
  on ``GET /healthz`` (HTTP alone, the ceiling on this machine).
- **sidebar**: an advisor signs in through OAuth (fake WeCom), then opens the sidebar for his
  WeCom customers at ``--rate`` per second, open loop (``POST …/sidebar/card``, the HTML
  fragment the page inserts; each view is audited). Reference: ``services.sidebar.view``
  in-process for the same customers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from _measure import pct
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.scrm_models import wecom_callbacks
from caifu.scrm.crypto import WeComCrypto
from caifu.services.container import build
from caifu.services.demo import scrm
from caifu.services.scrm import sidebar, wecom_app
from caifu.services.scrm.callback_intake import Callbacks
from caifu.settings import Settings

console = Console(width=None if sys.stdout.isatty() else 140)
TENANT = "demo"


def sealed_events(crypto: WeComCrypto, corp: str, pairs: list[tuple[str, str]], tag: str
                  ) -> list[tuple[dict[str, str], bytes]]:
    """Signed, encrypted msg_audit_approved events, distinct by contact and ``tag``."""
    out = []
    now = int(time.time())
    for i, (userid, ext) in enumerate(pairs):
        xml = (f"<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]>"
               f"</FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]>"
               "</MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType>"
               f"<![CDATA[msg_audit_approved]]></ChangeType><UserID><![CDATA[{userid}]]>"
               f"</UserID><ExternalUserID><![CDATA[{ext}]]></ExternalUserID>"
               f"<WelcomeCode><![CDATA[{tag}{i}]]></WelcomeCode></xml>")
        encrypt = crypto.encrypt(xml.encode())
        ts, nonce = str(now), str(random.randrange(10**9))
        params = {"msg_signature": crypto.sign(ts, nonce, encrypt), "timestamp": ts,
                  "nonce": nonce}
        body = (f"<xml><ToUserName><![CDATA[{corp}]]></ToUserName><Encrypt><![CDATA[{encrypt}"
                "]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>").encode()
        out.append((params, body))
    return out


async def post_all(base: str, requests: list[tuple[dict[str, str], bytes]], clients: int
                   ) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    queue = list(reversed(requests))
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        async def worker() -> None:
            nonlocal errors
            while queue:
                params, body = queue.pop()
                t0 = time.perf_counter()
                r = await http.post(f"/wecom/{TENANT}/callback", params=params, content=body)
                latencies.append(time.perf_counter() - t0)
                errors += r.text != "success"

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


async def healthz(base: str, n: int, clients: int) -> float:
    """Requests per second of the same closed-loop clients on GET /healthz: what loopback
    HTTP alone costs on this machine (the ceiling any endpoint is under here)."""
    left = n
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await http.get("/healthz")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return n / (time.perf_counter() - start)


async def views(base: str, cookies: httpx.Cookies, exts: list[str], rate: float, seconds: float
                ) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=base, timeout=30, cookies=cookies) as http:
        async def one(ext: str) -> None:
            nonlocal errors
            t0 = time.perf_counter()
            r = await http.post(f"/wecom/{TENANT}/sidebar/card", json={"external_userid": ext})
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code != 200

        n = int(rate * seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(exts[i % len(exts)])))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return latencies, errors, n / elapsed


def sign_in(base: str, ctx: str) -> httpx.Cookies:
    """The sidebar's OAuth round trip through the fake WeCom, as a browser would."""
    with httpx.Client(follow_redirects=True, timeout=30) as http:
        r = http.get(f"{base}/wecom/{TENANT}/sidebar", params={"ctx": ctx})
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return http.cookies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workspace", type=Path, default=Path("caifu-demo"))
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=False).stdout.strip()
    c = build(Settings(), args.workspace)
    app = wecom_app.get_app(c, TENANT)
    assert app is not None, "run `caifu demo` first: it configures the demo's WeCom app"
    A, F = CONTRACT_TABLES["advisors"], CONTRACT_TABLES["wecom_follows"]
    with c.engine.connect() as conn:
        pairs = conn.execute(select(A.c.wecom_userid, F.c.external_userid).join(
            A, (A.c.tenant_id == F.c.tenant_id) & (A.c.advisor_id == F.c.advisor_id)).where(
            (F.c.tenant_id == TENANT) & (F.c.status == "active")
            & A.c.wecom_userid.isnot(None))).all()
        customers = CONTRACT_TABLES["customers"]
        n_customers = conn.execute(select(func.count()).select_from(customers).where(
            customers.c.tenant_id == TENANT)).scalar_one()
    pairs = [tuple(p) for p in pairs]
    random.Random(7).shuffle(pairs)
    console.rule(f"bench/wecom.py — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, source {rev}, "
                 f"{n_customers:,} customers, {len(pairs):,} active WeCom follows, "
                 f"{c.engine.dialect.name}")
    crypto = WeComCrypto(app.token, app.encoding_aes_key, app.corp_id)
    n = min(args.events, len(pairs) // 2)
    # the reference: store in-process (distinct events: a repeat would be a duplicate)
    ref_requests = sealed_events(crypto, app.corp_id, pairs[:n], "ref")
    cb = Callbacks(c)
    t0 = time.perf_counter()
    for params, body in ref_requests:
        cb.receive(TENANT, params, body)
    ref_rate = n / (time.perf_counter() - t0)
    http_requests = sealed_events(crypto, app.corp_id, pairs[n:2 * n], "http")
    # the fake WeCom for the sidebar's sign-in, then the service
    fake = scrm.seeded_fake(c, TENANT)
    target = scrm.sidebar_target(c, TENANT)
    fake.signed_in = target["wecom_userid"]
    stub_port = args.port + 1
    stub = uvicorn.Server(uvicorn.Config(fake.asgi_app(), host="127.0.0.1", port=stub_port,
                                         log_level="warning"))
    threading.Thread(target=stub.run, daemon=True).start()
    scrm.configure(c, TENANT, api_base_url=f"http://127.0.0.1:{stub_port}/cgi-bin/")
    env = {**os.environ, "CAIFU_SECRET_KEY": "bench-" + os.urandom(24).hex()}
    log_path = Path(tempfile.gettempdir()) / f"caifu-bench-wecom-{args.port}.log"
    log_file = log_path.open("w")
    server = subprocess.Popen([str(Path(sys.executable).parent / "caifu"), "serve", "-w",
                               str(args.workspace), "--port", str(args.port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=log_file)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        ceiling = asyncio.run(healthz(base, n, args.clients))
        lat, errors, elapsed = asyncio.run(post_all(base, http_requests, args.clients))
        ms = [x * 1000 for x in lat]
        t_applied = time.perf_counter()
        while True:
            with c.engine.connect() as conn:
                pending = conn.execute(select(func.count()).select_from(wecom_callbacks).where(
                    (wecom_callbacks.c.tenant_id == TENANT)
                    & (wecom_callbacks.c.status == "pending"))).scalar_one()
            if pending == 0 or time.perf_counter() - t_applied > 600:
                break
            time.sleep(0.2)
        apply_seconds = time.perf_counter() - t_applied
        t = Table("callbacks", "clients", "accepted/s", "errors", "ack p50 ms", "ack p99 ms",
                  "ack max ms", "in-process/s", "ratio", "GET /healthz/s",
                  "worker backlog applied in",
                  title="POST /wecom/demo/callback over loopback (closed loop)")
        t.add_row(f"{n:,}", str(args.clients), f"{n / elapsed:,.0f}", str(errors),
                  f"{statistics.median(ms):.1f}", f"{pct(ms, 0.99):.1f}", f"{max(ms):.1f}",
                  f"{ref_rate:,.0f}", f"{(n / elapsed) / ref_rate:.2f}", f"{ceiling:,.0f}",
                  f"{apply_seconds:.1f} s" + (f" ({pending:,} left)" if pending else ""))
        console.print(t)
        # the sidebar
        exts = [e for u, e in pairs if u == target["wecom_userid"]]
        cookies = sign_in(base, target["external_userid"])
        p_adv = sidebar.principal(c, sidebar.Session(TENANT, target["advisor_id"],
                                                      target["wecom_userid"], 2**40))
        assert p_adv is not None
        allowed = []
        for e in exts:
            try:
                sidebar.customer_for(c, p_adv[0], e)
                allowed.append(e)
            except sidebar.Denied:
                pass
        ref = []
        for e in allowed[:200]:
            t0 = time.perf_counter()
            sidebar.view(c, p_adv[0], p_adv[1], e)
            ref.append((time.perf_counter() - t0) * 1000)
        asyncio.run(views(base, cookies, allowed, 5, 2))  # warm-up
        lat, errors, achieved = asyncio.run(views(base, cookies, allowed, args.rate,
                                                  args.seconds))
        ms = [x * 1000 for x in lat]
        s = Table("views", "customers", "rate/s", "errors", "p50 ms", "p95 ms", "p99 ms",
                  "max ms", "in-process p50 / p99 ms",
                  title=f"POST /wecom/demo/sidebar/card (advisor {target['advisor_id']})")
        s.add_row(f"{len(ms):,}", f"{len(allowed):,}", f"{achieved:.0f}", str(errors),
                  f"{statistics.median(ms):.1f}", f"{pct(ms, 0.95):.1f}", f"{pct(ms, 0.99):.1f}",
                  f"{max(ms):.1f}", f"{statistics.median(ref):.1f} / {pct(ref, 0.99):.1f}")
        console.print(s)
    finally:
        server.terminate()
        server.wait(timeout=60)
        stub.should_exit = True
        log_file.close()
        scrm.configure(c, TENANT)
        console.print(f"service log: {log_path}")


if __name__ == "__main__":
    main()
