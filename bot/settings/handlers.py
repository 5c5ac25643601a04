"""The handlers' view of the settings: plain values built once from the TOML file."""

from __future__ import annotations

from datetime import timedelta

from bot.settings.model import Settings
from bot.settings.rules import WEEKDAYS, HandOffSettings, OfficeHoursSettings, ReplySettings, TagRuleSettings
from handlers.config import (
    Channel,
    FaqEntry,
    HandlerConfig,
    HandOffPolicy,
    OfficeHours,
    OptOutWords,
    Persona,
    ReplyPolicy,
)
from handlers.rules import BehaviourRule, EventRule, KeywordRule, RegexRule, TagGroup, TagRule


def handler_config(settings: Settings) -> HandlerConfig:
    p = settings.persona
    wecom = settings.platforms.wecom
    staff_platforms = {"wecom"} if wecom else set()
    if settings.platforms.sandbox.enabled:
        staff_platforms.add("sandbox")
    return HandlerConfig(
        persona=Persona(
            name=p.name,
            title=p.title,
            signature=p.signature,
            default_line=p.default_line,
            tips=dict(p.tips),
            reply_template=p.reply_template,
        ),
        tag_rules=tuple(tag_rule(r) for r in settings.tags.rules if r.enabled),
        tag_groups={g.name: TagGroup(g.name, g.exclusive, g.expire_days) for g in settings.tags.groups},
        sync_tags_on=frozenset({"wecom"} if wecom and wecom.tag_sync_group else ()),
        channels={
            state: Channel(state, tuple(c.tags), c.store, c.owner)
            for state, c in (wecom.channels.items() if wecom else ())
        },
        zone=settings.zone,
        opt_out=OptOutWords(tuple(settings.opt_out.stop_words), tuple(settings.opt_out.resume_words)),
        staff_platforms=frozenset(staff_platforms),
        replies=reply_policy(settings.replies),
        handoff=hand_off_policy(settings.handoff),
        layer_labels={s.name: (s.label or s.name, s.layer_labels()) for s in settings.layers.schemes},
        outcome_scheme=settings.outcomes.scheme,
    )


def tag_rule(r: TagRuleSettings) -> TagRule:
    common = {"id": r.id, "tag": r.tag, "group": r.group, "weight": r.weight, "topic": r.topic}
    match r.kind:
        case "regex":
            assert r.pattern is not None
            return RegexRule(pattern=r.pattern, **common)
        case "event":
            assert r.event is not None
            return EventRule(event=r.event, subject=r.subject, **common)
        case "behaviour":
            assert r.measure is not None and r.days is not None
            return BehaviourRule(measure=r.measure, days=r.days, count=r.count, **common)
    return KeywordRule(keywords=tuple(r.keywords), match=r.match, **common)


def office_hours(o: OfficeHoursSettings) -> OfficeHours:
    start, end = o.opening()
    return OfficeHours(frozenset(WEEKDAYS.index(d) for d in o.days), start, end, o.template)


def reply_policy(r: ReplySettings) -> ReplyPolicy:
    return ReplyPolicy(
        max_replies=r.max_replies,
        per=timedelta(minutes=r.per_minutes),
        ignore_senders=frozenset(r.ignore_senders),
        office_hours=office_hours(r.office_hours) if r.office_hours else None,
        budget_template=r.budget_template,
        faq=tuple(
            FaqEntry(id=f.id, template=f.template, keywords=tuple(f.keywords), match=f.match, pattern=f.pattern)
            for f in r.faq
        ),
    )


def hand_off_policy(h: HandOffSettings) -> HandOffPolicy:
    return HandOffPolicy(
        keywords=tuple(h.keywords),
        angry_words=tuple(h.angry_words),
        unanswered=h.unanswered,
        question_markers=tuple(h.question_markers),
        last_messages=h.last_messages,
        notice_template=h.notice_template,
        task_template=h.task_template,
        default_staff=h.default_staff,
    )
