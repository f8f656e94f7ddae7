"""scripts/bench_routing.py runs the router's real batch logic: every user.created and every
request it times is routed into a dispatch (a bench whose router rejected them would time the
wrong thing)."""

from __future__ import annotations

from scripts.bench_routing import route


async def test_every_timed_event_is_dispatched_once() -> None:
    welcomes, routed = await route(requests=40, users=8)
    assert (welcomes.events, welcomes.dispatches) == (8, 8)
    assert (routed.events, routed.dispatches) == (40, 40)
    assert welcomes.cpu_s > 0
    assert routed.cpu_s > 0
