"""What every provider's receipt webhook shares: the request as a parser sees it, reading the
body, errors that name the field at fault, and the ledger id of a natively signed request.

Providers report deliveries in their own shapes, and each carries our notification id where our
send put it; each provider's module reads its own shape and checks its own signature beside its
sending (`streams.providers.sendgrid`, `.twilio`, `.meta`), and `streams.providers.webhooks`
lists them. fcm and smtp have no receipt webhook of their own: whatever relays their outcomes (a
DSN parser, an analytics export) posts our plain shape (`schemas.provider_receipts`,
`plain_receipts`).

Events that are no delivery state and events for messages that carry no notification id (not
sent by us) are skipped. Not-JSON (400) and JSON that breaks its shape (422) are told apart, and
a violation names every failing field the way its sender writes it (`receipts[3].state`), so a
sender fixes its payload in one round trip. A native webhook carries no delivery id, so a
request's id for the duplicate ledger is a digest of what was signed (`request_id`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.provider_receipts import ProviderReceiptItem, ProviderReceiptsBody
from streams.errors import (
    ContractViolationError,
    FieldError,
    InvalidSignatureError,
    MalformedBodyError,
)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MAX_EVENTS = 1000
ROOT_FIELD = "(body)"


@dataclass(frozen=True, slots=True)
class ReceiptRequest:
    body: bytes
    query: Mapping[str, str]
    received_at: datetime


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad JSON, bad UTF-8 and over-long integers; RecursionError deep nesting.
        raise MalformedBodyError(f"the body is not valid UTF-8 JSON: {exc}") from exc


def parse_json_object(body: bytes) -> dict[str, Any]:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise MalformedBodyError(f"the body must be a JSON object, not {type(data).__name__}")
    return data


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


def receipt_item(**fields: Any) -> ProviderReceiptItem:
    """One normalized receipt; a value that breaks our own contract names the provider field."""
    return validated(ProviderReceiptItem, fields)


# Event times as Unix seconds, bounded to what a datetime holds (0001..9999 is too wide a
# promise: from the epoch to the end of year 9999), so a huge one is a 422, not an overflow.
MAX_UNIX_S = 253_402_300_799
UnixSeconds = Annotated[int, Field(ge=0, le=MAX_UNIX_S)]


class OpenModel(BaseModel):
    """A provider's shape: the fields we read, and whatever else it sends, ignored."""

    model_config = ConfigDict(extra="allow")


def plain_receipts(request: ReceiptRequest) -> list[ProviderReceiptItem]:
    return validated(ProviderReceiptsBody, parse_json_object(request.body)).receipts


def request_id(provider: str, signed: bytes) -> str:
    """The ledger id of a natively signed request: the same request resent is the same id."""
    return f"{provider}-{hashlib.sha256(signed).hexdigest()[:40]}"


def required_header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise InvalidSignatureError(f"the {name} header is missing", name)
    if not value.isascii():
        raise InvalidSignatureError(f"the {name} header must be ASCII", name)
    return value
