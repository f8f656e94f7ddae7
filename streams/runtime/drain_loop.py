"""The consumer's drain loop without a race of four tasks per record.

faust-streaming 0.15's `Consumer._drain_messages` hands each fetched record to the conductor as
`await self.wait_first(callback(message), self.suspend_flow.wait())`: so that a rebalance
(`suspend_flow`) can abandon a delivery blocked on a full or suspended channel queue. `wait_first`
wraps the callback, the flow's event and the service's stopped and crashed events in four tasks,
waits for the first with `asyncio.wait` and cancels the other three, for every record. A
delivery almost never blocks: the conductor decodes the record into each subscribed channel's
queue and returns. Under load that race was the worker's largest single cost after the agents'
own work (py-spy, 400 notifications/s: `wait_first` and the loop's scheduling of its tasks,
about a tenth of the worker's samples).

`drain_messages` delivers a record by running the callback in the drain task itself; only when
the callback really waits (its first step returns a future) does the rest of it race the flow's
suspension as Faust's loop does, with what the callback had done so far kept. What Faust's loop
does besides is kept too: the commit every `commit_every` acknowledgements, a yield to the loop
every 100 records, the read offsets (for diagnostics; `fetch_positions` decides what is
delivered, so there is no gap or drop bookkeeping here), the consumer-fetching flag and the
same handling of a stopped consumer.

The records come from `fetched`, Faust's `Consumer.getmany` without its per-record costs: that
async generator asked the consumer thread for the partition's end offset (for the lag metric)
with every record, though it is the same for every record of one fetch; `fetched` asks once per
partition and fetch, and hands the records out through a plain generator, checking before each
one, as Faust does, that the flow is still on, the consumer generation the same, and the
partition still active (py-spy, 400 notifications/s: the end offsets alone 0.6 % of a worker's
samples).
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator, Iterable, Iterator
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.types import TP

YIELD_EVERY = 100


def guard_draining(consumer: Any) -> None:
    """Replace `consumer`'s drain loop (the Fetcher service calls it) with `drain_messages`."""

    async def drain(fetcher: Any) -> None:
        await drain_messages(consumer, fetcher)

    consumer._drain_messages = drain


async def drain_messages(consumer: Any, fetcher: Any) -> None:
    """Faust's drain loop (see the module docstring), delivering each record in this task."""
    consumer_should_stop = consumer._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    read_offsets = consumer._read_offset
    since_yield = 0
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            consumer.diag.set_flag(CONSUMER_FETCHING)
            await consumer.sleep(0)  # as Faust: a fetch may return at once, again and again
            if not consumer.should_stop:
                for tp, message in await fetched(consumer, timeout_s=1.0):
                    since_yield += 1
                    if since_yield > YIELD_EVERY:
                        await asyncio.sleep(0)
                        since_yield = 0
                    await _commit_when_due(consumer)
                    await deliver(consumer, consumer.callback(message))
                    read_offsets[tp] = message.offset
                consumer.diag.unset_flag(CONSUMER_FETCHING)
    except consumer.consumer_stopped_errors:
        if consumer.transport.app.should_stop:
            consumer.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if consumer.transport.app.should_stop:
            consumer.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        consumer.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        consumer.diag.unset_flag(CONSUMER_FETCHING)


async def fetched(consumer: Any, timeout_s: float) -> Iterable[tuple[TP, Any]]:
    """The records of one fetch, as Faust's `Consumer.getmany` yields them (see the module
    docstring); none while the flow is off, after the seek back to the committed offsets."""
    records, active = await consumer._wait_next_records(timeout_s)
    if records is None or consumer.should_stop:
        return ()
    if not consumer.flow_active:
        try:
            await consumer.perform_seek()
        except Exception as exc:  # noqa: BLE001 - logged and carried on from, as Faust does
            consumer.log.warning(f"exception performing seek when flow not active {exc}")
        return ()
    return _deliverable(consumer, records, active, consumer.app.consumer_generation_id)


def _deliverable(
    consumer: Any, records: Any, active: set[TP] | None, generation_id: int
) -> Iterator[tuple[TP, Any]]:
    app = consumer.app
    buffered = consumer._buffered_partitions
    to_message = consumer._to_message
    track_end_offset = app.monitor.track_tp_end_offset
    ends_tracked: set[TP] = set()
    for tp, record in consumer.scheduler.iterate(records):
        if not consumer.flow_active or app.consumer_generation_id != generation_id:
            return
        if active is None or tp in active or tp in buffered:
            if tp not in ends_tracked:
                ends_tracked.add(tp)
                track_end_offset(tp, consumer.highwater(tp))
            yield tp, to_message(tp, record)


async def _commit_when_due(consumer: Any) -> None:
    commit_every = consumer._commit_every
    if commit_every is not None and consumer._n_acked >= commit_every:
        consumer._n_acked = 0
        await consumer.commit()


async def deliver(consumer: Any, delivery: Coroutine[Any, Any, Any]) -> None:
    """Run `delivery` to its end here; if it has to wait, let a suspension of the flow (a
    rebalance) or the consumer stopping abandon it, as Faust's `wait_first` race does."""
    try:
        waiting_on = delivery.send(None)
    except StopIteration:
        return
    await consumer.wait_first(_resume(delivery, waiting_on), consumer.suspend_flow.wait())


async def _resume(delivery: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    return await _continue(delivery, waiting_on)


@types.coroutine
def _continue(delivery: Coroutine[Any, Any, Any], waiting_on: Any) -> Generator[Any, Any, Any]:
    """Drive a started coroutine on for the task awaiting this: hand the task what it waits on,
    and back to the coroutine what the task sends or throws (a cancellation included)."""
    try:
        while True:
            try:
                sent = yield waiting_on
            except GeneratorExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, as `await` would
                waiting_on = delivery.throw(exc)
            else:
                waiting_on = delivery.send(sent)
    except StopIteration as finished:
        return cast(Any, finished.value)
    finally:
        delivery.close()  # a no-op once finished; abandons it when the race was lost
