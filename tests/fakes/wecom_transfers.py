"""What the fake WeCom cloud knows of 在职继承 (`externalcontact/transfer_customer`):
a staff member's customers handed to a colleague.

As WeCom documents it: at most 100 customers per call and a success message of at most
200 characters (40058 otherwise: the whole call refused); both staff members must be
members of the corp (40003). Each customer gets her own errcode in `customer`: 40096
for an external_userid WeCom does not know, 84061 when she is not the handover's
customer, 0 when the transfer started. A started transfer completes 24 hours later
unless she refuses: tests move time on with `complete_transfers` (the contact moves
from one staff member to the other) and send the callbacks WeCom would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.fakes.wecom_state import Follow, Json, Refusal

PER_CALL = 100
MESSAGE_CHARS = 200


@dataclass(frozen=True, slots=True)
class Transfer:
    handover: str
    takeover: str
    external_userid: str
    message: str
    started_at: float


class Transfers:
    """Mixed into the fake cloud: `clock`, `staff`, `customers` and `follows` come from it."""

    clock: Callable[[], float]
    staff: set[str]
    customers: dict[str, object]
    follows: list[Follow]

    def init_transfers(self) -> None:
        self.transfers: list[Transfer] = []  # started, not yet completed

    def transfer_customer(self, app: str, query: Json, body: Json) -> Json:
        handover, takeover = str(body.get("handover_userid") or "").lower(), str(body.get("takeover_userid") or "").lower()
        customers = body.get("external_userid")
        message = body.get("transfer_success_msg") or ""
        if not isinstance(customers, list) or not 0 < len(customers) <= PER_CALL:
            raise Refusal(40058, f"external_userid must list 1..{PER_CALL} customers")
        if not isinstance(message, str) or len(message) > MESSAGE_CHARS:
            raise Refusal(40058, f"transfer_success_msg is at most {MESSAGE_CHARS} characters")
        for userid in (handover, takeover):
            if userid not in {s.lower() for s in self.staff}:
                raise Refusal(40003, f"invalid userid {userid!r}")
        answer = []
        for external_userid in customers:
            answer.append({"external_userid": external_userid, "errcode": self._transfer_one(
                handover, takeover, str(external_userid), message)})
        return {"errcode": 0, "errmsg": "ok", "customer": answer}

    def _transfer_one(self, handover: str, takeover: str, external_userid: str, message: str) -> int:
        if external_userid not in self.customers:
            return 40096
        if not any((f.userid, f.external_userid) == (handover, external_userid) for f in self.follows):
            return 84061
        self.transfers.append(Transfer(handover, takeover, external_userid, message, self.clock()))
        return 0

    def complete_transfers(self) -> list[Transfer]:
        """24 hours on: each started transfer moves the contact to its takeover."""
        done, self.transfers = self.transfers, []
        for transfer in done:
            follow = next(f for f in self.follows if (f.userid, f.external_userid) == (transfer.handover, transfer.external_userid))
            # She leaves the handover; the takeover keeps her (once, if she had her already).
            self.follows = [f for f in self.follows if f is not follow and
                            (f.userid, f.external_userid) != (transfer.takeover, transfer.external_userid)]
            self.follows.append(Follow(transfer.takeover, transfer.external_userid, follow.remark, int(self.clock()),
                                       follow.state, list(follow.tags), follow.add_way))
        return done
