"""The providers' circuit breakers, for operators: their state, and a reset.

`GET /v1/providers`: every provider (sendgrid, smtp, twilio, fcm, meta) with its breaker's state,
consecutive failures, last error (redacted: no recipient), when it opened and the sends in its
window, merged over the workers' reports (PostgreSQL `provider_breakers`, written by the workers'
materializer from `notifications.providers`), and each worker's own report under `workers`. A
provider's state is its worst worker's (open, then half-open, then closed): each worker has its
own breaker. A report past its expiry is from a worker that stopped reporting; it is listed
(`current: false`) but counts for nothing. `status` is `degraded` while any breaker is not closed.

`POST /v1/providers/{name}/reset`: a `reset` command on `notifications.provider-commands`, which
every worker reads; answered 202 once Kafka acknowledged it. The workers close their breakers as
they read it and report within `dispatch.breaker_report_s`: a read right after may still show the
breaker open.

Both need the operator scope (or the operator token).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, get_args

from aiohttp import web

from api.access import requires
from api.errors import NotFoundError
from api.keys import CATALOG, PRODUCER, PROVIDER_STORE
from schemas.providers import BreakerReport, ProviderCommand
from streams.settings import ProviderName

PROVIDERS: tuple[str, ...] = get_args(ProviderName)
SEVERITY = {"closed": 0, "half-open": 1, "open": 2}


def provider_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if name not in PROVIDERS:
        raise NotFoundError(f"provider {name!r} (known: {', '.join(PROVIDERS)})", field="name")
    return name


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def worker_view(report: BreakerReport, now: datetime) -> dict[str, Any]:
    return {
        "worker": report.worker,
        "state": report.state,
        "consecutive_failures": report.consecutive_failures,
        "requests_in_window": report.requests_in_window,
        "last_error": report.last_error,
        "opened_at": _iso(report.opened_at),
        "times_opened": report.times_opened,
        "reported_at": _iso(report.reported_at),
        "current": report.expires_at > now,
    }


def provider_view(name: str, reports: Sequence[BreakerReport], now: datetime) -> dict[str, Any]:
    """One provider over its workers' current reports (see the module doc)."""
    current = [r for r in reports if r.expires_at > now]
    errors = [r for r in current if r.last_error_at is not None]
    last = max(errors, key=lambda r: r.last_error_at or now, default=None)
    opened = [r.opened_at for r in current if r.state != "closed" and r.opened_at is not None]
    state = max((r.state for r in current), key=SEVERITY.__getitem__, default="closed")
    return {
        "name": name,
        "state": state,
        "consecutive_failures": max((r.consecutive_failures for r in current), default=0),
        "requests_in_window": sum(r.requests_in_window for r in current),
        "last_error": None if last is None else last.last_error,
        "last_error_at": None if last is None else _iso(last.last_error_at),
        "opened_at": _iso(min(opened, default=None)),
        "times_opened": sum(r.times_opened for r in current),
        "workers": [worker_view(r, now) for r in reports],
    }


def providers_body(reports: Sequence[BreakerReport], now: datetime) -> dict[str, Any]:
    views = [
        provider_view(name, [r for r in reports if r.provider == name], now) for name in PROVIDERS
    ]
    degraded = [view["name"] for view in views if view["state"] != "closed"]
    return {
        "status": "degraded" if degraded else "ok",
        "degraded": degraded,
        "providers": views,
        "as_of": now.isoformat(),
    }


@requires("operator")
async def list_providers(request: web.Request) -> web.Response:
    reports = await request.app[PROVIDER_STORE].reports()
    return web.json_response(providers_body(reports, datetime.now(UTC)))


@requires("operator")
async def reset_provider(request: web.Request) -> web.Response:
    name = provider_name(request)
    app = request.app
    command = ProviderCommand(
        command_id=uuid.uuid4(), command="reset", provider=name, requested_at=datetime.now(UTC)
    )
    topic = app[CATALOG].notifications_provider_commands.name
    position = await app[PRODUCER].send(topic, name.encode(), command.model_dump_json().encode())
    body = {
        "status": "accepted",
        "provider": name,
        "command": command.command,
        "command_id": str(command.command_id),
        "topic": position.topic,
        "partition": position.partition,
        "offset": position.offset,
    }
    return web.json_response(body, status=202)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/v1/providers", list_providers, name="providers-list"),
        web.post("/v1/providers/{name}/reset", reset_provider, name="providers-reset"),
    ]
