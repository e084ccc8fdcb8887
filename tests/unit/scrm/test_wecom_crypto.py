"""WeCom callback crypto against Tencent's official test vectors.

Source: WeCom's "加解密方案说明" (developer.work.weixin.qq.com, document 90968/91144), as
copied into ../shared/reference/wecom.md.
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from caifu.scrm.callback import check_timestamp, envelope_encrypt, open_request, parse_event
from caifu.scrm.crypto import CallbackRejected, WeComCrypto, pkcs7_unpad

CORP = "wx5823bf96d3bd56c7"
TOKEN = "QDG6eK"
AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ECHO = ("P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ"
        "==")
POST_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczc"
    "dCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjv"
    "d4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnv"
    "w2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k2"
    "2Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2Yoyy"
    "H2uyPIGHBZZIs2pDBS8R07+qN+E7Q==")
POST_PLAIN = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    "<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    "<CreateTime>1409659813</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n"
    "<AgentID>218</AgentID>\n"
    "</xml>")


@pytest.fixture
def crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES, CORP)


def test_official_url_verification_vector(crypto: WeComCrypto) -> None:
    params = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
              "timestamp": "1409659589", "nonce": "263014780"}
    assert crypto.sign("1409659589", "263014780", ECHO) == params["msg_signature"]
    assert open_request(crypto, params, ECHO, now=None) == b"1616140317555161061"


def test_official_event_vector(crypto: WeComCrypto) -> None:
    params = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
              "timestamp": "1409659813", "nonce": "1372623149"}
    msg = open_request(crypto, params, POST_ENCRYPT, now=None)
    assert len(msg) == 284
    assert msg.decode() == POST_PLAIN
    event = parse_event(msg)
    assert (event.event, event.fields["Content"], event.fields["AgentID"]) == ("text", "hello",
                                                                                "218")
    assert event.create_time == dt.datetime(2014, 9, 2, 12, 10, 13)
    # the vector's padding is 30 bytes, as the reference says
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    d = Cipher(algorithms.AES(crypto.key), modes.CBC(crypto.key[:16])).decryptor()
    raw = d.update(base64.b64decode(POST_ENCRYPT)) + d.finalize()
    assert raw[-1] == 30 and len(pkcs7_unpad(raw)) == len(raw) - 30


def test_wrong_corp_id_is_rejected() -> None:
    other = WeComCrypto(TOKEN, AES, "wwffffffffffffffff")
    with pytest.raises(CallbackRejected) as e:
        other.decrypt(POST_ENCRYPT)
    assert e.value.reason == "WRONG_RECEIVE_ID"


@pytest.mark.parametrize("signature", ["0" * 40, "477715d11cdb4164915debcba66cb864d751f3e7", "",
                                       "477715d11cdb4164915debcba66cb864d751f3e6" + "0"])
def test_forged_signature_is_rejected(crypto: WeComCrypto, signature: str) -> None:
    params = {"msg_signature": signature, "timestamp": "1409659813", "nonce": "1372623149"}
    with pytest.raises(CallbackRejected) as e:
        open_request(crypto, params, POST_ENCRYPT, now=None)
    assert e.value.reason in {"BAD_SIGNATURE", "BAD_PARAMETER"}


def test_chinese_round_trip_is_byte_identical(crypto: WeComCrypto) -> None:
    msg = "<xml><Content><![CDATA[您好，我想了解一下创业板权限开通 🙂]]></Content></xml>".encode()
    encrypt = crypto.encrypt(msg)
    assert crypto.decrypt(encrypt) == msg
    # length is counted in bytes, not characters
    d = base64.b64decode(encrypt)
    assert len(d) % 32 == 0


def _raw_encrypt(crypto: WeComCrypto, plain: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    e = Cipher(algorithms.AES(crypto.key), modes.CBC(crypto.key[:16])).encryptor()
    return base64.b64encode(e.update(plain) + e.finalize()).decode()


@pytest.mark.parametrize("tail", [bytes([0]) * 32, bytes([33]) * 32, bytes([5, 5, 5, 4, 5]),
                                  bytes([32]) * 15 + bytes([3]) + bytes([32]) * 16])
def test_strict_pkcs7_block_32(crypto: WeComCrypto, tail: bytes) -> None:
    body = b"\x00" * 16 + (5).to_bytes(4, "big") + b"hello" + CORP.encode()
    plain = body + b"\x00" * ((32 - (len(body) + len(tail)) % 32) % 32) + tail
    assert len(plain) % 16 == 0
    with pytest.raises(CallbackRejected) as e:
        crypto.decrypt(_raw_encrypt(crypto, plain))
    assert e.value.reason == "BAD_PADDING"


@pytest.mark.parametrize("encrypt,reason", [("not base64!!", "BAD_BASE64"),
                                            ("QUJD", "BAD_CIPHERTEXT"),
                                            ("A" * 300_000, "TOO_LARGE")])
def test_malformed_ciphertexts(crypto: WeComCrypto, encrypt: str, reason: str) -> None:
    with pytest.raises(CallbackRejected) as e:
        crypto.decrypt(encrypt)
    assert e.value.reason == reason


def test_replay_window() -> None:
    now = dt.datetime(2026, 11, 26, 8, 0, 0)
    ts = str(int(now.replace(tzinfo=dt.UTC).timestamp()))
    assert check_timestamp(ts, now + dt.timedelta(seconds=299), 300) == now
    for late in (301, -301, 86_400):
        with pytest.raises(CallbackRejected) as e:
            check_timestamp(ts, now + dt.timedelta(seconds=late), 300)
        assert e.value.reason == "STALE_TIMESTAMP"
    with pytest.raises(CallbackRejected):
        check_timestamp("12a", now, 300)


@pytest.mark.parametrize("body,reason", [
    (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]>"
     b"<xml><Encrypt>&b;</Encrypt></xml>", "XML_FORBIDDEN"),
    (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
     b"<xml><Encrypt>&e;</Encrypt></xml>", "XML_FORBIDDEN"),
    (b"<xml><Encrypt>abc", "BAD_XML"),
    (b"<xml><ToUserName>x</ToUserName></xml>", "BAD_ENVELOPE"),
    (b"<xml>" + b"a" * 70_000 + b"</xml>", "TOO_LARGE"),
])
def test_hostile_envelopes(body: bytes, reason: str) -> None:
    with pytest.raises(CallbackRejected) as e:
        envelope_encrypt(body)
    assert e.value.reason == reason


def test_group_event_members_are_listed() -> None:
    xml = (b"<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[sys]]>"
           b"</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]>"
           b"</MsgType><Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[wrOg]]>"
           b"</ChatId><ChangeType><![CDATA[update]]></ChangeType><UpdateDetail><![CDATA["
           b"add_member]]></UpdateDetail><MemChangeCnt>2</MemChangeCnt><MemChangeList><Item>"
           b"wmA</Item><Item>wmB</Item></MemChangeList><LastMemVer>v1</LastMemVer><CurMemVer>v2"
           b"</CurMemVer></xml>")
    e = parse_event(xml)
    assert (e.event, e.change_type, e.members) == ("change_external_chat", "update",
                                                   ("wmA", "wmB"))
    assert e.get("LastMemVer") == "v1" and e.get("Nothing") is None


@pytest.mark.parametrize("timestamp", ["999999999999", "²", "1７00000000", "-1", " 1700000000"])
def test_out_of_range_and_non_ascii_timestamps_are_refused(timestamp: str) -> None:
    """Found by an outside probe as a 500 before the signature check: ``fromtimestamp`` of
    year 33658, and ``int`` of a digit ``str.isdigit`` accepts but ``int`` does not."""
    now = dt.datetime(2026, 11, 26, 8, 0, 0)
    with pytest.raises(CallbackRejected) as e:
        check_timestamp(timestamp, now, 300)
    assert e.value.reason in {"BAD_TIMESTAMP", "STALE_TIMESTAMP"}
    assert e.value.reason == ("STALE_TIMESTAMP" if timestamp == "999999999999"
                              else "BAD_TIMESTAMP")


@pytest.mark.parametrize("created,expected", [
    ("999999999999", None), ("²", None), ("٣", None), ("", None), ("0", None),
    ("1700000000", dt.datetime(2023, 11, 14, 22, 13, 20)),
])
def test_an_event_create_time_outside_the_protocol_is_kept_as_unknown(
        created: str, expected: dt.datetime | None) -> None:
    xml = (f"<xml><CreateTime>{created}</CreateTime><MsgType>event</MsgType>"
           "<Event>change_external_contact</Event></xml>").encode()
    e = parse_event(xml)
    assert e.create_time == expected
    assert e.fields["CreateTime"] == created  # kept as sent, in the stored XML too
