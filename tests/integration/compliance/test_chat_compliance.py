"""Chat intake: decrypted archive lines in, every line accounted for, messages on the
real-time path, the advisor's risky phrases queued for review, the customer's own ID number
an alert — with nothing sensitive in the queue. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import time

from sqlalchemy import insert

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.core.ids import resident_id_for
from caifu.services.compliance import audit
from caifu.services.compliance.chat_review import (
    QUEUE_CATEGORY,
    _violations,
    decide,
    intake_archive,
    review_queue,
)
from caifu.services.container import Container
from caifu.services.ingest.realtime import Events
from caifu.text.hybrid import MessageTags

T = CONTRACT_TABLES
ID = resident_id_for("110105", dt.date(1980, 1, 2), 123)


def _seed(c: Container) -> None:
    with c.engine.begin() as conn:
        conn.execute(insert(T["branches"]).values(tenant_id="acme", branch_id="YYB001",
                                                  name="一部"))
        conn.execute(insert(T["advisors"]).values(
            tenant_id="acme", advisor_id="TG00001", name="李投顾", branch_id="YYB001",
            wecom_userid="wx_tg00001", status="active"))
        conn.execute(insert(T["customers"]).values(
            tenant_id="acme", customer_id="C1", name="王一", customer_type="individual",
            id_type="resident_id", id_number=ID, mobile="13812345678", branch_id="YYB001",
            advisor_id="TG00001", opened_on=dt.date(2024, 1, 2), channel="app",
            status="normal"))
        conn.execute(insert(T["wecom_follows"]).values(
            tenant_id="acme", advisor_id="TG00001", external_userid="wmC1", customer_id="C1",
            added_at=dt.datetime(2025, 1, 1), status="active"))


def _line(msgid: str, sender: str, text: str, minutes_ago: int = 5, room: str = "") -> str:
    src, to = ("wx_tg00001", "wmC1") if sender == "advisor" else ("wmC1", "wx_tg00001")
    at = int((time.time() - minutes_ago * 60) * 1000)
    return json.dumps({"msgid": msgid, "action": "send", "from": src, "tolist": [to],
                       "roomid": room, "msgtime": at, "msgtype": "text",
                       "text": {"content": text}}, ensure_ascii=False)


def test_archive_intake_flags_and_accounts_for_every_line(workspace: Container) -> None:
    c = workspace
    _seed(c)
    lines = [
        _line("m1", "advisor", "这只产品保本保收益，稳赚不赔，放心买"),
        _line("m2", "advisor", "我们不承诺保本，市场有风险，投资需谨慎"),
        _line("m3", "customer", f"好的，我的身份证号是{ID}，帮我看看"),
        _line("m4", "customer", "今天创业板怎么跌这么多"),
        _line("m5", "advisor", "群里说一下", room="wrRoom1"),
        "{not json",
        _line("m1", "advisor", "这只产品保本保收益，稳赚不赔，放心买"),  # re-delivered
    ]
    r = intake_archive(c, "acme", lines)
    assert r.lines == 7 and r.messages == 4
    assert sorted(x["reason"].split(":")[0] for x in r.rejected) == ["line", "roomid"]
    assert sum(r.skipped.values()) == 1
    assert r.messages + len(r.rejected) + sum(r.skipped.values()) == r.lines
    assert (r.events_pending, r.events_rejected) == (4, 0)
    assert r.flags["review"] >= 1 and r.flags["alert"] == 1
    queue = review_queue(c, "acme")
    by_msg = {(f["msg_id"], f["action"]) for f in queue}
    assert ("m1", "review") in by_msg and ("m3", "alert") in by_msg
    assert not any(f["msg_id"] in {"m2", "m4"} for f in queue)  # negated, and plain chat
    assert all(ID not in f["excerpt"] for f in queue)
    assert {f["customer_id"] for f in queue} == {"C1"}
    # the messages are on the real-time path for the customer's tags
    assert Events(c).pending("acme") == 4
    # the same lines again: no new flags
    intake_archive(c, "acme", lines)
    assert len(review_queue(c, "acme")) == len(queue)
    # a reviewer decides, audited
    flag = next(f for f in queue if f["msg_id"] == "m1")
    decide(c, "acme", flag["flag_id"], "confirmed", "acme.compliance", "承诺保本，已约谈")
    assert flag["flag_id"] not in {f["flag_id"] for f in review_queue(c, "acme")}
    assert review_queue(c, "acme", status="confirmed")[0]["reviewed_by"] == "acme.compliance"
    last = audit.records(c, "acme")[-1].entry
    assert (last.action, last.customer_ids) == ("flag_review", ("C1",))


def test_a_tenants_own_lexicon_extends_the_default(workspace: Container) -> None:
    """Compliance adds a phrase for its tenant; the version it wrote is on every flag."""
    c = workspace
    _seed(c)
    (c.root / "compliance").mkdir()
    (c.root / "compliance" / "acme.yaml").write_text(
        'format: 1\nversion: "acme-2026.11"\nextends: default\n'
        "categories:\n  guaranteed_return:\n    phrases: [包你回本]\n", "utf-8")
    r = intake_archive(c, "acme", [_line("t1", "advisor", "这次跟着我买，包你回本")])
    assert r.lexicon_version == "acme-2026.11" and r.flags["review"] >= 1
    # the tenant's phrase is the lexicon's flag (the model may add its own beside it:
    # "跟着我买" reads as certainty to it)
    (flag,) = [f for f in review_queue(c, "acme") if f["source"] == "lexicon"]
    assert (flag["phrase"], flag["category"], flag["lexicon_version"]) == (
        "包你回本", "guaranteed_return", "acme-2026.11")


def test_the_model_catches_paraphrase_and_product_types_are_not_promises(
        workspace: Container) -> None:
    """Advisor lines from the labelled corpus (caifu/data/text/corpus): every test-split line
    labelled with a violation that the lexicon has no phrase for (14 of them; pages the model
    never saw) — the model queues most of them (11 when written; at least half asserted), each
    with its score and n-grams quoting the message; a fund that is not capital-protected and a
    disclaimer (train split, labelled no violation) are not queued although they say 保本."""
    from caifu.text.compliance import default_lexicon
    from caifu.text.corpus import load_corpus
    from caifu.text.taxonomy import default_taxonomy

    c = workspace
    _seed(c)
    lexicon = default_lexicon()
    paraphrases = {f"p{k}": i.text for k, i in enumerate(
        i for i in load_corpus(None, default_taxonomy()).split("test", "advisor")
        if i.labels["violations"] and not [f for f in lexicon.check(i.text, "advisor")
                                           if not f.negated])}
    assert len(paraphrases) >= 10
    r = intake_archive(c, "acme", [
        *(_line(m, "advisor", text) for m, text in paraphrases.items()),
        _line("n1", "advisor", "这款基金本来就不保本,合同里写得很清楚"),
        _line("n2", "advisor", "不承诺保本保息,风险由投资者自行承担"),
        _line("l1", "advisor", "这只产品保本保收益，稳赚不赔，放心买"),
    ])
    assert r.model_version and r.lexicon_version == "2026.1"
    queue = review_queue(c, "acme")
    queued = {f["msg_id"] for f in queue}
    assert "l1" in queued and not queued & {"n1", "n2"}
    caught = queued & set(paraphrases)
    assert len(caught) >= len(paraphrases) / 2, (len(caught), len(paraphrases))
    for f in queue:
        if f["msg_id"] not in paraphrases:
            continue
        assert f["source"] == "model" and f["model_version"] == r.model_version
        (ev,) = f["evidence"]
        assert ev["source"] == "model" and ev["score"] > 0
        text = paraphrases[f["msg_id"]]
        assert all(text[g["span"][0]:g["span"][1]] == g["matched"] for g in ev["ngrams"])
    lexicon_flags = [f for f in queue if f["msg_id"] == "l1"]
    assert {f["source"] for f in lexicon_flags} == {"lexicon"}
    assert {f["phrase"] for f in lexicon_flags} >= {"保本", "稳赚不赔"}
    for f in lexicon_flags:
        hit = f["evidence"][0]
        assert hit["source"] == "lexicon" and hit["matched"] == f["phrase"]
        assert hit["rule"].endswith(f":{f['phrase']}")


def test_taxonomy_violations_map_onto_the_queue_categories() -> None:
    """The queue keeps the lexicon's category names; private_dealing is the one new name."""
    assert QUEUE_CATEGORY == {
        "guaranteed_return": "guaranteed_return", "certainty": "certainty",
        "profit_sharing": "profit_sharing", "private_dealing": "private_dealing",
        "inside_info": "inside_information", "misleading_performance": "exaggeration",
        "off_platform": "off_platform"}
    tags = MessageTags(violations=["private_dealing"], evidence={"private_dealing": [
        {"source": "lexicon", "rule": "profit_sharing:帮你操作", "span": [8, 12],
         "matched": "帮你操作"},
        {"source": "model", "score": 0.7, "ngrams": []}]})
    ((finding, category, source, evidence, key),) = _violations(tags, "m1")
    assert (category, source, finding.phrase, (finding.start, finding.end)) == (
        "private_dealing", "lexicon", "帮你操作", (8, 12))
    assert [e["source"] for e in evidence] == ["lexicon", "model"]
    assert key == "m1|profit_sharing|帮你操作|8"  # the id the lexicon alone gave it
