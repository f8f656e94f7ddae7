"""Errors the API raises about a request; `api.problems` turns each into its HTTP answer.

They are raised deep in the request handling and mapped in exactly one place, so a handler never
builds an error response by hand and every error answer has the same problem+json shape. The
request errors that code below the API raises too (a body that is no JSON or breaks its contract,
a signature that does not match, as a provider's webhook may) live in `streams.errors`.
"""

from __future__ import annotations

from streams.errors import ConfigurationError, RequestError


class PayloadTooLargeError(RequestError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"the body exceeds the limit of {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


class UnsupportedMediaTypeError(RequestError):
    def __init__(self, content_type: str, expected: str = "application/json") -> None:
        super().__init__(f"expected an {expected} body, got {content_type!r}")


class NotFoundError(RequestError):
    """`field`: the path parameter that named what is missing, when the answer should say so."""

    def __init__(self, what: str, field: str | None = None) -> None:
        super().__init__(f"{what} not found")
        self.field = field


class WebhookSecretMissingError(ConfigurationError):
    """No signing secret is configured for a webhook family.

    Answered 503, not 500: the fix is an operator setting the secret, after which the sender's
    retries succeed, so the sender is told to come back rather than that the request is bad.
    """

    def __init__(self, family: str) -> None:
        super().__init__(f"no signing secret is configured for {family} webhooks")
        self.family = family


class TemplateRejectedError(RequestError):
    """A template version that does not render (a syntax error, an undefined variable): 422,
    naming the part (`subject` or `body`) and the line."""

    def __init__(self, part: str, line: int | None, message: str) -> None:
        where = f"{part}, line {line}" if line is not None else part
        super().__init__(f"the template does not render: {where}: {message}")
        self.part = part
        self.line = line
        self.message = message


class PreconditionFailedError(RequestError):
    """`If-Match` names another state than the current one (412)."""
