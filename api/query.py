"""Query parameters of the read endpoints: parsed, or a 422 naming the parameter.

Shared by the order and session reads so that every bad parameter is reported the same way (a
`ContractViolationError` on "query", whose `errors` name the field).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from streams.errors import ContractViolationError, FieldError

# Longer than any cursor this API issues (a time and an id of at most 128 characters).
MAX_CURSOR_CHARS = 512


def invalid(name: str, message: str) -> ContractViolationError:
    return ContractViolationError("query", [FieldError(name, message)])


def limit(query: Mapping[str, str], default: int, maximum: int) -> int:
    raw = query.get("limit")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise invalid("limit", f"must be an integer from 1 to {maximum}")
    return int(raw)


def choice(query: Mapping[str, str], name: str, allowed: frozenset[str]) -> str | None:
    value = query.get(name)
    if value is not None and value not in allowed:
        raise invalid(name, f"must be one of {', '.join(sorted(allowed))}")
    return value


def moment(query: Mapping[str, str], name: str) -> datetime | None:
    """An RFC 3339 date-time with its offset, in UTC, or None when absent."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid(name, "must be an RFC 3339 date-time") from None
    if value.tzinfo is None:
        raise invalid(name, "must carry a UTC offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise invalid(name, "is outside the years 1 to 9999 in UTC") from None


def validated(query: Mapping[str, str], name: str, adapter: TypeAdapter[str]) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        raise invalid(name, exc.errors()[0]["msg"]) from None


def encode_keyset(at: datetime, key: str) -> str:
    """An opaque cursor for the keyset position (at, key)."""
    raw = json.dumps([at.isoformat(), key], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def keyset(query: Mapping[str, str]) -> tuple[datetime, str] | None:
    """The `cursor` parameter, decoded; a 422 naming it when it is not one this API issued."""
    text = query.get("cursor")
    if text is None:
        return None
    if len(text) > MAX_CURSOR_CHARS:
        raise invalid("cursor", "not a cursor this API issued")
    try:
        decoded: Any = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        at_text, key = decoded
        at = datetime.fromisoformat(at_text)
    except (binascii.Error, ValueError, TypeError, RecursionError):
        raise invalid("cursor", "not a cursor this API issued") from None
    if at.tzinfo is None or not isinstance(key, str):
        raise invalid("cursor", "not a cursor this API issued")
    return at, key
