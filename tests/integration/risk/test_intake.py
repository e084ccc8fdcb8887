"""The risk news intake on real news (``news_fixture.jsonl``, see its README): counts balance,
rejected documents are kept, exact and near copies fold into one story with every source,
the same input gives the same stories, stories grow across batches, and another tenant never
sees or folds into them. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from caifu.adapters.sor.risk_models import risk_batches, risk_rejections
from caifu.core.clock import FixedClock
from caifu.core.errors import NotFoundError
from caifu.services.container import Container
from caifu.services.platform.workspace import create_tenant
from caifu.services.risk.intake import Intake, get_story, list_rejections, list_stories

pytestmark = pytest.mark.dialect  # SQL: candidates by band, counts, row-level security

FIXTURE = Path(__file__).with_name("news_fixture.jsonl")
NEWS = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
NOW = dt.datetime(2026, 3, 1, 4, 0)


def _lines(docs: list[dict[str, str]]) -> bytes:
    return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode()


def _write(tmp_path: Path, name: str, docs: list[dict[str, str]]) -> Path:
    path = tmp_path / name
    path.write_bytes(_lines(docs))
    return path


@pytest.fixture
def c(workspace: Container) -> Container:
    workspace.clock = FixedClock(NOW)
    return workspace


def _story_of(c: Container, tenant: str) -> dict[str, str]:
    """fixture key → story id, through the stories' sources."""
    out = {}
    by_url = {d["url"]: d["key"] for d in NEWS}
    for s in list_stories(c, tenant, 500)["items"]:
        for src in get_story(c, tenant, s["story_id"])["sources"]:
            out[by_url.get(src["url"], src["url"])] = s["story_id"]
    return out


def test_real_reposts_fold_into_one_story_with_every_source(c: Container,
                                                            tmp_path: Path) -> None:
    report = Intake(c).take_file("acme", _write(tmp_path, "news.jsonl", NEWS))
    assert (report.received, report.stored, report.duplicates, report.rejected) == (9, 9, 0, 0)
    assert (report.new_stories, report.folded_exact, report.folded_near) == (7, 0, 2)
    stories = _story_of(c, "acme")
    expected: dict[str, set[str]] = {}
    for d in NEWS:
        expected.setdefault(d["story"], set()).add(d["key"])
    got: dict[str, set[str]] = {}
    for key, sid in stories.items():
        got.setdefault(sid, set()).add(key)
    assert sorted(map(sorted, got.values())) == sorted(map(sorted, expected.values()))
    meichen = get_story(c, "acme", stories["meichen_nbd"])
    assert meichen["document_count"] == 2 and meichen["site_count"] == 2
    assert [(s["site"], s["fold"]) for s in meichen["sources"]] == [
        ("m.nbd.com.cn", "first"), ("m.yjbys.cc", "near")]
    assert meichen["title"] == NEWS[0]["title"]  # the first published copy founds the story
    assert meichen["first_published_at"] == dt.datetime(2025, 3, 31, 12, 0)  # 20:00 Shanghai
    assert meichen["last_published_at"] == dt.datetime(2025, 4, 1, 1, 0)
    assert 0.6 <= meichen["sources"][1]["similarity"] < 1
    assert meichen["event_type"] is None and meichen["companies"] is None  # later stages


def test_exact_copies_duplicates_and_balance(c: Container, tmp_path: Path) -> None:
    intake = Intake(c)
    first = intake.take_file("acme", _write(tmp_path, "a.jsonl", NEWS[:1]))
    # the same words re-posted elsewhere with full-width punctuation and spaces: exact
    copy = {**NEWS[0], "url": "https://finance.example.cn/a/1.html",
            "title": NEWS[0]["title"].replace(",", "，").replace("(", "（ "),
            "body": NEWS[0]["body"].replace("\n", "\n\n")}
    again = intake.take_file("acme", _write(tmp_path, "b.jsonl", [NEWS[0], copy, copy]))
    assert (again.received, again.stored, again.duplicates, again.rejected) == (3, 1, 2, 0)
    assert again.folded_exact == 1 and again.balanced
    assert {d["story_id"] for d in again.documents if d["story_id"]} == {
        first.documents[0]["story_id"]}
    with c.engine.connect() as conn:
        rows = conn.execute(select(risk_batches.c.received, risk_batches.c.stored,
                                   risk_batches.c.duplicates, risk_batches.c.rejected)
                            .order_by(risk_batches.c.received)).all()
    assert [tuple(r) for r in rows] == [(1, 1, 0, 0), (3, 1, 2, 0)]


def test_bad_documents_are_kept_with_file_line_field_and_reason(c: Container,
                                                                tmp_path: Path) -> None:
    good = NEWS[0]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(_lines([good]) + b"not json\n" + _lines([
        {**good, "title": ""}, {**good, "published": None}, {**good, "published": "昨天"},
        {**good, "published": "2027-01-01T00:00:00+08:00"}, {**good, "body": "长" * 200_001},
        {**good, "url": "javascript:alert(1)"}]) + b'{"title": "\xe7\xab"}\n' + b"[1, 2]\n")
    report = Intake(c).take_file("acme", path)
    assert (report.received, report.stored, report.rejected) == (10, 1, 9)
    assert [(r.where, r.field, r.reason) for r in report.rejections] == [
        ("line 2", None, "NOT_JSON"), ("line 3", "title", "MISSING_TITLE"),
        ("line 4", "published", "MISSING_PUBLISHED"), ("line 5", "published", "BAD_TIME"),
        ("line 6", "published", "FUTURE_TIME"), ("line 7", "body", "BODY_TOO_LARGE"),
        ("line 8", "url", "BAD_URL"), ("line 9", None, "BAD_ENCODING"),
        ("line 10", None, "NOT_OBJECT")]
    page = list_rejections(c, "acme", report.batch_id[:10])
    assert page["total"] == 9
    by_where = {r["location"]: r for r in page["items"]}
    assert by_where["line 2"]["raw"] == "not json" and by_where["line 2"]["origin"] == "mixed.jsonl"
    assert by_where["line 9"]["raw"] == '{"title": "\\xe7\\xab"}'
    assert json.loads(by_where["line 3"]["raw"])["url"] == good["url"]


def test_the_same_input_gives_the_same_stories_in_any_order(c: Container,
                                                           tmp_path: Path) -> None:
    create_tenant(c, "beta", "丙丁证券")
    create_tenant(c, "gamma", "戊己证券")
    Intake(c).take_file("acme", _write(tmp_path, "a.jsonl", NEWS))
    Intake(c).take_file("beta", _write(tmp_path, "b.jsonl", NEWS[::-1]))
    for d in NEWS:  # one document per batch, newest first: the index grows across batches
        Intake(c).take_file("gamma", _write(tmp_path, f"g-{d['key']}.jsonl", [d]))
    acme, beta = _story_of(c, "acme"), _story_of(c, "beta")
    assert acme == beta
    gamma = _story_of(c, "gamma")
    assert len(set(gamma.values())) == len(set(acme.values())) == 7
    assert gamma["meichen_yjbys"] == gamma["meichen_nbd"] == acme["meichen_nbd"]


def test_another_tenant_never_sees_or_folds_into_your_stories(c: Container,
                                                              tmp_path: Path) -> None:
    create_tenant(c, "beta", "丙丁证券")
    acme = Intake(c).take_file("acme", _write(tmp_path, "a.jsonl", NEWS[:1]))
    beta = Intake(c).take_file("beta", _write(tmp_path, "b.jsonl", NEWS[:2]))
    assert beta.new_stories == 1 and beta.folded_near == 1 and beta.duplicates == 0
    assert list_stories(c, "beta")["total"] == 1
    sid = acme.documents[0]["story_id"]
    assert get_story(c, "acme", sid)["document_count"] == 1  # beta's copy did not join
    assert get_story(c, "beta", sid)["document_count"] == 2  # the same id, beta's own row
    Intake(c).take_body("beta", b"nonsense\n")
    assert list_rejections(c, "acme")["total"] == 0
    with pytest.raises(NotFoundError):
        get_story(c, "acme", "s" + "0" * 31)


def test_a_story_window_keeps_months_apart_notices_apart(c: Container, tmp_path: Path) -> None:
    later = {**NEWS[1], "published": "2025-05-20 09:00"}  # the same words, seven weeks on
    report = Intake(c).take_file("acme", _write(tmp_path, "w.jsonl", [NEWS[0], later]))
    assert report.new_stories == 2 and report.folded_near == 0
    with c.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(risk_rejections)).scalar() == 0
