"""Errors the API raises about a request; `api.problems` turns each into its HTTP answer.

They are raised deep in the request handling and mapped in exactly one place, so a handler never
builds an error response by hand and every error answer has the same problem+json shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.errors import ConfigurationError, TributaryError


class RequestError(TributaryError):
    """Something is wrong with the request itself; retrying it unchanged cannot help."""


class InvalidSignatureError(RequestError):
    """The request cannot be proven to come from the configured sender (401).

    `header` names the header at fault, so the sender's operator knows where to look.
    """

    def __init__(self, detail: str, header: str) -> None:
        super().__init__(detail)
        self.header = header


class PayloadTooLargeError(RequestError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"the body exceeds the limit of {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


class UnsupportedMediaTypeError(RequestError):
    def __init__(self, content_type: str, expected: str = "application/json") -> None:
        super().__init__(f"expected an {expected} body, got {content_type!r}")


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


class NotFoundError(RequestError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class WebhookSecretMissingError(ConfigurationError):
    """No signing secret is configured for a webhook family.

    Answered 503, not 500: the fix is an operator setting the secret, after which the sender's
    retries succeed, so the sender is told to come back rather than that the request is bad.
    """

    def __init__(self, family: str) -> None:
        super().__init__(f"no signing secret is configured for {family} webhooks")
        self.family = family
