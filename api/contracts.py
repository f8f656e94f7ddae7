"""From raw body bytes to a validated contract, with errors a sender can act on.

Not-JSON (400) and JSON-that-breaks-the-contract (422) are told apart, and a contract violation
lists every failing field at once, so a sender fixes its payload in one round trip.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from api.errors import ContractViolationError, FieldError, MalformedBodyError

ModelT = TypeVar("ModelT", bound=BaseModel)
ROOT_FIELD = "(body)"


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


def field_errors(exc: ValidationError) -> list[FieldError]:
    """One entry per failing field, named by its dotted path (`order.items.0.quantity`)."""
    return [
        FieldError(".".join(str(part) for part in error["loc"]) or ROOT_FIELD, error["msg"])
        for error in exc.errors(include_url=False)
    ]


def validate(contract: type[ModelT], data: dict[str, Any]) -> ModelT:
    try:
        return contract.model_validate(data)
    except ValidationError as exc:
        raise ContractViolationError(contract.__name__, field_errors(exc)) from exc
