"""Decrypted WeCom and official-account payloads into updates: keys, kinds, safety."""

from __future__ import annotations

import pytest

from bot.platforms.oa.updates import to_update as oa_update
from bot.platforms.wecom.kf import to_message
from bot.platforms.wecom.updates import to_update
from bot.platforms.wecom.xml import MalformedXml, parse_fields
from handlers.updates import EventUpdate, MessageUpdate

ADD_CONTACT = """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[sys]]></FromUserName>
  <CreateTime>1403610513</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[change_external_contact]]></Event>
  <ChangeType><![CDATA[add_external_contact]]></ChangeType>
  <UserID><![CDATA[zhangsan]]></UserID>
  <ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mAAAA]]></ExternalUserID>
  <State><![CDATA[teststate]]></State>
  <WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>
</xml>"""


def test_the_documented_add_external_contact_event() -> None:
    update = to_update(parse_fields(ADD_CONTACT))
    assert isinstance(update, EventUpdate)
    assert (update.sender, update.event, update.actor) == ("woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", "add_external_contact", "member")
    assert update.detail == {"UserID": "zhangsan", "State": "teststate", "WelcomeCode": "WELCOMECODE"}
    assert update.occurred_at.timestamp() == 1403610513


def test_two_contact_events_in_one_second_do_not_share_a_key() -> None:
    other = ADD_CONTACT.replace("woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", "woAJ2GCAAAXtWyujaWJHDDGi0mBBBB")
    first, second = to_update(parse_fields(ADD_CONTACT)), to_update(parse_fields(other))
    assert first.key != second.key
    assert to_update(parse_fields(ADD_CONTACT)).key == first.key  # a resend is the same update


def test_group_member_changes_in_one_second_are_distinct_updates() -> None:
    def chat(members: str) -> str:
        return ("<xml><FromUserName>sys</FromUserName><CreateTime>1700000000</CreateTime><MsgType>event</MsgType>"
                "<Event>change_external_chat</Event><ChatId>wrOgQhDgAA</ChatId><ChangeType>update</ChangeType>"
                f"<UpdateDetail>add_member</UpdateDetail><JoinScene>3</JoinScene><MemChangeList>{members}</MemChangeList></xml>")

    first = to_update(parse_fields(chat("<Item>wmA</Item><Item>wmB</Item>")))
    second = to_update(parse_fields(chat("<Item>wmC</Item>")))
    assert isinstance(first, EventUpdate) and first.actor == "system" and first.event == "chat_update"
    assert first.detail["MemChangeList"] == "wmA,wmB"
    assert first.key != second.key


def test_a_staff_app_message_is_keyed_by_msgid() -> None:
    update = to_update(parse_fields(
        "<xml><ToUserName>ww1</ToUserName><FromUserName>zhangsan</FromUserName><CreateTime>1348831860</CreateTime>"
        "<MsgType>text</MsgType><Content>完成 12</Content><MsgId>1234567890123456</MsgId><AgentID>1</AgentID></xml>"
    ))
    assert isinstance(update, MessageUpdate)
    assert (update.key, update.actor, update.text) == ("wecom:msg:1234567890123456", "staff", "完成 12")


def test_the_kf_trigger_and_an_unknown_event_are_kept() -> None:
    kf = to_update(parse_fields(
        "<xml><ToUserName>ww1</ToUserName><CreateTime>1348831860</CreateTime><MsgType>event</MsgType>"
        "<Event>kf_msg_or_event</Event><Token>ENCApHxn</Token><OpenKfId>wkxxxx</OpenKfId></xml>"
    ))
    assert isinstance(kf, EventUpdate) and (kf.sender, kf.detail["Token"], kf.actor) == ("wkxxxx", "ENCApHxn", "system")
    odd = to_update(parse_fields("<xml><FromUserName>lisi</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>enter_agent</Event></xml>"))
    assert isinstance(odd, EventUpdate) and odd.event == "enter_agent" and odd.actor == "staff"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>', "forbidden"),
        ("<xml><Encrypt>abc</Encrypt>", "not well-formed"),
        ("<html><Encrypt>abc</Encrypt></html>", "root element"),
        ("", "not well-formed"),
    ],
)
def test_dangerous_or_broken_xml_is_refused(body: str, reason: str) -> None:
    with pytest.raises(MalformedXml, match=reason):
        parse_fields(body)


def test_only_a_customers_kf_message_becomes_a_member_message() -> None:
    message = to_message({"msgid": "from_msgid_4622416642169452483", "open_kfid": "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q",
                          "external_userid": "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw", "send_time": 1615478585,
                          "origin": 3, "msgtype": "text", "text": {"content": "你好"}})
    assert isinstance(message, MessageUpdate)
    assert (message.sender, message.text, message.conversation) == (
        "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw", "你好", "kf:wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q")
    assert to_message({"msgid": "x", "origin": 4, "msgtype": "event", "event": {}}) is None


def test_official_account_messages_and_events() -> None:
    text = oa_update(parse_fields(
        "<xml><ToUserName>gh_1</ToUserName><FromUserName>oOpenid1</FromUserName><CreateTime>1714036504</CreateTime>"
        "<MsgType>text</MsgType><Content>营业时间？</Content><MsgId>24602</MsgId></xml>"))
    assert isinstance(text, MessageUpdate) and (text.key, text.sender, text.platform) == ("oa:msg:24602", "oOpenid1", "oa")
    follow = oa_update(parse_fields(
        "<xml><ToUserName>gh_1</ToUserName><FromUserName>oOpenid1</FromUserName><CreateTime>1714036504</CreateTime>"
        "<MsgType>event</MsgType><Event>subscribe</Event></xml>"))
    assert isinstance(follow, EventUpdate) and follow.event == "subscribe" and follow.key == "oa:subscribe:oOpenid1:1714036504"
