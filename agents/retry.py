"""Retrying an operation that failed for a reason that may go away (a database restarting).

The materializer must neither crash nor drop a batch when PostgreSQL is away: it waits and tries
again, backing off so that a long outage costs one attempt every `max_s` seconds, not a busy loop.
The sleep is injected so the schedule can be tested without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from streams.errors import RetriableError

T = TypeVar("T")

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
OnRetry = Callable[[RetriableError, float], None]


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 0.1
    max_s: float = 10.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s or self.factor < 1:
            raise ValueError("need 0 < initial_s <= max_s and factor >= 1")

    def delays_s(self) -> Iterator[float]:
        """initial_s, initial_s*factor, ... capped at max_s, forever."""
        delay_s = self.initial_s
        while True:
            yield delay_s
            delay_s = min(delay_s * self.factor, self.max_s)


async def retry_retriable(
    operation: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    what: str,
    sleep: Sleep = asyncio.sleep,
    on_retry: OnRetry | None = None,
    give_up_after_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `operation` until it succeeds and return its result.

    Only `RetriableError`s are retried, for as long as it takes (or, with `give_up_after_s`,
    until the next wait would end past that many seconds of `clock` since the first attempt:
    then the last error is raised): anything else is a bug or poison and propagates. A
    `retry_after_s` hint from the error lengthens the wait, within `max_s`. `on_retry` hears of
    each retry as it is decided, so that an outage shows while it lasts. Cancelling the caller
    (a worker shutting down) ends the wait at once.
    """
    retries = 0
    delays_s = backoff.delays_s()
    started_s = clock()
    while True:
        try:
            return await operation()
        except RetriableError as exc:
            delay_s = next(delays_s)
            if exc.retry_after_s is not None:
                delay_s = min(max(delay_s, exc.retry_after_s), backoff.max_s)
            if give_up_after_s is not None and clock() + delay_s - started_s > give_up_after_s:
                raise
            retries += 1
            log.warning("%s failed (%s); retry %d in %.2f s", what, exc, retries, delay_s)
            if on_retry is not None:
                on_retry(exc, delay_s)
            await sleep(delay_s)
