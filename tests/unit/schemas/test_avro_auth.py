from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import examples
from schemas.auth import (
    AUTH_EVENT_TYPES,
    AuthEvent,
    AuthWebhook,
    LoggedOut,
    LoginFailed,
    SessionRevoked,
    SuspiciousLogin,
)
from schemas.notifications import NotificationReceiptEvent, NotificationRequestEvent

WEBHOOK_TYPES = [t for t in AUTH_EVENT_TYPES if t != "auth.suspicious-login"]


def _body(event_type: str = "auth.login-failed", **auth_changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(examples.webhook_body(event_type))
    body["auth"].update(auth_changes)
    return body


def _failing_fields(body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        AuthWebhook.model_validate(body)
    return {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}


@pytest.mark.parametrize("event_type", WEBHOOK_TYPES)
def test_every_upstream_auth_type_is_accepted_keyed_by_user_id(event_type: str) -> None:
    parsed = AuthWebhook.model_validate(_body(event_type))
    assert parsed.type == event_type
    assert parsed.auth.user_id == "usr_42"


def test_a_suspicious_login_cannot_come_from_outside() -> None:
    body = {
        "type": "auth.suspicious-login",
        "occurred_at": examples.OCCURRED_AT,
        "auth": examples.PAYLOADS["auth.suspicious-login"],
    }
    assert _failing_fields(body) == {"type"}


def test_a_suspicious_login_is_an_event_our_agents_can_emit() -> None:
    event = examples.event("auth.suspicious-login")
    assert isinstance(event, AuthEvent)
    assert isinstance(event.payload, SuspiciousLogin)
    assert event.payload.related_event_ids == [uuid.UUID("5c1f2a7e-8d3b-4f6a-9e0c-1b2d3e4f5a6b")]
    assert event.payload.evidence["failed_attempts"] == "12"


def test_look_alike_payloads_follow_the_type() -> None:
    body = {
        "type": "auth.logout",
        "occurred_at": examples.OCCURRED_AT,
        "auth": {"user_id": "u", "session_id": "s"},
    }
    assert type(AuthWebhook.model_validate(body).auth) is LoggedOut
    body["type"] = "auth.session-revoked"
    assert type(AuthWebhook.model_validate(body).auth) is SessionRevoked


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:DB8:0::7", "2001:db8::7"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
    ],
)
def test_ip_addresses_have_one_spelling(given: str, stored: str) -> None:
    parsed = AuthWebhook.model_validate(_body(ip=given))
    assert isinstance(parsed.auth, LoginFailed)
    assert parsed.auth.ip == stored


def test_every_failing_field_is_named() -> None:
    body = _body(ip="300.1.1.1", device_id="has spaces", reason="")
    del body["auth"]["user_id"]
    assert _failing_fields(body) == {"auth.ip", "auth.device_id", "auth.reason", "auth.user_id"}


def test_a_session_revocation_names_its_session() -> None:
    body = _body("auth.session-revoked")
    del body["auth"]["session_id"]
    assert _failing_fields(body) == {"auth.session_id"}


def test_strict_flags() -> None:
    assert _failing_fields(_body("auth.password-changed", via_reset="true")) == {"auth.via_reset"}


def test_notification_envelopes_carry_their_one_payload_type() -> None:
    request = examples.event("notification.requested")
    assert isinstance(request, NotificationRequestEvent)
    assert request.payload.category == "orders"
    data = request.model_dump()
    data["payload"]["category"] = "spam"
    data["payload"]["channel"] = "pigeon"
    with pytest.raises(ValidationError) as caught:
        NotificationRequestEvent.model_validate(data)
    assert {error["loc"] for error in caught.value.errors()} == {
        ("payload", "category"),
        ("payload", "channel"),
    }
    receipt = examples.event("notification.receipt-received")
    assert isinstance(receipt, NotificationReceiptEvent)
    with pytest.raises(ValidationError):
        NotificationReceiptEvent.model_validate({**receipt.model_dump(), "event_type": "x"})
