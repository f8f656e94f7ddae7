"""The Redis side shared by the stores kept in Redis (blocks, the webhook ledger, rate limits):
one way to build a client from the settings, and one translation of its errors.

Every Redis failure means the same thing to a caller (the service is unavailable, try later),
so the driver's exceptions are turned into `ServiceUnavailableError("redis", ...)` here, at the
adapter boundary, and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from streams.errors import ServiceUnavailableError
from streams.settings import RedisSettings

SERVICE = "redis"


@asynccontextmanager
async def translate_redis_errors() -> AsyncIterator[None]:
    try:
        yield
    except (RedisError, OSError, TimeoutError) as exc:
        raise ServiceUnavailableError(SERVICE, repr(exc)) from exc


def redis_client(redis: RedisSettings, *, reply_timeouts: bool = True) -> Redis:
    """A client for the configured Redis; connections are opened on first use.

    `reply_timeouts=False`: no timer on each reply (connecting is still bounded), for a client
    used only through `ScriptCalls` given the socket timeout, which bounds each pipeline whole.
    """
    timeout_s = redis.socket_timeout_s
    return Redis.from_url(
        redis.url.get_secret_value(),
        decode_responses=True,
        socket_timeout=timeout_s if reply_timeouts else None,
        socket_connect_timeout=timeout_s,
    )


class RedisOwner:
    """A store owning its client: its health check and its closing are the same for all."""

    _client: Redis

    async def ping(self, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s), translate_redis_errors():
                await self._client.ping()
        except TimeoutError as exc:
            raise ServiceUnavailableError(SERVICE, f"no answer within {timeout_s:g} s") from exc

    async def close(self) -> None:
        async with translate_redis_errors():
            await self._client.aclose()
