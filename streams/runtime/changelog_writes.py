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
from typing import Any, cast

import faust
from faust.types import FutureMessage


class ChangelogWrites:
    """The changelog sends not yet acknowledged by Kafka, across the app's tables."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Future[Any]] = set()

    def track(self, sent: asyncio.Future[Any]) -> None:
        self._pending.add(sent)
        sent.add_done_callback(self._pending.discard)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def written(self) -> None:
        """Return once every change made so far is in its changelog; raise if one failed.

        Every agent waits on the same sends, and a cancelled `gather` cancels what it waits
        for: shielded, the agent stopped first leaves them to the others and to the producer.
        """
        if self._pending:
            await asyncio.gather(*map(asyncio.shield, self._pending))


class DurableTable(faust.Table):  # type: ignore[type-arg]  # faust's generics are untyped here
    """A Faust table whose changelog sends the app's `ChangelogWrites` can wait for."""

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        sent = super().send_changelog(*args, **kwargs)
        writes: ChangelogWrites = cast(Any, self.app).changelog_writes
        writes.track(cast(asyncio.Future[Any], sent))
        return sent
