"""Blocks decided by the security agent, served to the upstream auth service, and lifted by
operators; and the ingest limiter the webhook handler calls before producing.

`GET /v1/rate-limits/check?user_id=…&ip=…` always answers 200 when it can answer at all: "blocked"
is the answer to the question, not a refusal of the request (that is what the upstream service
enforces). A blocked answer carries `Retry-After` (the longest remaining block, in seconds).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import TypeAdapter, ValidationError

from api.access import requires
from api.errors import NotFoundError
from api.keys import BLOCK_STORE, RATE_LIMITER, SETTINGS
from schemas.auth import IpAddress
from schemas.orders import Identifier
from streams.errors import RequestError
from streams.stores.block_store import BLOCK_KINDS, BlockKind
from streams.stores.rate_limiter import RateDecision

# The `ratelimit.sources` entry that limits reads, per client address.
READS = "reads"
_IP = TypeAdapter(IpAddress)
_ID = TypeAdapter(Identifier)


class InvalidParameterError(RequestError):
    """A query or path parameter that is missing or malformed (400), named in `field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _valid(adapter: TypeAdapter[str], field: str, value: str) -> str:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise InvalidParameterError(field, exc.errors()[0]["msg"]) from None


def _optional(request: web.Request, field: str, adapter: TypeAdapter[str]) -> str | None:
    value = request.query.get(field)
    return None if value is None else _valid(adapter, field, value)


@requires("ratelimits:check")
async def check(request: web.Request) -> web.Response:
    user_id = _optional(request, "user_id", _ID)
    ip = _optional(request, "ip", _IP)
    if user_id is None and ip is None:
        raise InvalidParameterError("user_id", "give user_id, ip or both")
    decision = await request.app[BLOCK_STORE].check(user_id, ip)
    body: dict[str, Any] = {
        "allowed": decision.allowed,
        "retry_after_s": decision.retry_after_s,
        "blocks": [block.as_json() for block in decision.blocks],
    }
    headers = {} if decision.retry_after_s is None else {"Retry-After": str(decision.retry_after_s)}
    return web.json_response(body, headers=headers)


def _kind(value: str) -> BlockKind:
    for kind in BLOCK_KINDS:
        if kind == value:
            return kind
    raise InvalidParameterError("kind", f"must be one of {', '.join(BLOCK_KINDS)}")


@requires("operator")
async def lift(request: web.Request) -> web.Response:
    kind = _kind(request.match_info["kind"])
    raw_id = request.match_info["id"]
    id_ = _valid(_IP, "id", raw_id) if kind == "ip" else _valid(_ID, "id", raw_id)
    if not await request.app[BLOCK_STORE].lift(kind, id_):
        raise NotFoundError(f"{kind} block {id_!r}")
    return web.Response(status=204)


def with_limit_headers(response: web.Response, decision: RateDecision | None) -> web.Response:
    if decision is not None:
        response.headers.update(decision.headers())
    return response


def reads_limit_middleware() -> Middleware:
    """Limit reads (`GET /v1/...`) per client address, once a "reads" limit is configured in
    `ratelimit.sources`. Off by default: the upstream auth service asks the block check on
    every login from few addresses, so a default limit there would throttle logins."""

    @web.middleware
    async def limit_reads(request: web.Request, handler: Handler) -> web.StreamResponse:
        limits = request.app[SETTINGS].ratelimit
        if request.method != "GET" or READS not in limits.sources:
            return await handler(request)
        if not request.path.startswith("/v1/"):
            return await handler(request)
        client = request.remote or "unknown"
        decision = await request.app[RATE_LIMITER].enforce(f"{READS}:{client}", policy=READS)
        response = await handler(request)
        if decision is not None and not response.prepared:
            response.headers.update(decision.headers())
        return response

    return limit_reads


def routes() -> list[web.RouteDef]:
    return [
        web.get("/v1/rate-limits/check", check),
        web.delete("/v1/rate-limits/blocks/{kind}/{id}", lift),
    ]
