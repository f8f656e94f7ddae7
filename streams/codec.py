"""Turning events into record values and back.

Decoding failures are `PoisonError`s: the bytes will never decode, however often they are retried.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from streams.errors import PoisonError

ModelT = TypeVar("ModelT", bound=BaseModel)


class UndecodableEventError(PoisonError):
    """A record value that is not a valid event of the topic's contract."""


def encode_event(event: BaseModel) -> bytes:
    return event.model_dump_json().encode()


def decode_event(raw: bytes | None, contract: type[ModelT]) -> ModelT:
    if raw is None:
        raise UndecodableEventError("record has no value")
    try:
        return contract.model_validate_json(raw)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) or "(root)" for err in exc.errors())
        raise UndecodableEventError(f"not a valid {contract.__name__}: {fields}") from exc
