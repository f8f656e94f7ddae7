"""The `deliveries` table entry's JSON form: what earlier versions wrote (pydantic models) is what
this one reads and writes, so a worker upgraded over a running table, or one rolled back, reads
every entry the other wrote."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from agents.tracking.receipt_matching import held_entry, held_steps
from agents.tracking.state import Delivery, Step, Waiting, parse_entry, to_entry

QUEUED_ID = "6f1c3c52-2b1f-4d0e-9a39-3a4c5f0b7e01"
SENT_ID = "0b6a9a9e-8d5e-4a43-8a0e-6f2b9c1d3e02"
RECEIPT_ID = "c3f1a2b4-5d6e-4f70-8a9b-0c1d2e3f4a03"


def _step(state: str, at: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "state": state,
        "occurred_at": at,
        "event_id": event_id,
        "reason": None,
        "attempt": None,
        "provider": None,
        "provider_message_id": None,
    } | fields


QUEUED = _step("queued", "2026-12-01T10:00:00Z", QUEUED_ID)
SENT = _step(
    "sent",
    "2026-12-01T10:00:01.250000Z",
    SENT_ID,
    attempt=1,
    provider="sendgrid",
    provider_message_id="msg-1",
)
# An entry exactly as the pydantic models (`model_dump(mode="json")`) wrote it.
WRITTEN_BY_MODELS = {
    "notification_id": "n-1",
    "user_id": "user-1",
    "channel": "email",
    "category": "account",
    "template": "welcome",
    "caused_at": "2026-12-01T09:59:59.500000Z",
    "current": SENT,
    "attempts": 1,
    "provider_step": SENT,
    "error_step": None,
    "timeline": [QUEUED, SENT],
    "unpublished": [RECEIPT_ID],
}


def test_an_entry_the_models_wrote_reads_and_writes_back_unchanged() -> None:
    delivery = parse_entry(WRITTEN_BY_MODELS)

    assert isinstance(delivery, Delivery)
    assert delivery.state == "sent"
    assert delivery.current.occurred_at == datetime(2026, 12, 1, 10, 0, 1, 250000, tzinfo=UTC)
    assert delivery.unpublished == (UUID(RECEIPT_ID),)
    assert delivery.first_at("queued") == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert to_entry(delivery) == WRITTEN_BY_MODELS


def test_held_receipts_are_written_only_when_there_are_some() -> None:
    receipt = _step(
        "delivered",
        "2026-12-01T10:00:02Z",
        RECEIPT_ID,
        provider="sendgrid",
        provider_message_id="msg-1",
    )
    holding = WRITTEN_BY_MODELS | {"held": [receipt]}

    delivery = parse_entry(holding)

    assert isinstance(delivery, Delivery)
    assert [step.state for step in delivery.held] == ["delivered"]
    assert to_entry(delivery) == holding


def test_a_waiting_entry_keeps_its_form() -> None:
    waiting = {"notification_id": "n-2", "held": [SENT]}

    entry = parse_entry(waiting)

    assert isinstance(entry, Waiting)
    assert to_entry(entry) == waiting


def test_the_legacy_held_receipts_entry_keeps_its_form() -> None:
    legacy = {"steps": [QUEUED, SENT]}

    assert held_entry(held_steps(legacy)) == legacy


class DriverUuid(UUID):
    """A driver's own UUID type (asyncpg returns one for `uuid` columns)."""


def test_ids_of_a_uuid_subclass_are_written_as_their_text() -> None:
    """A replay folds steps read back from PostgreSQL, whose ids are the driver's UUIDs."""
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    step = Step(state="queued", occurred_at=at, event_id=DriverUuid(QUEUED_ID))
    delivery = Delivery(notification_id="n-3", current=step, timeline=(step,))

    entry = to_entry(delivery)

    assert entry["current"]["event_id"] == QUEUED_ID
    assert entry["timeline"] == [_step("queued", "2026-12-01T10:00:00Z", QUEUED_ID)]
