"""Who is held out: a deterministic draw from the member and the source, so a rerun holds
out the same members, while the salt (the year of a birthday, the occurrence of a calendar
entry) makes sure nobody is held out of every birthday by accident. The brand-wide control
group uses a fixed salt instead: the same small share of members, year after year."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

GLOBAL = "global-control"
SCALE = float(1 << 64)


def draw(member_id: int, source: str, salt: object) -> float:
    """A uniform number in [0, 1) from the member, the source and the salt."""
    digest = hashlib.blake2b(f"{source}|{salt}|{member_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / SCALE


def held_out(member_id: int, source: str, salt: object, share: float) -> bool:
    return share > 0 and draw(member_id, source, salt) < share


def in_global_control(member_id: int, share: float, brand_salt: str = "") -> bool:
    return held_out(member_id, GLOBAL, brand_salt, share)


def split(member_ids: Iterable[int], source: str, salt: object, share: float) -> tuple[list[int], list[int]]:
    """(sent, held out) of an audience."""
    sent: list[int] = []
    held: list[int] = []
    for member_id in member_ids:
        (held if held_out(member_id, source, salt, share) else sent).append(member_id)
    return sent, held
