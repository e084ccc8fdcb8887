"""The build end to end on a small demo broker: profiles, tags with evidence, history, segments."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from caifu.adapters.sor.models import CONTRACT_TABLES, profile_serving, tag_history
from caifu.adapters.sor.repos import profiles as profiles_repo
from caifu.core.errors import ConfigError
from caifu.core.identity import Principal
from caifu.data.demo import generate
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest
from caifu.services.metrics.query import answer
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.services.profiles.build import Build, BuildResult
from caifu.services.profiles.customers import customer_view
from caifu.services.profiles.segments import Segments, export
from caifu.services.profiles.tag_definitions import config_path, default_text, load_definitions
from caifu.settings import Settings

AS_OF = dt.date(2026, 10, 30)
EARLIER = dt.date(2026, 8, 31)


@pytest.fixture(scope="module")
def demo_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "exports"
    generate(out, customers=800, seed=5)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory,
          demo_exports: Path) -> Iterator[tuple[Container, BuildResult, BuildResult]]:
    """One SQLite workspace built at an earlier date and then at the newest data."""
    c = init_workspace(tmp_path_factory.mktemp("ws") / "ws", Settings(duckdb_memory_limit="2GB"))
    create_tenant(c, "acme", "甲乙证券")
    Ingest(c).ingest("acme", [demo_exports])
    Segments(c).save("acme", "rich_sleepers", "沉睡高净值", "tag:dormant and aum >= 100000")
    Segments(c).save("acme", "chinext_leads", "创业板线索",
                     "tag:interest_chinext and not chinext_opened")
    earlier = Build(c).build("acme", as_of=EARLIER)
    latest = Build(c).build("acme")
    yield c, earlier, latest
    c.close()


def _count(c: Container, table: str, **where: object) -> int:
    t = CONTRACT_TABLES[table]
    q = select(func.count()).select_from(t).where(t.c.tenant_id == "acme")
    for k, v in where.items():
        q = q.where(t.c[k] <= v)
    with c.engine.connect() as conn:
        return int(conn.execute(q).scalar() or 0)


def test_build_covers_every_customer_opened_by_the_date(built) -> None:  # type: ignore[no-untyped-def]
    c, earlier, latest = built
    assert latest.as_of == AS_OF  # the newest trade date, not today's date
    assert latest.customers == _count(c, "customers", opened_on=AS_OF)
    assert earlier.customers == _count(c, "customers", opened_on=EARLIER) < latest.customers
    with c.engine.connect() as conn:
        served = conn.execute(select(func.count(), func.min(profile_serving.c.as_of))
                              .where(profile_serving.c.tenant_id == "acme")).one()
    assert tuple(served) == (latest.customers, AS_OF)
    snapshots = ds.dataset(c.lake.files("acme", "profile_features"), format="parquet").to_table()
    assert sorted(snapshots["as_of"].unique().to_pylist()) == [EARLIER, AS_OF]
    assert snapshots.num_rows == earlier.customers + latest.customers


def test_rule_tag_evidence_satisfies_the_rule(built) -> None:  # type: ignore[no-untyped-def]
    c, _, latest = built
    with c.engine.connect() as conn:
        rows = profiles_repo.assignments(conn, "acme", tag_ids=["high_net_worth", "dormant"])
    assert {r["tag_id"] for r in rows} == {"high_net_worth", "dormant"}
    for r in rows:
        ev = json.loads(r["evidence_json"])
        assert (ev["definition"], ev["version"]) == (r["tag_id"], 1)
        f = ev["features"]
        if r["tag_id"] == "high_net_worth":
            assert Decimal(f["aum"]) >= 1_000_000
        else:
            assert Decimal(f["aum"]) > 0
            assert f["last_trade_date"] is None or f["days_since_last_trade"] >= 180
    assert latest.tags["high_net_worth"] == sum(r["tag_id"] == "high_net_worth" for r in rows)


def test_text_tag_evidence_points_at_the_message(built) -> None:  # type: ignore[no-untyped-def]
    from caifu.services.text.models import model_dir
    from caifu.text.classifier import TextModel

    c, _, latest = built
    messages = ds.dataset(c.lake.files("acme", "chat_messages"), format="parquet").to_table()
    content = dict(zip(messages["msg_id"].to_pylist(), messages["content"].to_pylist(),
                       strict=True))
    sender = dict(zip(messages["msg_id"].to_pylist(), messages["sender"].to_pylist(),
                      strict=True))
    definitions = {d.id: d for d in load_definitions(c, "acme")[0]}
    version = TextModel.load(model_dir(c, "acme")).version
    with c.engine.connect() as conn:
        rows = [r for r in profiles_repo.assignments(conn, "acme") if r["kind"] == "text"]
    assert latest.tags["interest_chinext"] > 0 and latest.tags["intent_redeem"] > 0
    for r in rows:
        ev = json.loads(r["evidence_json"])
        text = content[ev["message_id"]]
        assert ev["label"] in definitions[r["tag_id"]].spec.labels  # type: ignore[union-attr]
        assert ev["model_version"] == version
        assert ev["sources"] and set(ev["sources"]) <= {"dictionary", "model"}
        if "matched" in ev:  # a dictionary's span, exactly as written
            assert text[ev["start"]:ev["end"]] == ev["matched"]
        if "model" in ev["sources"]:  # the classifier's score and its top n-grams
            assert 0 < ev["score"] <= 1
            for g in ev["ngrams"]:
                assert text[g["span"][0]:g["span"][1]] == g["matched"]
        assert "matched" in ev or ev["ngrams"]
        assert sender[ev["message_id"]] == "customer"
        assert ev["mentions"] >= 1
        msg_day = (dt.datetime.fromisoformat(ev["msg_time"]) + dt.timedelta(hours=8)).date()
        assert 0 <= (AS_OF - msg_day).days < 90
        # a tag is never stored already lapsed: it holds at least through the local day as_of
        assert r["expires_at"] >= dt.datetime.combine(AS_OF + dt.timedelta(days=1),
                                                      dt.time()) - dt.timedelta(hours=8)


def test_chinext_interest_points_at_chinext_talk(built, demo_exports: Path) -> None:  # type: ignore[no-untyped-def]
    """The demo's chats are labelled corpus lines; their labels are the ground truth. A
    ChiNext interest stands on a message about ChiNext, never on one labelled otherwise."""
    c, _, _ = built
    truth = {r["msg_id"]: r for r in
             pq.read_table(demo_exports / "_ground_truth" / "chat_labels.parquet").to_pylist()}
    assert any(r["label"] == "chinext_question" for r in truth.values()), \
        "the demo should contain ChiNext questions that are not permission requests"
    with c.engine.connect() as conn:
        rows = profiles_repo.assignments(conn, "acme", tag_ids=["interest_chinext"])
    assert rows
    for r in rows:
        ev = json.loads(r["evidence_json"])
        assert "chinext" in truth[ev["message_id"]]["interests"], ev


# tags whose customers the demo's ground truth names: a message built from corpus lines
# carrying one of the tag's labels
DEMO_TAGS = ("interest_chinext", "intent_open_permission", "intent_level2", "intent_redeem",
             "intent_open_account", "intent_add")


@pytest.mark.parametrize("tag_id", DEMO_TAGS)
def test_text_tags_find_the_demo_customers_who_said_it(built, demo_exports: Path,  # type: ignore[no-untyped-def]
                                                       tag_id: str) -> None:
    """Customers with a message whose corpus labels carry one of the tag's labels, in the
    tag's window, hold it (the demo's lines are train-split lines: this checks the wiring from
    message to tag, not the tagger's quality, which ``caifu text evaluate`` measures)."""
    from caifu.pipelines.tags import window

    c, _, _ = built
    truth = {r["msg_id"]: r for r in
             pq.read_table(demo_exports / "_ground_truth" / "chat_labels.parquet").to_pylist()}
    spec = {d.id: d for d in load_definitions(c, "acme")[0]}[tag_id].spec
    wanted = set(spec.labels)  # type: ignore[union-attr]
    days = window(spec)  # type: ignore[arg-type]
    m = ds.dataset(c.lake.files("acme", "chat_messages"), format="parquet").to_table().to_pylist()
    said = {r["customer_id"] for r in m
            if r["customer_id"] and r["sender"] == "customer" and r["msg_type"] == "text"
            and r["msg_id"] in truth
            and wanted & {v for fam in ("interests", "intents", "emotions")
                          for v in truth[r["msg_id"]][fam]}
            and 0 <= (AS_OF - (r["msg_time"] + dt.timedelta(hours=8)).date()).days < days}
    assert said, f"the demo should have customers who said {tag_id}"
    with c.engine.connect() as conn:
        held = {r["customer_id"] for r in profiles_repo.assignments(conn, "acme", tag_ids=[tag_id])}
    assert len(said & held) >= 0.8 * len(said), (len(said & held), len(said))


def test_history_records_gains_and_losses_by_date(built) -> None:  # type: ignore[no-untyped-def]
    c, earlier, latest = built
    with c.engine.connect() as conn:
        held_then = set(profiles_repo.tags_held_on(conn, "acme", EARLIER))
        held_now = set(profiles_repo.tags_held_on(conn, "acme", AS_OF))
        current = {(r["customer_id"], r["tag_id"]) for r in profiles_repo.assignments(conn, "acme")}
        lost = conn.execute(select(func.count()).select_from(tag_history).where(
            tag_history.c.tenant_id == "acme", tag_history.c.event == "lost")).scalar()
    assert held_now == current
    assert len(held_then) == sum(earlier.tags.values())
    assert sum(latest.lost.values()) == lost == len(held_then - held_now)
    assert sum(latest.gained.values()) == len(held_now - held_then)


def test_rebuilding_the_same_date_changes_nothing(built) -> None:  # type: ignore[no-untyped-def]
    c, _, latest = built
    with c.engine.connect() as conn:
        before = profiles_repo.assignments(conn, "acme")
    again = Build(c).build("acme", as_of=AS_OF)
    with c.engine.connect() as conn:
        after = profiles_repo.assignments(conn, "acme")
    assert again.tags == latest.tags and again.gained == {} and again.lost == {}
    strip = [{k: v for k, v in r.items() if k != "updated_at"} for r in before]
    assert strip == [{k: v for k, v in r.items() if k != "updated_at"} for r in after]


def test_segments_membership_sizes_and_export(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c, earlier, latest = built
    segs = Segments(c)
    day, members = segs.members("acme", "rich_sleepers")
    assert day == AS_OF and members.num_rows == latest.segments["rich_sleepers"] > 0
    with c.engine.connect() as conn:
        dormant = {r["customer_id"] for r in profiles_repo.assignments(conn, "acme", tag_ids=["dormant"])}
    for row in members.select(["customer_id", "aum"]).to_pylist():
        assert row["customer_id"] in dormant and row["aum"] >= 100000
    _, then = segs.members("acme", "rich_sleepers", EARLIER)
    assert then.num_rows == earlier.segments["rich_sleepers"]
    change = segs.size_change("acme", "rich_sleepers", EARLIER, AS_OF)
    assert change.members_before + change.joined - change.left == change.members_after
    # each build date keeps its members in the lake: the segment_size metric of either date
    ops = Principal("acme", "t", "ops")
    for day_, result in ((EARLIER, earlier), (AS_OF, latest)):
        a = answer(c, ops, "segment_size", by=("segment",), grain="all", start=day_,
                   end=day_)
        assert {r["segment"]: r["value"] for r in a.rows} == \
            {k: v for k, v in result.segments.items() if v}
    assert then.num_rows != members.num_rows  # two different sizes, each of its date
    for suffix in (".csv", ".parquet"):
        path = export(members, tmp_path / f"m{suffix}")
        if suffix == ".parquet":
            assert pq.read_table(path)["customer_id"].to_pylist() == members[
                "customer_id"].to_pylist()
        else:
            assert path.read_text("utf-8").count("\n") == members.num_rows + 1
    with pytest.raises(ConfigError, match="no profile for 2026-01-01"):
        segs.members("acme", "rich_sleepers", dt.date(2026, 1, 1))
    with pytest.raises(ConfigError, match="no segment 'nope'"):
        segs.members("acme", "nope")
    with pytest.raises(ConfigError, match="unknown tag 'dormnt'"):
        segs.save("acme", "bad", "bad", "tag:dormnt")


def test_customer_view_masks_personal_data(built) -> None:  # type: ignore[no-untyped-def]
    c, _, _ = built
    with c.engine.connect() as conn:
        cid = profiles_repo.assignments(conn, "acme", tag_ids=["dormant"])[0]["customer_id"]
        t = CONTRACT_TABLES["customers"]
        raw = conn.execute(select(t.c.name, t.c.mobile, t.c.id_number).where(
            t.c.tenant_id == "acme", t.c.customer_id == cid)).one()
    view = customer_view(c, "acme", cid)
    shown = view["customer"]
    assert shown["name"] != raw.name and shown["name"][0] == raw.name[0] and "*" in shown["name"]
    assert shown["mobile"] == raw.mobile[:3] + "****" + raw.mobile[-4:]
    assert shown["id_number"] != raw.id_number and shown["id_number"][-4:] == raw.id_number[-4:]
    assert view["as_of"] == AS_OF and "aum" in view["features"]
    assert "dormant" in {t["tag_id"] for t in view["tags"]}
    assert any(h["tag_id"] == "dormant" and h["event"] == "gained" for h in view["history"])


def test_changing_a_definition_needs_a_new_version(built) -> None:  # type: ignore[no-untyped-def]
    c, _, _ = built
    path = config_path(c, "acme")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.write_text(default_text().replace("when: aum >= 1000000", "when: aum >= 2000000"),
                        "utf-8")
        with pytest.raises(ConfigError, match="high_net_worth changed but is still version 1"):
            Build(c).build("acme")
        text = default_text().replace("when: aum >= 1000000", "when: aum >= 2000000")
        text = text.replace("description: 股票加基金资产不少于 100 万元\n",
                            "description: 股票加基金资产不少于 200 万元\n")
        head, tail = text.split("  high_net_worth:\n", 1)
        path.write_text(head + "  high_net_worth:\n" + tail.replace("version: 1", "version: 2", 1),
                        "utf-8")
        result = Build(c).build("acme")
        with c.engine.connect() as conn:
            rows = profiles_repo.assignments(conn, "acme", tag_ids=["high_net_worth"])
        assert rows and {r["tag_version"] for r in rows} == {2}
        assert all(Decimal(json.loads(r["evidence_json"])["features"]["aum"]) >= 2_000_000
                   for r in rows)
        assert result.tags["high_net_worth"] == len(rows)
    finally:
        path.unlink(missing_ok=True)
        Build(c).build("acme")  # back to the defaults for the other tests


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("tags: [1, 2]", "invalid tag definitions"),
    ("tags:\n  x:\n    name: X\n    kind: magic\n    version: 1\n", "tags.x.kind: must be rule"),
    ("tags:\n  x:\n    name: X\n    kind: rule\n    version: 1\n    when: aum >\n",
     "tags.x.when: expression at column"),
    ("tags:\n  x:\n    name: X\n    kind: text\n    version: 1\n    dictionaries: [board.nope]\n",
     "unknown dictionary 'board.nope'"),
    ("tags:\n  x:\n    name: X\n    kind: text\n    version: 1\n    labels: [redeeem]\n",
     "tags.x.labels: unknown label 'redeeem'; did you mean 'redeem'?"),
    ("tags:\n  x:\n    name: X\n    kind: text\n    version: 1\n    labels: [off_platform]\n",
     "tags.x.labels: 'off_platform' is said by the advisor, but the tag reads customer"),
    ("tags:\n  x:\n    name: X\n    kind: rule\n    version: 0\n    when: aum > 0\n",
     "tags.x.version"),
    ("tags:\n  x:\n    name: X\n    kind: rule\n    version: 1\n    when: aum > 0\n    colour: red\n",
     "colour"),
    ("tags: {a: [}", "not valid YAML"),
])
def test_bad_tag_files_say_what_and_where(sqlite_workspace: Container, yaml_text: str,
                                          message: str) -> None:
    path = config_path(sqlite_workspace, "acme")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml_text, "utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(">", ".")) as info:
        load_definitions(sqlite_workspace, "acme")
    assert str(path) in str(info.value)


@pytest.mark.dialect
def test_build_on_both_systems_of_record(workspace: Container, demo_exports: Path) -> None:
    Ingest(workspace).ingest("acme", [demo_exports])
    result = Build(workspace).build("acme")
    assert result.customers == _count(workspace, "customers", opened_on=result.as_of)
    assert result.tags["dormant"] > 0 and result.tags["interest_chinext"] > 0
    with workspace.engine.connect() as conn:
        assert len(profiles_repo.assignments(conn, "acme")) == sum(result.tags.values())


def test_text_rules_keep_stop_phrases() -> None:
    from caifu.core.tags import parse_definitions
    from caifu.pipelines.profile import FEATURE_KINDS
    from caifu.pipelines.tags import text_rules
    from caifu.text.dictionaries import dictionary_ids, seed_rules
    from caifu.text.tagging import ChatTagger

    defs = parse_definitions(
        {"tags": {"banks": {"name": "银行股", "kind": "text", "version": 1,
                            "dictionaries": ["industry.银行"], "patterns": ["银行"]}}},
        source="t", features=FEATURE_KINDS, dictionaries=set(dictionary_ids()))
    tagger = ChatTagger(text_rules(defs, seed_rules()))
    assert [h.tag for h in tagger.tag("银行板块还能买吗")] == ["banks"]
    assert tagger.tag("我的银行卡绑定不了") == []  # a stop phrase, not interest in banks


def test_model_tags_use_the_latest_score_up_to_the_date() -> None:
    import ibis
    import pyarrow as pa

    from caifu.core.tags import parse_definitions
    from caifu.pipelines.profile import FEATURE_KINDS
    from caifu.pipelines.tags import model_tag_hits

    defs = parse_definitions(
        {"tags": {"churn_risk": {"name": "流失风险高", "kind": "model", "version": 1,
                                 "score": "churn_90d", "min_score": 0.6}}},
        source="t", features=FEATURE_KINDS, dictionaries=set())
    T = dt.datetime  # noqa: N806
    scores = ibis.memtable(pa.table({
        "customer_id": ["a", "a", "b", "c", "d"],
        "score": ["churn_90d"] * 5,
        "value": [0.9, 0.5, 0.7, 0.95, 0.8],
        # a: superseded by a lower score; c: scored after the date; d: 23:30 Shanghai on
        # 10-30 is 15:30 UTC, still that day
        "scored_at": [T(2026, 10, 1), T(2026, 10, 29), T(2026, 10, 29), T(2026, 12, 1),
                      T(2026, 10, 30, 15, 30)],
    }))
    hits = model_tag_hits(scores, defs, AS_OF, 8)
    assert sorted((h.customer_id, h.evidence["value"]) for h in hits) == [("b", 0.7), ("d", 0.8)]


def test_an_older_date_leaves_serving_and_history_alone(built) -> None:  # type: ignore[no-untyped-def]
    c, _, latest = built
    with c.engine.connect() as conn:
        before = profiles_repo.assignments(conn, "acme")
        events = conn.execute(select(func.count()).select_from(tag_history)).scalar()
    old = dt.date(2026, 6, 30)
    result = Build(c).build("acme", as_of=old)
    assert not result.served and "serving rows stay at 2026-10-30" in " ".join(result.notes)
    with c.engine.connect() as conn:
        assert profiles_repo.assignments(conn, "acme") == before
        assert conn.execute(select(func.count()).select_from(tag_history)).scalar() == events
        assert set(profiles_repo.tags_held_on(conn, "acme", AS_OF)) == {
            (r["customer_id"], r["tag_id"]) for r in before}
    # membership on the old date comes from that date's snapshots, whatever the build order
    tags = ds.dataset(c.lake.files("acme", "tag_snapshots"), format="parquet").to_table()
    dormant_then = {r["customer_id"] for r in tags.to_pylist()
                    if r["as_of"] == old and r["tag_id"] == "dormant"}
    assert len(dormant_then) == result.tags["dormant"] > 0
    _, members = Segments(c).members("acme", "rich_sleepers", old)
    assert members.num_rows == result.segments["rich_sleepers"]
    assert set(members["customer_id"].to_pylist()) <= dormant_then

