"""The process's Prometheus metrics, and the few calls that keep them.

They sit here, at the bottom of the import order, so that the callback routes (bot),
the dispatcher (handlers), delivery and the scheduler (scheduler) can each count what
they do without importing upward. Only `bot.web.metrics` serves them.

Labels are small, closed vocabularies — platform, route, update kind, a reason code, an
errcode, a job name — never a member, a recipient or any text: the metrics expose no
member data, and their number of series stays bounded.

Each `siyu serve` process keeps and serves its own (see docs/deploy.md, "Metrics"):
Prometheus scrapes every process and adds them up.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from prometheus_client import Counter, Gauge, Histogram

# Seconds. Handling and sends take milliseconds when well; a slow API takes seconds.
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A welcome code lives 20 s: the buckets show how close to it welcomes come.
WELCOME_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0)

CALLBACKS_RECEIVED = Counter(
    "siyu_callbacks_received", "Platform callbacks stored in the inbox and acknowledged", ["platform"]
)
CALLBACKS_REFUSED = Counter(
    "siyu_callbacks_refused", "Platform callbacks refused, by reason; nothing of them is stored", ["platform", "reason"]
)
HANDLING_SECONDS = Histogram(
    "siyu_update_handling_seconds", "Time to handle one inbox row (one transaction), by update kind",
    ["kind"], buckets=FAST_BUCKETS,
)
HANDLING_FAILURES = Counter("siyu_update_handling_failures", "Inbox rows whose handling raised, by update kind", ["kind"])
SENDS = Counter("siyu_sends", "Outbox rows sent through a platform, by outcome", ["platform", "route", "outcome"])
SEND_SECONDS = Histogram(
    "siyu_send_seconds", "Time one send took through the platform's API (retries inside it included)",
    ["platform", "route"], buckets=FAST_BUCKETS,
)
SEND_ERRORS = Counter(
    "siyu_send_errors", "Sends that failed or will be retried, by the platform's errcode (or a transport code)",
    ["platform", "route", "errcode"],
)
WELCOME_SECONDS = Histogram(
    "siyu_welcome_latency_seconds", "From the new-contact callback's arrival to send_welcome_msg's answer",
    buckets=WELCOME_BUCKETS,
)
WELCOMES_EXPIRED = Counter("siyu_welcomes_expired", "Welcomes the platform refused as too late (code expired)")
HOLDS = Counter(
    "siyu_delivery_holds", "Messages held back or deferred by the delivery policy, by reason", ["reason"]
)
SCHEDULER_LEADER = Gauge("siyu_scheduler_leader", "1 while this process runs the scheduled jobs")
JOB_LAST_RUN = Gauge("siyu_job_last_run_timestamp_seconds", "When each scheduled job last finished (Unix time)", ["job"])
JOB_LAST_DURATION = Gauge("siyu_job_last_duration_seconds", "How long each scheduled job's last run took", ["job"])
JOB_RUNS = Counter("siyu_job_runs", "Scheduled job runs, by outcome", ["job", "outcome"])

# WeCom's "welcome code invalid or expired" (WECOM.md §4.4).
WELCOME_CODE_EXPIRED = "41050"


def count_refusal(platform: str, reason: str) -> None:
    CALLBACKS_REFUSED.labels(platform, reason).inc()


def record_handling(kind: str, seconds: float, failed: bool) -> None:
    HANDLING_SECONDS.labels(kind).observe(seconds)
    if failed:
        HANDLING_FAILURES.labels(kind).inc()


def record_send(
    platform: str, route: str, outcome: str, code: str, seconds: float, meta: str, now: datetime
) -> None:
    """One send's outcome ("sent", "retry", "failed"), its errcode when it did not go,
    and for a welcome, how long after the callback it went."""
    SENDS.labels(platform, route, outcome).inc()
    SEND_SECONDS.labels(platform, route).observe(seconds)
    if outcome != "sent":
        SEND_ERRORS.labels(platform, route, code or "other").inc()
    if route != "welcome":
        return
    if outcome == "sent" and (received := json.loads(meta or "{}").get("received_at")):
        arrived = datetime.fromisoformat(received)
        arrived = arrived if arrived.tzinfo else arrived.replace(tzinfo=timezone.utc)  # SQLite's are naive UTC
        WELCOME_SECONDS.observe(max((now - arrived).total_seconds(), 0.0))
    elif code in (WELCOME_CODE_EXPIRED, "expired"):  # refused as too late, or too late to try
        WELCOMES_EXPIRED.inc()


def count_hold(reason: str, messages: int = 1) -> None:
    if messages:
        HOLDS.labels(reason).inc(messages)


def record_job(job: str, outcome: str, seconds: float) -> None:
    JOB_RUNS.labels(job, outcome).inc()
    JOB_LAST_RUN.labels(job).set(time.time())
    JOB_LAST_DURATION.labels(job).set(seconds)
