"""`X-Request-Id`: the id that joins an API request's answer, its log lines and its Kafka record.

A caller's id is kept when it is a plausible id (1 to 128 visible ASCII characters); otherwise,
or when there is none, the API makes one. Either way the answer carries it back in
`X-Request-Id`, every line logged while answering carries it as `request_id`, every problem body
has it (`api.problems`), and the record a webhook produces has it in its `request_id` header.
An unusable incoming id is replaced rather than refused: it is a tracing aid, and a request
should not fail over it.
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from streams.structured_logs import log_context

HEADER = "X-Request-Id"
# The Kafka header of a record produced for a request (beside `event_id`, `source`, ...).
RECORD_HEADER = "request_id"
REQUEST_ID = web.RequestKey("request_id", str)
_USABLE = re.compile(r"[\x21-\x7e]{1,128}")


def request_id_for(incoming: str | None) -> str:
    """The caller's id when usable, else a new one."""
    if incoming is not None and _USABLE.fullmatch(incoming):
        return incoming
    return str(uuid.uuid4())


def request_id_of(request: web.Request) -> str | None:
    """The id of a request that went through `request_id_middleware` (None otherwise)."""
    return request.get(REQUEST_ID)


def request_id_header(request: web.Request) -> tuple[str, bytes]:
    """The Kafka header naming the request a record was produced for."""
    return (RECORD_HEADER, (request_id_of(request) or "").encode())


def request_id_middleware() -> Middleware:
    """Outermost: the id is known to every other middleware, the handler and the log."""

    @web.middleware
    async def with_request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request_id_for(request.headers.get(HEADER))
        request[REQUEST_ID] = request_id
        with log_context(request_id=request_id):
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # answers raised rather than returned
                exc.headers[HEADER] = request_id
                raise
        response.headers[HEADER] = request_id
        return response

    return with_request_id
