"""How status transitions and provider receipts fold into one notification's delivery. Pure.

Transitions arrive out of order (our own stages publish independently, providers report late and
in batches, topics are replayed), so every field is a function of the SET of transitions seen,
never of their arrival order:

- the state is the transition with the highest (precedence rank, event time, state, event id):
  queued < deferred < sending < retrying < sent < {delivered, failed, bounced, spam} <
  {suppressed, cancelled, expired}. A late "sending" never reverts "delivered"; within a rank the
  later event wins, so a bounce or spam complaint after delivery does move it on (one stamped
  the same second as the delivery too: `SAME_TIME_ORDER`).
- times (queued, delivered, created) are the earliest seen, attempts the highest seen, and
  provider and last error come from the newest transition that carries one.
- the timeline has one step per (state, event time); seeing a step again changes nothing.

`unpublished` lists the receipt steps whose status transition the tracker holds back because no
transition has named the notification's user yet (a receipt can overtake every status); they are
published once one does.

`held` lists the receipt steps that wait for the notification's `sent` (`receipt_matching`):
they are no part of the timeline until it comes. A notification known only by such receipts (no
status of its own read yet) has a `Waiting` entry: no delivery, only what it holds. Both are kept
in the `deliveries` entry, so that holding a receipt costs no table write of its own when the
entry is written anyway, and releasing it none at all (the `sent` that releases it is written).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

import orjson

from schemas.notifications import NotificationReceiptEvent, NotificationStatusEvent

STATE_RANK: Mapping[str, int] = {
    "queued": 0,
    "deferred": 1,
    "sending": 2,
    "retrying": 3,
    "sent": 4,
    "delivered": 5,
    "failed": 5,
    "bounced": 5,
    "spam": 5,
    "suppressed": 6,
    "cancelled": 6,
    "expired": 6,
}
# Outcomes stamped at the same time (providers report whole seconds): a delivery comes before
# a bounce or complaint, which can follow it but never precede it.
SAME_TIME_ORDER: Mapping[str, int] = {"delivered": 0}
# A provider's receipt as a delivery state; opened/clicked are engagement, not delivery: None.
RECEIPT_STATE: Mapping[str, str | None] = {
    "delivered": "delivered",
    "bounced": "bounced",
    "failed": "failed",
    "complained": "spam",
    "opened": None,
    "clicked": None,
}
# States a message reaches only once handed to (or tried with) a provider: at least one attempt.
_ATTEMPTED = frozenset({"sending", "retrying", "sent", "delivered", "failed", "bounced", "spam"})
_ERRORS = frozenset({"retrying", "failed", "bounced", "spam"})
_TIMELINE_ORDER = attrgetter("occurred_at", "state")


@dataclass(frozen=True, slots=True)
class Step:
    """One transition: what happened, when, and what it said.

    The tracker makes one per status and receipt it reads and keeps a notification's in its
    entry, so steps and deliveries are plain slotted dataclasses: built, compared and written
    (by orjson, in the form pydantic wrote them before) at a fraction of a model's cost.
    """

    state: str
    occurred_at: datetime
    event_id: UUID
    reason: str | None = None
    attempt: int | None = None
    provider: str | None = None
    provider_message_id: str | None = None

    @property
    def version(self) -> tuple[int, datetime, int, str, UUID]:
        return (
            STATE_RANK[self.state],
            self.occurred_at,
            SAME_TIME_ORDER.get(self.state, 1),
            self.state,
            self.event_id,
        )

    @property
    def recency(self) -> tuple[datetime, UUID]:
        return (self.occurred_at, self.event_id)


@dataclass(frozen=True, slots=True)
class Facts:
    """What a transition says about the notification itself (the same in every transition)."""

    user_id: str | None = None
    channel: str | None = None
    category: str | None = None
    template: str | None = None
    caused_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """The `deliveries` table entry of one notification."""

    notification_id: str
    user_id: str | None = None
    channel: str | None = None
    category: str | None = None
    template: str | None = None
    caused_at: datetime | None = None
    current: Step
    attempts: int = 0
    provider_step: Step | None = None
    error_step: Step | None = None
    timeline: tuple[Step, ...] = ()
    # Event ids of receipt steps not yet published as transitions (see the module docstring).
    unpublished: tuple[UUID, ...] = ()
    # Receipt steps waiting for a `sent` of the notification (see the module docstring).
    held: tuple[Step, ...] = ()

    @property
    def state(self) -> str:
        return self.current.state

    @property
    def provider(self) -> str | None:
        return None if self.provider_step is None else self.provider_step.provider

    @property
    def provider_message_id(self) -> str | None:
        step = self.provider_step
        return None if step is None else step.provider_message_id

    @property
    def last_error(self) -> str | None:
        return None if self.error_step is None else self.error_step.reason

    def first_at(self, state: str) -> datetime | None:
        return min((s.occurred_at for s in self.timeline if s.state == state), default=None)

    def step(self, event_id: UUID) -> Step | None:
        return next((s for s in self.timeline if s.event_id == event_id), None)

    @property
    def created_at(self) -> datetime:
        return min(s.occurred_at for s in self.timeline)

    @property
    def updated_at(self) -> datetime:
        return max(s.occurred_at for s in self.timeline)


def _newest(held: Step | None, step: Step, wanted: bool) -> Step | None:
    if not wanted or (held is not None and held.recency >= step.recency):
        return held
    return step


def fold(
    current: Delivery | None, notification_id: str, step: Step, facts: Facts
) -> tuple[Delivery, bool]:
    """`current` with `step` applied, and whether the step was new to it."""
    if current is None:  # a notification's first step folds into an empty delivery
        current = Delivery(notification_id=notification_id, current=step)
    elif any(s.state == step.state and s.occurred_at == step.occurred_at for s in current.timeline):
        return current, False
    implied = 1 if step.state in _ATTEMPTED else 0
    delivery = Delivery(
        notification_id=current.notification_id,
        user_id=current.user_id or facts.user_id,
        channel=current.channel or facts.channel,
        category=current.category or facts.category,
        template=current.template or facts.template,
        caused_at=current.caused_at or facts.caused_at,
        current=step if step.version > current.current.version else current.current,
        attempts=max(current.attempts, step.attempt or implied),
        provider_step=_newest(current.provider_step, step, step.provider is not None),
        error_step=_newest(
            current.error_step, step, step.state in _ERRORS and step.reason is not None
        ),
        timeline=tuple(sorted((*current.timeline, step), key=_TIMELINE_ORDER)),
        unpublished=current.unpublished,
        held=current.held,
    )
    return delivery, True


def status_step(event: NotificationStatusEvent) -> tuple[Step, Facts]:
    p = event.payload
    step = Step(
        state=p.state,
        occurred_at=event.occurred_at,
        event_id=event.event_id,
        reason=p.reason,
        attempt=p.attempt,
        provider=p.provider,
        provider_message_id=p.provider_message_id,
    )
    facts = Facts(p.user_id, p.channel, p.category, p.template, p.caused_at)
    return step, facts


def receipt_step(event: NotificationReceiptEvent) -> tuple[Step, Facts] | None:
    """None for receipts that are no delivery state (opened, clicked)."""
    p = event.payload
    state = RECEIPT_STATE[p.state]
    if state is None:
        return None
    step = Step(
        state=state,
        occurred_at=event.occurred_at,
        event_id=event.event_id,
        reason=p.reason,
        provider=p.provider,
        provider_message_id=p.provider_message_id,
    )
    return step, Facts(user_id=p.user_id, channel=p.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiting:
    """The `deliveries` entry of a notification no status has been read for yet, only receipts
    held for its `sent`: not a delivery (nothing is materialized or published for it)."""

    notification_id: str
    held: tuple[Step, ...]


Entry = Delivery | Waiting


def to_entry(delivery: Entry) -> dict[str, Any]:
    """The JSON-able form kept in the `deliveries` table (and served by the worker's web view);
    a delivery holding no receipt is written as before `held` existed. orjson writes the
    dataclasses as pydantic wrote the models this form was first made by (times in RFC 3339
    with `Z`, ids as strings)."""
    entry: dict[str, Any] = orjson.loads(_json(delivery))
    if not delivery.held:
        del entry["held"]
    return entry


def step_entry(step: Step) -> dict[str, Any]:
    """One step's JSON-able form, as in an entry."""
    parsed: dict[str, Any] = orjson.loads(_json(step))
    return parsed


def _json(value: Entry | Step) -> bytes:
    return orjson.dumps(value, default=_uuid_text, option=orjson.OPT_UTC_Z)


def _uuid_text(value: object) -> str:
    """orjson writes `uuid.UUID` itself, not its subclasses (asyncpg's, in steps read back
    from PostgreSQL by a replay)."""
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not part of a delivery entry")


def parse_step(raw: Mapping[str, Any]) -> Step:
    return Step(
        state=raw["state"],
        occurred_at=datetime.fromisoformat(raw["occurred_at"]),
        event_id=UUID(raw["event_id"]),
        reason=raw.get("reason"),
        attempt=raw.get("attempt"),
        provider=raw.get("provider"),
        provider_message_id=raw.get("provider_message_id"),
    )


def parse_entry(entry: Mapping[str, Any] | None) -> Entry | None:
    """A `Waiting` entry has no `current` step: no status of its notification was read."""
    if entry is None:
        return None
    held = tuple(parse_step(raw) for raw in entry.get("held", ()))
    if "current" not in entry:
        return Waiting(notification_id=entry["notification_id"], held=held)
    caused_at = entry.get("caused_at")
    return Delivery(
        notification_id=entry["notification_id"],
        user_id=entry.get("user_id"),
        channel=entry.get("channel"),
        category=entry.get("category"),
        template=entry.get("template"),
        caused_at=None if caused_at is None else datetime.fromisoformat(caused_at),
        current=parse_step(entry["current"]),
        attempts=entry.get("attempts", 0),
        provider_step=_optional_step(entry.get("provider_step")),
        error_step=_optional_step(entry.get("error_step")),
        timeline=tuple(parse_step(raw) for raw in entry.get("timeline", ())),
        unpublished=tuple(UUID(raw) for raw in entry.get("unpublished", ())),
        held=held,
    )


def from_entry(entry: Mapping[str, Any] | None) -> Delivery | None:
    """The delivery an entry holds; None for none, or for a `Waiting` one."""
    parsed = parse_entry(entry)
    return parsed if isinstance(parsed, Delivery) else None


def _optional_step(raw: Mapping[str, Any] | None) -> Step | None:
    return None if raw is None else parse_step(raw)
