"""The worker's `/health/live` and `/health/ready`, for an orchestrator's probes.

Live: the process answers and its app has not crashed (an orchestrator restarts it otherwise).
Ready: it does its share of the work, which takes three things:

- assigned: the group has given it its partitions and no rebalance is under way;
- tables recovered: its tables are rebuilt from their changelogs (while they are not, it
  processes nothing);
- not stalled: the stall watchdog (`streams.runtime.stall_watchdog`) has not seen records wait
  on its partitions, commits unmoved, for its timeout.

When not ready, the answer (503, problem+json) gives each reason. A ready worker whose provider
circuit breakers are not all closed answers 200 with `"status": "degraded"` and names them under
the `providers` check: it still does its work (failover, retry topics), and taking it out of
rotation would not bring the provider back, since every worker shares the same providers.
`readiness` is the decision, pure; `WorkerFacts.of` reads Faust's public state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.web import Request, Response, View

PROBLEM_JSON = "application/problem+json"
NOT_READY_TYPE = "urn:tributary:problem:not-ready"
# The check that degrades a ready worker instead of making it unready.
PROVIDERS = "providers"


@dataclass(frozen=True, slots=True)
class WorkerFacts:
    crashed: bool
    # A rebalance has completed (partitions assigned and streams resumed) at least once.
    assigned_once: bool
    rebalancing: bool
    recovering_tables: bool
    # How long the watchdog has seen the worker stalled (None: not stalled, or not watched).
    stalled_s: float | None
    # Provider -> breaker state, for the providers whose breaker is not closed.
    open_breakers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, app: Any, stalled_s: float | None, open_breakers: Mapping[str, str] | None = None
    ) -> WorkerFacts:
        return cls(
            crashed=bool(app.crashed),
            assigned_once=app.tables.recovery.completed.is_set(),
            rebalancing=bool(app.rebalancing),
            recovering_tables=bool(app.in_recovery),
            stalled_s=stalled_s,
            open_breakers=dict(open_breakers or {}),
        )


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, str]  # check -> "ok" or why not

    @property
    def ready(self) -> bool:
        return all(result == "ok" for name, result in self.checks.items() if name != PROVIDERS)

    @property
    def degraded(self) -> bool:
        return self.checks.get(PROVIDERS, "ok") != "ok"

    @property
    def status(self) -> str:
        if not self.ready:
            return "not-ready"
        return "degraded" if self.degraded else "ready"

    @property
    def reasons(self) -> list[str]:
        return [f"{name}: {why}" for name, why in self.checks.items() if why != "ok"]


def readiness(facts: WorkerFacts, stall_timeout_s: float) -> Readiness:
    if facts.crashed:
        assigned = "the app crashed"
    elif facts.rebalancing:
        assigned = "a rebalance is under way"
    elif not facts.assigned_once:
        assigned = "no partitions assigned yet"
    else:
        assigned = "ok"
    tables = "recovering from their changelogs" if facts.recovering_tables else "ok"
    if not facts.assigned_once and tables == "ok":
        tables = "not recovered yet"
    stalled = facts.stalled_s
    stall = "ok"
    if stall_timeout_s > 0 and stalled is not None and stalled >= stall_timeout_s:
        stall = f"records waiting, commits unmoved for {stalled:.0f} s"
    providers = "ok"
    if facts.open_breakers:
        listed = ", ".join(f"{name} {state}" for name, state in sorted(facts.open_breakers.items()))
        providers = f"circuit breaker not closed: {listed}"
    return Readiness({"assigned": assigned, "tables": tables, "stall": stall, PROVIDERS: providers})


def _not_ready(path: str, title: str, checks: dict[str, str], reasons: list[str]) -> str:
    return json.dumps(
        {
            "type": NOT_READY_TYPE,
            "title": title,
            "status": 503,
            "detail": "; ".join(reasons),
            "instance": path,
            "checks": checks,
        }
    )


def register_health(
    app: faust.App,
    watchdog: Any,
    stall_timeout_s: float,
    open_breakers: Callable[[], Mapping[str, str]] = dict,
) -> None:
    """Serve both probes on the worker's web server (no token: orchestrators call them).
    `open_breakers`: the providers whose circuit breaker is not closed, with its state."""

    @app.page("/health/live", name="health-live")
    class Live(View):
        async def get(self, request: Request) -> Response:
            if app.crashed:
                reason = f"the app crashed: {app.crash_reason!r}"
                body = _not_ready(request.rel_url.path, "Not live", {"app": reason}, [reason])
                return self.text(body, content_type=PROBLEM_JSON, status=503)
            return self.json({"status": "ok"})

    @app.page("/health/ready", name="health-ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            facts = WorkerFacts.of(app, watchdog.stalled_s, open_breakers())
            found = readiness(facts, stall_timeout_s)
            if found.ready:
                return self.json({"status": found.status, "checks": found.checks})
            body = _not_ready(request.rel_url.path, "Not ready", found.checks, found.reasons)
            return self.text(body, content_type=PROBLEM_JSON, status=503)
