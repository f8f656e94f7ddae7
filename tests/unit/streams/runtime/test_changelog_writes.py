"""Changelog sends awaited before acknowledging: `ChangelogWrites` and the app's table class."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.runtime.app import create_faust_app
from streams.runtime.changelog_writes import ChangelogWrites, DurableTable
from streams.settings import WorkerProcessSettings


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
