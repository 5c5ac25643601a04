"""The states an outbox row can be in, named where commands can read them without loading
the database layer (`siyu outbox list --status` offers them)."""

OUTBOX_STATUSES = ("pending", "deferred", "sending", "sent", "failed", "held", "expired")
