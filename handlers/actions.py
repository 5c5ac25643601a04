"""What handlers ask for. The dispatcher turns these into outbox rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Reply:
    """A message back to the sender of the update, on the same platform."""

    text: str
    kind: Literal["service", "marketing"] = "service"


Action = Reply
