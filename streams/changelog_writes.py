"""Table changes durable in their changelog before the events that caused them are acknowledged.

A Faust table sends each change to its changelog topic in the background (`send_soon`), and
Faust commits acknowledged offsets after a producer flush that gives up after 0.1 s without
progress. So an offset can be committed while the changelog record of the change it caused is
still in the producer's buffer; if the worker then stops (or dies), the change is gone, the
event is not read again, and whoever recovers the table from the changelog never sees it.

`DurableTable` hands every changelog send to the app's `ChangelogWrites`; `ack_events` (in
`streams.faust_app`) acknowledges a batch once the sends made so far are acknowledged by Kafka.
The agent does not wait for that: it takes its next batch while Kafka writes (waiting for the
writes batch by batch made every agent idle for a linger and a round trip each time, and cost
the notification pipeline half its latency). A changelog write that fails leaves the batch
unacknowledged and crashes the worker, as a failure inside the batch would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust
from faust.types import FutureMessage

log = logging.getLogger(__name__)

# Batches acknowledged once their writes are in Kafka, at most, before an agent waits for them.
MAX_BATCHES_WAITING = 32


class ChangelogWrites:
    """The changelog sends not yet acknowledged by Kafka, across the app's tables, and the
    batches waiting for them to be acknowledged in turn."""

    def __init__(self, max_batches_waiting: int = MAX_BATCHES_WAITING) -> None:
        self._pending: set[asyncio.Future[Any]] = set()
        self._waiting: set[asyncio.Task[None]] = set()
        self._max_waiting = max_batches_waiting

    def track(self, sent: asyncio.Future[Any]) -> None:
        self._pending.add(sent)
        sent.add_done_callback(self._pending.discard)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def batches_waiting(self) -> int:
        return len(self._waiting)

    async def written(self) -> None:
        """Return once every change made so far is in its changelog; raise if one failed."""
        if self._pending:
            await asyncio.gather(*self._pending)

    async def then(
        self,
        acknowledge: Callable[[], Awaitable[None]],
        on_failure: Callable[[BaseException], Awaitable[None]],
    ) -> None:
        """Run `acknowledge` once every change made so far is in its changelog, without waiting
        for it (unless `max_batches_waiting` batches wait already); if a write fails, run
        `on_failure` with its error instead."""
        if not self._pending:
            await acknowledge()
            return
        while len(self._waiting) >= self._max_waiting:
            await asyncio.wait(self._waiting, return_when=asyncio.FIRST_COMPLETED)
        writes = tuple(self._pending)
        waiting = asyncio.ensure_future(self._after(writes, acknowledge, on_failure))
        self._waiting.add(waiting)
        waiting.add_done_callback(self._waiting.discard)

    @staticmethod
    async def _after(
        writes: tuple[asyncio.Future[Any], ...],
        acknowledge: Callable[[], Awaitable[None]],
        on_failure: Callable[[BaseException], Awaitable[None]],
    ) -> None:
        try:
            await asyncio.gather(*writes)
        except Exception as exc:  # noqa: BLE001 - the failure is handed on, not swallowed
            log.error("a changelog write failed; its batch stays unacknowledged: %r", exc)
            await on_failure(exc)
            return
        await acknowledge()


class DurableTable(faust.Table):  # type: ignore[type-arg]  # faust's generics are untyped here
    """A Faust table whose changelog sends the app's `ChangelogWrites` can wait for."""

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        sent = super().send_changelog(*args, **kwargs)
        writes: ChangelogWrites = cast(Any, self.app).changelog_writes
        writes.track(cast(asyncio.Future[Any], sent))
        return sent
