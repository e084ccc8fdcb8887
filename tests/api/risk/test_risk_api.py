"""The risk news routes: a JSON array or JSON Lines body taken in and accounted for, the
stories with their sources, rejected documents — and who may call which."""

from __future__ import annotations

import json

import pytest

from caifu.api.schemas.risk import IntakeReceipt, StoryDetail
from tests.api.profiles.test_customers import _token
from tests.integration.risk.test_intake import NEWS


def _short(doc: dict[str, str]) -> dict[str, str]:
    """The fixture's document with its body cut to stay under the test app's 10 kB body."""
    return {**doc, "body": doc["body"][:300]}


@pytest.mark.real_socket
def test_intake_stories_and_rejections_over_http(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    ops = _token(http, "acme.ops")
    body = [_short(NEWS[0]), _short(NEWS[1]), {"title": "缺少时间", "url": "https://x.cn/1"}]
    r = http.post("/v1/risk/documents", json=body, headers=ops)
    assert r.status_code == 200, r.text
    receipt = IntakeReceipt.model_validate(r.json())
    assert (receipt.received, receipt.stored, receipt.rejected, receipt.balanced) == (
        3, 2, 1, True)
    assert (receipt.new_stories, receipt.folded_near) == (1, 1)
    assert receipt.rejections[0].model_dump() == {
        "where": "item 3", "field": "published", "reason": "MISSING_PUBLISHED",
        "message": receipt.rejections[0].message}
    # JSON Lines: the same two documents again are duplicates, a broken line is kept
    lines = (json.dumps(_short(NEWS[0]), ensure_ascii=False) + "\n{oops\n").encode()
    r = http.post("/v1/risk/documents", content=lines,
                  headers={**ops, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    assert (r.json()["duplicates"], r.json()["rejected"]) == (1, 1)
    assert r.json()["rejections"][0]["where"] == "line 2"

    advisor = _token(http, "acme.advisor")
    page = http.get("/v1/risk/stories", headers=advisor).json()
    assert page["total"] == 1 and page["items"][0]["document_count"] == 2
    story = http.get(f"/v1/risk/stories/{page['items'][0]['story_id']}", headers=advisor)
    detail = StoryDetail.model_validate(story.json())
    assert [s.site for s in detail.sources] == ["m.nbd.com.cn", "m.yjbys.cc"]
    assert detail.first_published_at == "2025-03-31T12:00:00Z"
    assert http.get("/v1/risk/stories/s" + "0" * 31, headers=advisor).status_code == 404

    assert http.get("/v1/risk/rejections", headers=advisor).status_code == 403
    rej = http.get("/v1/risk/rejections", headers=_token(http, "acme.compliance")).json()
    assert rej["total"] == 2 and {r["reason"] for r in rej["items"]} == {
        "MISSING_PUBLISHED", "NOT_JSON"}
    assert {r["raw"] for r in rej["items"]} >= {"{oops"}


def test_who_may_take_in_risk_news(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    doc = [_short(NEWS[2])]
    for user, status in (("acme.ops", 200), ("acme.admin", 200), ("acme.advisor", 403),
                         ("acme.bm", 403), ("acme.compliance", 403), ("root.admin", 403)):
        r = http.post("/v1/risk/documents", json=doc, headers=_token(http, user))
        assert r.status_code == status, (user, r.text)
    r = http.post("/v1/risk/documents", json=doc, headers=_token(http, "acme.ops"))
    assert r.json()["duplicates"] == 1  # the admin's copy was stored once


def test_a_body_over_the_limit_and_an_array_that_does_not_parse(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    ops = _token(http, "acme.ops")
    r = http.post("/v1/risk/documents", json=[NEWS[0]] * 20, headers=ops)
    assert r.status_code == 413
    r = http.post("/v1/risk/documents", content=b'[{"title": 1},', headers=ops)
    assert r.status_code == 400 and r.json()["error"]["code"] == "source.unreadable"
