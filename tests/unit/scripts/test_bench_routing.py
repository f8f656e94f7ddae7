"""scripts/bench_routing.py runs the router's real batch logic: every request it times is routed
into a dispatch (a bench whose router rejected its requests would time the wrong thing)."""

from __future__ import annotations

from scripts.bench_routing import route


async def test_every_timed_request_is_dispatched_once() -> None:
    routed = await route(requests=40, users=8)
    assert (routed.requests, routed.dispatches) == (40, 40)
    assert routed.cpu_s > 0
