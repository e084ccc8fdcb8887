"""The real-time path: events in, the affected customers' features and tags updated.

The central claim — an incremental update gives what a full rebuild gives — is checked on the
demo broker: its last two weeks of chat messages and APP events are held back from the
files, arrive as events after the build, and the result is compared with a rebuild.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from caifu.adapters.sor.models import profile_serving
from caifu.adapters.sor.repos import profiles as profiles_repo
from caifu.core.errors import ConfigError
from caifu.data.demo import generate
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest
from caifu.services.ingest.realtime import Events, inbox_counts, rejected
from caifu.services.profiles.build import Build
from caifu.services.profiles.tag_definitions import config_path, default_text
from caifu.settings import Settings
from tests.conftest import Broker, ingest_broker

HOLD_FROM = dt.datetime(2026, 10, 16)  # UTC


def _iso(ts: dt.datetime) -> str:
    return ts.isoformat() + "+00:00"


@pytest.fixture(scope="module")
def split_demo(tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("rt") / "exports"
    generate(out, customers=600, seed=9)
    chat_path = out / "chat_messages.jsonl"
    kept, held_chat = [], []
    for line in chat_path.read_text("utf-8").splitlines():
        r = json.loads(line)
        if r["msg_time"] >= HOLD_FROM.isoformat(" ") and r.get("customer_id"):
            r["msg_time"] = _iso(dt.datetime.fromisoformat(r["msg_time"]))
            held_chat.append(r)
        else:
            kept.append(line)
    chat_path.write_text("\n".join(kept) + "\n", "utf-8")
    app = pq.read_table(out / "app_events.parquet")
    late = [t is not None and t >= HOLD_FROM for t in app["event_time"].to_pylist()]
    held_app = [{k: (_iso(v) if isinstance(v, dt.datetime) else v) for k, v in r.items()
                 if v is not None} for r, is_late in zip(app.to_pylist(), late, strict=True)
                if is_late]
    pq.write_table(app.filter([not x for x in late]), out / "app_events.parquet")
    assert len(held_chat) > 50 and len(held_app) > 500
    return out, held_chat, held_app


def _state(c: Container) -> tuple[dict[str, Any], dict[str, Any]]:
    with c.engine.connect() as conn:
        tags = {(r["customer_id"], r["tag_id"]): (r["tag_version"], r["kind"],
                                                 json.loads(r["evidence_json"]), r["as_of"],
                                                 r["expires_at"])
                for r in profiles_repo.assignments(conn, "acme")}
        rows = conn.execute(profile_serving.select().where(
            profile_serving.c.tenant_id == "acme")).all()
    profiles = {r.customer_id: (r.as_of, json.loads(r.features_json)) for r in rows}
    return tags, profiles


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, split_demo: Any) -> Broker:
    """The split exports ingested once (tenant ``acme``, workspace closed); each test that needs
    them ingested takes a copy instead of ingesting them again."""
    exports, _, _ = split_demo
    return ingest_broker(tmp_path_factory.mktemp("rt-ingested"), exports, 600, 9)


@pytest.fixture
def ingested_copy(ingested: Broker, tmp_path: Path) -> Iterator[Container]:
    c = ingested.copy(tmp_path / "ws")
    yield c
    c.close()


@pytest.fixture(scope="module")
def realtime(tmp_path_factory: pytest.TempPathFactory, split_demo: Any, ingested: Broker
             ) -> Iterator[tuple[Container, Any, list[Any]]]:
    _, held_chat, held_app = split_demo
    c = ingested.copy(tmp_path_factory.mktemp("ws") / "ws", Settings(duckdb_memory_limit="1GB"))
    Build(c).build("acme")
    events = Events(c)
    submitted = events.submit_many("acme", "chat_message", held_chat)
    submitted += events.submit_many("acme", "app_event", held_app)
    batches = []
    while events.pending("acme"):
        batches.append(events.process("acme", limit=400))
    yield c, submitted, batches
    c.close()


def test_every_event_is_accounted_for(realtime: Any, split_demo: Any) -> None:
    c, submitted, batches = realtime
    _, held_chat, held_app = split_demo
    counts = inbox_counts(c, "acme")
    assert sum(counts.values()) == len(held_chat) + len(held_app) == len(submitted)
    assert counts.get("pending", 0) == 0
    assert counts["applied"] == sum(b.applied for b in batches)
    assert counts.get("duplicate", 0) == sum(b.duplicates for b in batches)
    assert counts.get("rejected", 0) == sum(s.status == "rejected" for s in submitted)
    accepted = sum(s.status == "pending" for s in submitted)
    assert len(batches) == -(-accepted // 400) >= 2  # micro-batches of at most 400
    assert all(0 <= x < 600 for b in batches for x in b.latencies)
    # the demo's injected bad APP events (unknown enum …) are rejected with their reason
    for r in rejected(c, "acme"):
        assert r["reasons"] and ":" in r["reasons"]
        assert json.loads(r["payload_json"])  # kept as received


def test_incremental_equals_full_rebuild(realtime: Any) -> None:
    c, _, batches = realtime
    incremental_tags, incremental_profiles = _state(c)
    assert {b.as_of for b in batches if b.as_of} == {dt.date(2026, 10, 30)}
    result = Build(c).build("acme", as_of=dt.date(2026, 10, 30))
    rebuilt_tags, rebuilt_profiles = _state(c)
    assert result.gained == {} and result.lost == {}, (result.gained, result.lost)
    assert incremental_tags == rebuilt_tags
    diffs = {cid: {k: (v, rebuilt_profiles[cid][1].get(k)) for k, v in prof[1].items()
                   if rebuilt_profiles[cid][1].get(k) != v}
             for cid, prof in incremental_profiles.items() if prof != rebuilt_profiles[cid]}
    assert not diffs, list(diffs.items())[:3]
    # and the events did change tags: held-back chats carry text evidence
    text_msgs = {v[2].get("message_id") for v in rebuilt_tags.values() if v[1] == "text"}
    assert any(m and m >= "M" for m in text_msgs)


def test_a_crash_between_lake_and_sor_is_finished_by_the_next_run(
        ingested_copy: Container, split_demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    c = ingested_copy
    _, held_chat, _ = split_demo
    events = Events(c)
    events.submit_many("acme", "chat_message", held_chat[:20])
    lake_rows = c.lake.count("acme", "chat_messages")

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(events.build, "write_serving", boom)
    with pytest.raises(RuntimeError):
        events.process("acme")
    assert c.lake.count("acme", "chat_messages") == lake_rows + 20  # appended, not applied
    assert inbox_counts(c, "acme") == {"pending": 20}
    monkeypatch.undo()
    events.submit_many("acme", "chat_message", held_chat[20:25])  # arrives meanwhile
    first = events.process("acme")
    assert first.applied == 20 and c.lake.count("acme", "chat_messages") == lake_rows + 20
    second = events.process("acme")
    assert second.applied == 5 and inbox_counts(c, "acme") == {"applied": 25}


@pytest.mark.parametrize(("payload", "reason"), [
    ('{"msg_id": "x"', "payload:NOT_JSON"),
    ("[1, 2]", "payload:NOT_AN_OBJECT"),
    ({"msg_id": "m1", "advisor_id": "TG00001", "external_userid": "wm1", "sender": "customer",
      "msg_type": "text", "msg_time": "2026-10-30T10:00:00+08:00", "colour": "red"},
     "colour:UNKNOWN_COLUMN"),
    ({"msg_id": "m1", "advisor_id": "TG00001", "external_userid": "wm1", "sender": "robot",
      "msg_type": "text", "msg_time": "2026-10-30T10:00:00+08:00"}, "sender:ENUM"),
    ({"msg_id": "m1", "advisor_id": "TG00001", "external_userid": "wm1", "sender": "customer",
      "msg_type": "text", "msg_time": "yesterday"}, "msg_time:NOT_TIMESTAMP"),
    ({"msg_id": "m1", "advisor_id": "TG00001", "external_userid": "wm1", "sender": "customer",
      "msg_type": "text", "msg_time": "2099-01-01T00:00:00+08:00"}, "msg_time:IN_FUTURE"),
    ({"msg_id": "m1", "advisor_id": "NOBODY", "external_userid": "wm1", "sender": "customer",
      "msg_type": "text", "msg_time": 1761789600000}, "advisor_id:UNKNOWN_REF"),
    ({"advisor_id": "TG00001", "external_userid": "wm1", "sender": "customer",
      "msg_type": "text", "msg_time": "2026-10-30T10:00:00+08:00"}, "msg_id:REQUIRED"),
    ("x" * 70_000, "payload:TOO_LARGE"),
])
def test_bad_events_are_kept_and_explained(sqlite_workspace: Container, split_demo: Any,
                                           payload: Any, reason: str) -> None:
    exports, _, _ = split_demo
    Ingest(sqlite_workspace).ingest("acme", [exports / "tgry.csv", exports / "yyb.csv"],
                                    )
    got = Events(sqlite_workspace).submit("acme", "chat_message", payload)
    assert got.status == "rejected"
    assert any(r.startswith(reason) for r in got.reasons), got.reasons
    assert inbox_counts(sqlite_workspace, "acme") == {"rejected": 1}
    with pytest.raises(ConfigError, match="unknown event kind"):
        Events(sqlite_workspace).submit("acme", "fax", {})


def test_events_after_the_built_date_move_the_next_build_forward(
        ingested_copy: Container, split_demo: Any) -> None:
    c = ingested_copy
    _, _, held_app = split_demo
    assert Build(c).build("acme").as_of == dt.date(2026, 10, 30)
    login = {k: v for k, v in held_app[0].items() if k != "event_id"}
    login.update(event_id="E-late", event_type="login", event_time="2026-11-02T10:00:00+08:00")
    events = Events(c)
    assert events.submit("acme", "app_event", login).status == "pending"
    done = events.process("acme")
    assert done.applied == 1 and done.as_of == dt.date(2026, 11, 2)
    customer = login["customer_id"]
    with c.engine.connect() as conn:
        as_of, features = profiles_repo.profile(conn, "acme", customer)  # type: ignore[misc]
    assert as_of == dt.date(2026, 11, 2)
    assert json.loads(features)["days_since_last_login"] == 0
    nightly = Build(c).build("acme")  # the default date now includes the event
    assert nightly.as_of == dt.date(2026, 11, 2) and nightly.served


def test_a_new_listing_reaches_the_running_worker(ingested_copy: Container,
                                                  split_demo: Any, tmp_path: Path) -> None:
    c = ingested_copy
    _, held_chat, _ = split_demo
    path = config_path(c, "acme")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(default_text().rstrip() + "\n  xinrui:\n    name: 关注新锐科技\n"
                    "    kind: text\n    version: 1\n    labels: ['security:301999']\n", "utf-8")
    Build(c).build("acme")
    events = Events(c)  # one worker, many micro-batches
    events.submit_many("acme", "chat_message", held_chat[:3])
    events.process("acme")
    listing = tmp_path / "securities_new.csv"
    listing.write_text("security_code,exchange,short_name,security_type,board\n"
                       "301999,SZ,新锐科技,stock,chinext\n", "utf-8")
    Ingest(c).ingest("acme", [listing])
    chat = {**held_chat[3], "msg_id": "M-new-listing", "content": "新锐科技能买吗",
            "sender": "customer", "msg_type": "text"}
    events.submit("acme", "chat_message", chat)
    events.process("acme")
    with c.engine.connect() as conn:
        tags = profiles_repo.assignments(conn, "acme", customer_id=chat["customer_id"])
    evidence = [json.loads(t["evidence_json"]) for t in tags if t["tag_id"] == "xinrui"]
    assert evidence and evidence[0]["message_id"] == "M-new-listing"
    assert (evidence[0]["label"], evidence[0]["matched"]) == ("security:301999", "新锐科技")

