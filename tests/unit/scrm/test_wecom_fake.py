"""The fake WeCom server itself: it refuses what WeCom refuses (tokens, rate limit, codes)
and produces callbacks the real callback crypto accepts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest

from caifu.adapters.wecom.fake import FakeWeCom
from caifu.adapters.wecom.fake_callbacks import contact_event, tag_event
from caifu.scrm.crypto import WeComCrypto

T0 = 1_700_000_000.0
# Tencent's published test configuration (../shared/reference/wecom.md)
TOKEN, AES_KEY = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeWeCom:
    f = FakeWeCom("wx5823bf96d3bd56c7", "s", "218", clock=clock,
                  callback_crypto=WeComCrypto(TOKEN, AES_KEY, "wx5823bf96d3bd56c7"))
    f.seed_from(["adv1"], [{"name": "张三", "userid": "adv1"}],
                tag_groups={"风险偏好": ["稳健型"]})
    return f


def call(fake: FakeWeCom, api: str, token: str | None = None, **body: Any) -> dict[str, Any]:
    params = {"access_token": token} if token else {}
    request = httpx.Request("POST", f"https://qyapi.weixin.qq.com/cgi-bin/{api}",
                            params=params, json=body)
    return dict(fake.handler(request).json())


def token_of(fake: FakeWeCom) -> str:
    request = httpx.Request("GET", "https://qyapi.weixin.qq.com/cgi-bin/gettoken",
                            params={"corpid": fake.corp_id, "corpsecret": fake.secret})
    return str(fake.handler(request).json()["access_token"])


def test_tokens_are_checked_with_wecoms_errcodes(fake: FakeWeCom, clock: Clock) -> None:
    api = "externalcontact/get_follow_user_list"
    assert call(fake, api)["errcode"] == 41001
    assert call(fake, api, "forged")["errcode"] == 40014
    token = token_of(fake)
    assert call(fake, api, token) == {"errcode": 0, "errmsg": "ok", "follow_user": ["adv1"]}
    assert token_of(fake) == token  # the same token while it is valid
    clock.t += 7200
    assert call(fake, api, token)["errcode"] == 42001
    assert token_of(fake) != token


def test_each_api_allows_2000_calls_a_minute(fake: FakeWeCom, clock: Clock) -> None:
    token = token_of(fake)
    api = "externalcontact/get_follow_user_list"
    assert all(call(fake, api, token)["errcode"] == 0 for _ in range(2000))
    assert call(fake, api, token)["errcode"] == 45009
    assert call(fake, "externalcontact/get_corp_tag_list", token)["errcode"] == 0  # per API
    clock.t += 60
    assert call(fake, api, token)["errcode"] == 0


def test_faults_are_injected_then_cleared(fake: FakeWeCom) -> None:
    token = token_of(fake)
    api = "externalcontact/get_follow_user_list"
    fake.fail_next(api, -1)
    fake.fail_next(api, 503)
    fake.fail_next(api, "network")
    assert call(fake, api, token)["errcode"] == -1
    request = httpx.Request("GET", f"https://qyapi.weixin.qq.com/cgi-bin/{api}")
    assert fake.handler(request).status_code == 503
    with pytest.raises(httpx.ConnectError):
        fake.handler(request)
    assert call(fake, api, token)["errcode"] == 0


def test_cursor_pages_reject_limits_over_the_cap(fake: FakeWeCom) -> None:
    token = token_of(fake)
    answer = call(fake, "externalcontact/batch/get_by_user", token, userid_list=["adv1"],
                  limit=101)
    assert answer["errcode"] == 40058
    answer = call(fake, "externalcontact/batch/get_by_user", token, userid_list=["adv1"],
                  cursor="not-a-cursor!")
    assert answer["errcode"] == 40058


def parse(fake: FakeWeCom, params: dict[str, str], body: bytes) -> ET.Element:
    """What the callback endpoint does: verify, decrypt, parse."""
    crypto = WeComCrypto(TOKEN, AES_KEY, fake.corp_id)
    outer = ET.fromstring(body)
    encrypt = outer.findtext("Encrypt") or ""
    assert outer.findtext("ToUserName") == fake.corp_id and outer.findtext("AgentID") == "218"
    crypto.verify(params["msg_signature"], params["timestamp"], params["nonce"], encrypt)
    return ET.fromstring(crypto.decrypt(encrypt))


def test_customer_adding_an_advisor_produces_a_signed_callback(fake: FakeWeCom) -> None:
    added = fake.customer_adds("adv1", name="李四", state="qr-branch-07")
    params, body = fake.callback(added.event_xml)
    assert params["timestamp"] == str(int(T0))
    event = parse(fake, params, body)
    assert {child.tag: child.text for child in event} == {
        "ToUserName": fake.corp_id, "FromUserName": "sys", "CreateTime": str(int(T0)),
        "MsgType": "event", "Event": "change_external_contact",
        "ChangeType": "add_external_contact", "UserID": "adv1",
        "ExternalUserID": added.external_userid, "State": "qr-branch-07",
        "WelcomeCode": added.welcome_code}
    assert fake.follows[("adv1", added.external_userid)]["state"] == "qr-branch-07"


def test_a_tampered_callback_is_rejected_by_the_endpoint_crypto(fake: FakeWeCom) -> None:
    from caifu.scrm.crypto import CallbackRejected

    params, body = fake.callback(fake.tag_event("create", "et-1"))
    params["timestamp"] = str(int(T0) + 1)
    with pytest.raises(CallbackRejected):
        parse(fake, params, body)


def test_group_events_carry_member_versions_that_chain(fake: FakeWeCom) -> None:
    chat = fake.add_group_chat("adv1", [])
    before = fake.member_version(chat)
    joined = fake.members_join_chat(chat, ["wm-a", "wm-b"], join_scene=3)
    event = parse(fake, *fake.callback(joined.event_xml))
    assert event.findtext("LastMemVer") == before
    assert event.findtext("CurMemVer") == fake.member_version(chat) != before
    assert [i.text for i in event.iter("Item")] == ["wm-a", "wm-b"]
    assert (event.findtext("UpdateDetail"), event.findtext("JoinScene"),
            event.findtext("MemChangeCnt")) == ("add_member", "3", "2")
    left = parse(fake, *fake.callback(fake.members_leave_chat(chat, ["wm-a"]).event_xml))
    assert left.findtext("LastMemVer") == event.findtext("CurMemVer")


def test_event_builders_escape_cdata_and_omit_unset_fields() -> None:
    xml = contact_event("ww1", 1, "transfer_fail", "u]]>1", "wm1", fail_reason="customer_refused")
    root = ET.fromstring(xml)
    assert root.findtext("UserID") == "u]]>1"
    assert root.findtext("FailReason") == "customer_refused"
    assert root.find("State") is None and root.find("WelcomeCode") is None
    tag = ET.fromstring(tag_event("ww1", 1, "shuffle", "et1", "tag_group", strategy_id=9))
    assert [tag.findtext(k) for k in ("Event", "ChangeType", "Id", "TagType", "StrategyId")] == [
        "change_external_tag", "shuffle", "et1", "tag_group", "9"]


def test_a_callback_needs_the_app_crypto(clock: Clock) -> None:
    with pytest.raises(RuntimeError, match="callback_crypto"):
        FakeWeCom(clock=clock).callback("<xml/>")


def test_api_changes_state_while_client_actions_return_events(fake: FakeWeCom) -> None:
    # mark_tag through the API: state changes, and there is nothing to send
    token = token_of(fake)
    ext = next(iter(fake.contacts))
    tag = next(iter(fake.tags))
    assert call(fake, "externalcontact/mark_tag", token, userid="adv1", external_userid=ext,
                add_tag=[tag])["errcode"] == 0
    assert fake.follows[("adv1", ext)]["tag_ids"] == [tag]
    # the same advisor editing in the WeCom client: an edit_external_contact event
    edited = fake.advisor_edits("adv1", ext, remark="VIP")
    assert ET.fromstring(edited.event_xml).findtext("ChangeType") == "edit_external_contact"
