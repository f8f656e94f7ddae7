"""Liveness and readiness.

Live means the process answers; ready means it can do its job, so every backing service is
probed, concurrently and each with a short timeout, so that a hung service makes the probe say
so quickly instead of hanging the orchestrator's check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from api.keys import CODEC, LEDGER, ORDER_STORE, PRODUCER
from api.problems import TYPE_BASE, Problem
from api.request_ids import request_id_of
from streams.errors import ServiceUnavailableError

PROBE_TIMEOUT_S = 2.0
OK = "ok"

Probe = Callable[[], Awaitable[None]]


async def _check(probe: Probe, timeout_s: float) -> str:
    try:
        async with asyncio.timeout(timeout_s):
            await probe()
    except ServiceUnavailableError as exc:
        return f"down: {exc.detail}"
    except TimeoutError:
        return f"down: no answer within {timeout_s:g} s"
    return OK


async def check_all(probes: dict[str, Probe], timeout_s: float) -> dict[str, str]:
    results = await asyncio.gather(*(_check(probe, timeout_s) for probe in probes.values()))
    return dict(zip(probes, results, strict=True))


async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    app = request.app
    probes: dict[str, Probe] = {
        "kafka": lambda: app[PRODUCER].ping(PROBE_TIMEOUT_S),
        "postgresql": app[ORDER_STORE].ping,
        "redis": lambda: app[LEDGER].ping(PROBE_TIMEOUT_S),
    }
    if app[CODEC].uses_registry:
        # Webhooks cannot be encoded until our schemas are registered and their ids known.
        probes["schema-registry"] = app[CODEC].ping
    checks = await check_all(probes, PROBE_TIMEOUT_S)
    if all(result == OK for result in checks.values()):
        return web.json_response({"status": "ready", "checks": checks})
    down = sorted(name for name, result in checks.items() if result != OK)
    detail = f"unavailable: {', '.join(down)}"
    problem = Problem(503, "Not ready", detail, TYPE_BASE + "not-ready", {"checks": checks})
    return problem.response(request.path, request_id_of(request))


def routes() -> list[web.RouteDef]:
    return [web.get("/health/live", live), web.get("/health/ready", ready)]
