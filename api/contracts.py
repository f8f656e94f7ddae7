"""From raw body bytes to a validated contract, with errors a sender can act on.

Not-JSON (400) and JSON-that-breaks-the-contract (422) are told apart, and a contract violation
lists every failing field at once, so a sender fixes its payload in one round trip. Reading the
JSON itself (`parse_json_object`, a 400 for not-JSON) is shared with the providers' receipt
webhooks and lives below the API, in `streams.providers.receipts`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from streams.errors import ContractViolationError, FieldError
from streams.providers.receipts import ROOT_FIELD

ModelT = TypeVar("ModelT", bound=BaseModel)


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
