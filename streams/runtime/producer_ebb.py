"""The producer buffer's ebb, checked per record without Faust's property lookups.

faust-streaming's conductor awaits `ProducerBuffer.wait_until_ebb` before it delivers every
record, so that a table's changelog sends queued by `send_soon` cannot pile up. The check reads
the buffer's `size`, a property that looks `producer_threaded` up in the app's settings on every
call (1.0 % of a worker's GIL-only py-spy samples at 400 notifications/s), and our tables do not
even queue there: their changes are written behind (`changelog_writes`), so the buffer stays
empty. `lean_ebb` keeps the wait but compares the pending queue's length with the limit directly,
and calls Faust's own wait (which flushes) only past it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


def lean_ebb(buffer: Any) -> None:
    """Give `buffer` (a `ProducerBuffer` of an unthreaded producer) the lean ebb check."""
    if buffer.app.conf.producer_threaded:
        return  # its size counts the producer thread's queue: left as Faust has it
    pending = buffer.pending._queue  # the asyncio.Queue's deque, the one `size` counts
    limit: int = buffer.max_messages
    faust_wait: Callable[[], Awaitable[None]] = buffer.wait_until_ebb

    async def wait_until_ebb() -> None:
        if len(pending) > limit:
            await faust_wait()

    buffer.wait_until_ebb = wait_until_ebb
