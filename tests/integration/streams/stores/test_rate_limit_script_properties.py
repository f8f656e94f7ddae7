"""The GCRA Lua script against its Python model (`gcra`), on generated request sequences.

Each example is one fresh key and a sequence of requests with explicit clocks (the script takes
`now` for that): a limit, and steps between requests, forward or backward (API processes'
requests reach Redis out of clock order). Every reply must be the model's decision, and the
stored TAT the model's.

Two properties: whole-millisecond intervals and clocks, and any rate with microsecond clocks, as
Redis's TIME gives in production. The second found the script storing the TAT with Lua's
`tostring` (14 significant digits: 0.1 ms at epoch-millisecond scale), which refused the second
request of a burst of two at one instant at 7 requests/s; it now writes 17 digits
(`%.17g`, a double's full precision).

The script sets the key to expire, on Redis's real clock, when the TAT is reached; with explicit
clocks that advance faster or slower than real time that could drop a TAT the model still holds.
Intervals are therefore at least 100 ms, far longer than one example's few milliseconds.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.settings import RateLimitSettings, Settings, SourceRateLimit
from streams.stores.rate_limiter import RateLimiter, gcra
from streams.stores.redis_client import redis_client

START_US = 1_800_000_000_000_000

# Whole-millisecond intervals of at least 100 ms: 2000, 1000, 500, 250, 200, 125, 100.
whole_ms_limits = st.builds(
    SourceRateLimit,
    rate_per_s=st.sampled_from((0.5, 1.0, 2.0, 4.0, 5.0, 8.0, 10.0)),
    burst=st.integers(1, 6),
)
any_limits = st.builds(
    SourceRateLimit,
    rate_per_s=st.sampled_from((0.5, 1.0, 3.0, 4.0, 6.0, 7.0, 9.0, 10.0)),
    burst=st.integers(1, 6),
)


def steps(unit_us: int) -> st.SearchStrategy[list[int]]:
    """Microseconds between requests, in multiples of `unit_us`: mostly within an interval or
    two, the same instant often, backward now and then."""
    return st.lists(
        st.one_of(
            st.just(0),
            st.integers(0, 400_000),
            st.integers(-50_000, 0),
            st.integers(0, 3_000_000),
        ).map(lambda us: us // unit_us * unit_us),
        min_size=1,
        max_size=12,
    )


async def _compare(settings: Settings, limit: SourceRateLimit, steps_us: list[int]) -> None:
    client = redis_client(settings.redis)
    try:
        limits = RateLimitSettings(rate_per_s=limit.rate_per_s, burst=limit.burst)
        limiter = RateLimiter(client, limits, settings.topic_prefix)
        source = f"prop-{uuid.uuid4()}"
        tat: float | None = None
        now_us = START_US
        for step in steps_us:
            now_us += step
            now = now_us / 1000
            expected = gcra(tat, now, limit)
            got = await limiter.acquire(source, now_ms=now)
            assert got is not None
            want = expected.decision
            assert (got.allowed, got.remaining) == (want.allowed, want.remaining), (now, tat)
            assert got.retry_after_ms == pytest.approx(want.retry_after_ms, abs=1e-6)
            assert got.reset_ms == pytest.approx(want.reset_ms, abs=1e-6)
            if expected.tat_ms is not None:
                tat = expected.tat_ms
            stored = await client.get(limiter.key(source))
            assert stored is not None
            assert float(stored) == pytest.approx(tat, abs=1e-6)
        await client.delete(limiter.key(source))
    finally:
        await client.aclose()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=whole_ms_limits, steps_us=steps(1000))
def test_the_script_decides_like_the_model_on_whole_milliseconds(
    stack_settings: Settings, limit: SourceRateLimit, steps_us: list[int]
) -> None:
    asyncio.run(_compare(stack_settings, limit, steps_us))


@example(limit=SourceRateLimit(rate_per_s=7.0, burst=2), steps_us=[0, 0])
@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=any_limits, steps_us=steps(1))
def test_the_script_decides_like_the_model_on_any_rate_and_microsecond_clock(
    stack_settings: Settings, limit: SourceRateLimit, steps_us: list[int]
) -> None:
    asyncio.run(_compare(stack_settings, limit, steps_us))
