from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from schemas import examples
from schemas.contracts import BY_EVENT_TYPE
from streams.cli import Console, run
from streams.cli.errors import InvalidEventError, UsageError
from streams.cli.produce import (
    build_event,
    build_events,
    outgoing,
    parse_documents,
)
from streams.settings import CliProcessSettings, KafkaSettings

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
NEW_ID = UUID("8f0c1d2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f")
WEBHOOK_TYPES = [
    event_type
    for event_type in examples.EVENT_TYPES
    if (webhook := BY_EVENT_TYPE[event_type].webhook) and event_type in webhook.event_types
]


def webhook_body(event_type: str) -> dict[str, Any]:
    """A copy the test may change: the examples share their nested objects."""
    return copy.deepcopy(examples.webhook_body(event_type))


def fields(caught: pytest.ExceptionInfo[InvalidEventError]) -> dict[str, str]:
    return {error.field: error.message for error in caught.value.errors}


@pytest.mark.parametrize("event_type", WEBHOOK_TYPES)
def test_a_webhook_body_becomes_the_envelope_the_api_would_make_with_a_new_id(
    event_type: str,
) -> None:
    built = build_event(webhook_body(event_type), event_type, now=NOW, new_id=lambda: NEW_ID)
    expected: Any = examples.event(event_type)
    event = built.event
    assert type(event) is type(expected)
    assert (event.event_id, event.event_type, event.source) == (NEW_ID, event_type, "cli")
    assert (event.ingested_at, event.correlation_id, event.causation_id) == (NOW, "corr-1", None)
    assert event.occurred_at == expected.occurred_at
    assert event.payload == expected.payload
    assert built.key == built.contract.key(expected)


@pytest.mark.parametrize("event_type", examples.EVENT_TYPES)
def test_a_full_envelope_of_every_type_is_kept_as_given(event_type: str) -> None:
    expected: Any = examples.event(event_type)
    document = expected.model_dump(mode="json")
    built = build_event(document, event_type, now=NOW)
    assert built.event == expected
    assert built.key == BY_EVENT_TYPE[event_type].key(expected)


def test_what_an_envelope_leaves_out_is_filled_in() -> None:
    document = examples.event("order.paid").model_dump(mode="json")
    for field in ("event_id", "ingested_at", "source", "correlation_id", "event_type"):
        del document[field]
    event: Any = build_event(document, "order.paid", now=NOW, new_id=lambda: NEW_ID).event
    assert (event.event_id, event.ingested_at, event.source) == (NEW_ID, NOW, "cli")
    assert (event.event_type, event.correlation_id) == ("order.paid", str(NEW_ID))


def test_the_key_can_be_overridden() -> None:
    body = webhook_body("order.created")
    assert build_event(body, "order.created", now=NOW, key="other").key == "other"


def test_every_failing_field_of_a_webhook_body_is_named_by_its_path() -> None:
    body = webhook_body("order.created")
    body["occurred_at"] = "yesterday"
    body["order"]["items"][0]["quantity"] = 0
    del body["order"]["currency"]
    with pytest.raises(InvalidEventError) as caught:
        build_event(body, "order.created", now=NOW)
    assert set(fields(caught)) == {"occurred_at", "order.items.0.quantity", "order.currency"}


def test_a_users_webhook_error_is_named_as_the_sender_wrote_it() -> None:
    body = webhook_body("user.created")
    body["user"]["email"] = "not an address"
    with pytest.raises(InvalidEventError) as caught:
        build_event(body, "user.created", now=NOW)
    assert set(fields(caught)) == {"user.email"}


def test_an_envelope_error_is_named_by_its_path_in_the_envelope() -> None:
    document = examples.event("order.created").model_dump(mode="json")
    document["payload"]["total_minor"] = -1
    document["event_id"] = "not-a-uuid"
    with pytest.raises(InvalidEventError) as caught:
        build_event(document, "order.created", now=NOW)
    assert set(fields(caught)) == {"payload.total_minor", "event_id"}
    assert "payload.total_minor" in str(caught.value)


@pytest.mark.parametrize(("field", "form"), [("type", "webhook"), ("event_type", "envelope")])
def test_a_document_of_another_type_than_the_command_names_is_refused(
    field: str, form: str
) -> None:
    document: dict[str, Any] = (
        webhook_body("order.paid")
        if form == "webhook"
        else examples.event("order.paid").model_dump(mode="json")
    )
    with pytest.raises(InvalidEventError) as caught:
        build_event(document, "order.created", now=NOW)
    assert fields(caught) == {field: "is 'order.paid', but the command produces 'order.created'"}


def test_a_family_without_webhooks_needs_a_whole_envelope() -> None:
    payload = examples.PAYLOADS["notification.requested"]
    document = {"type": "notification.requested", "occurred_at": examples.OCCURRED_AT, **payload}
    with pytest.raises(InvalidEventError, match="do not arrive by webhook"):
        build_event(document, "notification.requested", now=NOW)


def test_an_unknown_event_type_is_a_usage_error_listing_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown event type 'order\.lost'.*order\.created"):
        build_event({}, "order.lost", now=NOW)


def test_a_non_object_document_is_refused() -> None:
    with pytest.raises(InvalidEventError) as caught:
        build_event([1, 2], "order.created", now=NOW)
    assert fields(caught) == {"(document)": "must be a JSON object, not list"}


def test_one_document_or_json_lines_are_read() -> None:
    one = {"type": "order.created", "order": {"id": "a"}}
    assert parse_documents(json.dumps(one, indent=2)) == [one]
    assert parse_documents(f"{json.dumps(one)}\n\n{json.dumps(one)}\n") == [one, one]


def test_bad_json_names_the_lines() -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_documents('{"a": 1}\n{"a": \n{"b": 2}\n')
    assert set(fields(caught)) == {"line 2"}
    with pytest.raises(InvalidEventError) as single:
        parse_documents("{not json")
    assert set(fields(single)) == {"(json)"}


def test_many_documents_are_all_checked_and_errors_say_which_document() -> None:
    good = webhook_body("order.created")
    bad = webhook_body("order.created")
    bad["order"]["status"] = "lost"
    with pytest.raises(InvalidEventError) as caught:
        build_events([good, bad, bad], "order.created", now=NOW)
    assert set(fields(caught)) == {"document 2: order.status", "document 3: order.status"}
    assert len(build_events([good, good], "order.created", now=NOW)) == 2
    with pytest.raises(InvalidEventError, match="no JSON document"):
        build_events([], "order.created", now=NOW)


def test_the_record_carries_the_same_headers_as_the_apis() -> None:
    built = build_event(webhook_body("order.created"), "order.created", now=NOW)
    record = outgoing(built, "p-orders.events", b"value")
    assert (record.topic, record.key, record.value) == ("p-orders.events", b"ord_1001", b"value")
    assert dict(record.headers) == {
        "event_id": str(built.event_id).encode(),
        "event_type": b"order.created",
        "source": b"cli",
    }


async def test_invalid_input_exits_2_naming_the_fields_before_any_service_is_asked() -> None:
    """The settings point at a closed port: had anything been sent, this would exit 1."""
    settings = CliProcessSettings(kafka=KafkaSettings(bootstrap="127.0.0.1:9"))
    body = webhook_body("order.created")
    body["order"]["currency"] = "XXX1"
    console = Console(io.StringIO(json.dumps(body)), io.StringIO(), io.StringIO())
    assert await run(["produce", "order.created", "--json", "-"], settings, console) == 2
    assert "order.currency" in console.stderr.getvalue()
    assert console.stdout.getvalue() == ""
