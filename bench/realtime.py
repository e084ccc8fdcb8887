"""Real-time path: event → the customer's features and tags, latency at steady rates.

    python bench/realtime.py                         # 100k and 20k customers, 2 / 10 / 50 events/s
    python bench/realtime.py --sizes 20000 --rates 10 --duration 30 --no-profile

Issue 3, item 3: "an event path accepts chat messages and APP events; the affected customer's
real-time features and tags change within 5 s (measure and report p50/p99 latency)".

**Workspace.** The demo broker (``caifu.data.demo.generate``, seed 7) at each size, with the
last ``--hold-days`` days of chat messages (those linked to a customer) and APP events held
back from the exports before ingesting — as ``tests/integration/test_realtime.py`` does —
then what ``caifu demo`` does: ingest, the demo segments, a first build. Cached under
``.bench/realtime/ws-<customers>-<seed>-h<days>/`` with the held-back events
(``held.jsonl``, in event-time order); every measured run works on a fresh copy of it.

**Replay** (one child process per size and rate). A worker thread runs
``Events.run_worker(stop, tenant)`` (micro-batches of up to 5,000 events, 0.2 s poll); the
main thread submits the held-back events in event-time order, one ``Events.submit`` call
each, on a fixed schedule of ``rate`` events/s for ``--duration`` s (at least
``--min-events``); then the inbox drains. A few events go through first, unmeasured, so the
worker's chat tagger is built (as in a long-running service). Latency of an event:

* **inbox** — ``applied_at − received_at`` of its inbox row, the figure ``Processed.latencies``
  reports; ``applied_at`` is stamped *before* the SoR transaction that publishes the batch;
* **visible** — from ``submit`` returning to the commit of the SoR transaction holding its
  batch's serving profiles and tags (measured by timing the worker's steps, below): the moment
  a reader sees it. This is the figure held against the 5 s goal;
* **probe** — a third thread polls ``customers.customer_view`` every 50 ms for a sample of
  replayed customer text messages until a tag whose evidence is that message shows up (or
  the message is applied without producing a tag). After the drain, a sample of customers with
  replayed text messages is read with ``customer_view`` to check that a tag citing a replayed
  message is there.

**Where a micro-batch's time goes.** The worker's ``Events`` object is instrumented in the
child (wrappers around its methods; the source is not touched): claim, payload checks,
duplicate-key check against the lake (``_stored_keys``), lake append (``committed_batches`` +
``append``), load inputs, compute (profile features, rule tags, text tags, model tags),
SoR write (``write_serving``), inbox update + commit, Delta merges of the feature and tag
snapshots (after the commit: they delay the next batch, not this one);
time spent opening Delta logs (``Lake._open``) is shown across all steps. A third child
(``--no-profile`` skips it) processes single micro-batches of 1 … 1,000 events one after
another to separate the fixed cost of a batch from its per-event cost, and runs one batch
under cProfile.

**Reference, same run.** The time of a full ``Build(c).build(tenant)`` on a fresh copy of the
same workspace: what a nightly-batch SCRM needs at the least to reflect the same events
(before waiting for the night). Printed beside the latency with the ratio.

The machine is shared: before each child the bench waits up to ``--quiet-wait`` s for other
processes to go idle and reports the CPU they used during the child. Results:
``.bench/results/realtime-<timestamp>.json``; summary in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _measure import busy_cpu, tree_rss

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench"
RT = CACHE / "realtime"
TENANT = "demo"
SEED = 7
GOAL_S = 5.0
WARMUP = 10
PHASES = ("claim", "parse", "dup_check", "lake_append", "load_inputs", "features", "rule_tags",
          "text_tags", "model_tags", "recompute_other", "sor_write", "inbox_commit",
          "snapshot_merge", "tag_merge", "other")
PHASE_NAMES = {
    "claim": "claim batch (SoR)", "parse": "payload checks", "dup_check": "duplicate keys vs lake",
    "lake_append": "lake append", "load_inputs": "load inputs", "features": "profile features",
    "rule_tags": "rule tags", "text_tags": "text tags", "model_tags": "model tags",
    "recompute_other": "definitions, session", "sor_write": "SoR write (serving rows)",
    "inbox_commit": "inbox update + commit", "snapshot_merge": "Delta merge, feature snapshot",
    "tag_merge": "Delta merge, tag snapshot",
    "other": "other"}


def _console(stderr: bool = False):  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=stderr, width=max(160, shutil.get_terminal_size().columns))


def pct(values: list[float], q: float) -> float | None:
    import numpy as np

    return float(np.percentile(values, q)) if values else None


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": pct(values, 50), "p95": pct(values, 95),
            "p99": pct(values, 99), "max": max(values) if values else None,
            "mean": sum(values) / len(values) if values else None}


def trend(per_event: list[dict[str, Any]]) -> dict[str, Any]:
    """Visible-latency p50 of the first and last third of the replay: a growing backlog shows."""
    vis = [p["visible_s"] for p in sorted(per_event, key=lambda p: p["t"])
           if p["visible_s"] is not None]
    k = len(vis) // 3
    if k == 0:
        return {"first_p50": None, "last_p50": None}
    return {"first_p50": pct(vis[:k], 50), "last_p50": pct(vis[-k:], 50)}


# --- the workspace: demo broker with the last days of events held back ------------------------


def hold_back(exports: Path, hold_from: dt.datetime) -> list[dict[str, Any]]:
    """Remove chats (linked to a customer) and APP events from ``hold_from`` (UTC) on from the
    exports; return them as events in event-time order, as the integration test does."""
    import pyarrow.parquet as pq

    def iso(ts: dt.datetime) -> str:
        return ts.isoformat() + "+00:00"

    held: list[tuple[str, str, dict[str, Any]]] = []
    chat_path = exports / "chat_messages.jsonl"
    kept = []
    for line in chat_path.read_text("utf-8").splitlines():
        r = json.loads(line)
        if r["msg_time"] >= hold_from.isoformat(" ") and r.get("customer_id"):
            t = dt.datetime.fromisoformat(r["msg_time"])
            r["msg_time"] = iso(t)
            held.append((t.isoformat(), "chat_message", r))
        else:
            kept.append(line)
    chat_path.write_text("\n".join(kept) + "\n", "utf-8")
    app = pq.read_table(exports / "app_events.parquet")
    late = [t is not None and t >= hold_from for t in app["event_time"].to_pylist()]
    for r, is_late in zip(app.to_pylist(), late, strict=True):
        if is_late:
            held.append((r["event_time"].isoformat(), "app_event",
                         {k: (iso(v) if isinstance(v, dt.datetime) else v)
                          for k, v in r.items() if v is not None}))
    pq.write_table(app.filter([not x for x in late]), exports / "app_events.parquet")
    held.sort(key=lambda h: h[0])
    return [{"kind": kind, "payload": payload} for _, kind, payload in held]


def source_digest() -> str:
    import hashlib

    h = hashlib.sha256()
    for p in sorted((ROOT / "src" / "caifu").rglob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def source_state() -> dict[str, Any]:
    """The commit and the uncommitted changes under src/ (the checkout is shared)."""
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,
                                  check=False).stdout.strip()
        except OSError:
            return ""

    return {"head": git("rev-parse", "--short", "HEAD"), "digest": source_digest(),
            "uncommitted": git("status", "--porcelain", "--", "src").splitlines()}


def workspace_dir(customers: int, seed: int, hold_days: int) -> Path:
    return RT / f"ws-{customers}-{seed}-h{hold_days}"


def child_setup(args: argparse.Namespace) -> None:
    """Generate the demo broker, hold back the last days of events, ingest, first build."""
    from caifu.data.demo import generate
    from caifu.services.demo import broker as demo
    from caifu.services.ingest.load import Ingest
    from caifu.services.profiles.build import Build
    from caifu.settings import Settings

    console = _console(stderr=True)
    ws = Path(args.workdir)
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    c = demo.prepare_workspace(ws / "workspace", Settings(duckdb_memory_limit=args.memory_limit))
    exports = ws / "exports"
    summary_ = generate(exports, customers=args.customers, seed=args.seed)
    t["generate"] = time.perf_counter() - t0
    # the demo's data ends 2026-10-30 (its trades, positions and fund transactions)
    hold_from = dt.datetime(2026, 10, 31) - dt.timedelta(days=args.hold_days)
    held = hold_back(exports, hold_from)
    (ws / "held.jsonl").write_text(
        "".join(json.dumps(h, ensure_ascii=False) + "\n" for h in held), "utf-8")
    console.print(f"  generated {sum(summary_.rows_per_file.values()):,} rows; held back "
                  f"{len(held):,} events from {hold_from} UTC on")
    t1 = time.perf_counter()
    batches = Ingest(c).ingest(demo.TENANT, [exports])
    t["ingest"] = time.perf_counter() - t1
    demo.create_demo_segments(c)
    t2 = time.perf_counter()
    result = Build(c).build(demo.TENANT)
    t["build"] = time.perf_counter() - t2
    c.close()
    shutil.rmtree(ws / "workspace" / "tmp", ignore_errors=True)
    shutil.rmtree(exports)
    from caifu.adapters.sor.store import head_revision

    kinds = {k: sum(h["kind"] == k for h in held) for k in ("chat_message", "app_event")}
    manifest = {"customers": args.customers, "seed": args.seed, "hold_days": args.hold_days,
                "hold_from_utc": hold_from.isoformat(), "held": kinds,
                "rows_ingested": sum(getattr(b, "inserted", 0) or 0 for b in batches),
                "first_build_as_of": result.as_of.isoformat(),
                "first_build_customers": result.customers, "timings": t,
                "source_digest": source_digest(), "schema_revision": head_revision(),
                "created": dt.datetime.now(dt.UTC).isoformat()}
    (ws / "manifest.json").write_text(json.dumps(manifest, indent=1))


def prepare(args: argparse.Namespace, customers: int, console) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The cached workspace for ``customers`` (built once, in a child process, under a lock)."""
    import fcntl

    from caifu.adapters.sor.store import head_revision

    ws = workspace_dir(customers, args.seed, args.hold_days)
    RT.mkdir(parents=True, exist_ok=True)
    with (RT / f".lock-{ws.name}").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest_path = ws / "manifest.json"
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("schema_revision") == head_revision() and not args.rebuild:
                if manifest.get("source_digest") != source_digest():
                    console.print(f"  [yellow]note[/]: {ws.name} was built by an earlier caifu "
                                  "source (ingest/first build); the measured path runs the "
                                  "current source. --rebuild to rebuild it")
                return manifest
        shutil.rmtree(ws, ignore_errors=True)
        ws.mkdir(parents=True)
        console.print(f"[bold]building the {customers:,}-customer demo workspace[/] "
                      f"(once; cached in {ws.relative_to(ROOT)})")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "setup",
               "--workdir", str(ws), "--customers", str(customers), "--seed", str(args.seed),
               "--hold-days", str(args.hold_days), "--memory-limit", args.memory_limit]
        if subprocess.run(cmd).returncode:
            shutil.rmtree(ws, ignore_errors=True)
            raise SystemExit(f"workspace setup failed for {customers:,} customers")
        manifest = json.loads(manifest_path.read_text())
        tm = manifest["timings"]
        console.print(f"  generate {tm['generate']:.0f} s, ingest {tm['ingest']:.0f} s, "
                      f"first build {tm['build']:.0f} s")
        return manifest


def fresh_copy(src: Path, dst: Path, memory_limit: str):  # type: ignore[no-untyped-def]
    """A private copy of the cached workspace (its caifu.yaml points at its own SoR)."""
    from caifu.services.container import build, default_sor_url, write_workspace_file
    from caifu.settings import Settings

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("tmp"))
    url = default_sor_url(dst.resolve())
    write_workspace_file(dst, url)
    return build(Settings(duckdb_memory_limit=memory_limit, sor_url=url), dst)


def load_held(ws: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (ws / "held.jsonl").read_text("utf-8").splitlines()]


# --- instrumenting the worker (wrappers in the child process; the source is not touched) ------


class Recorder:
    """Per-micro-batch timings of the worker's steps."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []
        self.idle_polls = 0
        self.idle_seconds = 0.0
        self.cur: dict[str, Any] | None = None

    def _add(self, phase: str, start: float, end: float) -> None:
        if self.cur is not None:
            self.cur["calls"].append((phase, start, end))

    def wrap(self, obj: Any, name: str, phase: str) -> None:
        fn = getattr(obj, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.time()
            try:
                return fn(*a, **k)
            finally:
                self._add(phase, t0, time.time())

        setattr(obj, name, wrapper)

    def instrument(self, events: Any) -> None:
        import caifu.services.profiles.build as build_mod

        for obj, name, phase in (
                (events, "_claim", "claim"), (events, "_stored_keys", "dup_check"),
                (events.c.lake, "committed_batches", "lake_append"),
                (events.c.lake, "append", "lake_append"), (events, "_recompute", "recompute"),
                (events.build, "load_inputs", "load_inputs"), (events.build, "compute", "compute"),
                (events.build, "_text_hits", "text_tags"),
                (build_mod, "rule_tag_hits", "rule_tags"),
                (build_mod, "model_tag_hits", "model_tags"),
                (events.build, "write_serving", "sor_write"),
                (events.c.lake, "_open", "delta_open")):
            self.wrap(obj, name, phase)
        from caifu.services.profiles.build import FEATURE_TABLE

        merge = events.c.lake.merge_snapshot

        def merge_snapshot(tenant: str, table: str, *a: Any, **k: Any) -> Any:
            t0 = time.time()
            try:
                return merge(tenant, table, *a, **k)
            finally:
                self._add("snapshot_merge" if table == FEATURE_TABLE else "tag_merge", t0,
                          time.time())

        events.c.lake.merge_snapshot = merge_snapshot
        process = events.process

        def timed_process(tenant: str, limit: int = 5000) -> Any:
            self.cur = {"calls": [], "start": time.time()}
            try:
                out = process(tenant, limit)
            finally:
                end = time.time()
                cur, self.cur = self.cur, None
            if out.batch_id is None:
                self.idle_polls += 1
                self.idle_seconds += end - cur["start"]
                return out
            self.batches.append(self.finish(cur, end, out))
            return out

        events.process = timed_process

    @staticmethod
    def finish(cur: dict[str, Any], end: float, out: Any) -> dict[str, Any]:
        calls = cur["calls"]
        total: dict[str, float] = {}
        for phase, a, b in calls:
            total[phase] = total.get(phase, 0.0) + (b - a)
        got = {p: total.get(p, 0.0) for p in ("claim", "dup_check", "lake_append", "load_inputs",
                                              "rule_tags", "text_tags", "model_tags",
                                              "sor_write", "snapshot_merge", "tag_merge")}
        got["features"] = (total.get("compute", 0.0) - got["rule_tags"] - got["text_tags"]
                           - got["model_tags"])
        got["recompute_other"] = (total.get("recompute", 0.0) - total.get("compute", 0.0)
                                  - got["load_inputs"])
        claim_end = max((b for p, _, b in calls if p == "claim"), default=cur["start"])
        recompute_start = min((a for p, a, _ in calls if p in ("recompute", "sor_write")),
                              default=end)
        # payload checks (check_record, Arrow tables): before the recompute, net of the
        # duplicate check and the lake append
        got["parse"] = (recompute_start - claim_end) - got["dup_check"] - got["lake_append"]
        ws_end = max((b for p, _, b in calls if p == "sor_write"), default=None)
        merge_start = min((a for p, a, _ in calls if p in ("snapshot_merge", "tag_merge")),
                          default=None)
        recompute_end = max((b for p, _, b in calls if p == "recompute"), default=claim_end)
        commit_end = merge_start if merge_start is not None else end
        got["inbox_commit"] = commit_end - (ws_end if ws_end is not None else recompute_end)
        seconds = end - cur["start"]
        got["other"] = seconds - sum(got[p] for p in PHASES if p != "other")
        return {"batch_id": out.batch_id, "start": cur["start"], "end": end,
                "visible_at": commit_end, "seconds": seconds, "events": len(out.latencies),
                "applied": out.applied, "duplicates": out.duplicates,
                "customers": out.customers, "snapshot_merged": out.snapshot_merged,
                "phases": got, "delta_open": total.get("delta_open", 0.0),
                "delta_opens": sum(p == "delta_open" for p, _, _ in calls)}


def lake_state(c: Any) -> dict[str, Any]:
    out = {}
    for table in ("chat_messages", "app_events", "profile_features", "tag_snapshots"):
        dt_ = c.lake._open(TENANT, table)
        out[table] = {"version": int(dt_.version()), "files": len(dt_.file_uris())} if dt_ else None
    return out


# --- child: replay at a steady rate ------------------------------------------------------------


class Probe(threading.Thread):
    """Polls customer_view for sampled text messages until a tag cites them."""

    def __init__(self, c: Any, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.c, self.every = c, every
        self.waiting: list[dict[str, Any]] = []
        self.done: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.reads = 0

    def add(self, item: dict[str, Any]) -> None:
        with self.lock:
            self.waiting.append(item)

    def run(self) -> None:
        from sqlalchemy import select

        from caifu.adapters.sor.models import event_inbox
        from caifu.services.profiles.customers import customer_view

        while not self.stop.is_set() or self.waiting:
            with self.lock:
                items = list(self.waiting)
            for it in items:
                with self.c.engine.connect() as conn:  # status first, then the view
                    status = conn.execute(select(event_inbox.c.status).where(
                        event_inbox.c.event_seq == it["seq"])).scalar()
                view = customer_view(self.c, TENANT, it["customer_id"])
                self.reads += 1
                now = time.time()
                cited = [t["tag_id"] for t in view["tags"]
                         if t["evidence"].get("message_id") == it["msg_id"]]
                if cited or status != "pending":
                    it.update(seen=now - it["returned"], status=status, tags=cited)
                    with self.lock:
                        self.waiting.remove(it)
                        self.done.append(it)
            if self.stop.is_set() and time.time() > getattr(self, "deadline", float("inf")):
                break
            time.sleep(self.every)


def child_replay(args: argparse.Namespace) -> None:
    from sqlalchemy import select

    from caifu.adapters.sor.models import event_inbox
    from caifu.services.ingest.realtime import Events, inbox_counts
    from caifu.services.profiles.customers import customer_view

    console = _console(stderr=True)
    ws = Path(args.source)
    run = Path(args.workdir)
    t0 = time.perf_counter()
    c = fresh_copy(ws / "workspace", run, args.memory_limit)
    copy_s = time.perf_counter() - t0
    held = load_held(ws)
    n = max(args.min_events, int(round(args.rate * args.duration)))
    if len(held) < WARMUP + n:
        raise SystemExit(f"only {len(held)} held-back events; need {WARMUP + n}")
    warm, replay = held[:WARMUP], held[WARMUP:WARMUP + n]
    worker_events, producer_events = Events(c), Events(c)
    rec = Recorder()
    rec.instrument(worker_events)

    # warm-up, unmeasured: builds the worker's chat tagger as a long-running service has it
    tw = time.perf_counter()
    for h in warm:
        producer_events.submit(TENANT, h["kind"], h["payload"])
    while worker_events.pending(TENANT):
        worker_events.process(TENANT)
    warm_s = time.perf_counter() - tw
    warm_batches, rec.batches = rec.batches, []
    rec.idle_polls, rec.idle_seconds = 0, 0.0
    lake_before = lake_state(c)

    probe = Probe(c)
    text_chats = [i for i, h in enumerate(replay) if h["kind"] == "chat_message"
                  and h["payload"].get("msg_type") == "text" and h["payload"].get("content")
                  and h["payload"].get("sender") == "customer"]
    step = max(1, len(text_chats) // max(1, args.probes))
    probed = set(text_chats[::step][:args.probes])
    stop = threading.Event()
    worker = threading.Thread(target=worker_events.run_worker, args=(stop, TENANT), daemon=True)
    busy0 = os.times()
    worker.start()
    probe.start()
    sent: list[dict[str, Any]] = []
    console.print(f"  replaying {n:,} events at {args.rate:g}/s "
                  f"({sum(h['kind'] == 'chat_message' for h in replay):,} chat messages)")
    start = time.time() + 0.5
    for i, h in enumerate(replay):
        due = start + i / args.rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        called = time.time()
        sub = producer_events.submit(TENANT, h["kind"], h["payload"])
        returned = time.time()
        p = h["payload"]
        sent.append({"seq": sub.event_seq, "kind": h["kind"], "status": sub.status,
                     "due": due, "called": called, "returned": returned,
                     "customer_id": p.get("customer_id")})
        if i in probed and sub.status == "pending":
            probe.add({"seq": sub.event_seq, "msg_id": p["msg_id"],
                       "customer_id": p["customer_id"], "returned": returned})
    produced = time.time()
    pending_at_end = worker_events.pending(TENANT)
    deadline = produced + args.drain_timeout
    while worker_events.pending(TENANT) and time.time() < deadline:
        time.sleep(0.1)
    drained = time.time()
    stop.set()
    worker.join()
    probe.deadline = time.time() + 5  # type: ignore[attr-defined]
    probe.stop.set()
    probe.join()
    busy1 = os.times()

    # what the inbox says
    seqs = [s["seq"] for s in sent]
    e = event_inbox
    with c.engine.connect() as conn:
        rows = {r.event_seq: r for r in conn.execute(select(
            e.c.event_seq, e.c.status, e.c.received_at, e.c.applied_at, e.c.batch_id)
            .where(e.c.event_seq.between(min(seqs), max(seqs)))).all()}
    visible_at = {b["batch_id"]: b["visible_at"] for b in rec.batches}
    batch_start = {b["batch_id"]: b["start"] for b in rec.batches}
    inbox_lat, visible_lat, per_event = [], [], []
    for s in sent:
        r = rows[s["seq"]]
        s["final"] = r.status
        if r.status != "applied":
            continue
        inbox = (r.applied_at - r.received_at).total_seconds()
        vis = visible_at.get(r.batch_id)
        visible = (vis - s["returned"]) if vis is not None else None
        inbox_lat.append(inbox)
        if visible is not None:
            visible_lat.append(visible)
        bs = batch_start.get(r.batch_id)
        per_event.append({"seq": s["seq"], "kind": s["kind"], "batch": r.batch_id,
                          "submit_s": s["returned"] - s["called"],
                          "lag_s": s["called"] - s["due"], "inbox_s": inbox,
                          "visible_s": visible, "t": s["returned"] - start,
                          # waiting for the worker (its current batch, the poll), then its own
                          "wait_s": None if bs is None else max(0.0, bs - s["returned"]),
                          "own_batch_s": None if bs is None or vis is None else vis - bs})

    # after the drain: customers with replayed text messages hold a tag citing one of them
    replayed_msgs: dict[str, set[str]] = {}
    for h in replay:
        p = h["payload"]
        if h["kind"] == "chat_message" and p.get("msg_type") == "text" and p.get("content"):
            replayed_msgs.setdefault(p["customer_id"], set()).add(p["msg_id"])
    sample = sorted(replayed_msgs)[:args.verify]
    verified, example = 0, None
    for cid in sample:
        view = customer_view(c, TENANT, cid)
        cites = [t for t in view["tags"]
                 if t["evidence"].get("message_id") in replayed_msgs[cid]]
        if cites:
            verified += 1
            if example is None:
                t = cites[0]
                example = {"customer_id": cid, "tag_id": t["tag_id"],
                           "message_id": t["evidence"]["message_id"],
                           "matched": t["evidence"].get("matched"),
                           "as_of": str(view["as_of"])}
    out = {
        "rate": args.rate, "events": n, "copy_seconds": copy_s, "warmup_seconds": warm_s,
        "warmup_batches": warm_batches, "produce_seconds": produced - start,
        "achieved_rate": n / max(1e-9, produced - start),
        "pending_when_producer_done": pending_at_end, "drain_seconds": drained - produced,
        "drained": not worker_events.pending(TENANT),
        "inbox_counts": inbox_counts(c, TENANT),
        "statuses": {st: sum(s["final"] == st for s in sent)
                     for st in {s["final"] for s in sent}},
        "latency_inbox": summary(inbox_lat), "latency_visible": summary(visible_lat),
        "submit": summary([p["submit_s"] for p in per_event]),
        "wait": summary([p["wait_s"] for p in per_event if p["wait_s"] is not None]),
        "own_batch": summary([p["own_batch_s"] for p in per_event
                              if p["own_batch_s"] is not None]),
        "trend": trend(per_event),
        "producer_lag": summary([p["lag_s"] for p in per_event]),
        "batches": rec.batches, "idle_polls": rec.idle_polls,
        "idle_poll_seconds": rec.idle_seconds,
        "probe": {"done": probe.done, "left": probe.waiting, "reads": probe.reads},
        "verify": {"sampled": len(sample), "cited": verified, "example": example},
        "lake_before": lake_before, "lake_after": lake_state(c),
        "cpu_seconds": (busy1.user + busy1.system) - (busy0.user + busy0.system),
        "wall": drained - start, "per_event": per_event,
    }
    c.close()
    Path(args.out).write_text(json.dumps(out, default=str))


# --- child: full build (the reference) ----------------------------------------------------------


def child_build(args: argparse.Namespace) -> None:
    from caifu.services.profiles.build import Build

    ws = Path(args.source)
    t0 = time.perf_counter()
    c = fresh_copy(ws / "workspace", Path(args.workdir), args.memory_limit)
    copy_s = time.perf_counter() - t0
    cpu0 = os.times()
    t1 = time.perf_counter()
    result = Build(c).build(TENANT)
    secs = time.perf_counter() - t1
    cpu1 = os.times()
    c.close()
    Path(args.out).write_text(json.dumps({
        "seconds": secs, "copy_seconds": copy_s, "customers": result.customers,
        "as_of": result.as_of.isoformat(), "timings": result.timings,
        "cpu_seconds": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)}))


# --- child: batch-size sweep and cProfile --------------------------------------------------------


def child_profile(args: argparse.Namespace) -> None:
    # bench/profile.py (another bench) would shadow the standard library's ``profile``,
    # which cProfile imports: drop this script's folder from the import path first
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.modules.pop("profile", None)
    import cProfile
    import io
    import pstats

    from caifu.services.ingest.realtime import Events

    console = _console(stderr=True)
    ws = Path(args.source)
    c = fresh_copy(ws / "workspace", Path(args.workdir), args.memory_limit)
    held = load_held(ws)
    events = Events(c)
    rec = Recorder()
    rec.instrument(events)
    pos = 0

    def batch(size: int) -> tuple[dict[str, Any], float]:
        nonlocal pos
        chunk = held[pos:pos + size]
        pos += size
        t0 = time.perf_counter()
        for kind in ("chat_message", "app_event"):
            mine = [h["payload"] for h in chunk if h["kind"] == kind]
            if mine:
                events.submit_many(TENANT, kind, mine)
        submit_s = time.perf_counter() - t0
        events.process(TENANT, limit=size)
        return rec.batches[-1], submit_s

    batch(WARMUP)  # builds the tagger
    sweep = []
    for size in args.sweep:
        for _ in range(args.sweep_repeat):
            b, submit_s = batch(size)
            b = {k: v for k, v in b.items() if k not in ("start", "end", "visible_at")}
            b["size"], b["submit_many_s"] = size, submit_s
            sweep.append(b)
            console.print(f"  batch of {size:,}: {b['seconds']:.2f} s "
                          f"({b['customers']} customers)")
    prof = cProfile.Profile()
    size = args.profile_batch
    profiled = []
    for _ in range(args.profile_batches):
        chunk = held[pos:pos + size]
        pos += size
        for kind in ("chat_message", "app_event"):
            mine = [h["payload"] for h in chunk if h["kind"] == kind]
            if mine:
                events.submit_many(TENANT, kind, mine)
        prof.enable()
        events.process(TENANT, limit=size)
        prof.disable()
        profiled.append({k: v for k, v in rec.batches[-1].items()
                         if k not in ("start", "end", "visible_at")})
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "bench/realtime.py" in file:
            continue
        rows.append({"function": f"{_short(file)}:{line}({fn})", "calls": nc,
                     "tottime": tt, "cumtime": ct})
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(80)
    c.close()
    Path(args.out).write_text(json.dumps({
        "sweep": sweep, "profiled_batches": profiled, "by_package": by_package(stats),
        "top_cumulative": sorted(rows, key=lambda r: -r["cumtime"])[:80],
        "top_tottime": sorted(rows, key=lambda r: -r["tottime"])[:40],
        "pstats_text": buf.getvalue()}, default=str))


def _short(file: str) -> str:
    for marker in ("/site-packages/", "/src/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return Path(file).name


PACKAGES = {"ibis": "Ibis + sqlglot (build expressions, compile SQL)",
            "sqlglot": "Ibis + sqlglot (build expressions, compile SQL)",
            "duckdb": "DuckDB (run queries)", "deltalake": "delta-rs (Delta log, merge, append)",
            "sqlalchemy": "SQLite + SQLAlchemy (SoR)", "sqlite3": "SQLite + SQLAlchemy (SoR)",
            "pyarrow": "pyarrow", "caifu": "caifu's own Python", "yaml": "YAML (tag definitions)",
            "pydantic": "pydantic (tag definitions)", "opencc": "chat tagger (OpenCC, AC)",
            "ahocorasick": "chat tagger (OpenCC, AC)"}


def _package(file: str, fn: str) -> str | None:
    if file == "~":
        for key in ("sqlite3", "deltalake", "duckdb", "pyarrow", "opencc", "ahocorasick"):
            if key in fn:
                return PACKAGES[key]
        return None  # a builtin: charged to its callers
    if "/site-packages/" in file:
        top = file.split("/site-packages/", 1)[1].split("/", 1)[0].split(".")[0].lstrip("_")
        return PACKAGES.get(top, f"other libraries ({top})" if top else "other libraries")
    if "/src/caifu/" in file:
        return PACKAGES["caifu"]
    if "bench/realtime.py" in file:
        return "bench wrappers"
    return "Python standard library"


def by_package(stats: Any) -> dict[str, float]:
    """Own time per package; a builtin's time goes to the package of each caller."""
    out: dict[str, float] = {}
    for (file, _line, fn), (_cc, _nc, tt, _ct, callers) in stats.stats.items():
        pkg = _package(file, fn)
        if pkg is not None:
            out[pkg] = out.get(pkg, 0.0) + tt
            continue
        total_tt = sum(v[2] for v in callers.values()) or 1.0
        for (cfile, _cl, cfn), v in callers.items():
            cpkg = _package(cfile, cfn) or "Python builtins"
            out[cpkg] = out.get(cpkg, 0.0) + tt * v[2] / total_tt
        if not callers:
            out["Python builtins"] = out.get("Python builtins", 0.0) + tt
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


# --- the parent: run children, sample RSS, report -------------------------------------------------


def wait_quiet(limit: float, console, windows: int = 3) -> float:  # type: ignore[no-untyped-def]
    """Other sessions share this machine: wait (up to ``limit`` s) until it has been nearly idle
    for ``windows`` consecutive 3-second windows. Other benches wait for one quiet window, so
    this one lets them go first instead of starting at the same moment."""
    import psutil

    t0 = time.perf_counter()
    quiet = 0
    while True:
        busy = psutil.cpu_percent(interval=3) / 100 * (os.cpu_count() or 1)
        quiet = quiet + 1 if busy < 0.25 else 0
        if quiet >= windows or limit <= 0:
            return busy
        waited = time.perf_counter() - t0
        if waited > limit:
            console.print(f"  [yellow]machine still busy ({busy:.1f} cores); measuring anyway")
            return busy
        if waited < 4 and quiet == 0:
            console.print(f"  machine busy ({busy:.1f} cores in use); waiting up to {limit:.0f} s")


def run_child(kind: str, args: argparse.Namespace, ws: Path, extra: list[str],
              label: str, console) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import psutil

    run = RT / "runs" / f"{kind}-{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    run.parent.mkdir(parents=True, exist_ok=True)
    out = run.parent / f"{run.name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--source", str(ws),
           "--workdir", str(run), "--out", str(out), "--memory-limit", args.memory_limit,
           *extra]
    idle = wait_quiet(args.quiet_wait, console)
    busy0, mine0, w0 = busy_cpu(), os.times(), time.perf_counter()
    rss_peak = 0
    try:
        with console.status(label, spinner="dots"):
            proc = subprocess.Popen(cmd)
            root = psutil.Process(proc.pid)
            while proc.poll() is None:
                rss = tree_rss(root)
                rss_peak = max(rss_peak, rss)
                time.sleep(0.1)
        if proc.returncode:
            raise SystemExit(f"{kind} child failed ({proc.returncode})")
        mine1, wall = os.times(), time.perf_counter() - w0
        ours = (mine1.children_user + mine1.children_system + mine1.user + mine1.system
                - mine0.children_user - mine0.children_system - mine0.user - mine0.system)
        result = json.loads(out.read_text())
    finally:
        if not args.keep:
            shutil.rmtree(run, ignore_errors=True)
            out.unlink(missing_ok=True)
    result["background_cpu"] = max(0.0, busy_cpu() - busy0 - ours)
    result["background_cores"] = result["background_cpu"] / wall
    result["child_wall"] = wall
    result["child_cpu"] = ours
    result["peak_rss"] = rss_peak
    result["busy_before"] = idle
    return result


def _f(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def phase_means(batches: list[dict[str, Any]]) -> dict[str, float]:
    if not batches:
        return {}
    return {p: sum(b["phases"][p] for b in batches) / len(batches) for p in PHASES}


def _table(title: str, cols: list[str]):  # type: ignore[no-untyped-def]
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for i, col in enumerate(cols):
        t.add_column(col, justify="left" if i == 0 else "right")
    return t


def report_size(size: int, res: dict[str, Any], console) -> list[str]:  # type: ignore[no-untyped-def]
    runs, build, prof = res["runs"], res.get("build"), res.get("profile")
    lines = []
    t = _table(f"{size:,} customers — latency per event, s (goal: in the customer's tags and "
               f"profile ≤ {GOAL_S:g} s)",
               ["rate /s", "events", "achieved /s", "visible p50", "p95", "p99", "max",
                "inbox p50", "inbox p99", "customer_view p50", "wait p50", "own batch p50",
                "p50 first→last third", "bg cores"])
    for r in runs:
        v, i, tr = r["latency_visible"], r["latency_inbox"], r["trend"]
        seen = [x["seen"] for x in r["probe"]["done"] if x["tags"]]
        ok = v["p99"] is not None and v["p99"] <= GOAL_S
        t.add_row(f"{r['rate']:g}", f"{r['events']:,}", f"{r['achieved_rate']:.1f}",
                  _f(v["p50"]), _f(v["p95"]), f"[{'green' if ok else 'red'}]{_f(v['p99'])}",
                  _f(v["max"]), _f(i["p50"]), _f(i["p99"]), _f(pct(seen, 50)),
                  _f(r["wait"]["p50"]), _f(r["own_batch"]["p50"]),
                  f"{_f(tr['first_p50'])}→{_f(tr['last_p50'])}", f"{r['background_cores']:.2f}")
        lines.append(f"{'PASS' if ok else 'FAIL'} {size:,} customers at {r['rate']:g} events/s: "
                     f"visible p50 {_f(v['p50'])} s, p95 {_f(v['p95'])} s, p99 {_f(v['p99'])} "
                     f"s, max {_f(v['max'])} s (goal ≤ {GOAL_S:g} s)")
    console.print(t)
    t = _table(f"{size:,} customers — micro-batches", [
        "rate /s", "batches", "events/batch p50", "max", "customers/batch mean",
        "batch s p50", "p95", "max", "drain s", "submit ms p50", "p99", "producer lag p99",
        "worker+producer cores", "peak RSS"])
    for r in runs:
        b = r["batches"]
        ev, secs = [x["events"] for x in b], [x["seconds"] for x in b]
        cust = [x["customers"] for x in b]
        t.add_row(f"{r['rate']:g}", f"{len(b)}", _f(pct(ev, 50), ".0f"), f"{max(ev, default=0)}",
                  _f(sum(cust) / max(1, len(cust)), ".1f"), _f(pct(secs, 50)),
                  _f(pct(secs, 95)), _f(max(secs, default=None)), f"{r['drain_seconds']:.1f}",
                  _f(1000 * (r["submit"]["p50"] or 0), ".1f"),
                  _f(1000 * (r["submit"]["p99"] or 0), ".1f"), _f(r["producer_lag"]["p99"]),
                  f"{r['cpu_seconds'] / max(1e-9, r['wall']):.2f}",
                  f"{r['peak_rss'] / 1024**3:.2f} GB")
    console.print(t)
    for r in runs:
        pr = r["probe"]["done"]
        tagged = [x["seen"] for x in pr if x["tags"]]
        la, lb = r["lake_after"], r["lake_before"]
        console.print(
            f"  {r['rate']:g}/s: customer_view probe — {len(tagged)} of {len(pr)} sampled "
            f"customer text messages showed up as tag evidence (max {_f(max(tagged, default=None))}"
            f" s after submit); after the drain {r['verify']['cited']} of "
            f"{r['verify']['sampled']} customers with replayed text messages hold a tag citing "
            f"one, e.g. {r['verify']['example']}; inbox {r['statuses']}; Delta files "
            + ", ".join(f"{k} {lb[k]['files']}→{la[k]['files']} (v{lb[k]['version']}→"
                        f"v{la[k]['version']})" for k in la if la[k] and lb[k]))
    t = _table(f"{size:,} customers — where a micro-batch's time goes (mean s per batch)",
               ["step", *(f"{r['rate']:g}/s" for r in runs), "% at " + f"{runs[-1]['rate']:g}/s"])
    means = [phase_means(r["batches"]) for r in runs]
    totals = [sum(m.values()) for m in means]
    for ph in PHASES:
        t.add_row(PHASE_NAMES[ph], *(_f(m.get(ph)) for m in means),
                  _f(100 * means[-1].get(ph, 0) / totals[-1] if totals[-1] else None, ".0f"))
    t.add_row("[bold]batch total", *(f"{x:.2f}" for x in totals), "100")
    t.add_row("(events per batch, mean)", *(
        f"{sum(x['events'] for x in r['batches']) / max(1, len(r['batches'])):.1f}"
        for r in runs), "")
    t.add_row("(of which opening Delta logs)", *(
        f"{sum(x['delta_open'] for x in r['batches']) / max(1, len(r['batches'])):.2f}"
        for r in runs), "")
    console.print(t)
    if build:
        tm = ", ".join(f"{k} {v:.1f}" for k, v in build["timings"].items())
        console.print(
            f"  [bold]reference[/]: full build of {build['customers']:,} customers "
            f"{build['seconds']:.1f} s ({tm}; {build['cpu_seconds']:.0f} CPU-s, peak RSS "
            f"{build['peak_rss'] / 1024**3:.2f} GB, background {build['background_cores']:.2f} "
            "cores)")
        for r in runs:
            v = r["latency_visible"]
            if v["p50"] and v["p99"]:
                console.print(f"    {r['rate']:g}/s: full build / visible p50 = "
                              f"{build['seconds'] / v['p50']:.1f}×, / p99 = "
                              f"{build['seconds'] / v['p99']:.1f}×")
        lines.append(f"reference {size:,} customers: full build {build['seconds']:.1f} s — "
                     "the least a nightly batch needs, before waiting for the night")
    if prof:
        sizes = sorted({b["size"] for b in prof["sweep"]})
        groups = {n: [b for b in prof["sweep"] if b["size"] == n] for n in sizes}
        t = _table(f"{size:,} customers — one micro-batch at a time, by events per batch "
                   f"(mean of {max(len(g) for g in groups.values())}; s)",
                   ["step", *(f"{n:,} ev" for n in sizes)])
        for ph in PHASES:
            t.add_row(PHASE_NAMES[ph], *(
                f"{sum(b['phases'][ph] for b in g) / len(g):.2f}" for g in groups.values()))
        t.add_row("[bold]batch total", *(
            f"{sum(b['seconds'] for b in g) / len(g):.2f}" for g in groups.values()))
        t.add_row("customers", *(f"{sum(b['customers'] for b in g) / len(g):.0f}"
                                 for g in groups.values()))
        t.add_row("submit_many (not in batch)", *(
            f"{sum(b['submit_many_s'] for b in g) / len(g):.2f}" for g in groups.values()))
        console.print(t)
        pb = prof["profiled_batches"]
        secs = sum(b["seconds"] for b in pb)
        t = _table(f"{size:,} customers — cProfile of {len(pb)} micro-batches of "
                   f"{pb[0]['events']} events ({secs / len(pb):.2f} s each), own time by package",
                   ["package", "s per batch", "%"])
        total = sum(prof["by_package"].values())
        for k, v in prof["by_package"].items():
            if v / total >= 0.005:
                t.add_row(k, f"{v / len(pb):.2f}", f"{100 * v / total:.0f}")
        console.print(t)
        t = _table(f"{size:,} customers — cProfile, by cumulative time (s per batch)",
                   ["function", "calls", "cumulative", "own"])
        for r in prof["top_cumulative"][:25]:
            t.add_row(r["function"], f"{r['calls'] / len(pb):,.0f}",
                      f"{r['cumtime'] / len(pb):.2f}", f"{r['tottime'] / len(pb):.2f}")
        console.print(t)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 20_000],
                    help="demo broker sizes in customers (default 100000 20000)")
    ap.add_argument("--rates", type=float, nargs="+", default=[2, 10, 50],
                    help="events/s the producer submits (default 2 10 50)")
    ap.add_argument("--duration", type=float, default=60, help="seconds of replay per rate")
    ap.add_argument("--min-events", type=int, default=200,
                    help="replay at least this many events per rate (low rates run longer)")
    ap.add_argument("--hold-days", type=int, default=3,
                    help="days of chats and APP events held back from the exports")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--memory-limit", default="6GB", help="DuckDB memory_limit (Settings default)")
    ap.add_argument("--probes", type=int, default=30,
                    help="text messages per run followed with customer_view polls")
    ap.add_argument("--verify", type=int, default=200,
                    help="customers read with customer_view after the drain")
    ap.add_argument("--drain-timeout", type=float, default=900)
    ap.add_argument("--no-build", action="store_true", help="skip the full-build reference")
    ap.add_argument("--no-profile", action="store_true", help="skip the batch-size sweep and cProfile")
    ap.add_argument("--sweep", type=int, nargs="+", default=[1, 10, 100, 1000])
    ap.add_argument("--sweep-repeat", type=int, default=2)
    ap.add_argument("--profile-batch", type=int, default=50,
                    help="events per micro-batch under cProfile")
    ap.add_argument("--profile-batches", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached workspaces")
    ap.add_argument("--keep", action="store_true", help="keep the run copies under .bench/realtime/runs")
    ap.add_argument("--quiet-wait", type=float, default=300, metavar="S",
                    help="before each child, wait up to S s for other processes to go quiet "
                         "(0: don't wait)")
    ap.add_argument("--child", choices=("setup", "replay", "build", "profile"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--customers", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        {"setup": child_setup, "replay": child_replay, "build": child_build,
         "profile": child_profile}[args.child](args)
        return

    import deltalake
    import duckdb
    import pyarrow as pa

    console = _console()
    src = source_state()
    machine = {"node": platform.node(), "cores": os.cpu_count(),
               "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3,
               "python": platform.python_version(), "duckdb": duckdb.__version__,
               "deltalake": deltalake.__version__, "pyarrow": pa.__version__}
    console.print(f"{platform.node()}: {os.cpu_count()} cores, "
                  f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GiB, "
                  f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, deltalake "
                  f"{deltalake.__version__}, pyarrow {pa.__version__}; SQLite system of record; "
                  f"sizes {args.sizes}, rates {args.rates}/s, {args.duration:g} s each "
                  f"(≥ {args.min_events} events); DuckDB memory_limit {args.memory_limit}; "
                  f"caifu {src['head']} + {len(src['uncommitted'])} uncommitted files in src/ "
                  f"(digest {src['digest']})")
    common = ["--seed", str(args.seed), "--hold-days", str(args.hold_days)]
    results: dict[str, Any] = {}
    verdicts: list[str] = []
    for size in args.sizes:
        manifest = prepare(args, size, console)
        ws = workspace_dir(size, args.seed, args.hold_days)
        console.rule(f"[bold]{size:,} customers[/] — {manifest['held']} held-back events "
                     f"from {manifest['hold_from_utc']} UTC")
        res: dict[str, Any] = {"manifest": manifest, "runs": []}
        for rate in args.rates:
            r = run_child("replay", args, ws, [
                *common, "--rate", str(rate), "--duration", str(args.duration),
                "--min-events", str(args.min_events), "--probes", str(args.probes),
                "--verify", str(args.verify), "--drain-timeout", str(args.drain_timeout)],
                f"{size:,} customers: replay at {rate:g} events/s", console)
            v = r["latency_visible"]
            console.print(f"  {rate:g}/s: visible latency p50 {_f(v['p50'])} s, p99 "
                          f"{_f(v['p99'])} s, max {_f(v['max'])} s over {v['n']:,} events in "
                          f"{len(r['batches'])} micro-batches (bg {r['background_cores']:.2f} "
                          "cores)")
            res["runs"].append(r)
        if not args.no_build:
            res["build"] = run_child("build", args, ws, common,
                                     f"{size:,} customers: full build (reference)", console)
            console.print(f"  full build: {res['build']['seconds']:.1f} s")
        if not args.no_profile:
            res["profile"] = run_child("profile", args, ws, [
                *common, "--sweep", *map(str, args.sweep), "--sweep-repeat",
                str(args.sweep_repeat), "--profile-batch", str(args.profile_batch),
                "--profile-batches", str(args.profile_batches)],
                f"{size:,} customers: batch-size sweep + cProfile", console)
        results[str(size)] = res
        verdicts += report_size(size, res, console)
    for line in verdicts:
        console.print(("[green]" if line.startswith("PASS") else
                       "[red]" if line.startswith("FAIL") else "") + line)
    out = CACHE / "results" / f"realtime-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "machine": machine,
                               "source": {"at_start": src, "at_end": source_state()},
                               "results": results, "verdicts": verdicts}, indent=1, default=str))
    console.print(f"raw results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
