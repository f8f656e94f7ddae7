"""What a command can reject before touching a service: the exit code 2 family."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streams.errors import TributaryError


class UsageError(TributaryError):
    """The command line or its input cannot be acted on; nothing was changed."""


class TopicNotFoundError(UsageError):
    """The named topic does not exist in the cluster (yet: `tributary topics create`)."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} does not exist; `tributary topics create` creates it")
        self.topic = topic


@dataclass(frozen=True, slots=True)
class FieldError:
    """One failing field, named by its dotted path in the input (`order.items.0.quantity`)."""

    field: str
    message: str


class InvalidEventError(UsageError):
    """An input document that breaks its contract; lists every failing field at once."""

    def __init__(self, what: str, errors: Sequence[FieldError]) -> None:
        lines = "\n".join(f"  {error.field}: {error.message}" for error in errors)
        super().__init__(f"{what} is not valid:\n{lines}")
        self.errors = tuple(errors)
