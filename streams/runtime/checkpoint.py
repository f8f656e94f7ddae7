"""When a batch's input offsets may be committed: the order, stated once.

For every batch an agent takes (`streams.runtime.batch_agent`), in this order:

1. **Process.** The pipeline's `process(events)` returns only when its effects are done: the
   records it produced are acknowledged by Kafka (`TopicPublisher.send_all` awaits every
   delivery), its PostgreSQL and Redis writes have returned, and what failed for good went to a
   dead-letter topic (itself acknowledged). A failure here raises: nothing below happens, the
   worker crashes, and the next owner of the partitions reads the batch again.
2. **Table changes in their changelogs.** A table write is buffered, and sent to its changelog
   once the agent is done with the batch or, with a flush interval
   (`worker.changelog_flush_interval_s`), within that interval, together with the changes of
   every batch processed meanwhile (`streams.runtime.changelog_writes`). The agent does not
   wait: it takes its next batch.
3. **Acknowledge.** Once every change made up to the batch's end is acknowledged by Kafka (so a
   table recovered from its changelog has them), the batch's events are acknowledged to Faust,
   which makes their offsets eligible for commit. An event whose consumer generation has passed
   (a rebalance came between) is refused (`UnskippableEvent`): its next owner processes it
   again. A changelog write that fails stops the worker with nothing after it acknowledged.
4. **Commit.** Faust's commit loop commits, per partition, up to the first offset neither
   acknowledged nor known to be absent from the log (`streams.runtime.commit_guard`, from what
   fetching saw: `streams.runtime.fetch_positions`); a record never acknowledged holds the
   partition's commit, and the stall watchdog reads it again if it stays held.

So a committed offset never outruns the outputs, views or table state it caused: processing is
at-least-once, and every pipeline's writes are idempotent so that a batch read twice is harmless.
"""

from __future__ import annotations

from functools import partial
from typing import Any, cast

from faust.types import StreamT

from streams.runtime.app import TributaryApp
from streams.runtime.event_batches import EventBatch, acknowledge


def ack_events(stream: StreamT[Any], events: EventBatch) -> None:
    """Steps 2 and 3 above, for a batch whose step 1 has returned; raise if a changelog write
    failed before (the worker is stopping)."""
    app = cast(TributaryApp, stream.app)
    events.processed()
    writes = app.changelog_writes
    writes.after_written(partial(_acknowledge_written, app, events))
    if not app.flow_control.is_active():
        writes.flush()  # a rebalance or a stop under way: nothing is held back


def _acknowledge_written(
    app: TributaryApp, events: EventBatch, failed: BaseException | None
) -> None:
    if failed is None:  # else nothing is acknowledged: the worker stops (`ChangelogWrites`)
        acknowledge(app, events)
