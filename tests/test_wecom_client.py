"""The WeCom and official-account clients against the fake cloud over 127.0.0.1:
token caching and refresh, retries, permanent errors, send windows and paging, the
per-member send limiter, and that secrets and tokens never leak."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from tenacity import wait_none

from bot.platforms.wecom.client import OfficialAccountClient, WeComClient
from bot.platforms.wecom.errors import (
    WeComApiError,
    WeComRateLimited,
    WeComTransportError,
    classify,
    is_transient,
    retry_after,
)
from bot.platforms.wecom.ratelimit import WindowLimiter
from tests.fakes.wecom_cloud import FakeWeComCloud

CORP = "ww5f0c0ffee0000001"
SECRET = "app-secret-Zq8x1V4mN7pK2rT9wY3bC6dF0gH5jL"
AGENT = 1000002
OA_APPID = "wx2c2769f8efd9abc2"
OA_SECRET = "oa-secret-Hh2Jj4Kk6Ll8Mm0Nn2Pp4Qq6"
SEND = "/cgi-bin/message/send"
GET = "/cgi-bin/externalcontact/get"
TOKEN = "/cgi-bin/gettoken"
KF_SEND = "/cgi-bin/kf/send_msg"
WELCOME = "/cgi-bin/externalcontact/send_welcome_msg"
CUSTOM = "/cgi-bin/message/custom/send"


class Clock:
    def __init__(self, now: float = 1_767_225_600.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def cloud(clock: Clock) -> AsyncIterator[FakeWeComCloud]:
    fake = FakeWeComCloud(CORP, {SECRET: "siyu"}, clock=clock)
    fake.add_official_account(OA_APPID, OA_SECRET)
    fake.add_staff("zhangsan", "lisi")
    fake.add_contact("zhangsan", "wmCustomer0001", "王小禾", unionid="oUnion1", state="store-1")
    await fake.start()
    yield fake
    await fake.close()


def make_client(cloud: FakeWeComCloud, http: aiohttp.ClientSession, clock: Clock, **options: object) -> WeComClient:
    settings: dict[str, object] = {"clock": clock, "retry_wait": wait_none()}
    settings.update(options)
    return WeComClient(http, cloud.base_url, CORP, SECRET, **settings)  # type: ignore[arg-type]


@pytest.fixture
def client(cloud: FakeWeComCloud, http: aiohttp.ClientSession, clock: Clock) -> WeComClient:
    return make_client(cloud, http, clock)


# -- the access_token -------------------------------------------------------------------


async def test_many_concurrent_calls_share_one_token_refreshed_before_expiry(
    client: WeComClient, cloud: FakeWeComCloud, clock: Clock
) -> None:
    found = await asyncio.gather(*(client.get_external_contact("wmCustomer0001") for _ in range(100)))
    assert {item["external_contact"]["name"] for item in found} == {"王小禾"}
    assert cloud.tokens_issued == 1 and len(cloud.calls_to(TOKEN)) == 1
    assert "corpsecret" in cloud.calls_to(TOKEN)[0].query and SECRET not in str(cloud.calls)

    clock.advance(7200 - 300 - 1)  # still inside the refresh margin
    await client.get_external_contact("wmCustomer0001")
    assert cloud.tokens_issued == 1
    clock.advance(2)  # 5 minutes before WeCom would expire it: refresh ahead, no 42001 seen
    await asyncio.gather(*(client.get_external_contact("wmCustomer0001") for _ in range(20)))
    assert cloud.tokens_issued == 2
    assert len(cloud.calls_to(GET)) == 121


async def test_a_token_expired_at_wecom_is_refetched_once(
    cloud: FakeWeComCloud, http: aiohttp.ClientSession, clock: Clock
) -> None:
    # The client's clock lags WeCom's (a suspended laptop, skew): WeCom answers 42001.
    client = make_client(cloud, http, Clock(clock.now))
    await client.list_external_contacts("zhangsan")
    clock.advance(7201)
    assert await client.list_external_contacts("zhangsan") == ["wmCustomer0001"]
    assert cloud.tokens_issued == 2
    assert len(cloud.calls_to("/cgi-bin/externalcontact/list")) == 3  # ok, 42001, ok


async def test_an_invalidated_token_is_refetched_once_for_many_callers(client: WeComClient, cloud: FakeWeComCloud) -> None:
    await client.get_external_contact("wmCustomer0001")
    cloud.expire_tokens()  # a secret reset: 40014
    await asyncio.gather(*(client.get_external_contact("wmCustomer0001") for _ in range(30)))
    assert cloud.tokens_issued == 2


async def test_a_token_error_after_the_refresh_is_not_retried_again(client: WeComClient, cloud: FakeWeComCloud) -> None:
    cloud.fail_next(GET, 40014, times=2, errmsg="invalid access_token")
    with pytest.raises(WeComApiError) as raised:
        await client.get_external_contact("wmCustomer0001")
    assert raised.value.errcode == 40014 and raised.value.kind == "token"
    assert len(cloud.calls_to(GET)) == 2 and cloud.tokens_issued == 2


async def test_a_wrong_secret_fails_at_once_without_naming_it(
    cloud: FakeWeComCloud, http: aiohttp.ClientSession, clock: Clock
) -> None:
    client = WeComClient(http, cloud.base_url, CORP, "not-the-secret-0000", clock=clock, retry_wait=wait_none())
    with pytest.raises(WeComApiError) as raised:
        await client.get_external_contact("wmCustomer0001")
    assert raised.value.errcode == 40001 and raised.value.path == TOKEN
    assert "not-the-secret-0000" not in str(raised.value)
    assert len(cloud.calls_to(TOKEN)) == 1  # repeated wrong secrets get the IP banned


# -- retries ----------------------------------------------------------------------------


async def test_a_45009_storm_is_retried_until_it_passes(client: WeComClient, cloud: FakeWeComCloud) -> None:
    cloud.fail_next(GET, 45009, times=3, errmsg="api freq out of limit")
    assert (await client.get_external_contact("wmCustomer0001"))["external_contact"]["unionid"] == "oUnion1"
    assert len(cloud.calls_to(GET)) == 4


@pytest.mark.parametrize("fault", ["busy", "drop", "502", "timeout"])
async def test_transient_failures_are_retried(
    fault: str, cloud: FakeWeComCloud, http: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(cloud, http, clock, timeout=aiohttp.ClientTimeout(total=0.05))
    {
        "busy": lambda: cloud.fail_next(SEND, -1),
        "drop": lambda: cloud.drop_next(SEND),
        "502": lambda: cloud.http_error_next(SEND, 502),
        "timeout": lambda: cloud.slow_next(SEND, 5.0),
    }[fault]()
    result = await client.send_text_to_staff(["zhangsan"], AGENT, "新客户到店了")
    assert result.msgid and result.invalid_users == ()
    await cloud.close()  # lets a slow request finish: it reached WeCom too
    assert len(cloud.calls_to(SEND)) == 2
    # The duplicate check makes a resend after a timeout harmless.
    assert cloud.delivered_to(SEND) == ["zhangsan"]


async def test_retries_give_up_after_the_attempts(
    cloud: FakeWeComCloud, http: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(cloud, http, clock, attempts=3)
    cloud.fail_next(GET, 45033, times=10, errmsg="api concurrent out of limit")
    with pytest.raises(WeComApiError) as raised:
        await client.get_external_contact("wmCustomer0001")
    assert raised.value.errcode == 45033 and len(cloud.calls_to(GET)) == 3

    cloud.http_error_next("/cgi-bin/externalcontact/list", 503, times=10)
    with pytest.raises(WeComTransportError) as failed:
        await client.list_external_contacts("zhangsan")
    assert failed.value.status == 503 and len(cloud.calls_to("/cgi-bin/externalcontact/list")) == 3


async def test_permanent_errors_raise_at_once(client: WeComClient, cloud: FakeWeComCloud) -> None:
    with pytest.raises(WeComApiError) as raised:
        await client.send_text_to_staff("nobody|ghost", AGENT, "hi")
    assert raised.value.errcode == 81013 and "all invalid" in raised.value.errmsg and raised.value.path == SEND
    assert raised.value.kind == "permanent" and len(cloud.calls_to(SEND)) == 1
    with pytest.raises(WeComApiError) as welcome:
        await client.send_welcome_msg("no-such-code", "欢迎")
    assert welcome.value.errcode == 41050 and len(cloud.calls_to(WELCOME)) == 1
    with pytest.raises(WeComApiError) as external:
        await client.get_external_contact("wmNotMine0009")
    assert external.value.errcode == 84061


def test_error_classes_follow_the_docs() -> None:
    assert [classify(code) for code in (-1, 6000, 45009, 45033, 41063, 41096)] == ["retry"] * 6
    assert [classify(code) for code in (40014, 42001, 41001)] == ["token"] * 3
    assert {classify(code) for code in (0, 40001, 40013, 81013, 41050, 41051, 84061, 95001, 95018, 42009)} == {"permanent"}
    assert retry_after(45009) == 60.0 and retry_after(-1) is None
    assert is_transient(WeComApiError(45009, "x", SEND)) and not is_transient(WeComApiError(81013, "x", SEND))
    assert not is_transient(WeComTransportError(SEND, "HTTP 404", retryable=False))


# -- app messages, welcome codes, customers ---------------------------------------------


async def test_message_send_duplicate_check_delivers_once_within_the_interval(
    client: WeComClient, cloud: FakeWeComCloud, clock: Clock
) -> None:
    for _ in range(2):
        await client.send_textcard_to_staff("zhangsan", AGENT, "会员生日", "王小禾今天生日", "https://example.com/m/1")
    assert cloud.delivered_to(SEND) == ["zhangsan"] and len(cloud.duplicates) == 1
    clock.advance(1801)
    await client.send_textcard_to_staff("zhangsan", AGENT, "会员生日", "王小禾今天生日", "https://example.com/m/1")
    for _ in range(2):
        await client.send_text_to_staff("zhangsan", AGENT, "同一句话", duplicate_check_seconds=0)
    assert cloud.delivered_to(SEND) == ["zhangsan"] * 4
    partly = await client.send_text_to_staff(["LiSi", "ghost"], AGENT, "部分无效")
    assert partly.invalid_users == ("ghost",) and cloud.delivered_to(SEND)[-1] == "lisi"


async def test_a_welcome_code_works_once_and_for_20_seconds(
    client: WeComClient, cloud: FakeWeComCloud, clock: Clock
) -> None:
    code = cloud.issue_welcome_code("wmCustomer0001", "zhangsan")
    await client.send_welcome_msg(code, "你好，我是小禾")
    with pytest.raises(WeComApiError) as again:
        await client.send_welcome_msg(code, "你好，我是小禾")
    assert again.value.errcode == 41051
    late = cloud.issue_welcome_code("wmCustomer0001", "zhangsan")
    clock.advance(21)
    with pytest.raises(WeComApiError) as expired:
        await client.send_welcome_msg(late, "你好")
    assert expired.value.errcode == 41050
    assert cloud.delivered_to(WELCOME) == ["wmCustomer0001"]


async def test_batch_get_by_user_pages_with_cursors(client: WeComClient, cloud: FakeWeComCloud) -> None:
    for n in range(2, 5):
        cloud.add_contact("zhangsan", f"wmCustomer000{n}", f"顾客{n}")
    for n in range(5, 7):
        cloud.add_contact("lisi", f"wmCustomer000{n}", f"顾客{n}")
    first = await client.batch_get_by_user(["zhangsan", "lisi"], limit=2)
    assert len(first.contacts) == 2 and first.next_cursor
    second = await client.batch_get_by_user(["zhangsan", "lisi"], first.next_cursor, limit=2)
    third = await client.batch_get_by_user(["zhangsan", "lisi"], second.next_cursor, limit=2)
    assert len(third.contacts) == 2 and third.next_cursor == ""
    every = [item async for item in client.iter_contacts_by_user(["zhangsan", "lisi"], limit=4)]
    assert [item["external_contact"]["external_userid"] for item in every] == [f"wmCustomer000{n}" for n in range(1, 7)]
    assert every[0]["follow_info"]["userid"] == "zhangsan" and every[0]["follow_info"]["state"] == "store-1"
    with pytest.raises(ValueError):
        await client.batch_get_by_user(["zhangsan"], limit=101)


async def test_groups_and_tags(client: WeComClient, cloud: FakeWeComCloud) -> None:
    cloud.add_group("wrGroup01", "禾麦烘焙会员群", "zhangsan", ["wmCustomer0001"])
    group = await client.groupchat_get("wrGroup01")
    assert group["owner"] == "zhangsan" and [m["type"] for m in group["member_list"]] == [1, 2]
    assert group["member_list"][1]["name"] == "王小禾"
    created = await client.add_corp_tag("口味偏好", ["面包控", "控糖"])
    ids = {tag["name"]: tag["id"] for tag in created["tag"]}
    await client.mark_tag("zhangsan", "wmCustomer0001", add=[ids["面包控"], ids["控糖"]])
    await client.mark_tag("zhangsan", "wmCustomer0001", remove=[ids["控糖"]])
    detail = await client.get_external_contact("wmCustomer0001")
    assert [tag["tag_name"] for tag in detail["follow_user"][0]["tags"]] == ["面包控"]
    assert [group["group_name"] for group in await client.get_corp_tag_list()] == ["口味偏好"]


# -- WeChat Customer Service ------------------------------------------------------------


async def test_kf_replies_only_inside_the_window(client: WeComClient, cloud: FakeWeComCloud, clock: Clock) -> None:
    with pytest.raises(WeComApiError) as never:
        cloud.kf_accounts.add("wkBakery")
        await client.kf_send_text("wmCustomer0001", "wkBakery", "在吗")
    assert never.value.errcode == 95018
    cloud.customer_writes("wkBakery", "wmCustomer0001", "吐司还有吗")
    for n in range(5):
        await client.kf_send_text("wmCustomer0001", "wkBakery", f"回复{n}", msgid=f"out-{n}")
    await client.kf_send_text("wmCustomer0001", "wkBakery", "回复4", msgid="out-4")  # a retry: not sent twice
    with pytest.raises(WeComApiError) as count:
        await client.kf_send_text("wmCustomer0001", "wkBakery", "第六条")
    assert count.value.errcode == 95001
    cloud.customer_writes("wkBakery", "wmCustomer0001", "好的")
    await client.kf_send_text("wmCustomer0001", "wkBakery", "第六条")
    clock.advance(48 * 3600 + 1)
    with pytest.raises(WeComApiError) as late:
        await client.kf_send_text("wmCustomer0001", "wkBakery", "太晚了")
    assert late.value.errcode == 95018
    assert len(cloud.delivered_to(KF_SEND)) == 6


async def test_kf_sync_msg_pages_with_the_callback_token(client: WeComClient, cloud: FakeWeComCloud, clock: Clock) -> None:
    cloud.customer_writes("wkBakery", "wmOld000001", "三天前的消息")
    clock.advance(3 * 86400 + 60)
    token = ""
    for n in range(5):
        token = cloud.customer_writes("wkBakery", f"wmCustomer000{n}", f"消息{n}")
    pages, cursor = [], ""
    while True:
        page = await client.kf_sync_msg(token, cursor, "wkBakery", limit=2)
        pages.append([m["text"]["content"] for m in page.messages])
        cursor = page.next_cursor
        if not page.has_more:
            break
    assert pages == [["消息0", "消息1"], ["消息2", "消息3"], ["消息4"]]
    token = cloud.customer_writes("wkBakery", "wmCustomer0001", "新消息")
    page = await client.kf_sync_msg(token, cursor, "wkBakery")
    assert [m["text"]["content"] for m in page.messages] == ["新消息"] and not page.has_more
    assert page.messages[0]["origin"] == 3 and page.messages[0]["external_userid"] == "wmCustomer0001"
    clock.advance(601)
    with pytest.raises(WeComApiError) as stale:
        await client.kf_sync_msg(token, page.next_cursor, "wkBakery")
    assert stale.value.errcode == 95007


# -- the official account ---------------------------------------------------------------


async def test_official_account_custom_messages(cloud: FakeWeComCloud, http: aiohttp.ClientSession, clock: Clock) -> None:
    oa = OfficialAccountClient(http, cloud.base_url, OA_APPID, OA_SECRET, clock=clock, retry_wait=wait_none())
    with pytest.raises(WeComApiError) as silent:
        await oa.send_custom_text("oOpenid1", "你好")
    assert silent.value.errcode == 45015
    cloud.user_writes("oOpenid1")
    for n in range(5):
        await oa.send_custom_text("oOpenid1", f"第{n}条")
    with pytest.raises(WeComApiError) as count:
        await oa.send_custom_text("oOpenid1", "第六条")
    assert count.value.errcode == 45047
    cloud.user_writes("oOpenid1")
    cloud.expire_tokens()  # the official account answers 40001 "invalid credential": refetch once
    await oa.send_custom_text("oOpenid1", "又来了")
    clock.advance(48 * 3600 + 1)
    with pytest.raises(WeComApiError) as late:
        await oa.send_custom_text("oOpenid1", "太晚了")
    assert late.value.errcode == 45015
    assert cloud.delivered_to(CUSTOM) == ["oOpenid1"] * 6
    assert cloud.tokens_issued == 3  # first, after the 40001, after 48 h (past its 2 h life)


# -- the per-member limit ---------------------------------------------------------------


def test_window_limiter_waits_for_the_31st_and_slides(clock: Clock) -> None:
    limiter = WindowLimiter(clock=clock)
    for _ in range(30):
        assert limiter.wait_for("1000002:zhangsan") == 0
        limiter.record("1000002:zhangsan")
        clock.advance(1)
    assert limiter.wait_for("1000002:zhangsan") == pytest.approx(30)  # the first send leaves at t=60
    assert limiter.wait_for("1000002:lisi") == 0
    clock.advance(30)
    assert limiter.wait_for("1000002:zhangsan") == 0
    limiter.record("1000002:zhangsan")
    assert limiter.wait_for("1000002:zhangsan") == pytest.approx(1)  # the window slid by one send


def test_window_limiter_hourly_cap_and_forgetting(clock: Clock) -> None:
    limiter = WindowLimiter(((30, 60.0), (1000, 3600.0)), clock)
    for _ in range(1000):
        limiter.record("k")
        clock.advance(3)  # 20/min: never the minute cap
    assert limiter.wait_for("k") == pytest.approx(600)  # the first of the hour, sent at t=0, leaves at 3600
    clock.advance(3600)
    assert limiter.wait_for("k") == 0 and limiter.active_keys() == 0
    with pytest.raises(ValueError):
        WindowLimiter(((0, 60.0),), clock)


async def test_the_client_holds_the_31st_message_a_minute(
    client: WeComClient, cloud: FakeWeComCloud, clock: Clock
) -> None:
    for n in range(30):
        await client.send_text_to_staff("zhangsan", AGENT, f"提醒{n}")
        clock.advance(1)
    with pytest.raises(WeComRateLimited) as held:
        await client.send_text_to_staff("zhangsan", AGENT, "第31条")
    assert held.value.retry_after == pytest.approx(30)
    clock.advance(30)
    await client.send_text_to_staff("zhangsan", AGENT, "第31条")
    assert len(cloud.delivered_to(SEND)) == 31 and cloud.dropped == []


async def test_without_the_limiter_wecom_silently_drops_the_excess(
    cloud: FakeWeComCloud, http: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(cloud, http, clock, staff_limits=None)
    for n in range(31):
        result = await client.send_text_to_staff("zhangsan", AGENT, f"提醒{n}")
        assert result.msgid  # errcode 0 every time
    assert len(cloud.delivered_to(SEND)) == 30 and [d.body["text"]["content"] for d in cloud.dropped] == ["提醒30"]


# -- nothing leaks ----------------------------------------------------------------------


async def test_secret_and_tokens_never_reach_logs_or_errors(
    cloud: FakeWeComCloud, http: aiohttp.ClientSession, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(cloud, http, clock, attempts=2)
    impatient = make_client(cloud, http, clock, attempts=2, timeout=aiohttp.ClientTimeout(total=0.05))
    await client.get_external_contact("wmCustomer0001")
    token = next(iter(cloud.tokens))
    cloud.fail_next(GET, 45009)
    cloud.fail_next(GET, 40014)
    await client.get_external_contact("wmCustomer0001")
    cloud.fail_next(GET, 40058, errmsg=f"bad request ?access_token={token}&corpsecret={SECRET}")
    cloud.drop_next("/cgi-bin/externalcontact/groupchat/get", times=2)
    cloud.slow_next("/cgi-bin/kf/sync_msg", 5.0, times=2)
    errors: list[BaseException] = []
    for call in (
        client.get_external_contact("wmCustomer0001"),
        client.groupchat_get("wrGroup01"),
        impatient.kf_sync_msg("", "", "wkNone"),
        WeComClient(http, cloud.base_url, CORP, SECRET + "x", retry_wait=wait_none()).list_external_contacts("lisi"),
    ):
        try:
            await call
        except (WeComApiError, WeComTransportError) as error:
            errors.append(error)
    assert [type(error).__name__ for error in errors] == [
        "WeComApiError", "WeComTransportError", "WeComTransportError", "WeComApiError",
    ]
    assert "access_token=***" in str(errors[0])
    seen = caplog.text + "\n".join(f"{error!s} {error!r} {error.__cause__!r} {error.__context__!r}" for error in errors)
    assert "retrying" in caplog.text and "/cgi-bin/externalcontact/get" in caplog.text
    for credential in [SECRET, *cloud.tokens]:
        assert credential not in seen
    assert "access_token=" not in caplog.text
