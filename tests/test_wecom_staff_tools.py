"""Who opens a page in WeCom and how the page may use the JS-SDK, against the fake cloud:
the OAuth2 code exchange, the two tickets (cached, refreshed, fetched once however many
ask, keyed per app), and the signature — checked against WeCom's own worked example."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.errors import WeComApiError
from bot.platforms.wecom.jssdk import page_url, sign, signature
from bot.platforms.wecom.oauth import authorize_url, plausible_code, visitor_of
from bot.platforms.wecom.tickets import ProcessValues, Tickets
from tests import test_wecom_client
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.test_wecom_client import AGENT, CORP, Clock

# doc 96909 「JS-SDK使用权限签名算法」 (also wechatpy's test_jsapi_get_jsapi_signature)
DOC_TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
DOC_NONCE, DOC_TIMESTAMP = "Wm3WZYTPz0wzccnW", 1414587457


def test_the_signature_matches_wecoms_published_example() -> None:
    url = "http://mp.weixin.qq.com?params=value"
    assert signature(DOC_TICKET, DOC_NONCE, DOC_TIMESTAMP, url) == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    # the official account's page of the same example signs the bare URL
    assert signature(DOC_TICKET, DOC_NONCE, DOC_TIMESTAMP, "http://mp.weixin.qq.com") == (
        "f4d90daf4b3bca3078ab155816175ba34c443a7b")


def test_the_signature_covers_the_url_without_its_fragment_and_without_encoding() -> None:
    url = "https://brand.example/wecom/sidebar?x=1&y=中"
    assert page_url(url + "#card") == url
    assert signature("t", "n", 1, url + "#card") == signature("t", "n", 1, url)
    assert signature("t", "n", 1, url) != signature("t", "n", 1, "https://brand.example/wecom/sidebar?x=1&y=%E4%B8%AD")
    signed = sign("t", url, 1700000000)
    assert len(signed.nonce) == 16 and signed.signature == signature("t", signed.nonce, 1700000000, url)


# The client tests' corp, clock and client.
clock, cloud, client = test_wecom_client.clock, test_wecom_client.cloud, test_wecom_client.client


async def _code_for(cloud: FakeWeComCloud, redirect: str = "http://127.0.0.1:9/wecom/sidebar") -> str:
    """The browser goes to the authorize URL and WeCom sends it back with a code."""
    async with aiohttp.ClientSession() as browser, browser.get(
        authorize_url(cloud.base_url, CORP, AGENT, redirect, "s1"), allow_redirects=False
    ) as answer:
        assert answer.status == 302, await answer.text()
        back = urlsplit(answer.headers["Location"])
    assert back.netloc == urlsplit(redirect).netloc and parse_qs(back.query)["state"] == ["s1"]
    return parse_qs(back.query)["code"][0]


def test_the_authorize_url_asks_silently_for_the_app() -> None:
    url = authorize_url("https://open.weixin.qq.com", CORP, AGENT, "https://brand.example/wecom/sidebar?a=1", "abc123")
    parts = urlsplit(url)
    assert parts.fragment == "wechat_redirect" and parts.path == "/connect/oauth2/authorize"
    assert parse_qs(parts.query) == {
        "appid": [CORP], "redirect_uri": ["https://brand.example/wecom/sidebar?a=1"], "response_type": ["code"],
        "scope": ["snsapi_base"], "state": ["abc123"], "agentid": [str(AGENT)],
    }
    with pytest.raises(ValueError):
        authorize_url("https://open.weixin.qq.com", CORP, AGENT, "https://x", "not/alnum")
    assert plausible_code("abc") and not plausible_code("") and not plausible_code("a b") and not plausible_code("x" * 513)


async def test_a_code_names_the_staff_member_once(cloud: FakeWeComCloud, client: WeComClient) -> None:
    cloud.client_user = "zhangsan"
    code = await _code_for(cloud)
    assert (await visitor_of(client, code)).userid == "zhangsan"
    with pytest.raises(WeComApiError) as used:
        await visitor_of(client, code)
    assert used.value.errcode == 40029


async def test_a_code_expires_after_five_minutes(cloud: FakeWeComCloud, client: WeComClient, clock: Clock) -> None:
    cloud.client_user = "zhangsan"
    code = await _code_for(cloud)
    clock.advance(301)
    with pytest.raises(WeComApiError) as expired:
        await visitor_of(client, code)
    assert expired.value.errcode == 40029


async def test_a_visitor_who_is_no_member_has_no_userid(cloud: FakeWeComCloud, client: WeComClient) -> None:
    cloud.client_user, cloud.client_openid = None, "oAbc123"
    visitor = await visitor_of(client, await _code_for(cloud))
    assert visitor.userid is None and visitor.openid == "oAbc123"


async def test_a_redirect_outside_the_trusted_domain_gets_no_user(cloud: FakeWeComCloud, client: WeComClient) -> None:
    cloud.client_user = "zhangsan"
    code = await _code_for(cloud, "http://elsewhere.example/wecom/sidebar")
    with pytest.raises(WeComApiError) as refused:
        await visitor_of(client, code)
    assert refused.value.errcode == 50001


async def test_tickets_are_fetched_once_and_refreshed_before_they_expire(
    cloud: FakeWeComCloud, client: WeComClient, clock: Clock
) -> None:
    tickets = Tickets(client, AGENT, clock=clock)
    corp, app = (await asyncio.gather(*(tickets.ticket(kind) for kind in ["jsapi", "agent_config"] * 10)))[:2]
    assert corp == cloud.ticket_value("jsapi") and app == cloud.ticket_value("agent_config") and corp != app
    assert cloud.ticket_fetches("jsapi") == 1 and cloud.ticket_fetches("agent_config") == 1
    clock.advance(7200 - 299)  # within five minutes of expiry: renewed
    assert await tickets.ticket("jsapi") != corp
    assert cloud.ticket_fetches("jsapi") == 2 and cloud.ticket_fetches("agent_config") == 1


async def test_processes_sharing_a_store_share_the_tickets(cloud: FakeWeComCloud, client: WeComClient, clock: Clock) -> None:
    shared = ProcessValues(clock)
    first, second = Tickets(client, AGENT, shared, clock), Tickets(client, AGENT, shared, clock)
    assert await first.ticket("agent_config") == await second.ticket("agent_config")
    assert cloud.ticket_fetches("agent_config") == 1
    # the app ticket belongs to the app: another agent of the corp has its own
    assert Tickets(client, AGENT + 1, shared, clock).name("agent_config") != first.name("agent_config")
    assert Tickets(client, AGENT + 1, shared, clock).name("jsapi") == first.name("jsapi")


async def test_a_forgotten_ticket_is_fetched_again(cloud: FakeWeComCloud, client: WeComClient, clock: Clock) -> None:
    tickets = Tickets(client, AGENT, clock=clock)
    old = await tickets.ticket("jsapi")
    await tickets.forget("jsapi", old)
    assert await tickets.ticket("jsapi") != old and cloud.ticket_fetches("jsapi") == 2


async def test_the_cloud_refuses_tickets_beyond_its_hourly_limit(cloud: FakeWeComCloud, client: WeComClient) -> None:
    for _ in range(100):
        await client.call("GET", "/cgi-bin/ticket/get", query={"type": "agent_config"})
    with pytest.raises(WeComApiError) as refused:
        await client.call("GET", "/cgi-bin/ticket/get", query={"type": "agent_config"})
    assert refused.value.errcode == 45009
