"""The audit hash chain: any edit, deletion, insertion or reordering is found and named."""

from __future__ import annotations

import dataclasses
import datetime as dt

from caifu.core.audit import GENESIS, AuditEntry, StoredEntry, check_entry, entry_hash, verify_chain

T0 = dt.datetime(2026, 11, 26, 1, 0)


def _chain(n: int) -> list[StoredEntry]:
    out, prev = [], GENESIS
    for i in range(1, n + 1):
        e = AuditEntry(i, "acme", T0 + dt.timedelta(seconds=i), f"user{i}", "unmask",
                       (f"C{i}",), ("name", "mobile"), "核对身份：客户来电", f"req-{i}")
        h = entry_hash(e, prev)
        out.append(StoredEntry(e, prev, h))
        prev = h
    return out


def test_an_intact_chain_verifies() -> None:
    report = verify_chain(_chain(5))
    assert report.ok and report.records == 5


def test_the_hash_is_sha256_of_canonical_json() -> None:
    e = AuditEntry(1, "acme", T0, "张三", "unmask", ("C1",), ("name",), "理由", "r1")
    body = e.canonical(GENESIS).decode()
    # sorted keys, no spaces, Chinese kept as UTF-8: the bytes a regulator recomputes
    assert body.startswith('{"action":"unmask","actor":"张三","at":"2026-11-26T01:00:00.000000"')
    assert len(entry_hash(e, GENESIS)) == 64 and entry_hash(e, GENESIS) != entry_hash(e, "1" * 64)


def test_an_edited_field_is_found() -> None:
    chain = _chain(5)
    edited = dataclasses.replace(chain[2].entry, reason="（已删改）")
    chain[2] = StoredEntry(edited, chain[2].prev_hash, chain[2].hash)
    report = verify_chain(chain)
    assert report.problems == ["record 3: its content does not match its hash (the record was edited)"]


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link() -> None:
    chain = _chain(5)
    edited = dataclasses.replace(chain[1].entry, customer_ids=("C999",))
    chain[1] = StoredEntry(edited, chain[1].prev_hash, entry_hash(edited, chain[1].prev_hash))
    report = verify_chain(chain)
    assert len(report.problems) == 1 and report.problems[0].startswith("record 3: its previous-hash")


def test_a_deleted_record_is_found() -> None:
    chain = _chain(5)
    del chain[2]
    problems = verify_chain(chain).problems
    assert problems[0] == "record 4: follows 2 — 1 record(s) missing"
    assert problems[1].startswith("record 4: its previous-hash")


def test_reordered_records_are_found() -> None:
    chain = _chain(4)
    chain[1], chain[2] = chain[2], chain[1]
    assert not verify_chain(chain).ok


def test_entries_are_checked_before_writing() -> None:
    needs = {"unmask": True}
    assert check_entry("unmask", "张三", "核对身份", ["C1"], needs) == []
    assert check_entry("unmask", "张三", "", ["C1"], needs) == [
        "unmask needs a reason (at least 4 characters), recorded with it"]
    assert check_entry("peek", " ", "", [""], needs) == [
        "unknown audit action 'peek'; known: campaign_send, configure, delete_request, export, "
        "flag_review, key_create, key_revoke, link, login, recommend_dismiss, recommend_send, "
        "recommend_view, risk_classify, risk_reference, risk_task, search, "
        "sidebar_view, unlink, unmask",
        "an audit record needs an actor (who did it)",
        "empty customer id in an audit record"]
