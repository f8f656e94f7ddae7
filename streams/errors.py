"""The project's exception tree.

Every error the project raises derives from `TributaryError`. Callers decide what to do by type:
a `RetriableError` may succeed when tried again later (a broker or database that is away), a
`PoisonError` never will (bytes that do not decode, an event that breaks its contract). Driver
exceptions are translated into these types at the adapter boundary, never leaked past it.
"""

from __future__ import annotations

from dataclasses import dataclass


class TributaryError(Exception):
    """Root of every error the project raises."""


class RetriableError(TributaryError):
    """The operation may succeed if tried again later."""

    retry_after_s: float | None = None


class PoisonError(TributaryError):
    """The input can never be processed; it must be set aside, not retried."""


class ServiceUnavailableError(RetriableError):
    """A backing service (Kafka, PostgreSQL, Redis) cannot be reached or did not answer in time."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service} unavailable: {detail}")
        self.service = service
        self.detail = detail


class ConfigurationError(TributaryError):
    """The settings do not allow the requested operation (for instance a missing secret)."""


class UnsupportedRuntimeError(TributaryError):
    """The installed faust-streaming, mode-streaming or aiokafka are not the versions the suite
    ran: the runtime's corrections rely on their private names, so the worker must not start."""


class RequestError(TributaryError):
    """Something is wrong with the request itself; retrying it unchanged cannot help.

    Raised where a request is read: the API's handlers, and the provider modules that parse and
    verify the providers' own webhooks (`streams.providers`), which sit below the API and so
    cannot raise its errors. `api.problems` turns each into its HTTP answer.
    """


class InvalidSignatureError(RequestError):
    """The request cannot be proven to come from the configured sender (401).

    `header` names the header at fault, so the sender's operator knows where to look.
    """

    def __init__(self, detail: str, header: str) -> None:
        super().__init__(detail)
        self.header = header


class MalformedBodyError(RequestError):
    """The body is not a JSON object, or not the form it should be (400): no contract could even
    be checked."""


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class ContractViolationError(RequestError):
    """A well-formed JSON body that breaks the event contract (422), with every failing field."""

    def __init__(self, contract: str, errors: list[FieldError]) -> None:
        super().__init__(f"the body is not a valid {contract}: {len(errors)} field error(s)")
        self.errors = errors
