"""Receipts -> records: deterministic event ids, keyed by notification, the events."""

from __future__ import annotations

from datetime import UTC, datetime

from api.receipts import receipt_records
from schemas.notifications import NotificationReceiptEvent
from schemas.provider_receipts import ProviderReceiptsBody
from streams.kafka.wire import decode, local_codec
from tests.unit.fakes import plain_receipts_body

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_each_receipt_becomes_a_record_keyed_by_notification_with_a_stable_event_id() -> None:
    parsed = ProviderReceiptsBody.model_validate(
        plain_receipts_body("delivered", "complained")
    ).receipts
    codec = local_codec()
    records = receipt_records("twilio", parsed, "wh-1", "t-notifications.receipts", NOW, codec)
    again = receipt_records("twilio", parsed, "wh-2", "t-notifications.receipts", NOW, codec)
    assert [r.key for r in records] == [b"n-0", b"n-1"]
    assert [r.event_id for r in records] == [r.event_id for r in again]
    assert len({r.event_id for r in records}) == 2
    event = decode(records[1].value, NotificationReceiptEvent)
    assert event.event_id == records[1].event_id
    assert (event.payload.provider, event.payload.state, event.payload.notification_id) == (
        "twilio",
        "complained",
        "n-1",
    )
    assert event.occurred_at == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert event.source == "provider:twilio"
