"""The chat sidebar over HTTP against the fake cloud: who gets in (a staff member WeCom
names through OAuth2, nobody else), the page signed for its URL with both tickets, the
card within the store rules, and what staff do on it (tasks, tags) — each refusal with
a clear answer and nothing changed. The browser flow is in test_wecom_sidebar_browser.py."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import aiohttp
from sqlalchemy import select

from bot.platforms.wecom.jssdk import signature
from storage.models import MemberTag, OutboxEntry, StaffTask, Tag
from tests.sidebar_harness import CHAT, WANG, WORDS, ZHAO, SidebarServer


def boot_of(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="boot">(.*?)</script>', html, re.S)
    assert found, html[:500]
    return json.loads(found.group(1))


async def test_a_staff_member_signs_in_through_wecom_and_gets_a_signed_page(sidebar: SidebarServer) -> None:
    sidebar.cloud.client_user = "zhangsan"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(sidebar.url + "?from=toolbar") as answer:
            html = await answer.text()
            assert answer.status == 200
            # back on the page's own address: WeCom's code and state are gone from it
            assert str(answer.url) == sidebar.url + "?from=toolbar"
            assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        authorize = [c for c in sidebar.cloud.calls if c.path == "/connect/oauth2/authorize"]
        assert authorize[0].query["redirect_uri"] == sidebar.url + "?from=toolbar"
        assert authorize[0].query["scope"] == "snsapi_base" and authorize[0].query["agentid"] == "1000002"
        boot = boot_of(html)
        signed, url = boot["signed"], sidebar.url + "?from=toolbar"
        assert signed["url"] == url and boot["staff"] == "张珊"
        config, agent = signed["config"], signed["agentConfig"]
        # wx.config with the corp's ticket, wx.agentConfig with the app's, both over the page URL
        assert config["signature"] == signature(sidebar.cloud.ticket_value("jsapi"), config["nonceStr"], config["timestamp"], url)
        assert agent["signature"] == signature(sidebar.cloud.ticket_value("agent_config"), agent["nonceStr"], agent["timestamp"], url)
        assert "secret" not in html and sidebar.cloud.ticket_value("jsapi") not in html  # the tickets stay on the server

        # a second page view reuses the session and the cached tickets
        async with client.get(sidebar.url) as again:
            assert again.status == 200
        assert len([c for c in sidebar.cloud.calls if c.path == "/connect/oauth2/authorize"]) == 1
        assert sidebar.cloud.ticket_fetches("jsapi") == 1 and sidebar.cloud.ticket_fetches("agent_config") == 1

        async with client.get(sidebar.url + "/jssdk", params={"url": sidebar.url + "?x=2#card"}) as resigned:
            other = await resigned.json()
        assert other["url"] == sidebar.url + "?x=2"
        async with client.get(sidebar.url + "/jssdk", params={"url": "http://elsewhere.example/x"}) as refused:
            assert refused.status == 400
        # the client refused the page's signatures (a ticket WeCom dropped early): fresh tickets
        async with client.get(sidebar.url + "/jssdk", params={"url": url, "stale": "1"}) as fresh:
            again = (await fresh.json())["config"]
        assert sidebar.cloud.ticket_fetches("jsapi") == 2 and sidebar.cloud.ticket_fetches("agent_config") == 2
        assert again["signature"] == signature(sidebar.cloud.ticket_value("jsapi"), again["nonceStr"], again["timestamp"], url)


async def test_only_active_staff_of_this_corp_get_in(sidebar: SidebarServer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        sidebar.cloud.client_user, sidebar.cloud.client_openid = None, "oWeChatUser1"
        async with client.get(sidebar.url) as answer:
            assert answer.status == 403 and "只给本企业的员工" in await answer.text()
        sidebar.cloud.client_user = "wangwu"  # a member of the corp, but no staff member here
        sidebar.cloud.add_staff("wangwu")
        async with client.get(sidebar.url) as answer:
            assert answer.status == 403 and "还不是 siyu 里的店员" in await answer.text()
        async with client.get(sidebar.url + "/api/contact/" + WANG) as api:
            assert api.status == 401 and (await api.json())["error"] == "signed_out"


async def test_a_return_from_wecom_it_did_not_start_is_refused(sidebar: SidebarServer) -> None:
    sidebar.cloud.client_user = "zhangsan"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(sidebar.url, allow_redirects=False) as start:
            to_wecom = start.headers["Location"]
        async with client.get(to_wecom, allow_redirects=False) as wecom:
            back = parse_qs(urlsplit(wecom.headers["Location"]).query)
        forged = {"code": back["code"][0], "state": "someoneelse0"}
        async with client.get(sidebar.url, params=forged, allow_redirects=False) as answer:
            assert answer.status == 400 and "重新打开" in await answer.text()
        assert not [c for c in sidebar.cloud.calls if c.path == "/cgi-bin/auth/getuserinfo"]  # never asked
        # the genuine return signs her in; coming back to that address again (the code is
        # spent) shows the page rather than an error
        async with client.get(sidebar.url, params={"code": back["code"][0], "state": back["state"][0]}) as first:
            assert first.status == 200
        async with client.get(sidebar.url, params={"code": back["code"][0], "state": back["state"][0]}) as reload:
            assert reload.status == 200


async def test_the_card_shows_who_she_is_and_what_to_do(sidebar: SidebarServer) -> None:
    async with await sidebar.signed_in("zhangsan") as client, client.get(sidebar.url + "/api/contact/" + WANG) as answer:
        card = await answer.json()
    assert answer.status == 200
    assert card["member"] | {"id": 0} == {"id": 0, "name": "王芳", "remark": None, "store": "静安店", "owner": "张珊",
                                          "opted_out": False, "left": False}
    assert card["layers"] == [{"scheme": "价值分层", "layer": "超级用户"}]  # the operators' labels
    assert card["last_move"] | {"at": ""} == {"scheme": "价值分层", "from": "核心用户", "to": "超级用户", "at": ""}
    assert card["tags"][0] | {"since": ""} == {"name": "面包控", "group": "口味偏好", "source": "规则",
                                               "ref": "含任一关键词：面包、吐司", "hits": 4, "since": ""}
    assert card["care"][0]["name"] == "生日" and card["care"][0]["days"] == 3
    (task,) = card["tasks"]
    assert task["words"] == WORDS and task["mine"] is True
    assert [m["who"] for m in card["messages"]] == ["店员回复", "客户说"]
    assert "13812345678" not in json.dumps(card, ensure_ascii=False)  # phones masked in messages too


async def test_another_stores_staff_sees_nothing_of_her(sidebar: SidebarServer) -> None:
    async with await sidebar.signed_in("lisi") as client:
        async with client.get(sidebar.url + "/api/contact/" + WANG) as answer:
            assert answer.status == 404 and "王芳" not in await answer.text()
        async with client.get(sidebar.url + "/api/contact/wmNobodyKnown1") as unknown:
            assert unknown.status == 404  # the same answer: her existence is not told
        async with client.get(sidebar.url + "/api/contact/" + ZHAO) as own:
            assert (await own.json())["member"]["name"] == "赵磊"
        async with client.get(sidebar.url) as page:
            token = boot_of(await page.text())["token"]
        headers = {"X-Sidebar-Token": token}
        async with client.post(f"{sidebar.url}/api/tasks/{sidebar.brand.task}/done", json={}, headers=headers) as done:
            assert done.status == 404
        async with client.post(f"{sidebar.url}/api/members/{sidebar.brand.wang}/tags", json={"name": "x"}, headers=headers) as tag:
            assert tag.status == 404
    async with sidebar.sessions() as session:
        assert (await session.get(StaffTask, sidebar.brand.task)).status == "open"


async def test_in_a_group_she_sees_the_members_she_serves_with_their_layers(sidebar: SidebarServer) -> None:
    async with await sidebar.signed_in("zhangsan") as client:
        async with client.get(sidebar.url + "/api/group/" + CHAT) as answer:
            group = await answer.json()
        async with client.get(sidebar.url + "/api/group/wrUnknownGroup") as unknown:
            assert unknown.status == 404
    assert group["group"] == {"name": "静安店烘焙交流群", "people": 3}
    assert [m["name"] for m in group["members"]] == ["王芳"] and group["members"][0]["layers"]
    assert group["others"] == 2  # 赵磊 (another store's) and the staff member: counted, not shown


async def test_tasks_and_tags_from_the_sidebar(sidebar: SidebarServer) -> None:
    async with await sidebar.signed_in("zhangsan") as client:
        async with client.get(sidebar.url) as page:
            token = boot_of(await page.text())["token"]
        task_path = f"{sidebar.url}/api/tasks/{sidebar.brand.task}"
        async with client.post(task_path + "/skip", json={"note": ""}, headers={"X-Sidebar-Token": token}) as no_reason:
            assert no_reason.status == 400 and (await no_reason.json())["message"] == "跳过需要写原因"
        async with client.post(task_path + "/done", json={}) as no_token:
            assert no_token.status == 403
        async with client.post(task_path + "/done", data="not json", headers={"X-Sidebar-Token": token}) as bad:
            assert bad.status == 400
        async with client.post(task_path + "/done", json={"note": "蛋糕送到了"}, headers={"X-Sidebar-Token": token}) as done:
            assert (await done.json())["status"] == "done"
        async with client.post(task_path + "/skip", json={"note": "x"}, headers={"X-Sidebar-Token": token}) as again:
            assert again.status == 409
        members = f"{sidebar.url}/api/members/{sidebar.brand.wang}/tags"
        async with client.post(members, json={"name": "栗子蛋糕"}, headers={"X-Sidebar-Token": token}) as added:
            assert (await added.json()) == {"ok": True, "synced": True}  # tag sync is on: marked as a corp tag
        async with client.post(members, json={"name": ""}, headers={"X-Sidebar-Token": token}) as empty:
            assert empty.status == 400
        async with client.post(members + "/remove", json={"name": "面包控", "group": "口味偏好"},
                               headers={"X-Sidebar-Token": token}) as removed:
            assert (await removed.json())["ok"] is True
    async with sidebar.sessions() as session:
        task = await session.get(StaffTask, sidebar.brand.task)
        assert (task.status, task.note) == ("done", "蛋糕送到了")
        tags = (await session.execute(select(Tag.name, MemberTag.source, MemberTag.source_ref).join(
            MemberTag, MemberTag.tag_id == Tag.id).where(MemberTag.member_id == sidebar.brand.wang))).all()
        assert tags == [("栗子蛋糕", "staff", "zhangsan")]
        marks = (await session.execute(select(OutboxEntry.meta).where(OutboxEntry.route == "mark_tag"))).scalars().all()
        assert {json.dumps(json.loads(m), ensure_ascii=False) for m in marks} >= {
            '{"add": [["", "栗子蛋糕"]], "remove": []}', '{"add": [], "remove": [["口味偏好", "面包控"]]}'}


async def test_the_card_gives_her_lifetime_value_in_plain_words_or_says_there_is_none(sidebar: SidebarServer) -> None:
    from datetime import date, datetime, timezone

    from storage.ltv import save_fit
    from storage.outcome_models import LtvScore

    async def card() -> dict:
        async with await sidebar.signed_in("zhangsan") as client, client.get(sidebar.url + "/api/contact/" + WANG) as answer:
            assert answer.status == 200
            return (await answer.json())["value"]

    assert card_none(await card()) == "还没有估算（尚未运行过 siyu ltv fit）"
    async with sidebar.sessions() as session, session.begin():
        await save_fit(session, date(2026, 11, 23), 80, {"unit": "week", "horizon_days": 60}, datetime.now(timezone.utc))
    assert card_none(await card()) == "还没有估算（最近一次估算时她还没有订单）"
    async with sidebar.sessions() as session, session.begin():
        session.add(LtvScore(member_id=sidebar.brand.wang, as_of=date(2026, 11, 23), p_alive=0.834, orders_90d=1.96,
                             clv_90d_cents=123_456.0))
    value = await card()
    assert value | {"explained": ""} == {"p_alive": "83%", "orders": "2.0", "spend": "¥1,234.56", "days": 60,
                                         "as_of": "2026-11-23", "explained": ""}  # the fit's horizon, not the setting's
    assert "未来 60 天预计下单几次、花多少钱" in value["explained"] and "不是承诺" in value["explained"]


def card_none(value: dict) -> str | None:
    assert set(value) == {"none"}, value
    return value["none"]
