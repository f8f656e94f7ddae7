"""Every error answer as an RFC 9457 `application/problem+json` body, decided in one place.

`problem_for` is a pure mapping from exception to `Problem`, unit-tested on its own; the
middleware only applies it. Bodies of 5xx answers never carry exception text: internals stay in
the log, where the traceback is written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from api.access import AccessError
from api.errors import (
    NotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
    TemplateRejectedError,
    UnsupportedMediaTypeError,
)
from api.rate_limits import InvalidParameterError
from api.request_ids import request_id_of
from streams.errors import (
    ConfigurationError,
    ContractViolationError,
    InvalidSignatureError,
    MalformedBodyError,
    RetriableError,
    ServiceUnavailableError,
)
from streams.operator_auth import OperatorAuthError
from streams.stores.rate_limiter import RateLimitedError
from streams.stores.webhook_ledger import DeliveryInProgressError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:tributary:problem:"


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    title: str
    detail: str
    type: str = "about:blank"
    extensions: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self, instance: str, request_id: str | None = None) -> dict[str, Any]:
        core = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if request_id is not None:  # `api.request_ids`: quote it when reporting the answer
            core["request_id"] = request_id
        return core | dict(self.extensions)

    def response(self, instance: str, request_id: str | None = None) -> web.Response:
        return web.Response(
            status=self.status,
            text=json.dumps(self.body(instance, request_id)),
            content_type=PROBLEM_JSON,
            headers=dict(self.headers),
        )


def _typed(slug: str) -> str:
    return TYPE_BASE + slug


def problem_for(exc: Exception, retry_after_s: int) -> Problem:
    """The answer for an exception that escaped a handler."""
    retry = {"Retry-After": str(retry_after_s)}
    extensions: dict[str, Any] = {}
    match exc:
        case web.HTTPException():
            return _http_problem(exc)
        case InvalidSignatureError():
            extensions = {"header": exc.header}
            challenge = {"WWW-Authenticate": 'StandardWebhooks realm="webhooks"'}
            return Problem(
                401,
                "Invalid webhook signature",
                str(exc),
                _typed("invalid-signature"),
                extensions,
                challenge,
            )
        case AccessError():
            if exc.status == 401:
                challenge = {"WWW-Authenticate": 'Bearer realm="tributary"'}
                return Problem(
                    401, "Unauthorized", exc.detail, _typed("unauthorized"), extensions, challenge
                )
            return Problem(403, "Forbidden", exc.detail, _typed("forbidden"), extensions)
        case OperatorAuthError():
            challenge = {"WWW-Authenticate": 'Bearer realm="operator"'}
            slug = "unauthorized" if exc.status == 401 else "operator-access-disabled"
            title = "Unauthorized" if exc.status == 401 else "Forbidden"
            headers = challenge if exc.status == 401 else {}
            return Problem(exc.status, title, exc.detail, _typed(slug), extensions, headers)
        case PayloadTooLargeError():
            extensions = {"limit_bytes": exc.limit_bytes}
            return Problem(
                413, "Payload too large", str(exc), _typed("payload-too-large"), extensions
            )
        case UnsupportedMediaTypeError():
            return Problem(
                415, "Unsupported media type", str(exc), _typed("unsupported-media-type")
            )
        case MalformedBodyError():
            return Problem(400, "Malformed body", str(exc), _typed("malformed-body"))
        case ContractViolationError():
            extensions = {"errors": [{"field": e.field, "message": e.message} for e in exc.errors]}
            return Problem(
                422, "Contract violation", str(exc), _typed("contract-violation"), extensions
            )
        case TemplateRejectedError():
            error = {"field": exc.part, "line": exc.line, "message": exc.message}
            extensions = {"errors": [error]}
            return Problem(
                422, "Template does not render", str(exc), _typed("template-invalid"), extensions
            )
        case PreconditionFailedError():
            extensions = {"errors": [{"field": "If-Match", "message": str(exc)}]}
            return Problem(
                412, "Precondition failed", str(exc), _typed("precondition-failed"), extensions
            )
        case NotFoundError():
            extensions = {} if exc.field is None else {"field": exc.field}
            return Problem(404, "Not found", str(exc), _typed("not-found"), extensions)
        case RateLimitedError():
            extensions = {"source": exc.source}
            return Problem(
                429,
                "Too many requests",
                str(exc),
                _typed("rate-limited"),
                extensions,
                exc.decision.headers(),
            )
        case InvalidParameterError():
            extensions = {
                "field": exc.field,
                "errors": [{"field": exc.field, "message": exc.message}],
            }
            return Problem(
                400, "Invalid parameter", str(exc), _typed("invalid-parameter"), extensions
            )
        case DeliveryInProgressError():
            extensions = {"webhook_id": exc.webhook_id}
            return Problem(
                409,
                "Conflict",
                "delivery in progress, retry later",
                _typed("delivery-in-progress"),
                extensions,
                retry,
            )
        case ServiceUnavailableError():
            # The driver's detail (addresses, internals) goes to the log, not to the client.
            extensions = {"service": exc.service}
            return Problem(
                503,
                "Service unavailable",
                f"{exc.service} is unavailable; retry later",
                _typed("service-unavailable"),
                extensions,
                retry,
            )
        case RetriableError():
            return Problem(
                503,
                "Service unavailable",
                "retry later",
                _typed("service-unavailable"),
                extensions,
                retry,
            )
        case ConfigurationError():
            return Problem(
                503, "Service misconfigured", str(exc), _typed("misconfigured"), extensions, retry
            )
        case _:
            return Problem(500, "Internal server error", "an unexpected error occurred")


_BODY_HEADERS = frozenset({"content-type", "content-length"})


def _http_problem(exc: web.HTTPException) -> Problem:
    """aiohttp's own errors (unknown route, wrong method, body over `client_max_size`)."""
    # Allow (405) and similar headers are kept; the body's own headers are replaced.
    kept = {k: v for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS}
    if exc.status == 413:
        return Problem(
            413, "Payload too large", exc.text or exc.reason, _typed("payload-too-large")
        )
    return Problem(exc.status, exc.reason, exc.reason, headers=kept)


def problem_middleware(retry_after_s: int) -> Middleware:
    @web.middleware
    async def to_problem(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return problem_for(exc, retry_after_s).response(request.path, request_id_of(request))
        except Exception as exc:
            problem = problem_for(exc, retry_after_s)
            if problem.status == 500:
                # The path as repr: decoded, it may hold newlines that would forge log lines.
                log.exception("unexpected error answering %s %r", request.method, request.path)
            elif problem.status >= 500:
                log.warning(
                    "answering %s %r with %s: %r", request.method, request.path, problem.status, exc
                )
            return problem.response(request.path, request_id_of(request))

    return to_problem
