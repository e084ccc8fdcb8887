"""The WeCom client against the fake WeCom server through ``httpx.MockTransport``: tokens,
retries and backoff, pacing, pagination, mass sends, OAuth and the JS-SDK signature — and,
once, over real HTTP through the fake's ASGI app."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from caifu.adapters.wecom import (
    RateLimiter,
    TokenCache,
    WeComClient,
    WeComError,
    jsapi_signature,
    redact,
)
from caifu.adapters.wecom.fake import FakeWeCom
from caifu.core.errors import CaifuError

T0 = 1_700_000_000.0  # 2023-11-14, a weekday in Beijing


class Clock:
    """One clock for the client and the fake; ``sleep`` advances it and remembers."""

    def __init__(self) -> None:
        self.t = T0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeWeCom:
    f = FakeWeCom(clock=clock)
    f.seed_from(["adv1", "adv2"],
                [{"name": f"客户{i}", "userid": "adv1" if i % 2 else "adv2"} for i in range(6)],
                tag_groups={"风险偏好": ["稳健型", "进取型"]})
    return f


def make_client(fake: FakeWeCom, clock: Clock, **kw: Any) -> WeComClient:
    kw.setdefault("sleep", clock.sleep)
    kw.setdefault("clock", clock)
    return WeComClient(fake.corp_id, kw.pop("secret", fake.secret),
                       transport=httpx.MockTransport(fake.handler), **kw)


@pytest.fixture
def client(fake: FakeWeCom, clock: Clock) -> Iterator[WeComClient]:
    with make_client(fake, clock) as c:
        yield c


# --- tokens ------------------------------------------------------------------------------


def test_one_gettoken_serves_many_calls(client: WeComClient, fake: FakeWeCom) -> None:
    for _ in range(10):
        assert client.get_follow_user_list() == ["adv1", "adv2"]
    assert fake.call_count("gettoken") == 1
    assert fake.call_count("externalcontact/get_follow_user_list") == 10


def test_clients_sharing_a_cache_share_the_token(fake: FakeWeCom, clock: Clock) -> None:
    cache = TokenCache(clock=clock)
    a, b = make_client(fake, clock, token_cache=cache), make_client(fake, clock, token_cache=cache)
    a.get_follow_user_list()
    b.get_follow_user_list()
    assert fake.call_count("gettoken") == 1
    # the key holds a hash of the secret, never the secret itself
    assert all(fake.secret not in part for key in cache._entries for part in key)


def test_token_is_refreshed_before_it_expires(client: WeComClient, fake: FakeWeCom,
                                              clock: Clock) -> None:
    client.get_follow_user_list()
    clock.t += 7200 - 300 + 1  # inside the refresh margin: fetch again before WeCom says 42001
    client.get_follow_user_list()
    assert fake.call_count("gettoken") == 2
    clock.t += 400  # past the first token's life: a new one, still without a rejected call
    client.get_follow_user_list()
    assert fake.call_count("gettoken") == 3
    assert fake.calls.count("externalcontact/get_follow_user_list") == 3  # nothing resent


def test_token_rejected_by_wecom_is_refreshed_once_without_backoff(
        client: WeComClient, fake: FakeWeCom, clock: Clock) -> None:
    client.list_external_contacts("adv1")
    fake.expire_tokens()  # WeCom revoked it early: the cache still believes in it
    assert len(client.list_external_contacts("adv1")) == 3
    assert fake.calls[-3:] == ["externalcontact/list", "gettoken", "externalcontact/list"]
    assert clock.sleeps == []


def test_token_refresh_is_tried_only_once(client: WeComClient, fake: FakeWeCom) -> None:
    fake.fail_next("externalcontact/list", 42001, times=2)
    with pytest.raises(WeComError) as err:
        client.list_external_contacts("adv1")
    assert err.value.errcode == 42001
    assert fake.call_count("externalcontact/list") == 2


# --- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [45009, 45033, -1, 500, 502, 429, "network", "timeout"])
def test_transient_failures_are_retried_with_growing_backoff(
        client: WeComClient, fake: FakeWeCom, clock: Clock, fault: int | str) -> None:
    fake.fail_next("externalcontact/get_follow_user_list", fault, times=3)
    assert client.get_follow_user_list() == ["adv1", "adv2"]
    assert fake.call_count("externalcontact/get_follow_user_list") == 4
    assert len(clock.sleeps) == 3
    assert clock.sleeps[0] < clock.sleeps[1] < clock.sleeps[2]


def test_gives_up_after_max_retries(fake: FakeWeCom, clock: Clock) -> None:
    client = make_client(fake, clock, max_retries=4)
    fake.fail_next("externalcontact/get_follow_user_list", 45009, times=10)
    with pytest.raises(WeComError) as err:
        client.get_follow_user_list()
    assert isinstance(err.value, CaifuError)
    assert (err.value.errcode, err.value.api) == (45009, "externalcontact/get_follow_user_list")
    assert "rate limit" in str(err.value)  # says what to do
    assert fake.call_count("externalcontact/get_follow_user_list") == 5
    assert len(clock.sleeps) == 4


def test_http_failure_reports_the_status(client: WeComClient, fake: FakeWeCom) -> None:
    fake.fail_next("externalcontact/list", 503, times=5)
    with pytest.raises(WeComError) as err:
        client.list_external_contacts("adv1")
    assert (err.value.errcode, err.value.upstream_status) == (-1, 503)


def test_refusals_are_not_retried(client: WeComClient, fake: FakeWeCom, clock: Clock) -> None:
    with pytest.raises(WeComError) as err:
        client.get_external_contact("wm-nobody")
    assert err.value.errcode == 40096
    assert clock.sleeps == [] and fake.call_count("externalcontact/get") == 1


def test_a_mass_send_is_not_resent_after_an_ambiguous_failure(
        client: WeComClient, fake: FakeWeCom) -> None:
    ext = client.list_external_contacts("adv1")
    fake.fail_next("externalcontact/add_msg_template", "timeout")
    with pytest.raises(WeComError):
        client.add_msg_template(external_userid=ext, sender="adv1", text="hi")
    assert fake.call_count("externalcontact/add_msg_template") == 1
    # a refused connection never reached WeCom: safe to resend, and exactly one send exists
    fake.fail_next("externalcontact/add_msg_template", "network")
    client.add_msg_template(external_userid=ext, sender="adv1", text="hi")
    assert fake.call_count("externalcontact/add_msg_template") == 3
    assert len(fake.mass_sends) == 1


# --- secrets stay secret ---------------------------------------------------------------------


def test_wrong_secret_error_names_no_secret(fake: FakeWeCom, clock: Clock) -> None:
    client = make_client(fake, clock, secret="s3cr3t-WRONG-value")
    with pytest.raises(WeComError) as err:
        client.get_follow_user_list()
    assert err.value.errcode == 40001 and "secret" in str(err.value)  # the hint
    assert "s3cr3t-WRONG-value" not in str(err.value) + repr(err.value) + repr(client)


def test_secret_and_token_scrubbed_from_echoed_errmsg(clock: Clock,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    secret, token = "top-secret-123", "tok-abcdef-999"

    def echo(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("gettoken"):
            return httpx.Response(200, json={"errcode": 0, "access_token": token,
                                             "expires_in": 7200})
        return httpx.Response(200, json={"errcode": 48002, "errmsg": f"bad {request.url}"})

    caplog.set_level(logging.DEBUG)
    client = WeComClient("wwcorp", secret, transport=httpx.MockTransport(echo),
                         sleep=clock.sleep, clock=clock)
    with pytest.raises(WeComError) as err:
        client.get_follow_user_list()
    text = str(err.value) + caplog.text
    assert "HTTP Request" in caplog.text  # httpx did log the URLs...
    assert secret not in text and token not in text  # ...without what they carried


def test_redact_hides_query_secrets() -> None:
    assert redact("GET /cgi-bin/gettoken?corpid=ww1&corpsecret=abc&x=1") == \
        "GET /cgi-bin/gettoken?corpid=ww1&corpsecret=***&x=1"
    assert "T0K" not in redact("https://h/cgi-bin/x?access_token=T0K")


# --- pacing -----------------------------------------------------------------------------------


def test_limiter_never_exceeds_the_limit_in_any_window(clock: Clock) -> None:
    limiter = RateLimiter(((2000, 60.0),), clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(5000):
        limiter.acquire(("corp", "externalcontact/get"))
        times.append(clock.t)
    assert clock.sleeps and clock.sleeps[0] == pytest.approx(60.0 / 1800)
    # slide a 60 s window over every call: never more than 2000 inside
    j = 0
    for i, t in enumerate(times):
        while times[j] <= t - 60.0:
            j += 1
        assert i - j + 1 <= 2000
    # and the pace is close to the limit, not far under it
    assert times[-1] - times[0] < 5000 / 2000 * 60 * 1.2


def test_limiter_is_per_api(clock: Clock) -> None:
    limiter = RateLimiter(((20, 60.0),), clock=clock, sleep=clock.sleep)
    assert [limiter.reserve(("c", "a")) for _ in range(2)] == [0.0, 0.0]
    assert limiter.reserve(("c", "a")) == pytest.approx(60.0 / 18)  # burst of 2 spent
    assert limiter.reserve(("c", "b")) == 0.0
    assert limiter.reserve(("other-corp", "a")) == 0.0


def test_client_paces_itself_below_wecoms_limit(client: WeComClient, fake: FakeWeCom,
                                                clock: Clock) -> None:
    for _ in range(2300):
        client.get_follow_user_list()
    # the fake refuses the 2001st call in any minute: the client never got that far
    assert fake.call_count("externalcontact/get_follow_user_list") == 2300
    assert clock.sleeps and max(clock.sleeps) < 1.0  # waits from the limiter, no backoff


# --- pagination ----------------------------------------------------------------------------------


def test_batch_get_by_user_pages_over_many_contacts(client: WeComClient, fake: FakeWeCom) -> None:
    fake.seed_from(["big"], [{"name": f"c{i}", "userid": "big"} for i in range(250)])
    pairs = list(client.iter_batch_get_by_user(["big", "adv1"]))
    assert len(pairs) == 253
    assert len({(p["follow_info"]["userid"], p["external_contact"]["external_userid"])
                for p in pairs}) == 253
    assert fake.call_count("externalcontact/batch/get_by_user") == 3  # 100 + 100 + 53
    with pytest.raises(ValueError):
        client.batch_get_by_user(["big"], limit=101)


def test_batch_get_by_user_asks_100_advisors_at_a_time(client: WeComClient,
                                                       fake: FakeWeCom) -> None:
    advisors = [f"a{i:03d}" for i in range(150)]
    fake.seed_from(advisors, [{"name": "c", "userid": a} for a in advisors])
    assert len(list(client.iter_batch_get_by_user(advisors))) == 150
    assert fake.call_count("externalcontact/batch/get_by_user") == 2


def test_groupchat_list_follows_the_cursor(client: WeComClient, fake: FakeWeCom) -> None:
    ids = {fake.add_group_chat("adv1", [], name=f"g{i}") for i in range(25)}
    chats = list(client.groupchat_list(limit=10))
    assert {c["chat_id"] for c in chats} == ids and len(chats) == 25
    assert fake.call_count("externalcontact/groupchat/list") == 3
    assert list(client.groupchat_list(owner_userids=["adv2"])) == []
    group = client.groupchat_get(chats[0]["chat_id"])
    assert group["owner"] == "adv1" and len(group["member_version"]) == 32


# --- customers, tags, channels --------------------------------------------------------------------


def test_contact_remark_and_tags(client: WeComClient, fake: FakeWeCom) -> None:
    ext = client.list_external_contacts("adv1")[0]
    client.remark("adv1", ext, remark="张先生", remark_mobiles=["13800138000"])
    group = client.add_corp_tag(["高净值"], group_name="客户层级")
    tag_id = group["tag"][0]["id"]
    client.mark_tag("adv1", ext, add_tag=[tag_id])
    follow = client.get_external_contact(ext)["follow_user"][0]
    assert (follow["remark"], follow["remark_mobiles"]) == ("张先生", ["13800138000"])
    assert [(t["group_name"], t["tag_name"]) for t in follow["tags"]] == [("客户层级", "高净值")]
    client.edit_corp_tag(tag_id, name="超高净值")
    client.del_corp_tag(tag_ids=[tag_id])
    assert client.get_external_contact(ext)["follow_user"][0]["tags"] == []
    assert [g["group_name"] for g in client.get_corp_tag_list()] == ["风险偏好"]
    with pytest.raises(WeComError) as err:
        client.mark_tag("adv2", ext, add_tag=[tag_id])  # adv2 does not follow this customer
    assert err.value.errcode == 84061


def test_contact_way_state_is_at_most_30_characters(client: WeComClient,
                                                    fake: FakeWeCom) -> None:
    with pytest.raises(ValueError, match="30"):
        client.add_contact_way(1, 2, user=["adv1"], state="x" * 31)
    assert fake.call_count("externalcontact/add_contact_way") == 0
    way = client.add_contact_way(1, 2, user=["adv1"], state="campaign-2024-q1-" + "y" * 13)
    assert way.qr_code.startswith("https://") and fake.contact_ways[way.config_id]["state"]


def test_welcome_message_code_is_single_use_and_short_lived(
        client: WeComClient, fake: FakeWeCom, clock: Clock) -> None:
    added = fake.customer_adds("adv1", name="新客户", state="ch01")
    client.send_welcome_msg(added.welcome_code, text="欢迎！投资有风险")
    assert fake.welcome_messages[-1]["external_userid"] == added.external_userid
    with pytest.raises(WeComError):
        client.send_welcome_msg(added.welcome_code, text="again")
    late = fake.customer_adds("adv1", name="晚到的客户")
    clock.t += 21
    with pytest.raises(WeComError):
        client.send_welcome_msg(late.welcome_code, text="too late")


# --- mass send ---------------------------------------------------------------------------------------


def test_mass_send_and_poll_results(client: WeComClient, fake: FakeWeCom) -> None:
    fake.seed_from([], [{"name": f"m{i}", "userid": "adv1"} for i in range(7)])
    mine = client.list_external_contacts("adv1")  # 3 seeded + 7 = 10
    strangers = client.list_external_contacts("adv2")[:1]
    sent = client.add_msg_template(external_userid=mine + strangers, sender="adv1",
                                   text="本周市场观点")
    assert sent.fail_list == strangers
    assert set(client.poll_mass_send(sent.msgid).values()) == {0}  # the advisor has not sent
    fake.deliver(sent.msgid, fraction=0.5, seed=7)
    status = client.poll_mass_send(sent.msgid)
    assert sorted(status) == sorted(mine)
    assert sum(s == 1 for s in status.values()) == 5 and sum(s == 0 for s in status.values()) == 5
    assert client.get_groupmsg_task(sent.msgid)[0]["status"] == 2
    fake.deliver(sent.msgid)
    assert set(client.poll_mass_send(sent.msgid).values()) == {1}
    listed = list(client.get_groupmsg_list_v2("single", int(T0) - 10, int(T0) + 10))
    assert [m["msgid"] for m in listed] == [sent.msgid]


def test_mass_send_results_page_and_the_monthly_quota(client: WeComClient,
                                                      fake: FakeWeCom) -> None:
    fake.seed_from([], [{"name": f"p{i}", "userid": "adv2"} for i in range(1500)])
    customers = client.list_external_contacts("adv2")
    for _ in range(4):
        fake.deliver(client.add_msg_template(external_userid=customers[:1], sender="adv2",
                                             text="x").msgid)
    big = client.add_msg_template(external_userid=customers, sender="adv2", text="y")
    fake.deliver(big.msgid)
    status = client.poll_mass_send(big.msgid)
    assert len(status) == 1503  # more than one 1000-row page of results
    assert status[customers[0]] == 3  # a fifth corp mass send this month is refused
    assert sum(s == 1 for s in status.values()) == 1502


# --- handover and statistics --------------------------------------------------------------------------


def test_transfer_customer_and_result(client: WeComClient, fake: FakeWeCom) -> None:
    exts = client.list_external_contacts("adv1")
    assert client.transfer_customer("adv1", "adv2", [exts[0], "wm-not-mine"]) == {
        exts[0]: 0, "wm-not-mine": 84061}
    assert [r["status"] for r in client.transfer_result("adv1", "adv2")] == [2]
    fake.complete_transfers()
    assert [r["status"] for r in client.transfer_result("adv1", "adv2")] == [1]
    assert exts[0] in client.list_external_contacts("adv2")
    assert client.resigned_transfer_customer("adv1", "adv2", [exts[1]]) == {exts[1]: 0}
    assert len(client.transfer_result("adv1", "adv2", resigned=True)) == 1


def test_behavior_and_group_statistics(client: WeComClient, fake: FakeWeCom) -> None:
    rows = client.get_user_behavior_data(["adv1"], int(T0) - 86400, int(T0))
    assert [r["new_contact_cnt"] for r in rows] == [0, 3]
    fake.customer_deletes("adv1", client.list_external_contacts("adv1")[0])
    rows = client.get_user_behavior_data(["adv1"], int(T0) - 86400, int(T0))
    assert rows[-1]["negative_feedback_cnt"] == 1
    fake.add_group_chat("adv1", client.list_external_contacts("adv1"), name="定投群")
    stats = client.groupchat_statistic(int(T0))
    assert stats == [{"owner": "adv1", "data": {
        "new_chat_cnt": 1, "chat_total": 1, "chat_has_msg": 0, "new_member_cnt": 3,
        "member_total": 3, "member_has_msg": 0, "msg_total": 0, "migrate_trainee_chat_cnt": 0}}]
    # the owner is a member too: the 2 customers adv1 still has, and adv1


# --- sidebar: OAuth and JS-SDK ------------------------------------------------------------------------


def test_oauth_code_is_single_use(client: WeComClient, fake: FakeWeCom) -> None:
    code = fake.issue_oauth_code("adv2")
    assert client.auth_getuserinfo(code) == "adv2"
    with pytest.raises(WeComError) as err:
        client.auth_getuserinfo(code)
    assert err.value.errcode == 40029 and "sign in again" in str(err.value)


def test_oauth_code_expires_after_five_minutes(client: WeComClient, fake: FakeWeCom,
                                              clock: Clock) -> None:
    fresh, stale = fake.issue_oauth_code("adv1"), fake.issue_oauth_code("adv1")
    clock.t += 299
    assert client.auth_getuserinfo(fresh) == "adv1"
    clock.t += 2
    with pytest.raises(WeComError):
        client.auth_getuserinfo(stale)


def test_jsapi_signature_matches_wecoms_documented_example() -> None:
    # WeCom JS-SDK documentation, "JS-SDK使用权限签名算法", worked example
    ticket = ("sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOc"
              "HKP7qg")
    by_hand = hashlib.sha1(
        f"jsapi_ticket={ticket}&noncestr=Wm3WZYTPz0wzccnW&timestamp=1414587457"
        "&url=http://mp.weixin.qq.com?params=value".encode()).hexdigest()
    assert by_hand == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    assert jsapi_signature(ticket, "Wm3WZYTPz0wzccnW", 1414587457,
                           "http://mp.weixin.qq.com?params=value") == by_hand
    assert jsapi_signature(ticket, "Wm3WZYTPz0wzccnW", "1414587457",
                           "http://mp.weixin.qq.com?params=value#sidebar") == by_hand


def test_jsapi_ticket_is_cached_and_signs_agent_config(client: WeComClient,
                                                       fake: FakeWeCom) -> None:
    url = "https://caifu.example/sidebar?tenant=t1#/customer"
    configs = [client.agent_config(url, noncestr="n0nce", timestamp=1414587457)
               for _ in range(3)]
    assert fake.call_count("ticket/get") == 1
    assert configs[0]["signature"] == jsapi_signature(fake.jsapi_ticket, "n0nce", 1414587457,
                                                      "https://caifu.example/sidebar?tenant=t1")


# --- over real HTTP ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_asgi_stub_serves_the_client_over_http(fake: FakeWeCom, clock: Clock) -> None:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(fake.asgi_app(), host="127.0.0.1", port=port,
                                           log_level="warning", loop="asyncio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        with WeComClient(fake.corp_id, fake.secret, base_url=f"http://127.0.0.1:{port}/cgi-bin/",
                         sleep=clock.sleep, clock=clock) as client:
            fake.fail_next("externalcontact/list", 500)
            assert len(client.list_external_contacts("adv1")) == 3
            assert len(clock.sleeps) == 1  # the 500 came over the wire and was retried
            ext = client.list_external_contacts("adv2")[0]
            assert client.get_external_contact(ext)["external_contact"]["name"].startswith("客户")
            with pytest.raises(WeComError) as err:
                client.auth_getuserinfo("not-a-code")
            assert err.value.errcode == 40029
    finally:
        server.should_exit = True
        thread.join(timeout=10)
