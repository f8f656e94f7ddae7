"""Ingest rate limits: GCRA (the generic cell rate algorithm) per source, atomic in Redis.

GCRA keeps one number per source, the theoretical arrival time (TAT) of the next request if
requests came exactly at the configured rate. A request is allowed while the TAT is no further
ahead of now than the burst allows; allowing one pushes the TAT on by one interval. That is a
token bucket without a refill loop: one key, one read and one write, done in one Lua script so
that concurrent API processes can never both take the last slot.

The script reads Redis's clock, one clock for every API process. `gcra` is the same arithmetic
in Python: the reference the unit tests check with a fake clock, and that the integration tests
compare the script with (the script accepts an explicit `now` for that).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from streams.errors import TributaryError
from streams.settings import RateLimitSettings, SourceRateLimit
from streams.stores.redis_client import translate_redis_errors
from streams.stores.script_calls import ScriptCalls

# `gcra(key, interval ms, burst, now ms)`: `key` holds the source's TAT (ms); `now` "" -> Redis's
# clock. Returns {allowed, remaining, retry_after_ms, reset_ms}; fractions as strings (Lua numbers
# returned to Redis are truncated to integers). A function, so that another script can run the
# same step before its own (`streams.stores.webhook_admission`).
GCRA_FUNCTION_LUA = """
local function gcra(key, interval_arg, burst_arg, now_arg)
  local interval = tonumber(interval_arg)
  local burst = tonumber(burst_arg)
  local now = tonumber(now_arg)
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  end
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - interval * burst
  if now < allow_at then
    return {0, 0, string.format('%.17g', allow_at - now), string.format('%.17g', tat - now)}
  end
  redis.call('SET', key, string.format('%.17g', new_tat), 'PX', math.ceil(new_tat - now))
  return {1, math.floor((now - allow_at) / interval), '0', string.format('%.17g', new_tat - now)}
end
"""
# KEYS[1] the source's TAT; ARGV: interval ms, burst, now ms (`LimitStep.args`).
GCRA_LUA = GCRA_FUNCTION_LUA + "return gcra(KEYS[1], ARGV[1], ARGV[2], ARGV[3])\n"


# KEYS[1] the source's counter for one UTC day; ARGV[1] its lifetime (s). Returns the count.
DAILY_COUNT_LUA = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
DAY_S = 24 * 3600
# A day's counter outlives its day a little, so no clock skew between API processes resets it.
QUOTA_GRACE_S = 3600


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    # How long until the client may try again (0 when allowed), and until its burst is whole.
    retry_after_ms: float
    reset_ms: float

    def headers(self) -> dict[str, str]:
        """IETF draft `RateLimit-*` headers, plus `Retry-After` on a refusal (whole seconds)."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_ms / 1000)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_ms / 1000)))
        return headers


@dataclass(frozen=True, slots=True)
class GcraStep:
    decision: RateDecision
    # The TAT to store, None when the request is refused (nothing changes).
    tat_ms: float | None


@dataclass(frozen=True, slots=True)
class LimitStep:
    """One request's GCRA step as the script takes it: the key and its arguments."""

    key: str
    args: tuple[float | int | str, ...]
    limit: SourceRateLimit


def interval_ms(limit: SourceRateLimit) -> float:
    return 1000.0 / limit.rate_per_s


def gcra(tat_ms: float | None, now_ms: float, limit: SourceRateLimit) -> GcraStep:
    """One request at `now_ms` against the stored TAT; the arithmetic of `GCRA_LUA`."""
    interval = interval_ms(limit)
    tat = max(tat_ms if tat_ms is not None else now_ms, now_ms)
    new_tat = tat + interval
    allow_at = new_tat - interval * limit.burst
    if now_ms < allow_at:
        refused = RateDecision(False, limit.burst, 0, allow_at - now_ms, tat - now_ms)
        return GcraStep(refused, None)
    remaining = math.floor((now_ms - allow_at) / interval)
    return GcraStep(RateDecision(True, limit.burst, remaining, 0.0, new_tat - now_ms), new_tat)


class RateLimitedError(TributaryError):
    """A source went over its rate (or its daily quota): answered 429 with the decision's
    headers."""

    def __init__(self, source: str, decision: RateDecision, what: str = "in a burst") -> None:
        super().__init__(
            f"{source} is over its limit of {decision.limit} requests {what}; "
            f"retry after {decision.headers()['Retry-After']} s"
        )
        self.source = source
        self.decision = decision


def parse_reply(reply: list[Any], limit: SourceRateLimit) -> RateDecision:
    allowed, remaining, retry_after_ms, reset_ms = reply
    return RateDecision(
        bool(int(allowed)), limit.burst, int(remaining), float(retry_after_ms), float(reset_ms)
    )


class RateLimiter:
    """Limits per source name; the client is shared, its owner closes it."""

    def __init__(self, client: Redis, limits: RateLimitSettings, topic_prefix: str) -> None:
        self._limits = limits
        self._prefix = topic_prefix
        self._script: AsyncScript = client.register_script(GCRA_LUA)
        self._quota_script: AsyncScript = client.register_script(DAILY_COUNT_LUA)
        self._calls = ScriptCalls(client)

    def key(self, source: str) -> str:
        return f"{self._prefix}tributary:ratelimit:{source}"

    async def acquire(
        self,
        source: str,
        now_ms: float | None = None,
        *,
        policy: str | None = None,
        limit: SourceRateLimit | None = None,
    ) -> RateDecision | None:
        """Take one request's slot for `source`; None when limits are switched off.

        `policy` names the configured limit when it is not the source's own name (every client
        address shares the "reads" limit, each with its own slots); `limit` gives it outright
        (an API key's own). `now_ms` replaces Redis's clock (tests); production leaves it to
        Redis.
        """
        step = self.step(source, now_ms, policy=policy, limit=limit)
        if step is None:
            return None
        async with translate_redis_errors():
            reply = await self._calls.run(self._script, [step.key], step.args)
        return parse_reply(reply, step.limit)

    def step(
        self,
        source: str,
        now_ms: float | None = None,
        *,
        policy: str | None = None,
        limit: SourceRateLimit | None = None,
    ) -> LimitStep | None:
        """What `acquire` asks of Redis, for a script that takes the step itself (`gcra`
        defined by `GCRA_FUNCTION_LUA`); None when limits are switched off."""
        if not self._limits.enabled:
            return None
        limit = limit or self._limits.for_source(policy or source)
        args = (interval_ms(limit), limit.burst, "" if now_ms is None else repr(now_ms))
        return LimitStep(self.key(source), args, limit)

    async def enforce(
        self, source: str, *, policy: str | None = None, limit: SourceRateLimit | None = None
    ) -> RateDecision | None:
        """`acquire`, raising `RateLimitedError` when the source is over its limit."""
        decision = await self.acquire(source, policy=policy, limit=limit)
        if decision is not None and not decision.allowed:
            raise RateLimitedError(source, decision)
        return decision

    async def take_daily(self, source: str, quota: int, now_s: float | None = None) -> RateDecision:
        """Count one request against `source`'s quota for the current UTC day (one counter per
        day, expiring after it); allowed while the count is within `quota`."""
        now_s = time.time() if now_s is None else now_s
        day = int(now_s // DAY_S)
        reset_ms = ((day + 1) * DAY_S - now_s) * 1000
        async with translate_redis_errors():
            count = int(
                await self._calls.run(
                    self._quota_script, [self.key(f"{source}:day:{day}")], [DAY_S + QUOTA_GRACE_S]
                )
            )
        allowed = count <= quota
        return RateDecision(
            allowed, quota, max(0, quota - count), 0.0 if allowed else reset_ms, reset_ms
        )

    async def enforce_daily(self, source: str, quota: int) -> RateDecision | None:
        """`take_daily`, raising `RateLimitedError` once the day's quota is used up; None when
        limits are switched off."""
        if not self._limits.enabled:
            return None
        decision = await self.take_daily(source, quota)
        if not decision.allowed:
            raise RateLimitedError(source, decision, "per day")
        return decision
