"""A user's sessions and devices, and the command that revokes sessions.

`GET /v1/users/{id}/sessions?state=active|all`: the sessions the worker folded from
`auth.events` (active ones by default, newest first) and the known devices (most recently seen
first), from PostgreSQL.

`POST /v1/users/{id}/sessions/revoke` with `{"session_id": …}` or `{"all": true,
"except_session_id": …}` (and an optional `reason`): produces one `auth.session-revoked` per
session on `auth.events`, keyed by the user, for the upstream auth service to enforce; the
worker's fold ends the sessions when it reads them back. `all` revokes the sessions active in
the view. Answered 202 only once Kafka acknowledged every event. An `Idempotency-Key` header
makes the event ids deterministic, so a retried request produces records consumers can drop.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from api import query
from api.access import requires
from api.contracts import validate
from api.keys import CATALOG, CODEC, PRODUCER, SESSION_STORE, SETTINGS
from api.webhooks import read_body, require_json
from schemas.auth import AuthEvent, SessionRevoked
from schemas.orders import Identifier
from schemas.sessions import RevokeSessions
from streams.errors import ContractViolationError, FieldError
from streams.providers.receipts import parse_json_object

SOURCE = "tributary.api"
REVOKE_NAMESPACE = uuid.UUID("2d8f0b7e-93a4-4c55-8a1e-6f0f4f6b1c27")
DEFAULT_REASON = "revoked via the API"
_ID: TypeAdapter[str] = TypeAdapter(Identifier)
_STATES = frozenset({"active", "all"})


def user_id_of(request: web.Request) -> str:
    raw = request.match_info["id"]
    try:
        return _ID.validate_python(raw)
    except ValidationError as exc:
        raise ContractViolationError("path", [FieldError("id", exc.errors()[0]["msg"])]) from None


@requires("users:read")
async def list_sessions(request: web.Request) -> web.Response:
    user_id = user_id_of(request)
    state = query.choice(request.query, "state", _STATES) or "active"
    store = request.app[SESSION_STORE]
    sessions, devices = await store.for_user(user_id, include_ended=state == "all")
    body = {
        "user_id": user_id,
        "sessions": [s.model_dump(mode="json", exclude={"revision"}) for s in sessions],
        "devices": [d.model_dump(mode="json", exclude={"revision"}) for d in devices],
    }
    return web.json_response(body)


def revoke_command(data: dict[str, Any]) -> RevokeSessions:
    command = validate(RevokeSessions, data)
    if command.all and command.session_id is not None:
        raise ContractViolationError(
            "RevokeSessions", [FieldError("session_id", 'not with "all": true')]
        )
    if not command.all and command.session_id is None:
        raise ContractViolationError(
            "RevokeSessions", [FieldError("session_id", 'required unless "all": true')]
        )
    if command.except_session_id is not None and not command.all:
        raise ContractViolationError(
            "RevokeSessions", [FieldError("except_session_id", 'only with "all": true')]
        )
    return command


def revocation(
    user_id: str, session_id: str, reason: str, now: datetime, idempotency_key: str | None
) -> AuthEvent:
    event_id = (
        uuid.uuid5(REVOKE_NAMESPACE, f"{user_id}|{session_id}|{idempotency_key}")
        if idempotency_key
        else uuid.uuid4()
    )
    return AuthEvent(
        event_id=event_id,
        event_type="auth.session-revoked",
        occurred_at=now,
        ingested_at=now,
        source=SOURCE,
        correlation_id=str(event_id),
        payload=SessionRevoked(user_id=user_id, session_id=session_id, reason=reason),
    )


@requires("users:write")
async def revoke_sessions(request: web.Request) -> web.Response:
    app = request.app
    user_id = user_id_of(request)
    require_json(request)
    body = await read_body(request, app[SETTINGS].api.max_body_bytes)
    command = revoke_command(parse_json_object(body))
    if command.session_id is not None:
        targets = [command.session_id]
    else:
        active, _ = await app[SESSION_STORE].for_user(user_id)
        targets = [s.session_id for s in active if s.session_id != command.except_session_id]
    now = datetime.now(UTC)
    key = request.headers.get("Idempotency-Key")
    reason = command.reason or DEFAULT_REASON
    events = [revocation(user_id, sid, reason, now, key) for sid in targets]
    codec = await app[CODEC].codec()
    topic = app[CATALOG].for_topic("auth.events").name
    positions = await asyncio.gather(
        *(app[PRODUCER].send(topic, user_id.encode(), codec.encode(event)) for event in events)
    )
    revoked = [
        {
            "session_id": sid,
            "event_id": str(event.event_id),
            "topic": position.topic,
            "partition": position.partition,
            "offset": position.offset,
        }
        for sid, event, position in zip(targets, events, positions, strict=True)
    ]
    return web.json_response({"user_id": user_id, "revoked": revoked}, status=202)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/v1/users/{id}/sessions", list_sessions, name="sessions-list"),
        web.post("/v1/users/{id}/sessions/revoke", revoke_sessions, name="sessions-revoke"),
    ]
