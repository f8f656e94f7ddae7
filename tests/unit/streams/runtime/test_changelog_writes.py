"""Changelog sends awaited before acknowledging: `ChangelogWrites` and the app's table class."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import faust
import pytest
from faust.types.tuples import Message

from streams.runtime.app import create_faust_app
from streams.runtime.batch_agent import event_scope
from streams.runtime.changelog_writes import BufferedChanges, ChangelogWrites
from streams.runtime.durable_table import DurableTable
from streams.settings import WorkerProcessSettings
from tests.unit.streams.runtime.recording_send import RecordingSend


async def test_written_returns_once_every_pending_send_is_acknowledged() -> None:
    writes = ChangelogWrites()
    loop = asyncio.get_running_loop()
    first: asyncio.Future[Any] = loop.create_future()
    second: asyncio.Future[Any] = loop.create_future()
    writes.track(first)
    writes.track(second)
    waiting = asyncio.ensure_future(writes.written())
    first.set_result("offset 1")
    await asyncio.sleep(0)
    assert not waiting.done()  # the second change is not in Kafka yet
    second.set_result("offset 2")
    await asyncio.wait_for(waiting, timeout=1)
    assert writes.pending == 0


async def test_a_wait_is_not_held_by_sends_made_after_it_began() -> None:
    """Under load some agent is always writing: a wait for "everything so far" must end."""
    writes = ChangelogWrites()
    loop = asyncio.get_running_loop()
    before: asyncio.Future[Any] = loop.create_future()
    after: asyncio.Future[Any] = loop.create_future()
    writes.track(before)
    waiting = asyncio.ensure_future(writes.written())
    await asyncio.sleep(0)
    writes.track(after)
    before.set_result("offset 1")
    await asyncio.wait_for(waiting, timeout=1)
    assert writes.pending == 1


async def test_sends_acknowledged_out_of_order_end_the_wait_once_all_are_in() -> None:
    writes = ChangelogWrites()
    loop = asyncio.get_running_loop()
    sends: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(3)]
    for sent in sends:
        writes.track(sent)
    waiting = asyncio.ensure_future(writes.written())
    for sent in reversed(sends[1:]):
        sent.set_result("acknowledged")
        await asyncio.sleep(0)
        assert not waiting.done()  # the oldest one is still in the producer
    sends[0].set_result("acknowledged")
    await asyncio.wait_for(waiting, timeout=1)


async def test_a_failed_send_fails_the_waits_that_include_it_only() -> None:
    writes = ChangelogWrites()
    loop = asyncio.get_running_loop()
    ok: asyncio.Future[Any] = loop.create_future()
    failing: asyncio.Future[Any] = loop.create_future()
    writes.track(ok)
    before_failing = asyncio.ensure_future(writes.written())
    await asyncio.sleep(0)  # it begins waiting before the failing send is made
    writes.track(failing)
    with_failing = asyncio.ensure_future(writes.written())
    await asyncio.sleep(0)
    failing.set_exception(RuntimeError("broker refused"))
    ok.set_result("acknowledged")
    await asyncio.wait_for(before_failing, timeout=1)
    with pytest.raises(RuntimeError, match="broker refused"):
        await with_failing


async def test_a_failed_changelog_send_fails_the_wait() -> None:
    writes = ChangelogWrites()
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    writes.track(failed)
    failed.set_exception(RuntimeError("broker refused"))
    with pytest.raises(RuntimeError, match="broker refused"):
        await writes.written()


async def test_the_apps_tables_hand_their_changelog_sends_to_the_app() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    table = app.Table("orders")
    assert isinstance(table, DurableTable)
    table.send_changelog(0, b"o-1", b"{}")
    assert app.changelog_writes.pending == 1  # in the producer's buffer, not yet sent


async def test_a_cancelled_wait_leaves_the_sends_to_the_other_waiters() -> None:
    """Two agents wait for the same changelog sends; the one stopped first must not cancel
    them (the other would see its wait cancelled and crash the worker, and the producer's
    result would land on a cancelled future)."""
    writes = ChangelogWrites()
    sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    writes.track(sent)
    stopped = asyncio.ensure_future(writes.written())
    still_running = asyncio.ensure_future(writes.written())
    await asyncio.sleep(0)
    stopped.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopped
    assert not sent.cancelled()
    assert not still_running.done()
    sent.set_result("offset 7")
    await asyncio.wait_for(still_running, timeout=1)


def _table_app(
    send: RecordingSend,
    flush_interval_s: float = 0.0,
    on_failure: Callable[[BaseException], None] | None = None,
) -> tuple[Any, Any]:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    app.changelog_writes = ChangelogWrites(
        send, flush_interval_s=flush_interval_s, on_failure=on_failure
    )
    return app, app.Table("orders", partitions=8)


def _event(app: Any, partition: int) -> faust.Event:
    message = Message("p-orders.events", partition, 1, 0.0, 0, None, b"o-1", b"{}", None)
    return faust.Event(app, b"o-1", b"{}", None, message)


async def test_table_changes_wait_in_a_buffer_last_value_per_key_until_written() -> None:
    send = RecordingSend()
    app, table = _table_app(send)
    with event_scope(_event(app, 3)):
        table[b"o-1"] = {"status": "created"}
        table[b"o-1"] = {"status": "paid"}
        table[b"o-2"] = {"status": "created"}
        del table[b"o-2"]
    assert send.sent == []  # nothing goes out before a batch is acknowledged
    assert app.changelog_writes.pending == 0
    waiting = asyncio.ensure_future(app.changelog_writes.written())
    for _ in range(10):  # the flush runs as a task of its own
        await asyncio.sleep(0)
    assert not waiting.done()  # sent, not yet acknowledged
    [changes] = send.sent
    by_key = changes[("orders", 3)]
    assert list(by_key) == [b"o-1", b"o-2"]
    assert json.loads(by_key[b"o-1"].value or b"") == {"status": "paid"}
    assert by_key[b"o-2"].value is None  # a delete is a tombstone
    send.release.set()
    await asyncio.wait_for(waiting, timeout=1)
    assert table[b"o-1"] == {"status": "paid"}


async def test_a_change_goes_to_the_changelog_partition_of_its_event() -> None:
    send = RecordingSend()
    send.release.set()
    app, table = _table_app(send)
    for partition in (5, 1):
        with event_scope(_event(app, partition)):
            table[f"o-{partition}".encode()] = {"n": partition}
    await app.changelog_writes.written()
    assert [list(changes) for changes in send.sent] == [[("orders", 5), ("orders", 1)]]


async def test_a_failed_changelog_batch_fails_the_wait_for_it() -> None:
    send = RecordingSend()
    send.failure = RuntimeError("broker refused")
    send.release.set()
    app, table = _table_app(send)
    with event_scope(_event(app, 0)):
        table[b"o-1"] = {"status": "created"}
    with pytest.raises(RuntimeError, match="broker refused"):
        await app.changelog_writes.written()


async def test_flushes_go_out_one_after_the_other_in_order() -> None:
    """A key changed in two batches: the second flush must not overtake the first."""
    order: list[str] = []
    first_may_end = asyncio.Event()

    async def send(changes: BufferedChanges) -> None:
        [by_key] = changes.records.values()
        value = json.loads(next(iter(by_key.values())).value or b"")["status"]
        order.append(f"start {value}")
        if value == "created":
            await first_may_end.wait()
        order.append(f"end {value}")

    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    app.changelog_writes = ChangelogWrites(send)
    table = app.Table("orders", partitions=8)
    with event_scope(_event(app, 0)):
        table[b"o-1"] = {"status": "created"}
    first = asyncio.ensure_future(app.changelog_writes.written())
    await asyncio.sleep(0)
    with event_scope(_event(app, 0)):
        table[b"o-1"] = {"status": "paid"}
    second = asyncio.ensure_future(app.changelog_writes.written())
    for _ in range(20):  # every task runs as far as it can: the second flush must still wait
        await asyncio.sleep(0)
    assert order == ["start created"]
    first_may_end.set()
    await asyncio.wait_for(asyncio.gather(first, second), timeout=1)
    assert order == ["start created", "end created", "start paid", "end paid"]


async def test_with_a_flush_interval_the_buffer_waits_for_it_and_then_its_waiters_hear() -> None:
    send = RecordingSend()
    app, table = _table_app(send, flush_interval_s=0.2)
    heard: list[BaseException | None] = []
    with event_scope(_event(app, 0)):
        table[b"o-1"] = {"status": "created"}
    loop = asyncio.get_running_loop()
    asked_at = loop.time()
    app.changelog_writes.after_written(heard.append)
    for _ in range(10):
        await asyncio.sleep(0)
    assert (send.sent, heard) == ([], [])  # held back for the interval
    await asyncio.wait_for(send.started.wait(), timeout=5)
    assert loop.time() - asked_at > 0.15  # not before the interval (the loop's clock, no sleep)
    assert len(send.sent) == 1
    assert heard == []  # sent, not yet acknowledged by Kafka
    send.release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert heard == [None]


async def test_a_key_changed_by_batches_within_the_interval_is_written_once() -> None:
    send = RecordingSend()
    send.release.set()
    app, table = _table_app(send, flush_interval_s=0.05)
    heard: list[str] = []
    for status in ("queued", "sending", "sent"):
        with event_scope(_event(app, 2)):
            table[b"n-1"] = {"status": status}
        app.changelog_writes.after_written(lambda failure, status=status: heard.append(status))
    await asyncio.wait_for(app.changelog_writes.written(), timeout=1)
    [changes] = send.sent
    [record] = changes[("orders", 2)].values()
    assert json.loads(record.value or b"") == {"status": "sent"}
    assert heard == ["queued", "sending", "sent"]  # every batch, in order, after the one write


async def test_without_a_flush_interval_the_buffer_goes_out_when_a_waiter_asks() -> None:
    send = RecordingSend()
    app, table = _table_app(send)
    with event_scope(_event(app, 0)):
        table[b"o-1"] = {"status": "created"}
    app.changelog_writes.after_written(lambda failure: None)
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(send.sent) == 1


async def test_a_waiter_with_nothing_to_wait_for_hears_at_once() -> None:
    heard: list[BaseException | None] = []
    ChangelogWrites(flush_interval_s=5).after_written(heard.append)
    assert heard == [None]


async def test_after_a_failed_write_nothing_more_is_acknowledged_and_the_worker_hears_once() -> (
    None
):
    send = RecordingSend()
    send.failure = RuntimeError("broker refused")
    failures: list[BaseException] = []
    app, table = _table_app(send, flush_interval_s=60, on_failure=failures.append)
    writes = app.changelog_writes
    heard: list[BaseException | None] = []
    with event_scope(_event(app, 0)):
        table[b"o-1"] = {"status": "created"}
    writes.after_written(heard.append)
    writes.flush()
    with event_scope(_event(app, 0)):
        table[b"o-2"] = {"status": "created"}  # buffered behind the failing write
    writes.after_written(heard.append)
    send.release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert [str(failure) for failure in heard] == ["broker refused", "broker refused"]
    assert [str(failure) for failure in failures] == ["broker refused"]
    with pytest.raises(RuntimeError, match="broker refused"):
        writes.after_written(heard.append)  # the agent asking next crashes
    with pytest.raises(RuntimeError, match="broker refused"):
        await writes.written()
    assert [str(failure) for failure in failures] == ["broker refused"]


async def test_a_waiter_that_raises_does_not_keep_the_others_from_hearing() -> None:
    writes = ChangelogWrites()
    sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    writes.track(sent)
    heard: list[BaseException | None] = []

    def broken(failure: BaseException | None) -> None:
        raise ValueError("a bug in an acknowledgement")

    writes.after_written(broken)
    writes.after_written(heard.append)
    sent.set_result("offset 3")
    await asyncio.sleep(0)
    assert heard == [None]


async def test_a_cancelled_send_is_not_taken_for_written() -> None:
    writes = ChangelogWrites()
    sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    writes.track(sent)
    heard: list[BaseException | None] = []
    writes.after_written(heard.append)
    sent.cancel()
    await asyncio.sleep(0)
    assert [type(failure) for failure in heard] == [asyncio.CancelledError]


async def test_once_stopping_nothing_is_held_and_a_failed_write_does_not_crash_the_worker() -> None:
    """Agents finishing their last batches after the stop began: their changes go out at once
    (a timer would fire after the producer stopped), and a write the stopped producer refuses
    leaves their batches unacknowledged without crashing a worker that is stopping anyway."""
    send = RecordingSend()
    send.failure = RuntimeError("Producer service not yet started")
    send.release.set()
    failures: list[BaseException] = []
    app, table = _table_app(send, flush_interval_s=60, on_failure=failures.append)
    writes = app.changelog_writes
    writes.stop()
    heard: list[BaseException | None] = []
    with event_scope(_event(app, 0)):
        table[b"o-1"] = {"status": "paid"}
    writes.after_written(heard.append)
    await asyncio.wait_for(send.started.wait(), timeout=5)  # sent at once, not held for 60 s
    for _ in range(10):
        await asyncio.sleep(0)
    writes.after_written(heard.append)  # the next batch is told, not raised at
    assert [str(failure) for failure in heard] == ["Producer service not yet started"] * 2
    assert failures == []
