"""Pure functions: keyword matching, delivery policy, update payloads, templates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from content_templates.renderer import Renderer, RenderError
from handlers.chain import BadHandler, checked_chain
from handlers.keywords import normalise
from handlers.matching import MessageMatcher
from handlers.rules import KeywordRule
from handlers.updates import EventUpdate, MessageUpdate, from_payload, to_payload
from scheduler.policy import hold_reason, retry_delay

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def test_keywords_ignore_width_and_case() -> None:
    assert normalise("ＶＩＰ会员 Vip") == "vip会员 vip"
    vip = KeywordRule(id="vip", tag="VIP意向", keywords=("vip",))
    assert MessageMatcher([vip]).matching("我想办ＶＩＰ") == [vip]
    assert MessageMatcher([vip]).matching("我想办会员") == []


def test_all_rules_need_every_keyword_any_rules_one() -> None:
    both = KeywordRule(id="both", tag="生日蛋糕", keywords=("生日", "蛋糕"), match="all")
    either = KeywordRule(id="either", tag="蛋糕控", keywords=("蛋糕", "慕斯"))
    assert MessageMatcher([both, either]).matching("想订一个生日蛋糕") == [both, either]
    assert MessageMatcher([both, either]).matching("慕斯好吃") == [either]


def test_opt_out_holds_marketing_but_not_service_or_staff_prompts() -> None:
    assert hold_reason("marketing", NOW) == "member opted out of marketing"
    assert hold_reason("care", NOW) == "member opted out of marketing"
    assert hold_reason("service", NOW) is None
    assert hold_reason("staff_prompt", NOW) is None
    assert hold_reason("marketing", None) is None


def test_retry_delay_grows_and_respects_the_platform_hint() -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3)] == [2, 4, 8]
    assert retry_delay(30) == timedelta(hours=1)
    assert retry_delay(1, suggested=60) == timedelta(seconds=60)


@pytest.mark.parametrize(
    "update",
    [
        MessageUpdate("k1", "sandbox", "王芳", "你好 😀", NOW, sender_name="王芳"),
        EventUpdate("k2", "wecom", "sys", "add_external_contact", NOW, {"State": "store-1"}),
        MessageUpdate("k3", "wecom", "wm1", "几点开门", datetime(2026, 12, 3, 20, 5, 1, 123456, tzinfo=timezone(timedelta(hours=8))),
                      actor="member", conversation="kf:wk1"),
    ],
)
def test_updates_survive_the_inbox_round_trip(update: MessageUpdate | EventUpdate) -> None:
    back = from_payload(to_payload(update))
    assert back == update
    # The same instant is not enough: the time keeps its own offset and microseconds.
    when = back.sent_at if isinstance(back, MessageUpdate) else back.occurred_at
    assert when.isoformat() == (update.sent_at if isinstance(update, MessageUpdate) else update.occurred_at).isoformat()


def test_an_unknown_template_variable_is_a_clear_error() -> None:
    renderer = Renderer()
    with pytest.raises(RenderError, match="'persona' is undefined"):
        renderer.render("persona/reply.txt.j2", {"member": {"name": "王芳"}, "new_tags": []})
    with pytest.raises(RenderError, match="not found"):
        renderer.render("persona/missing.j2", {})


def test_templates_cannot_reach_into_python(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "evil.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(RenderError, match="unsafe"):
        Renderer([tmp_path]).render("evil.j2", {})


def test_an_operator_template_overrides_the_shipped_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "persona").mkdir()
    (tmp_path / "persona" / "reply.txt.j2").write_text("{{ persona.name }}在呢")
    assert Renderer([tmp_path]).render("persona/reply.txt.j2", {"persona": {"name": "小禾"}}) == "小禾在呢"


def test_a_bound_template_renders_and_fails_as_render_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The care scan renders through `bound()`; a member must get the very same words, and
    # an operator the very same error, as through `render`.
    from datetime import date

    texts = {
        "globals.j2": "{% for n in range(2) %}{{ n }}{% endfor %}{% set ns = namespace(x=1) %}{{ ns.x }}",
        "divide.j2": "{{ 1 / 0 }}",
        "evil.j2": "{{ ''.__class__ }}",
        "power.j2": "{{ 2 ** 100000 }}",
    }
    renderer = Renderer([tmp_path], texts=texts)
    render = renderer.bound()
    member = {
        "persona": {"name": "小禾", "signature": "小禾"}, "member": {"name": "王芳"}, "store": {"name": "静安店"},
        "occasion": "birthday", "festival": None, "date": date(2026, 11, 23), "years": 3, "calendar": "lunar",
        "gift": True, "words": "生日快乐",
    }
    for name in ("care/birthday.txt.j2", "care/anniversary.txt.j2", "care/winback.txt.j2", "care/staff_gift.txt.j2",
                 "globals.j2"):
        for variables in (member, {**member, "store": None, "calendar": "solar", "gift": False, "years": None}):
            assert render(name, variables) == renderer.render(name, variables)
    assert render("globals.j2", {}) == "011"
    assert "王芳，生日快乐" in render("care/birthday.txt.j2", member)
    for name in ("divide.j2", "evil.j2", "power.j2", "missing.j2", "care/birthday.txt.j2"):
        with pytest.raises(RenderError) as direct:
            renderer.render(name, {})
        with pytest.raises(RenderError) as bound:
            render(name, {})
        assert str(bound.value) == str(direct.value)

def test_a_bad_handler_fails_when_the_chain_is_built() -> None:
    def not_async(update, ctx):  # type: ignore[no-untyped-def]
        return ()

    async def one_argument(update):  # type: ignore[no-untyped-def]
        return ()

    with pytest.raises(BadHandler, match="not an async function"):
        checked_chain([not_async])
    with pytest.raises(BadHandler, match="must take"):
        checked_chain([one_argument])


def test_the_reply_window_allows_five_replies_within_48_hours_of_the_last_message() -> None:
    from scheduler.policy import reply_window_problem

    wrote = NOW - timedelta(hours=47)
    assert reply_window_problem(wrote, 4, NOW) is None
    assert reply_window_problem(wrote, 5, NOW) == "5 replies already sent since the member last wrote"
    assert reply_window_problem(NOW - timedelta(hours=49), 0, NOW) == "outside the 48-hour reply window since the member last wrote"
    assert reply_window_problem(None, 0, NOW) is not None
