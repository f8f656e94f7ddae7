"""Receipts -> records: error paths as a sender writes them, deterministic ids, the events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from api.errors import ContractViolationError, MalformedBodyError
from api.receipt_formats import FORMATS, ReceiptRequest, field_path, plain_receipts
from api.receipts import receipt_records
from schemas.notifications import NotificationReceiptEvent
from schemas.provider_receipts import RECEIPT_PROVIDERS, ProviderReceiptsBody
from streams.kafka.wire import decode, local_codec

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def body(*states: str) -> dict[str, Any]:
    return {
        "receipts": [
            {
                "notification_id": f"n-{n}",
                "provider_message_id": f"m-{n}",
                "state": state,
                "occurred_at": "2026-11-22T09:00:00+00:00",
            }
            for n, state in enumerate(states)
        ]
    }


def test_field_paths_index_lists_with_brackets() -> None:
    assert field_path(("receipts", 3, "state")) == "receipts[3].state"
    assert field_path(("receipts",)) == "receipts"
    assert field_path(()) == "(body)"


def test_a_violation_names_the_receipt_and_field() -> None:
    raw = json.dumps(body("delivered", "delivered", "delivered", "exploded")).encode()
    with pytest.raises(ContractViolationError) as caught:
        plain_receipts(ReceiptRequest(raw, {}, NOW))
    assert [e.field for e in caught.value.errors] == ["receipts[3].state"]


def test_each_receipt_becomes_a_record_keyed_by_notification_with_a_stable_event_id() -> None:
    parsed = ProviderReceiptsBody.model_validate(body("delivered", "complained")).receipts
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


def parse(provider: str, raw: bytes, **query: str) -> list[dict[str, Any]]:
    items = FORMATS[provider].parse(ReceiptRequest(raw, query, NOW))
    return [item.model_dump(exclude_none=True) for item in items]


def test_every_provider_has_a_format() -> None:
    assert set(FORMATS) == set(RECEIPT_PROVIDERS)


def test_sendgrid_events_carry_our_id_in_custom_args_and_skip_what_is_no_delivery_state() -> None:
    events = [
        {"event": "processed", "timestamp": 1795300000, "sg_message_id": "m1.f1", "x": 1},
        {
            "event": "delivered",
            "timestamp": 1795300001,
            "sg_message_id": "m1.filterdrecv-123.0",
            "notification_id": "n-1",
            "email": "ada@example.com",
        },
        {
            "event": "bounce",
            "timestamp": 1795300002,
            "sg_message_id": "m2.f1",
            "notification_id": "n-2",
            "reason": "550 5.1.1 no such user",
            "type": "bounce",
        },
        {
            "event": "spamreport",
            "timestamp": 1795300003,
            "sg_message_id": "m3.f",
            "notification_id": "n-3",
        },
        {"event": "delivered", "timestamp": 1795300004, "sg_message_id": "m4.f"},  # not ours
    ]
    assert parse("sendgrid", json.dumps(events).encode()) == [
        {
            "notification_id": "n-1",
            "provider_message_id": "m1",
            "state": "delivered",
            "occurred_at": datetime.fromtimestamp(1795300001, UTC),
            "channel": "email",
        },
        {
            "notification_id": "n-2",
            "provider_message_id": "m2",
            "state": "bounced",
            "occurred_at": datetime.fromtimestamp(1795300002, UTC),
            "channel": "email",
            "reason": "550 5.1.1 no such user",
        },
        {
            "notification_id": "n-3",
            "provider_message_id": "m3",
            "state": "complained",
            "occurred_at": datetime.fromtimestamp(1795300003, UTC),
            "channel": "email",
        },
    ]


def test_a_broken_sendgrid_event_is_named_by_its_index_and_field() -> None:
    events = [{"event": "delivered", "timestamp": 1}, {"event": "delivered", "timestamp": "soon"}]
    with pytest.raises(ContractViolationError) as caught:
        parse("sendgrid", json.dumps(events).encode())
    assert [e.field for e in caught.value.errors] == ["[1].timestamp"]
    with pytest.raises(MalformedBodyError):
        parse("sendgrid", b"[{")


def test_twilio_callbacks_are_forms_with_our_id_in_the_callback_query() -> None:
    form = b"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003&ErrorMessage=Unreachable"
    assert parse("twilio", form, notification_id="n-1") == [
        {
            "notification_id": "n-1",
            "provider_message_id": "SM1",
            "state": "bounced",
            "occurred_at": NOW,
            "channel": "sms",
            "reason": "error 30003: Unreachable",
        }
    ]
    assert parse("twilio", b"MessageSid=SM1&MessageStatus=sent", notification_id="n-1") == []
    assert parse("twilio", b"MessageSid=SM1&MessageStatus=delivered") == []  # not ours
    with pytest.raises(ContractViolationError) as caught:
        parse("twilio", b"MessageStatus=delivered", notification_id="n-1")
    assert [e.field for e in caught.value.errors] == ["MessageSid"]


def meta_hook(*statuses: dict[str, Any]) -> bytes:
    value = {"messaging_product": "whatsapp", "metadata": {}, "statuses": list(statuses)}
    hook = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba-1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(hook).encode()


def test_meta_statuses_are_nested_and_carry_our_id_as_opaque_callback_data() -> None:
    raw = meta_hook(
        {
            "id": "wamid.1",
            "status": "sent",
            "timestamp": "1795300000",
            "biz_opaque_callback_data": "n-1",
        },
        {
            "id": "wamid.1",
            "status": "delivered",
            "timestamp": "1795300001",
            "biz_opaque_callback_data": "n-1",
        },
        {
            "id": "wamid.2",
            "status": "failed",
            "timestamp": "1795300002",
            "biz_opaque_callback_data": "n-2",
            "errors": [{"code": 131026, "title": "Message undeliverable"}],
        },
    )
    assert parse("meta", raw) == [
        {
            "notification_id": "n-1",
            "provider_message_id": "wamid.1",
            "state": "delivered",
            "occurred_at": datetime.fromtimestamp(1795300001, UTC),
            "channel": "whatsapp",
        },
        {
            "notification_id": "n-2",
            "provider_message_id": "wamid.2",
            "state": "failed",
            "occurred_at": datetime.fromtimestamp(1795300002, UTC),
            "channel": "whatsapp",
            "reason": "131026 Message undeliverable",
        },
    ]
    with pytest.raises(ContractViolationError) as caught:
        parse("meta", meta_hook({"status": "delivered", "timestamp": "1"}))
    assert [e.field for e in caught.value.errors] == ["entry[0].changes[0].value.statuses[0].id"]
