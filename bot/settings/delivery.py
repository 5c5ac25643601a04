"""The delivery policy of a configuration ([delivery]: quiet hours and weekly caps), for
sending and for the calendar's preview of what would be held back."""

from __future__ import annotations

from datetime import time

from bot.settings.model import Settings
from scheduler.calendar_simulation import PreviewPolicy
from scheduler.gate import DeliveryPolicy
from scheduler.policy import QuietHours


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    d = settings.delivery
    quiet = QuietHours(time.fromisoformat(d.quiet_start), time.fromisoformat(d.quiet_end)) if d.quiet_hours else None
    return DeliveryPolicy(settings.zone, quiet, d.cap_scheme, dict(d.weekly_caps), d.default_weekly_cap)


def preview_policy(settings: Settings) -> PreviewPolicy:
    policy = delivery_policy(settings)
    return PreviewPolicy(settings.zone, policy.quiet, policy.weekly_caps, policy.default_cap)
