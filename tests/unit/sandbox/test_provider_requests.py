"""Each provider's request shape: a good one becomes sends, a bad one names the provider's field."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from sandbox.provider_requests import (
    InvalidRequest,
    Send,
    basic_user,
    bearer_present,
    parse_fcm,
    parse_meta,
    parse_sendgrid,
    parse_twilio,
)

SENDGRID: dict[str, Any] = {
    "personalizations": [
        {"to": [{"email": "ada@example.com"}], "custom_args": {"notification_id": "n-1"}}
    ],
    "from": {"email": "notifications@tributary.test"},
    "subject": "Welcome",
    "content": [{"type": "text/plain", "value": "Hello Ada"}],
}
TWILIO = {
    "To": "+15550100004",
    "From": "+15550000000",
    "Body": "Your code",
    "StatusCallback": "http://127.0.0.1:8080/cb?notification_id=n-2",
}
FCM: dict[str, Any] = {
    "message": {
        "token": "device-token-1",
        "notification": {"title": "Shipped", "body": "On its way"},
        "data": {"notification_id": "n-3"},
    }
}
META: dict[str, Any] = {
    "messaging_product": "whatsapp",
    "to": "+15550100004",
    "type": "text",
    "text": {"body": "Paid"},
    "biz_opaque_callback_data": "n-4",
}


def _changed(doc: dict[str, Any], path: list[str | int], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(doc)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


_DELETE = object()


def _invalid(call: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        call()
    return caught.value


def test_sendgrid_good_request() -> None:
    assert parse_sendgrid(SENDGRID) == [Send("ada@example.com", "n-1", "Welcome", "Hello Ada")]


def test_empty_optional_texts_are_accepted_as_the_adapters_send_them() -> None:
    assert parse_sendgrid({**SENDGRID, "subject": ""})[0].subject == ""
    doc = _changed(FCM, ["message", "notification", "title"], "")
    assert parse_fcm(doc).subject == ""


def test_sendgrid_several_recipients_and_personalizations() -> None:
    doc = copy.deepcopy(SENDGRID)
    doc["personalizations"][0]["to"].append({"email": "bob@example.com"})
    doc["personalizations"].append(
        {"to": [{"email": "cy@example.com"}], "custom_args": {"notification_id": "n-9"}}
    )
    sends = parse_sendgrid(doc)
    assert [(s.recipient, s.notification_id) for s in sends] == [
        ("ada@example.com", "n-1"),
        ("bob@example.com", "n-1"),
        ("cy@example.com", "n-9"),
    ]


@pytest.mark.parametrize(
    ("path", "value", "field", "recipient"),
    [
        (
            ["personalizations", 0, "to", 0, "email"],
            "not-an-address",
            "personalizations.0.to.0.email",
            True,
        ),
        (
            ["personalizations", 0, "to", 0, "email"],
            _DELETE,
            "personalizations.0.to.0.email",
            False,
        ),
        (["personalizations", 0, "to"], [], "personalizations.0.to", False),
        (["personalizations", 0, "custom_args"], _DELETE, "personalizations.0.custom_args", False),
        (
            ["personalizations", 0, "custom_args", "notification_id"],
            "",
            "personalizations.0.custom_args.notification_id",
            False,
        ),
        (
            ["personalizations", 0, "custom_args", "notification_id"],
            "has spaces",
            "personalizations.0.custom_args.notification_id",
            False,
        ),
        (["personalizations"], [], "personalizations", False),
        (["from", "email"], "nobody", "from.email", False),
        (["from"], _DELETE, "from", False),
        (["content"], [], "content", False),
        (["content", 0, "value"], 7, "content.0.value", False),
        (["subject"], 7, "subject", False),
    ],
)
def test_sendgrid_bad_requests_name_the_field(
    path: list[str | int], value: object, field: str, recipient: bool
) -> None:
    error = _invalid(lambda: parse_sendgrid(_changed(SENDGRID, path, value)))
    assert (error.field, error.recipient) == (field, recipient)


def test_a_body_that_is_not_an_object() -> None:
    assert _invalid(lambda: parse_sendgrid(["x"])).field == "body"
    assert _invalid(lambda: parse_fcm("x")).field == "body"
    assert _invalid(lambda: parse_meta(None)).field == "body"


def test_twilio_good_request() -> None:
    assert parse_twilio(TWILIO) == Send("+15550100004", "n-2", None, "Your code")


@pytest.mark.parametrize(
    ("key", "value", "recipient"),
    [
        ("To", "5550100004", True),
        ("To", "+1 555 0100", True),
        ("To", "", False),
        ("From", "", False),
        ("Body", "", False),
        ("StatusCallback", "http://127.0.0.1/cb", False),
        ("StatusCallback", "http://127.0.0.1/cb?notification_id=", False),
        ("StatusCallback", "http://127.0.0.1/cb?notification_id=a%20b", False),
    ],
)
def test_twilio_bad_requests_name_the_field(key: str, value: str, recipient: bool) -> None:
    error = _invalid(lambda: parse_twilio({**TWILIO, key: value}))
    assert (error.field, error.recipient) == (key, recipient)


def test_fcm_good_request() -> None:
    assert parse_fcm(FCM) == Send("device-token-1", "n-3", "Shipped", "On its way")


def test_fcm_without_a_visible_notification() -> None:
    doc = _changed(FCM, ["message", "notification"], _DELETE)
    assert parse_fcm(doc) == Send("device-token-1", "n-3", None, "")


@pytest.mark.parametrize(
    ("path", "value", "field", "recipient"),
    [
        (["message", "token"], "bad token", "message.token", True),
        (["message", "token"], _DELETE, "message.token", False),
        (["message", "data"], _DELETE, "message.data", False),
        (["message", "data", "notification_id"], 5, "message.data.notification_id", False),
        (["message", "data", "notification_id"], "x" * 129, "message.data.notification_id", False),
        (["message", "notification", "title"], 5, "message.notification.title", False),
        (["message"], "x", "message", False),
    ],
)
def test_fcm_bad_requests_name_the_field(
    path: list[str | int], value: object, field: str, recipient: bool
) -> None:
    error = _invalid(lambda: parse_fcm(_changed(FCM, path, value)))
    assert (error.field, error.recipient) == (field, recipient)


def test_meta_good_request_with_or_without_the_plus() -> None:
    expected = Send("+15550100004", "n-4", None, "Paid")
    assert parse_meta(META) == expected
    assert parse_meta({**META, "to": "15550100004"}) == expected


@pytest.mark.parametrize(
    ("path", "value", "field", "recipient"),
    [
        (["to"], "+12", "to", True),
        (["to"], _DELETE, "to", False),
        (["messaging_product"], "sms", "messaging_product", False),
        (["type"], "template", "type", False),
        (["text", "body"], "", "text.body", False),
        (["biz_opaque_callback_data"], _DELETE, "biz_opaque_callback_data", False),
        (["biz_opaque_callback_data"], "a/b", "biz_opaque_callback_data", False),
    ],
)
def test_meta_bad_requests_name_the_field(
    path: list[str | int], value: object, field: str, recipient: bool
) -> None:
    error = _invalid(lambda: parse_meta(_changed(META, path, value)))
    assert (error.field, error.recipient) == (field, recipient)


@pytest.mark.parametrize(
    ("header", "present"),
    [
        ("Bearer abc", True),
        ("bearer abc", True),
        ("Bearer ", False),
        ("Basic abc", False),
        (None, False),
    ],
)
def test_bearer_present(header: str | None, present: bool) -> None:
    assert bearer_present(header) is present


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@pytest.mark.parametrize(
    ("header", "user"),
    [
        (_basic("AC123:token"), "AC123"),
        (_basic("AC123:"), None),
        (_basic(":token"), None),
        (_basic("AC123"), None),
        ("Basic !!!", None),
        ("Bearer abc", None),
        (None, None),
    ],
)
def test_basic_user(header: str | None, user: str | None) -> None:
    assert basic_user(header) == user
