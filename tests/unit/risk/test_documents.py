"""One document checked: every rejection reason names its field, times are read in the
tenant's zone when they carry none, and stories' matching text ignores width, punctuation
and traditional characters."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from caifu.adapters.sources import news
from caifu.core.errors import SchemaMismatchError, UnreadableSourceError
from caifu.risk import stories
from caifu.risk.documents import Document, Rejection, check, parse_time

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 3, 1, 4, 0)  # naive UTC
GOOD = {"title": "美晨科技收到立案告知书", "url": "https://example.com/a/1",
        "published": "2025-03-31T20:00:00+08:00", "body": "正文"}


def _check(**change: object) -> Document | Rejection:
    record = {**GOOD, **change}
    return check({k: v for k, v in record.items() if v is not None}, "line 7", SH, NOW)


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"title": None}, "title", "MISSING_TITLE"),
    ({"title": "   "}, "title", "MISSING_TITLE"),
    ({"published": None}, "published", "MISSING_PUBLISHED"),
    ({"published": "三月三十一日"}, "published", "BAD_TIME"),
    ({"published": "2025-02-30 10:00"}, "published", "BAD_TIME"),
    ({"published": "2026-03-02T12:00:00+08:00"}, "published", "FUTURE_TIME"),
    ({"body": "字" * 200_001}, "body", "BODY_TOO_LARGE"),
    ({"url": None}, "url", "MISSING_URL"),
    ({"url": "ftp://example.com/x"}, "url", "BAD_URL"),
    ({"url": "example.com/x"}, "url", "BAD_URL"),
    ({"url": "https://exa mple.com/x"}, "url", "BAD_URL"),
    ({"url": "https://[::1/x"}, "url", "BAD_URL"),
    ({"title": ["a"]}, "title", "BAD_FIELD"),
    ({"language": "中文"}, "language", "BAD_FIELD"),
])
def test_each_rejection_names_the_field_and_the_rule(change: dict[str, object], field: str,
                                                      reason: str) -> None:
    got = _check(**change)
    assert isinstance(got, Rejection), got
    assert (got.where, got.field, got.reason) == ("line 7", field, reason)
    assert got.text().startswith(f"line 7, field {field!r}: {reason}: ")


def test_not_an_object() -> None:
    got = check(["a"], "item 2", SH, NOW)
    assert isinstance(got, Rejection) and got.reason == "NOT_OBJECT" and got.field is None


def test_a_time_without_a_zone_is_read_in_the_tenants_zone() -> None:
    zoneless = _check(published="2025-03-31 20:00")
    given = _check(published="2025-03-31T20:00:00+08:00")
    assert isinstance(zoneless, Document) and isinstance(given, Document)
    assert zoneless.published_at == given.published_at == dt.datetime(2025, 3, 31, 12, 0)
    assert (zoneless.published_zone, given.published_zone) == ("Asia/Shanghai", "given")
    ny = check(GOOD | {"published": "2025-03-31 20:00"}, "line 1", ZoneInfo("America/New_York"),
               NOW)
    assert isinstance(ny, Document) and ny.published_at == dt.datetime(2025, 4, 1, 0, 0)


@pytest.mark.parametrize(("text", "utc"), [
    ("2025-03-31T12:00:00Z", dt.datetime(2025, 3, 31, 12)),
    ("2025/3/31 20:00", dt.datetime(2025, 3, 31, 12)),
    ("2025年3月31日 20:00", dt.datetime(2025, 3, 31, 12)),
    ("2025-03-31", dt.datetime(2025, 3, 30, 16)),
    ("1743422400", dt.datetime(2025, 3, 31, 12)),
    ("1743422400000", dt.datetime(2025, 3, 31, 12)),
])
def test_time_forms(text: str, utc: dt.datetime) -> None:
    assert parse_time(text, SH)[0] == utc


def test_a_good_document_keeps_its_fields_and_its_site() -> None:
    got = _check(source=None, url="https://WWW.Example.com:8443/a?b=1", language="zh",
                 script="Hant")
    assert isinstance(got, Document)
    assert (got.site, got.source, got.language, got.script) == (
        "www.example.com", "www.example.com", "zh", "Hant")


def test_matching_text_ignores_width_punctuation_and_script() -> None:
    assert stories.matching_text("美晨科技稱，其收到《立案告知書》！ ＡＢ") == "美晨科技称其收到立案告知书ab"
    assert stories.content_hash("標題", "正文，一") == stories.content_hash("标题", "正文, 一")
    assert stories.content_hash("标题", "一") != stories.content_hash("标题一", "")


def test_signatures_are_stable_and_bands_cover_the_signature() -> None:
    a = stories.signature("美晨科技收到立案告知书", "因公司涉嫌信息披露违法违规")
    assert a == stories.signature("美晨科技收到立案告知书", "因公司涉嫌信息披露违法违规")
    assert len(a) == stories.NUM_PERM * 4 and stories.similarity(a, a) == 1.0
    keys = stories.bands(a)
    assert len(keys) == stories.BANDS and len({k[:2] for k in keys}) == stories.BANDS
    # ties go to the smallest key, whatever order the candidates come in
    assert stories.best_match(a, [("d2", a), ("d1", a)]) == ("d1", 1.0)
    assert stories.best_match(a, [("d1", stories.signature("别的", "完全不同的文字"))]) is None


def test_json_lines_records_keep_bad_lines_with_their_problem() -> None:
    data = (b'{"title": "a"}\n\n' b'{"title": \n') + b'{"title": "\xff"}\r\n[1]\n'
    recs = news.json_lines(data)
    assert [r.where for r in recs] == ["line 1", "line 3", "line 4", "line 5"]
    assert recs[0].value == {"title": "a"} and recs[0].problem is None
    assert recs[1].problem is not None and recs[1].problem[0] == "NOT_JSON"
    assert recs[2].problem is not None and recs[2].problem[0] == "BAD_ENCODING"
    assert "\\xff" in recs[2].raw
    assert recs[3].value == [1]  # JSON, but the check refuses it as NOT_OBJECT


def test_csv_rows_and_a_header_without_the_required_columns() -> None:
    data = (b"title,url,published,body\n"
            b'a,https://x.cn/1,2025-03-31,"two\nlines"\n') + \
        b"b,https://x.cn/2,2025-03-31,\xb2\xbb\n" + b"c,https://x.cn/3,2025-03-31,x,extra\n"
    recs = news.csv_rows(data, "n.csv")
    assert [r.where for r in recs] == ["row 1 (line 2)", "row 2 (line 4)", "row 3 (line 5)"]
    assert recs[0].value["body"] == "two\nlines"
    assert recs[1].problem == ("BAD_ENCODING", "body", "bytes that are not utf-8")
    assert recs[2].problem is not None and recs[2].problem[0] == "BAD_FIELD"
    with pytest.raises(SchemaMismatchError, match="no published column"):
        news.csv_rows(b"title,url\na,b\n", "n.csv")
    with pytest.raises(UnreadableSourceError, match="not a JSON array"):
        news.body_records(b'[{"title": 1},', "body")
