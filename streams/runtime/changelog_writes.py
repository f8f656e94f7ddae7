"""Table changes durable in their changelog before the events that caused them are acknowledged.

A Faust table sends each change to its changelog topic in the background (`send_soon`), and
Faust commits acknowledged offsets after a producer flush that gives up after 0.1 s without
progress. So an offset can be committed while the changelog record of the change it caused is
still in the producer's buffer; if the worker then stops (or dies), the change is gone, the
event is not read again, and whoever recovers the table from the changelog never sees it.

`DurableTable` hands every changelog send to the app's `ChangelogWrites`; `ack_events` (in
`streams.runtime.app`) awaits them before acknowledging a batch. A changelog write that fails
fails the batch: nothing it caused is acknowledged.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from typing import Any, cast

import faust
from faust.types import FutureMessage


class ChangelogWrites:
    """The changelog sends not yet acknowledged by Kafka, across the app's tables.

    Each send gets a sequence number; a waiter waits for every send numbered below the count
    when it began (not for sends made after: under load there always are some). One callback
    per send and one future per waiter, rather than a shield per send per waiter: an agent
    acknowledging a batch of 500 changes paid for 500 shields and a gather.
    """

    def __init__(self) -> None:
        self._tracked = 0
        # Sends not yet acknowledged, by sequence number, oldest first (dicts keep order).
        self._pending: dict[int, asyncio.Future[Any]] = {}
        # (sends to wait for, the waiter's future), in the order waiters began.
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def track(self, sent: asyncio.Future[Any]) -> None:
        seq = self._tracked
        self._tracked += 1
        self._pending[seq] = sent
        sent.add_done_callback(partial(self._done, seq))

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def written(self) -> None:
        """Return once every change made so far is in its changelog; raise if one failed.

        Every agent waits on the same sends; a waiter cancelled (its agent stopping) cancels
        only its own future, never the sends the others and the producer still need.
        """
        if not self._pending:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._tracked, waiter))
        await waiter

    def _done(self, seq: int, sent: asyncio.Future[Any]) -> None:
        del self._pending[seq]
        failure = None if sent.cancelled() else sent.exception()
        if failure is not None:
            for upto, waiter in self._waiters:
                if upto > seq and not waiter.done():
                    waiter.set_exception(failure)
        oldest = next(iter(self._pending), self._tracked)
        while self._waiters and self._waiters[0][0] <= oldest:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


class DurableTable(faust.Table):  # type: ignore[type-arg]  # faust's generics are untyped here
    """A Faust table whose changelog sends the app's `ChangelogWrites` can wait for."""

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        sent = super().send_changelog(*args, **kwargs)
        writes: ChangelogWrites = cast(Any, self.app).changelog_writes
        writes.track(cast(asyncio.Future[Any], sent))
        return sent
