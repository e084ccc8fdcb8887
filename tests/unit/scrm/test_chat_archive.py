"""caifu.scrm.archive: decrypted chat-archive JSON Lines → chat_messages rows, nothing lost."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
import pytest

from caifu.data.contracts.arrow import contract_schema
from caifu.data.contracts.rows import check_record
from caifu.data.contracts.tables import CHAT_MESSAGES
from caifu.scrm.archive import MAX_LINE_BYTES, ArchiveBatch, Rejection, convert_archive

ADVISORS = {"zhangsan": "ADV001", "lisi_adv": "ADV002"}
CUSTOMER = "wmAbCdEf0123456789abcdefghijkl"
NOW = dt.datetime(2026, 1, 10, 12, 0, 0)
T0 = 1_767_225_600_123  # 2026-01-01 00:00:00.123 UTC in milliseconds


def ms(at: dt.datetime) -> int:
    """Epoch milliseconds of a naive UTC datetime (``.timestamp()`` would read it as local)."""
    return (at - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1)


def msg(msgid: str = "m1", *, frm: str = "zhangsan", to: list[str] | None = None,
        msgtype: str = "text", body: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "msgid": msgid, "action": "send", "from": frm,
        "tolist": [CUSTOMER] if to is None else to, "roomid": "", "msgtime": T0,
        "msgtype": msgtype,
    }
    if msgtype == "text" and body is None:
        body = {"content": "您好，我是您的投顾"}
    if body is not None:
        out[msgtype] = body
    out.update(extra)
    return out


def line(m: dict[str, Any]) -> str:
    return json.dumps(m, ensure_ascii=False) + "\n"


def convert(*lines: bytes | str | dict[str, Any]) -> ArchiveBatch:
    raw = [line(x) if isinstance(x, dict) else x for x in lines]
    batch = convert_archive(raw, ADVISORS, now=NOW)
    assert batch.lines == len(raw)
    assert len(batch.rows) + len(batch.rejections) + sum(batch.skipped.values()) == len(raw)
    assert batch.accounted
    return batch


def only_rejection(*lines: bytes | str | dict[str, Any]) -> Rejection:
    batch = convert(*lines)
    assert not batch.rows and not batch.skipped
    (rejection,) = batch.rejections
    return rejection


# --- rows ------------------------------------------------------------------------------------


def test_advisor_text_becomes_a_contract_row() -> None:
    (row,) = convert(msg()).rows
    assert row == {
        "msg_id": "m1", "advisor_id": "ADV001", "external_userid": CUSTOMER,
        "customer_id": None, "msg_time": dt.datetime(2026, 1, 1, 0, 0, 0, 123000),
        "sender": "advisor", "msg_type": "text", "content": "您好，我是您的投顾",
    }


def test_customer_message_is_attributed_to_the_advisor_in_tolist() -> None:
    m = msg(frm=CUSTOMER, to=["lisi_adv"], body={"content": "请问创业板怎么开通"})
    (row,) = convert(m).rows
    assert (row["sender"], row["advisor_id"], row["external_userid"]) == (
        "customer", "ADV002", CUSTOMER)
    assert row["customer_id"] is None  # linking is identity resolution's job


def test_bytes_and_str_lines_are_both_accepted() -> None:
    batch = convert(line(msg("a")).encode("utf-8"), line(msg("b")))
    assert [r["msg_id"] for r in batch.rows] == ["a", "b"]


def test_rows_satisfy_the_chat_messages_contract() -> None:
    kinds = [msg("t"), msg("i", msgtype="image", body={"sdkfileid": "x", "md5sum": "y"}),
             msg("v", msgtype="voice", body={"voice_size": 1, "play_length": 3}),
             msg("f", msgtype="file", body={"filename": "风险揭示书.pdf", "sdkfileid": "x"}),
             msg("l", msgtype="link", body={"title": "观点", "link_url": "https://e.com/a"}),
             msg("r", action="recall", msgtype="revoke", body={"pre_msgid": "t"})]
    rows = convert(*kinds).rows
    assert len(rows) == 6
    for row, m in zip(rows, kinds, strict=True):
        typed, reasons = check_record(CHAT_MESSAGES, {**row, "msg_time": m["msgtime"]},
                                      utc_offset=dt.timedelta(hours=8), now=NOW)
        assert reasons == [], (row, reasons)
        assert typed["msg_time"] == row["msg_time"]  # the contract reads ms the same way
    table = pa.Table.from_pylist(rows, schema=contract_schema(CHAT_MESSAGES))
    assert table.num_rows == 6


@pytest.mark.parametrize(("msgtype", "body", "kind", "content"), [
    ("image", {"sdkfileid": "abc", "md5sum": "0f"}, "image", None),
    ("emotion", {"type": 1, "width": 100}, "image", None),
    ("voice", {"voice_size": 4000, "play_length": 5}, "voice", None),
    ("video", {"sdkfileid": "abc", "play_length": 12}, "file", None),
    ("file", {"filename": "2026年投资策略.pdf", "fileext": "pdf"}, "file", "2026年投资策略.pdf"),
    ("link", {"title": "投顾观点", "description": "震荡市如何布局",
              "link_url": "https://wealth.example.com/c/1"}, "link",
     "投顾观点\n震荡市如何布局\nhttps://wealth.example.com/c/1"),
    ("weapp", {"title": "基金定投计算器", "description": "算一算", "displayname": "财富"},
     "link", "基金定投计算器\n算一算"),
    ("revoke", {"pre_msgid": "m0"}, "revoke", None),
    ("mixed", {"item": [{"type": "text", "content": json.dumps({"content": "看这张图"})},
                        {"type": "image", "content": json.dumps({"md5sum": "0f"})}]},
     "text", "看这张图"),
    ("mixed", {"item": [{"type": "image", "content": json.dumps({"md5sum": "0f"})}]},
     "image", None),
    ("chatrecord", {"title": "群聊记录", "item": [
        {"type": "ChatRecordText", "content": json.dumps({"content": "保本保收益"})},
        {"type": "ChatRecordImage", "content": "{}"}]}, "text", "群聊记录\n保本保收益"),
])
def test_message_types_map_onto_the_contract_enum(msgtype: str, body: dict[str, Any],
                                                  kind: str, content: str | None) -> None:
    (row,) = convert(msg(msgtype=msgtype, body=body)).rows
    assert (row["msg_type"], row["content"]) == (kind, content)
    assert row["msg_type"] in CHAT_MESSAGES["msg_type"].enum


# --- rejections --------------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "reason"), [
    (msg(roomid="wrABCDEF"), "roomid:GROUP_CHAT_NOT_SUPPORTED"),
    (msg(roomid=5), "roomid:INVALID"),
    (msg(frm="wangwu_backoffice"), "from:UNKNOWN_PARTICIPANT"),  # staff, not an advisor
    (msg(frm="wbRobot01"), "from:UNKNOWN_PARTICIPANT"),  # a bot
    (msg(frm=""), "from:MISSING"),
    (msg(to=[CUSTOMER, "wmOther"]), "tolist:NOT_SINGLE_RECIPIENT"),
    (msg(to=[]), "tolist:NOT_SINGLE_RECIPIENT"),
    (msg(to="wmOne"), "tolist:INVALID"),
    (msg(to=["wangwu_backoffice"]), "tolist:UNKNOWN_PARTICIPANT"),
    (msg(frm=CUSTOMER, to=["wangwu_backoffice"]), "tolist:UNKNOWN_ADVISOR"),
    (msg(frm=CUSTOMER, to=["zhangsan", "lisi_adv"]), "tolist:NOT_SINGLE_RECIPIENT"),
    (msg(msgtime=ms(NOW + dt.timedelta(hours=1))), "msgtime:OUT_OF_RANGE"),  # the future
    (msg(msgtime=T0 // 1000), "msgtime:OUT_OF_RANGE"),  # seconds, not milliseconds: 1970
    (msg(msgtime=10**15), "msgtime:OUT_OF_RANGE"),
    (msg(msgtime="1767225600123"), "msgtime:INVALID"),
    (msg(msgtime=True), "msgtime:INVALID"),
    (msg(msgtype="card", body={"corpname": "x"}), "msgtype:UNSUPPORTED"),
    (msg(msgtype="location", body={"address": "x"}), "msgtype:UNSUPPORTED"),
    (msg(msgtype=""), "msgtype:MISSING"),
    (msg(body={"text": "wrong key"}), "text.content:MISSING"),
    (msg(body={"content": "x" * 20_001}), "content:TOO_LONG"),
    (msg(body={"content": "a\x00b"}), "content:NUL_CHARACTER"),
    (msg(action="delete"), "action:UNKNOWN"),
    (msg(to=["wm" + "x" * 70]), "external_userid:TOO_LONG"),
])
def test_messages_that_cannot_be_rows_are_rejected_with_a_reason(message: dict[str, Any],
                                                                 reason: str) -> None:
    rejection = only_rejection(message)
    assert rejection == Rejection(1, message["msgid"], reason)


def test_future_message_just_within_clock_slack_is_kept() -> None:
    at = NOW + dt.timedelta(minutes=2)
    assert convert(msg(msgtime=ms(at))).rows[0]["msg_time"] == at
    later = ms(at + dt.timedelta(minutes=10))
    assert only_rejection(msg(msgtime=later)).reason == "msgtime:OUT_OF_RANGE"


@pytest.mark.parametrize(("raw", "reason"), [
    ("{not json", "line:INVALID_JSON"),
    ("[1, 2, 3]", "line:NOT_AN_OBJECT"),
    ('"just a string"', "line:NOT_AN_OBJECT"),
    (b'{"msgid": "\xff\xfe"}', "line:INVALID_ENCODING"),
    ("[" * 10_000 + "]" * 10_000, "line:INVALID_JSON"),  # too deep for the parser, not a crash
    (json.dumps({"action": "send"}), "msgid:MISSING"),
    (json.dumps({"msgid": "m" * 65, "action": "send"}), "msgid:TOO_LONG"),
])
def test_unreadable_lines_are_rejected_by_line_number(raw: str | bytes, reason: str) -> None:
    rejection = only_rejection(raw)
    assert (rejection.line, rejection.msgid, rejection.reason) == (1, None, reason)


def test_lone_surrogates_never_reach_a_row() -> None:
    raw = '{"msgid": "m1", "action": "send", "from": "zhangsan", "tolist": ["%s"], ' \
          '"roomid": "", "msgtime": %d, "msgtype": "text", "text": {"content": "ab\\ud83dc"}}'
    (row,) = convert(raw % (CUSTOMER, T0)).rows
    assert row["content"] == "ab\ufffdc"
    row["content"].encode("utf-8")  # storable
    bad_id = raw.replace('"m1"', '"m\\udc00"')
    assert only_rejection(bad_id % (CUSTOMER, T0)).reason == "msgid:INVALID"
    assert only_rejection(raw % ("wm\\udc00", T0)).reason == "external_userid:INVALID"


def test_a_line_over_64_kib_is_rejected_unparsed() -> None:
    big = line(msg(body={"content": "保" * (MAX_LINE_BYTES // 3)}))
    assert len(big.encode()) > MAX_LINE_BYTES
    assert only_rejection(big) == Rejection(1, None, "line:TOO_LARGE")
    assert only_rejection(big.encode()).reason == "line:TOO_LARGE"
    # 19,000 CJK characters (57 KB): under both the line bound and the content bound
    ok = line(msg(body={"content": "保" * 19_000}))
    assert len(ok.encode()) <= MAX_LINE_BYTES
    assert len(convert(ok).rows) == 1


# --- skipped -----------------------------------------------------------------------------------


def test_non_chat_records_are_skipped_and_counted_by_reason() -> None:
    batch = convert(
        {"msgid": "s1", "action": "switch", "time": T0, "user": "zhangsan"},
        msg("a1", frm=CUSTOMER, to=["zhangsan"], msgtype="agree",
            body={"userid": CUSTOMER, "agree_time": T0}),
        msg("d1", frm=CUSTOMER, to=["zhangsan"], msgtype="disagree", body={}),
        msg("i1", to=["lisi_adv"]),  # advisor to advisor
        "",
        "   \r\n",
    )
    assert batch.rows == [] and batch.rejections == []
    assert dict(batch.skipped) == {"action:SWITCH": 1, "msgtype:CONSENT_AGREE": 1,
                                   "msgtype:CONSENT_DISAGREE": 1, "tolist:INTERNAL_CHAT": 1,
                                   "line:BLANK": 2}


def test_a_redelivered_message_is_kept_once() -> None:
    batch = convert(msg("m1"), msg("m2"), msg("m1"))
    assert [r["msg_id"] for r in batch.rows] == ["m1", "m2"]
    assert batch.skipped == {"msgid:DUPLICATE": 1}


# --- every line accounted for ------------------------------------------------------------------


def test_a_mixed_batch_accounts_for_every_line_in_order() -> None:
    raw = [
        line(msg("ok1")),
        "{broken",
        line(msg("grp", roomid="wr123")),
        line({"msgid": "sw", "action": "switch", "time": T0, "user": "zhangsan"}),
        line(msg("ok2", frm=CUSTOMER, to=["zhangsan"])),
        "",
        line(msg("ok1")),
        line(msg("who", frm="lisi_backoffice")),
        line(msg("ok3", msgtype="image", body={"sdkfileid": "x"})),
    ]
    batch = convert(*raw)
    assert [r["msg_id"] for r in batch.rows] == ["ok1", "ok2", "ok3"]
    assert [(r.line, r.msgid, r.reason) for r in batch.rejections] == [
        (2, None, "line:INVALID_JSON"),
        (3, "grp", "roomid:GROUP_CHAT_NOT_SUPPORTED"),
        (8, "who", "from:UNKNOWN_PARTICIPANT"),
    ]
    assert dict(batch.skipped) == {"action:SWITCH": 1, "line:BLANK": 1, "msgid:DUPLICATE": 1}
    assert batch.lines == 9


def test_without_external_prefixes_any_non_advisor_is_a_customer() -> None:
    m = msg(frm="legacy_contact_7", to=["zhangsan"])
    assert convert_archive([line(m)], ADVISORS, now=NOW).rejections[0].reason == \
        "from:UNKNOWN_PARTICIPANT"
    batch = convert_archive([line(m)], ADVISORS, now=NOW, external_prefixes=None)
    assert batch.rows[0]["external_userid"] == "legacy_contact_7"


def test_an_empty_input_is_an_empty_batch() -> None:
    batch = convert_archive([], ADVISORS, now=NOW)
    assert (batch.rows, batch.rejections, dict(batch.skipped), batch.lines) == ([], [], {}, 0)
    assert batch.accounted
