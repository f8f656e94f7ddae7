"""Every inbound family: body -> event, key, event id, topic, and 422 field names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.contracts import validate
from api.delivery import outbound_record
from api.families import BY_NAME, FAMILIES, WebhookFamily, event_id_for
from schemas import examples
from schemas.contracts import BY_EVENT_TYPE, BY_FAMILY
from streams.errors import ContractViolationError
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import local_codec
from streams.settings import KafkaSettings

INGESTED_AT = datetime(2026, 11, 21, 9, 15, 2, tzinfo=UTC)
CATALOG = TopicCatalog("t1-", KafkaSettings())
CODEC = local_codec()
WEBHOOK_TYPES = [event_type for family in FAMILIES for event_type in family.webhook.event_types]
KEYS = {"users": b"usr_42", "auth": b"usr_42", "orders": b"ord_1001"}


def test_the_webhook_families_are_those_of_the_contracts() -> None:
    assert [family.name for family in FAMILIES] == ["users", "auth", "orders"]
    assert [family.path for family in FAMILIES] == [
        "/v1/webhooks/users",
        "/v1/webhooks/auth",
        "/v1/webhooks/orders",
    ]
    assert all(family.contract is BY_FAMILY[family.name] for family in FAMILIES)
    assert len(WEBHOOK_TYPES) == 5 + 6 + 6
    assert "auth.suspicious-login" not in WEBHOOK_TYPES


def test_a_family_without_webhooks_cannot_be_one() -> None:
    with pytest.raises(ValueError, match="notification-requests"):
        WebhookFamily.of(BY_FAMILY["notification-requests"])


@pytest.mark.parametrize("event_type", WEBHOOK_TYPES)
def test_a_webhook_body_becomes_its_familys_event_keyed_on_the_prefixed_topic(
    event_type: str,
) -> None:
    family = BY_NAME[BY_EVENT_TYPE[event_type].family]
    body = validate(family.body_model, examples.webhook_body(event_type))
    record = outbound_record(family, body, "msg_1", CATALOG, INGESTED_AT, CODEC)

    event_id = event_id_for(family.name, "msg_1")
    expected = examples.event(event_type).model_copy(
        update={
            "event_id": event_id,
            "ingested_at": INGESTED_AT,
            "source": f"webhook:{family.name}",
            "causation_id": None,
        }
    )
    assert CODEC.decode(record.value, family.contract.event_model) == expected
    assert record.event_id == event_id
    assert record.topic == f"t1-{family.contract.topic}"
    assert record.key == KEYS[family.name]
    assert dict(record.headers) == {
        "event_id": str(event_id).encode(),
        "event_type": event_type.encode(),
        "source": f"webhook:{family.name}".encode(),
    }


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.name)
def test_without_a_correlation_id_the_event_id_is_the_correlation(family: WebhookFamily) -> None:
    data = examples.webhook_body(family.webhook.event_types[0])
    del data["correlation_id"]
    record = outbound_record(
        family, validate(family.body_model, data), "msg_2", CATALOG, INGESTED_AT, CODEC
    )
    event: Any = CODEC.decode(record.value, family.contract.event_model)
    assert event.correlation_id == str(record.event_id)


def test_the_same_webhook_id_in_two_families_is_two_events() -> None:
    assert event_id_for("users", "msg_1") != event_id_for("auth", "msg_1")


def _violations(family: str, data: dict[str, Any]) -> set[str]:
    with pytest.raises(ContractViolationError) as caught:
        validate(BY_NAME[family].body_model, data)
    return {error.field for error in caught.value.errors}


def test_user_errors_are_named_as_the_body_names_the_fields() -> None:
    data = examples.webhook_body("user.created")
    data["user"] |= {"id": "", "phone": "0612"}
    assert _violations("users", data) == {"user.id", "user.phone"}


def test_auth_errors_are_named_and_the_security_verdict_is_refused() -> None:
    data = examples.webhook_body("auth.session-revoked")
    del data["auth"]["session_id"]
    assert _violations("auth", data) == {"auth.session_id"}
    verdict = {
        "type": "auth.suspicious-login",
        "occurred_at": examples.OCCURRED_AT,
        "auth": examples.PAYLOADS["auth.suspicious-login"],
    }
    assert "type" in _violations("auth", verdict)


def test_a_body_of_another_family_does_not_fit() -> None:
    assert "user" in _violations("users", examples.webhook_body("order.created"))
