"""Who may call what: API keys with scopes on every `/v1` route that is not a signed webhook.

Each handler declares what it needs, `@requires("orders:read")` or `@signed_webhook` (whose
signature is its authentication); one middleware reads the matched handler's declaration. A `/v1`
route that declares nothing needs `operator`: closed by default, and a test lists every route's
declaration, so a route added later shows up there. `/health/*` and the schema registry declare
nothing and are not under `/v1`, so they stay open; `/metrics` requires `operator`.

The caller is a key (`Authorization: Bearer trb_<id>_<secret>`, `streams.api_keys`), or, for
`operator` only, the operator token. 401 without a valid key (no header, unknown, revoked,
malformed: the answer does not say which), 403 with a valid key lacking the scope; both before
the handler runs, so neither says whether the resource exists. A key's own limits
(`api.key_limits`) are taken next: 429 over them.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, Protocol, TypeVar

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from cachetools import TTLCache

from api.key_limits import enforce_key_limits
from api.keys import KEY_VERIFIER, SETTINGS
from streams.api_keys import PREFIX, SCOPES, ApiKey, Scope, parse_key, secret_matches
from streams.errors import TributaryError

SCOPE_ATTRIBUTE: Final = "__tributary_access__"
SIGNED: Final = "signed-webhook"
Access = Scope | Literal["signed-webhook"]
H = TypeVar("H", bound=Callable[..., object])
# A route under it that declares nothing needs `operator`.
V1 = "/v1/"


class AccessError(TributaryError):
    """401 (no valid credentials) or 403 (valid, but not allowed): `api.problems` answers."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


UNAUTHORIZED = "a valid API key is required: Authorization: Bearer trb_<key id>_<secret>"


def requires(scope: Scope) -> Callable[[H], H]:
    """Declare the scope a handler needs."""

    def declare(handler: H) -> H:
        setattr(handler, SCOPE_ATTRIBUTE, scope)
        return handler

    return declare


def signed_webhook(handler: H) -> H:
    """Declare a handler that authenticates its request by signature, not by key."""
    setattr(handler, SCOPE_ATTRIBUTE, SIGNED)
    return handler


def declared_access(handler: object) -> Access | None:
    value = getattr(handler, SCOPE_ATTRIBUTE, None)
    return value if value == SIGNED or value in SCOPES else None


def required_scope(path: str, handler: object) -> Scope | None:
    """The scope a request to `handler` at `path` needs; None: open."""
    declared = declared_access(handler)
    if declared == SIGNED:
        return None
    if declared is not None:
        return declared
    return "operator" if path.startswith(V1) else None


@dataclass(frozen=True, slots=True)
class Caller:
    scopes: frozenset[Scope]
    # None for the operator token.
    key: ApiKey | None = None


OPERATOR_TOKEN_CALLER = Caller(frozenset({"operator"}))
CALLER = web.RequestKey("caller", Caller)


class KeyRows(Protocol):
    """What the verifier reads (`ApiKeyStore`; a fake in unit tests)."""

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def close(self) -> None: ...


class KeyVerifier:
    """Checks presented keys against the store, remembering each key id's row (or its absence)
    for `ttl_s`, so a read costs no extra round trip; the secret is checked on every request."""

    def __init__(
        self,
        store: KeyRows,
        ttl_s: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._rows: TTLCache[str, ApiKey | None] | None = (
            TTLCache(max_entries, ttl_s, timer=clock) if ttl_s > 0 else None
        )

    async def _row(self, key_id: str) -> ApiKey | None:
        if self._rows is not None and key_id in self._rows:
            return self._rows[key_id]
        row = await self.store.get(key_id)
        if self._rows is not None:
            self._rows[key_id] = row
        return row

    async def verify(self, text: str) -> ApiKey:
        presented = parse_key(text)
        if presented is None:
            raise AccessError(401, UNAUTHORIZED)
        row = await self._row(presented.id)
        if row is None or row.revoked_at is not None:
            raise AccessError(401, UNAUTHORIZED)
        if not secret_matches(presented.secret, row.secret_hash):
            raise AccessError(401, UNAUTHORIZED)
        return row


def _bearer(request: web.Request) -> str:
    authorization = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise AccessError(401, UNAUTHORIZED)
    return credentials.strip()


async def authenticate(request: web.Request) -> Caller:
    credentials = _bearer(request)
    if credentials.startswith(PREFIX):
        key = await request.app[KEY_VERIFIER].verify(credentials)
        return Caller(key.scopes, key)
    token = request.app[SETTINGS].operator.token
    if token is not None and hmac.compare_digest(
        credentials.encode(), token.get_secret_value().encode()
    ):
        return OPERATOR_TOKEN_CALLER
    raise AccessError(401, UNAUTHORIZED)


def access_middleware() -> Middleware:
    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            return await handler(request)  # no route: aiohttp's 404 or 405
        scope = required_scope(request.path, request.match_info.handler)
        if scope is None:
            return await handler(request)
        caller = await authenticate(request)
        if scope not in caller.scopes:
            raise AccessError(403, f"this API key does not have the scope {scope!r}")
        request[CALLER] = caller
        limit = None if caller.key is None else await enforce_key_limits(request, caller.key)
        response = await handler(request)
        if limit is not None and not response.prepared:
            response.headers.update(limit.headers())
        return response

    return check_access
