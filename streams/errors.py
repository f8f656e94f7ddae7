"""The project's exception tree.

Every error the project raises derives from `TributaryError`. Callers decide what to do by type:
a `RetriableError` may succeed when tried again later (a broker or database that is away), a
`PoisonError` never will (bytes that do not decode, an event that breaks its contract). Driver
exceptions are translated into these types at the adapter boundary, never leaked past it.
"""

from __future__ import annotations


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
