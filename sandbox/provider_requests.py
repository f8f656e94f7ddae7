"""Reading the four provider request shapes (SendGrid, Twilio, FCM, Meta Cloud) into sends.

Pure: a parsed JSON document or form in, `Send`s out, or `InvalidRequest` naming the field the
provider would name, so that an adapter sending a wrong shape fails here as it would for real
(a 400), and the checks are unit-tested without a server.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from sandbox.outcomes import Channel, is_email, is_notification_id, is_valid_recipient


@dataclass(frozen=True, slots=True)
class Send:
    recipient: str
    notification_id: str
    subject: str | None
    body: str


class InvalidRequest(Exception):  # noqa: N818 - reads as what the provider answers
    """A request a real provider would reject with 400; `field` in the provider's own notation."""

    def __init__(self, message: str, field: str, *, recipient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # True when the recipient itself is invalid (Twilio 21211, and the like): permanent.
        self.recipient = recipient


def bearer_present(authorization: str | None) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def basic_user(authorization: str | None) -> str | None:
    """The user of an HTTP basic Authorization header with a non-empty password, else None."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return user if sep and user and password else None


def _object(value: object, field: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"{field or 'the body'} must be an object", field or "body")
    return value


def _text(doc: Mapping[str, object], key: str, field: str, *, required: bool = True) -> str | None:
    """A required field must be a non-empty string; an optional one absent, or any string."""
    value = doc.get(key)
    if not required and (value is None or isinstance(value, str)):
        return value
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{field} is required and must be a non-empty string", field)
    return value


def _notification_id(doc: Mapping[str, object], key: str, field: str) -> str:
    """Our id as the receipt webhook will need it: one bad id would get a whole batch refused."""
    value = _text(doc, key, field) or ""
    if not is_notification_id(value):
        raise InvalidRequest(f"{field} must be 1 to 128 of A-Z a-z 0-9 . _ : @ -", field)
    return value


def _recipient(channel: Channel, value: str, field: str) -> str:
    if not is_valid_recipient(channel, value):
        raise InvalidRequest(
            f"{field} is not a valid {channel.value} recipient", field, recipient=True
        )
    return value


def parse_sendgrid(doc: object) -> list[Send]:
    body = _object(doc, "")
    sender = _object(body.get("from"), "from")
    if not is_email(_text(sender, "email", "from.email") or ""):
        raise InvalidRequest("from.email is not a valid email address", "from.email")
    subject = _text(body, "subject", "subject", required=False)
    content = body.get("content")
    if not isinstance(content, list) or not content:
        raise InvalidRequest("content must hold at least one part", "content")
    text = _text(_object(content[0], "content.0"), "value", "content.0.value") or ""
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise InvalidRequest("personalizations must hold at least one entry", "personalizations")
    sends: list[Send] = []
    for index, entry in enumerate(personalizations):
        personalization = _object(entry, f"personalizations.{index}")
        custom_args = _object(
            personalization.get("custom_args"), f"personalizations.{index}.custom_args"
        )
        field = f"personalizations.{index}.custom_args.notification_id"
        notification_id = _notification_id(custom_args, "notification_id", field)
        to = personalization.get("to")
        if not isinstance(to, list) or not to:
            raise InvalidRequest(
                "to must hold at least one address", f"personalizations.{index}.to"
            )
        for position, address in enumerate(to):
            where = f"personalizations.{index}.to.{position}"
            email = _text(_object(address, where), "email", f"{where}.email") or ""
            _recipient(Channel.EMAIL, email, f"{where}.email")
            sends.append(Send(email, notification_id, subject, text))
    return sends


def parse_twilio(form: Mapping[str, str]) -> Send:
    to = _text(form, "To", "To") or ""
    _recipient(Channel.SMS, to, "To")
    _text(form, "From", "From")
    text = _text(form, "Body", "Body") or ""
    callback = _text(form, "StatusCallback", "StatusCallback") or ""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query)
    notification_id = (query.get("notification_id") or [""])[0]
    if not is_notification_id(notification_id):
        raise InvalidRequest("StatusCallback must carry ?notification_id=<id>", "StatusCallback")
    return Send(to, notification_id, None, text)


def parse_fcm(doc: object) -> Send:
    message = _object(_object(doc, "").get("message"), "message")
    token = _text(message, "token", "message.token") or ""
    _recipient(Channel.PUSH, token, "message.token")
    data = _object(message.get("data"), "message.data")
    notification_id = _notification_id(data, "notification_id", "message.data.notification_id")
    notification = message.get("notification")
    title: str | None = None
    text = ""
    if notification is not None:
        shown = _object(notification, "message.notification")
        title = _text(shown, "title", "message.notification.title", required=False)
        text = _text(shown, "body", "message.notification.body", required=False) or ""
    return Send(token, notification_id, title, text)


def parse_meta(doc: object) -> Send:
    body = _object(doc, "")
    if body.get("messaging_product") != "whatsapp":
        raise InvalidRequest("messaging_product must be whatsapp", "messaging_product")
    raw_to = _text(body, "to", "to") or ""
    # The Cloud API takes the number with or without its leading +.
    to = _recipient(Channel.WHATSAPP, raw_to if raw_to.startswith("+") else f"+{raw_to}", "to")
    if body.get("type") != "text":
        raise InvalidRequest("only type text is supported by the sandbox", "type")
    text = _text(_object(body.get("text"), "text"), "body", "text.body") or ""
    notification_id = _notification_id(body, "biz_opaque_callback_data", "biz_opaque_callback_data")
    return Send(to, notification_id, None, text)
