"""The fake WeCom cloud speaks the documented protocol (WECOM.md §4, §5), checked with raw
HTTP so that the client's tests rest on something we have looked at directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.wecom_cloud import FakeWeComCloud

CORP = "ww5f0c0ffee0000001"
SECRET = "app-secret-Zq8x1V4mN7pK2rT9wY3bC6dF0gH5jL"


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def cloud(clock: Clock) -> AsyncIterator[FakeWeComCloud]:
    fake = FakeWeComCloud(CORP, {SECRET: "siyu"}, clock=clock)
    fake.add_contact("zhangsan", "wmCustomer0001", "王小禾", state="store-1")
    await fake.start()
    yield fake
    await fake.close()


async def api(
    http: aiohttp.ClientSession, cloud: FakeWeComCloud, path: str, token: str | None = None,
    body: Any = None, **query: str,
) -> dict[str, Any]:
    if token is not None:
        query["access_token"] = token
    method = "GET" if body is None else "POST"
    data = body if isinstance(body, bytes) else None
    async with http.request(method, cloud.base_url + path, params=query, data=data,
                            json=None if data is not None else body) as response:
        assert response.status == 200
        return dict(await response.json())


async def token_for(http: aiohttp.ClientSession, cloud: FakeWeComCloud) -> str:
    answer = await api(http, cloud, "/cgi-bin/gettoken", corpid=CORP, corpsecret=SECRET)
    assert answer["errcode"] == 0 and answer["errmsg"] == "ok" and answer["expires_in"] == cloud.token_lifetime
    return str(answer["access_token"])


async def test_gettoken_and_the_token_errors(http: aiohttp.ClientSession, cloud: FakeWeComCloud, clock: Clock) -> None:
    assert (await api(http, cloud, "/cgi-bin/gettoken", corpid="wwOther", corpsecret=SECRET))["errcode"] == 40013
    assert (await api(http, cloud, "/cgi-bin/gettoken", corpid=CORP, corpsecret="nope"))["errcode"] == 40001
    cloud.token_lifetime = 60
    token = await token_for(http, cloud)
    path = "/cgi-bin/externalcontact/list"
    assert (await api(http, cloud, path, token, userid="zhangsan"))["external_userid"] == ["wmCustomer0001"]
    assert (await api(http, cloud, path, userid="zhangsan"))["errcode"] == 41001
    assert (await api(http, cloud, path, "made-up", userid="zhangsan"))["errcode"] == 40014
    clock.now += 60
    assert (await api(http, cloud, path, token, userid="zhangsan"))["errcode"] == 42001
    fresh = await token_for(http, cloud)
    cloud.expire_tokens()
    assert (await api(http, cloud, path, fresh, userid="zhangsan"))["errcode"] == 40014
    assert cloud.tokens_issued == 2
    # The record keeps the query but never the token or the secret.
    assert cloud.calls[0].query == {"corpid": "wwOther", "corpsecret": "***"}
    assert all("access_token" not in call.query for call in cloud.calls)


async def test_official_account_token_has_no_errcode_and_its_own_codes(
    http: aiohttp.ClientSession, cloud: FakeWeComCloud
) -> None:
    cloud.add_official_account("wxApp1", "oa-secret")
    answer = await api(http, cloud, "/cgi-bin/token", grant_type="client_credential", appid="wxApp1", secret="oa-secret")
    assert set(answer) == {"access_token", "expires_in"}
    refused = await api(http, cloud, "/cgi-bin/token", grant_type="client_credential", appid="wxApp1", secret="x")
    assert refused["errcode"] == 40001
    wecom = await token_for(http, cloud)
    # A WeCom token is no credential for the official account, nor the other way round.
    text = {"touser": "o1", "msgtype": "text", "text": {"content": "hi"}}
    sent = await api(http, cloud, "/cgi-bin/message/custom/send", wecom, text)
    assert sent["errcode"] == 40001
    listed = await api(http, cloud, "/cgi-bin/externalcontact/list", answer["access_token"], userid="zhangsan")
    assert listed["errcode"] == 40014


async def test_message_send_reports_invalid_users_and_drops_the_excess_silently(
    http: aiohttp.ClientSession, cloud: FakeWeComCloud
) -> None:
    token = await token_for(http, cloud)
    body = {"touser": "ZhangSan|ghost", "msgtype": "text", "agentid": 1000002, "text": {"content": "x"}}
    answer = await api(http, cloud, "/cgi-bin/message/send", token, body)
    assert answer["errcode"] == 0 and answer["invaliduser"] == "ghost" and answer["msgid"]
    assert (await api(http, cloud, "/cgi-bin/message/send", token, {**body, "touser": "ghost"}))["errcode"] == 81013
    assert (await api(http, cloud, "/cgi-bin/message/send", token, {**body, "agentid": "x"}))["errcode"] == 40056
    assert (await api(http, cloud, "/cgi-bin/message/send", token, {**body, "text": {"content": ""}}))["errcode"] == 44004
    for n in range(30):
        await api(http, cloud, "/cgi-bin/message/send", token, {**body, "text": {"content": f"{n}"}})
    assert len(cloud.delivered_to("/cgi-bin/message/send")) == 30 and len(cloud.dropped) == 1
    assert (await api(http, cloud, "/cgi-bin/message/send", token, b"{not json"))["errcode"] == 47001


async def test_customer_detail_and_its_errors(http: aiohttp.ClientSession, cloud: FakeWeComCloud) -> None:
    token = await token_for(http, cloud)
    tag = cloud.add_tag("门店", "一号店")
    cloud.add_contact("lisi", "wmCustomer0001", "王小禾", unionid="oU1", tags=[tag], remark="老顾客")
    detail = await api(http, cloud, "/cgi-bin/externalcontact/get", token, external_userid="wmCustomer0001")
    assert detail["external_contact"]["unionid"] == "oU1" and detail["external_contact"]["type"] == 1
    assert [(f["userid"], f.get("state")) for f in detail["follow_user"]] == [("zhangsan", "store-1"), ("lisi", None)]
    assert detail["follow_user"][1]["tags"] == [{"group_name": "门店", "tag_name": "一号店", "tag_id": tag, "type": 1}]
    assert (await api(http, cloud, "/cgi-bin/externalcontact/get", token, external_userid="not-an-id"))["errcode"] == 40096
    cloud.remove_contact("zhangsan", "wmCustomer0001")
    cloud.remove_contact("lisi", "wmCustomer0001")
    assert (await api(http, cloud, "/cgi-bin/externalcontact/get", token, external_userid="wmCustomer0001"))["errcode"] == 84061
    with pytest.raises(ValueError):
        cloud.add_contact("zhangsan", "wmX00001", "x", tags=["etUnknown"])
    batch = "/cgi-bin/externalcontact/batch/get_by_user"
    assert (await api(http, cloud, batch, token, {"userid_list": ["zhangsan"], "cursor": "bogus"}))["errcode"] == 40058
    assert (await api(http, cloud, batch, token, {"userid_list": ["a"], "limit": 101}))["errcode"] == 40058


async def test_faults_switched_on_per_path(http: aiohttp.ClientSession, cloud: FakeWeComCloud) -> None:
    token = await token_for(http, cloud)
    path = "/cgi-bin/externalcontact/groupchat/get"
    cloud.add_group("wrG1", "会员群", "zhangsan", ["wmCustomer0001"])
    cloud.fail_next(path, 45009, times=2, errmsg="api freq out of limit")
    cloud.http_error_next(path, 502)
    cloud.drop_next(path)
    for _ in range(2):
        answer = await api(http, cloud, path, token, {"chat_id": "wrG1"})
        assert answer["errcode"] == 45009 and answer["errmsg"].startswith("api freq out of limit")
    async with http.post(cloud.base_url + path, params={"access_token": token}, json={"chat_id": "wrG1"}) as response:
        assert response.status == 502
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api(http, cloud, path, token, {"chat_id": "wrG1"})
    group = await api(http, cloud, path, token, {"chat_id": "wrG1", "need_name": 1})
    assert group["group_chat"]["member_list"][1]["name"] == "王小禾"
    assert (await api(http, cloud, path, token, {"chat_id": "wrNone"}))["errcode"] == 40050
    assert len(cloud.calls_to(path)) == 6 and cloud.calls_to(path)[0].json == {"chat_id": "wrG1"}


async def test_kf_tokens_belong_to_their_account(http: aiohttp.ClientSession, cloud: FakeWeComCloud) -> None:
    token = await token_for(http, cloud)
    callback_token = cloud.customer_writes("wkA", "wmCustomer0001", "hi")
    cloud.customer_writes("wkB", "wmCustomer0001", "hello")
    sync = "/cgi-bin/kf/sync_msg"
    assert (await api(http, cloud, sync, token, {"token": callback_token, "open_kfid": "wkB"}))["errcode"] == 95007
    everything = await api(http, cloud, sync, token, {"cursor": ""})  # no token: allowed, all accounts
    assert [m["open_kfid"] for m in everything["msg_list"]] == ["wkA", "wkB"] and everything["has_more"] == 0
    send = {"touser": "wmCustomer0001", "open_kfid": "wkA", "msgtype": "text", "text": {"content": "x"}}
    assert (await api(http, cloud, "/cgi-bin/kf/send_msg", token, {**send, "msgid": "bad id!"}))["errcode"] == 40058
    assert (await api(http, cloud, "/cgi-bin/kf/send_msg", token, {**send, "open_kfid": "wkNone"}))["errcode"] == 95000


async def test_transfer_customer_answers_per_customer_and_keeps_the_documented_limits(
    http: aiohttp.ClientSession, cloud: FakeWeComCloud
) -> None:
    token = await token_for(http, cloud)
    path = "/cgi-bin/externalcontact/transfer_customer"
    cloud.add_contact("wangwu", "wmSomeoneElses", "李娜")
    cloud.add_staff("lisi")
    body = {"handover_userid": "zhangsan", "takeover_userid": "lisi",
            "external_userid": ["wmCustomer0001", "wmSomeoneElses", "wmNobodyKnows"]}
    answer = await api(http, cloud, path, token, body | {"transfer_success_msg": "您好，后续由李四为您服务。"})
    assert answer["errcode"] == 0
    assert answer["customer"] == [{"external_userid": "wmCustomer0001", "errcode": 0},
                                  {"external_userid": "wmSomeoneElses", "errcode": 84061},
                                  {"external_userid": "wmNobodyKnows", "errcode": 40096}]
    assert [(t.handover, t.takeover, t.external_userid) for t in cloud.transfers] == [("zhangsan", "lisi", "wmCustomer0001")]

    too_many = body | {"external_userid": [f"wm{n:04d}" for n in range(101)]}
    assert (await api(http, cloud, path, token, too_many))["errcode"] == 40058
    assert (await api(http, cloud, path, token, body | {"external_userid": []}))["errcode"] == 40058
    assert (await api(http, cloud, path, token, body | {"transfer_success_msg": "好" * 201}))["errcode"] == 40058
    assert (await api(http, cloud, path, token, body | {"takeover_userid": "nobody"}))["errcode"] == 40003
    assert len(cloud.transfers) == 1  # a refused call starts nothing

    (done,) = cloud.complete_transfers()  # 24 hours on: she is lisi's now
    assert done.external_userid == "wmCustomer0001" and cloud.transfers == []
    assert [(f.userid, f.external_userid) for f in cloud.follows if f.external_userid == "wmCustomer0001"] == [
        ("lisi", "wmCustomer0001")]
