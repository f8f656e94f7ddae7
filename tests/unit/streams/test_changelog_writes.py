"""Changelog sends awaited before acknowledging: `ChangelogWrites` and the app's table class."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.changelog_writes import ChangelogWrites, DurableTable
from streams.faust_app import create_faust_app
from streams.settings import Settings


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


async def test_a_failed_changelog_send_fails_the_wait() -> None:
    writes = ChangelogWrites()
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    writes.track(failed)
    failed.set_exception(RuntimeError("broker refused"))
    with pytest.raises(RuntimeError, match="broker refused"):
        await writes.written()


async def test_the_apps_tables_hand_their_changelog_sends_to_the_app() -> None:
    app = create_faust_app(Settings.model_validate({"worker": {"store": "memory://"}}))
    table = app.Table("orders")
    assert isinstance(table, DurableTable)
    table.send_changelog(0, b"o-1", b"{}")
    assert app.changelog_writes.pending == 1  # in the producer's buffer, not yet sent


class Acknowledgements:
    def __init__(self) -> None:
        self.acknowledged = 0
        self.failures: list[BaseException] = []

    async def acknowledge(self) -> None:
        self.acknowledged += 1

    async def fail(self, exc: BaseException) -> None:
        self.failures.append(exc)


async def test_a_batch_is_acknowledged_once_its_writes_are_in_kafka_without_holding_the_agent() -> (
    None
):
    writes, batch = ChangelogWrites(), Acknowledgements()
    sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    writes.track(sent)
    await asyncio.wait_for(writes.then(batch.acknowledge, batch.fail), timeout=1)
    assert (batch.acknowledged, writes.batches_waiting) == (0, 1)  # the agent goes on meanwhile
    later: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    writes.track(later)  # the next batch's change does not hold this one back
    sent.set_result("offset 7")
    for _ in range(5):
        await asyncio.sleep(0)
    assert (batch.acknowledged, writes.batches_waiting) == (1, 0)


async def test_with_nothing_to_write_a_batch_is_acknowledged_at_once() -> None:
    writes, batch = ChangelogWrites(), Acknowledgements()
    await writes.then(batch.acknowledge, batch.fail)
    assert batch.acknowledged == 1


async def test_a_failed_write_leaves_its_batch_unacknowledged_and_reports_the_failure() -> None:
    writes, batch = ChangelogWrites(), Acknowledgements()
    sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    writes.track(sent)
    await writes.then(batch.acknowledge, batch.fail)
    sent.set_exception(RuntimeError("broker refused"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert batch.acknowledged == 0
    assert [str(exc) for exc in batch.failures] == ["broker refused"]


async def test_an_agent_waits_once_too_many_batches_wait_for_their_writes() -> None:
    writes, batch = ChangelogWrites(max_batches_waiting=2), Acknowledgements()
    sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    writes.track(sent)
    await writes.then(batch.acknowledge, batch.fail)
    await writes.then(batch.acknowledge, batch.fail)
    third = asyncio.ensure_future(writes.then(batch.acknowledge, batch.fail))
    await asyncio.sleep(0.01)
    assert not third.done()
    sent.set_result("offset 8")
    await asyncio.wait_for(third, timeout=1)
    assert batch.acknowledged >= 2
