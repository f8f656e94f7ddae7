"""Per-key limits: an API key's own GCRA rate and optional daily quota, on the ingest limiter.

A key created with `--rate-per-s R --burst B` gets that rate; one without, the `keys` entry of
`ratelimit.sources` when one is configured (a default for every key), else no rate. A key with
`--daily-quota Q` gets Q requests per UTC day on top. Over either: 429 with `Retry-After` and
`RateLimit-*` (`streams.stores.rate_limiter`, the same GCRA script as ingest); within, the
answer carries the `RateLimit-*` headers of whichever limit has less left.
"""

from __future__ import annotations

from aiohttp import web

from api.keys import RATE_LIMITER, SETTINGS
from streams.api_keys import ApiKey
from streams.settings import SourceRateLimit
from streams.stores.rate_limiter import RateDecision

# The `ratelimit.sources` entry that is the default rate of every key without its own.
KEYS = "keys"


def key_source(key: ApiKey) -> str:
    return f"key:{key.id}"


async def enforce_key_limits(request: web.Request, key: ApiKey) -> RateDecision | None:
    limiter = request.app[RATE_LIMITER]
    sources = request.app[SETTINGS].ratelimit.sources
    source = key_source(key)
    decisions: list[RateDecision] = []
    rate: RateDecision | None = None
    if key.rate_per_s is not None and key.burst is not None:
        own = SourceRateLimit(rate_per_s=key.rate_per_s, burst=key.burst)
        rate = await limiter.enforce(source, limit=own)
    elif KEYS in sources:
        rate = await limiter.enforce(source, policy=KEYS)
    if rate is not None:
        decisions.append(rate)
    if key.daily_quota is not None:
        daily = await limiter.enforce_daily(source, key.daily_quota)
        if daily is not None:
            decisions.append(daily)
    return min(decisions, key=lambda decision: decision.remaining, default=None)
