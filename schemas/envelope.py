"""What every event family shares: the envelope, and payloads whose shape depends on the type.

A family topic carries several event types, each with its own payload record. Neither the Avro
payload records nor the webhook objects carry the type themselves (it is in the envelope's
`event_type` or the body's `type`), so pydantic's tag-in-the-member discriminated unions do not
fit. Instead the payload field is validated by the model that the already-validated type names,
which keeps error locations exact (`user.email`, never `user.UserCreated.email`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

Text = Annotated[str, Field(min_length=1, max_length=256)]
CorrelationId = Annotated[str, Field(min_length=1, max_length=128)]


class Contract(BaseModel):
    """Base of every event contract: immutable, and unknown fields are an error, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Envelope(Contract):
    """The fields every event on every topic carries, whatever its family (`OrderEvent` too)."""

    event_id: UUID
    occurred_at: AwareDatetime
    ingested_at: AwareDatetime
    source: str
    correlation_id: str
    causation_id: str | None = None


def select_payload(
    value: Any,
    event_type: object,
    models: Mapping[str, type[BaseModel]],
    renames: Mapping[str, str] | None = None,
) -> Any:
    """`value` validated as the payload model of `event_type`.

    An unknown `event_type` has already been reported on its own field, so `value` is passed
    through unchecked: listing how it fails every possible payload would only bury that error.
    `renames` maps input keys onto model fields (and back in error locations); it must be its own
    inverse, so that a key named like the target field is reported under its own name.
    """
    model = models.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        return value
    if isinstance(value, BaseModel):
        if type(value) is not model:
            raise ValueError(f"{event_type} needs a {model.__name__}, not {type(value).__name__}")
        return value
    if renames and isinstance(value, Mapping):
        value = {renames.get(key, key): item for key, item in value.items()}
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        if not renames:
            raise
        raise _relocated(exc, renames) from None


def _relocated(error: ValidationError, renames: Mapping[str, str]) -> ValidationError:
    details: list[InitErrorDetails] = []
    for line in error.errors():
        loc = tuple(
            renames.get(part, part) if isinstance(part, str) else part for part in line["loc"]
        )
        # Without a context the message is kept verbatim: it is already rendered.
        kind = PydanticCustomError(line["type"], line["msg"])
        details.append(InitErrorDetails(type=kind, loc=loc, input=line["input"]))
    return ValidationError.from_exception_data(error.title, details)
