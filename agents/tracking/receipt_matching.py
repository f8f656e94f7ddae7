"""Which receipts the tracker applies: those that name a send recorded at `sent`.

A receipt says a provider delivered (or bounced) one of its messages; the tracker applies it only
when that provider and message id are those of a `sent` step of the notification: a receipt
naming a message never sent for it (a forged one, or a provider's mix-up) is ignored and
counted. A receipt commonly overtakes its `sent` status (the provider answers the send, then
posts the receipt, while the status waits in a batch), so until the notification has a `sent`
step the receipt is held, in the notification's `deliveries` entry (`Delivery.held`, or a
`Waiting` entry when no status of it was read yet), and checked when the `sent` comes. Earlier
versions held receipts in a `held_receipts` table beside `deliveries` (same key and partition):
it is still read, never written but to delete a key its notification's `sent` released. A
send whose provider gave no usable message id cannot be checked; its receipts are applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.tracking.state import Delivery, Step, parse_step, step_entry
from streams.providers.http import UNKNOWN_MESSAGE_ID

# A notification's held receipts beyond this are the oldest dropped (a sender repeating
# receipts for a notification that is never sent must not grow its entry without bound).
MAX_HELD_PER_NOTIFICATION = 16


def receipt_matches_sent(delivery: Delivery | None, step: Step) -> bool | None:
    """True: apply the receipt `step`; False: it names no send of the notification; None: no
    send is recorded yet (hold it)."""
    sent = [s for s in (delivery.timeline if delivery is not None else ()) if s.state == "sent"]
    if not sent:
        return None
    if any(s.provider_message_id in (None, "", UNKNOWN_MESSAGE_ID) for s in sent):
        return True
    return any(
        (s.provider, s.provider_message_id) == (step.provider, step.provider_message_id)
        for s in sent
    )


def held_steps(entry: dict[str, Any] | None) -> list[Step]:
    """The steps of an earlier version's `held_receipts` entry."""
    return [parse_step(raw) for raw in (entry or {}).get("steps", [])]


def held_entry(steps: Sequence[Step]) -> dict[str, Any]:
    """A `held_receipts` entry as earlier versions wrote it (tests build the old tables)."""
    return {"steps": [step_entry(step) for step in kept_held(steps)]}


def kept_held(steps: Sequence[Step]) -> tuple[Step, ...]:
    """The newest `MAX_HELD_PER_NOTIFICATION` of a notification's held receipts."""
    return tuple(steps)[-MAX_HELD_PER_NOTIFICATION:]
