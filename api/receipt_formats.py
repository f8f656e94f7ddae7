"""Each provider's own receipt webhook, normalized to `ProviderReceiptItem`s.

Providers report deliveries in their own shapes, and each carries our notification id where our
send put it:

- sendgrid: the Event Webhook, a JSON array of events; the id is the `custom_args` value SendGrid
  copies into every event, the message id is `sg_message_id` up to its first dot (the rest names
  SendGrid's internal filter; the part before it is the `X-Message-Id` the send was answered with);
- twilio: one status callback per message, form-encoded, posted to the `StatusCallback` URL of
  the send, whose query carries the id; Twilio sends no event time, so it is the arrival time;
- meta: the WhatsApp Cloud API webhook, statuses nested in `entry[].changes[].value`, with the
  id in `biz_opaque_callback_data`;
- fcm and smtp have no receipt webhook of their own: whatever relays their outcomes (a DSN
  parser, an analytics export) posts our plain shape (`schemas.provider_receipts`).

Events that are no delivery state (SendGrid's processed or deferred, Twilio's queued or sent,
Meta's sent) and events for messages that carry no notification id (not sent by us) are skipped;
a body that does not follow its provider's shape is a 422 naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from api.contracts import ROOT_FIELD, parse_json, parse_json_object
from api.errors import ContractViolationError, FieldError, MalformedBodyError
from api.webhooks import JSON
from schemas.provider_receipts import ProviderReceiptItem, ProviderReceiptsBody

FORM = "application/x-www-form-urlencoded"
MAX_EVENTS = 1000

SENDGRID_STATES = {
    "delivered": "delivered",
    "bounce": "bounced",
    "dropped": "failed",
    "spamreport": "complained",
    "open": "opened",
    "click": "clicked",
}
TWILIO_STATES = {"delivered": "delivered", "undelivered": "bounced", "failed": "failed"}
TWILIO_STATES |= {"read": "opened"}
META_STATES = {"delivered": "delivered", "read": "opened", "failed": "failed"}


@dataclass(frozen=True, slots=True)
class ReceiptRequest:
    body: bytes
    query: Mapping[str, str]
    received_at: datetime


Parse = Callable[[ReceiptRequest], list[ProviderReceiptItem]]


@dataclass(frozen=True, slots=True)
class ReceiptFormat:
    media_type: str
    parse: Parse


def field_path(loc: Sequence[int | str]) -> str:
    """`("receipts", 3, "state")` -> `receipts[3].state`: how a sender writes the path."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or ROOT_FIELD


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(field_path(error["loc"]), error["msg"])
            for error in exc.errors(include_url=False)
        ]
        raise ContractViolationError(model.__name__, errors) from exc


def _item(**fields: Any) -> ProviderReceiptItem:
    """One normalized receipt; a value that breaks our own contract names the provider field."""
    return validated(ProviderReceiptItem, fields)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SendGridEvent(_Open):
    event: str
    timestamp: int
    sg_message_id: str | None = None
    notification_id: str | None = None
    reason: str | None = None
    response: str | None = None


class SendGridEvents(RootModel[Annotated[list[SendGridEvent], Field(max_length=MAX_EVENTS)]]):
    pass


def sendgrid_events(request: ReceiptRequest) -> list[ProviderReceiptItem]:
    items = []
    for event in validated(SendGridEvents, parse_json(request.body)).root:
        state = SENDGRID_STATES.get(event.event)
        if state is None or event.notification_id is None or event.sg_message_id is None:
            continue
        items.append(
            _item(
                notification_id=event.notification_id,
                provider_message_id=event.sg_message_id.split(".", 1)[0],
                state=state,
                occurred_at=datetime.fromtimestamp(event.timestamp, UTC),
                channel="email",
                reason=event.reason or event.response,
            )
        )
    return items


class TwilioStatus(_Open):
    MessageSid: str
    MessageStatus: str
    ErrorCode: str | None = None
    ErrorMessage: str | None = None


def twilio_status(request: ReceiptRequest) -> list[ProviderReceiptItem]:
    try:
        form = dict(parse_qsl(request.body.decode(), keep_blank_values=True, strict_parsing=True))
    except ValueError as exc:  # UnicodeDecodeError is one
        raise MalformedBodyError(f"the body is not a UTF-8 form: {exc}") from exc
    status = validated(TwilioStatus, form)
    state = TWILIO_STATES.get(status.MessageStatus)
    notification_id = request.query.get("notification_id")
    if state is None or not notification_id:
        return []
    reason = None
    if status.ErrorCode:
        reason = f"error {status.ErrorCode}" + (
            f": {status.ErrorMessage}" if status.ErrorMessage else ""
        )
    return [
        _item(
            notification_id=notification_id,
            provider_message_id=status.MessageSid,
            state=state,
            occurred_at=request.received_at,
            channel="sms",
            reason=reason,
        )
    ]


class MetaError(_Open):
    code: int
    title: str


class MetaStatus(_Open):
    id: str
    status: str
    timestamp: int
    biz_opaque_callback_data: str | None = None
    errors: list[MetaError] = []


class MetaValue(_Open):
    statuses: list[MetaStatus] = []


class MetaChange(_Open):
    field: str
    value: MetaValue


class MetaEntry(_Open):
    changes: list[MetaChange]


class MetaWebhook(_Open):
    object: str
    entry: Annotated[list[MetaEntry], Field(max_length=MAX_EVENTS)]


def meta_statuses(request: ReceiptRequest) -> list[ProviderReceiptItem]:
    items = []
    hook = validated(MetaWebhook, parse_json(request.body))
    for entry in hook.entry:
        for change in entry.changes:
            for status in change.value.statuses:
                state = META_STATES.get(status.status)
                if state is None or not status.biz_opaque_callback_data:
                    continue
                error = status.errors[0] if status.errors else None
                items.append(
                    _item(
                        notification_id=status.biz_opaque_callback_data,
                        provider_message_id=status.id,
                        state=state,
                        occurred_at=datetime.fromtimestamp(status.timestamp, UTC),
                        channel="whatsapp",
                        reason=f"{error.code} {error.title}" if error else None,
                    )
                )
    return items


def plain_receipts(request: ReceiptRequest) -> list[ProviderReceiptItem]:
    return validated(ProviderReceiptsBody, parse_json_object(request.body)).receipts


FORMATS: Mapping[str, ReceiptFormat] = {
    "sendgrid": ReceiptFormat(JSON, sendgrid_events),
    "twilio": ReceiptFormat(FORM, twilio_status),
    "meta": ReceiptFormat(JSON, meta_statuses),
    "fcm": ReceiptFormat(JSON, plain_receipts),
    "smtp": ReceiptFormat(JSON, plain_receipts),
}
