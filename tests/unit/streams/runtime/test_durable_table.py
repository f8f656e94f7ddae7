"""The app's table class over a serialized store: one lookup per read, one encoding per write.

The store here is a fake of Faust's RocksDB store (`SerializedStore`, bytes in and out, one
dict per partition, written in the partition of the event being processed and read in it, or in
every partition outside an event), so the tests need no files.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import faust
import pytest
from faust.stores.base import SerializedStore
from faust.streams import current_event
from faust.types import TP
from faust.types.tuples import Message

from streams.runtime.app import create_faust_app
from streams.runtime.batch_agent import event_scope
from streams.runtime.changelog_writes import BufferedChanges, ChangelogWrites
from streams.runtime.durable_table import DurableTable
from streams.settings import WorkerProcessSettings


class PartitionedBytesStore(SerializedStore[Any, Any]):
    """Bytes per partition, placed as Faust's RocksDB store places them; counts its lookups."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.partitions: dict[int, dict[bytes, bytes]] = {}
        self.lookups = 0

    def _get(self, key: bytes) -> bytes | None:
        self.lookups += 1
        event = current_event()
        if event is not None:
            return self.partitions.get(event.message.partition, {}).get(key)
        return next((db[key] for db in self.partitions.values() if key in db), None)

    def _set(self, key: bytes, value: bytes | None) -> None:
        event = current_event()
        assert event is not None
        assert value is not None
        self.partitions.setdefault(event.message.partition, {})[key] = value

    def _contains(self, key: bytes) -> bool:
        return self._get(key) is not None

    def _del(self, key: bytes) -> None:
        for db in self.partitions.values():
            db.pop(key, None)

    def _iterkeys(self) -> Iterator[bytes]:
        for db in self.partitions.values():
            yield from db

    def _itervalues(self) -> Iterator[bytes | None]:
        for db in self.partitions.values():
            yield from db.values()

    def _iteritems(self) -> Iterator[tuple[bytes, bytes | None]]:
        for db in self.partitions.values():
            yield from db.items()

    def _size(self) -> int:
        return sum(len(db) for db in self.partitions.values())

    def _clear(self) -> None:
        self.partitions.clear()

    def reset_state(self) -> None:
        self._clear()

    def backup_partition(self, tp: TP | int, flush: bool = True, purge: bool = False) -> None:
        raise NotImplementedError

    def restore_backup(self, tp: TP | int, latest: bool = True, backup_id: int = 0) -> None:
        raise NotImplementedError


class Sends:
    def __init__(self) -> None:
        self.sent: list[BufferedChanges] = []

    async def __call__(self, changes: BufferedChanges) -> None:
        self.sent.append(changes)


def _app_and_table(**table_options: Any) -> tuple[Any, DurableTable, PartitionedBytesStore, Sends]:
    """An app configured for RocksDB whose table's store is the fake (never opened: no files)."""
    app = create_faust_app(
        WorkerProcessSettings.model_validate({"worker": {"store": "rocksdb://"}})
    )
    sends = Sends()
    app.changelog_writes = ChangelogWrites(sends)
    table = app.Table("deliveries", partitions=8, key_type=bytes, **table_options)
    assert isinstance(table, DurableTable)
    store = PartitionedBytesStore(
        "fake://",
        app,
        table,
        key_type=table.key_type,
        value_type=table.value_type,
        key_serializer=table.key_serializer,
        value_serializer=table.value_serializer,
    )
    table._data = store
    return app, table, store, sends


def _event(app: Any, partition: int, key: bytes = b"n-1") -> faust.Event:
    message = Message("p-notifications.status", partition, 1, 0.0, 0, None, key, b"{}", None)
    return faust.Event(app, key, b"{}", None, message)


def test_a_written_value_is_read_back_with_one_lookup() -> None:
    app, table, store, _ = _app_and_table()
    with event_scope(_event(app, 3)):
        table[b"n-1"] = {"state": "sent", "attempts": [1, 2]}
    store.lookups = 0
    assert table[b"n-1"] == {"state": "sent", "attempts": [1, 2]}
    assert table.get(b"n-1") == {"state": "sent", "attempts": [1, 2]}
    assert b"n-1" in table
    assert store.lookups == 3  # Faust's own path looks twice per read: `in`, then `[]`


def test_a_missing_key_is_a_key_error_the_default_or_absent() -> None:
    _, table, store, _ = _app_and_table()
    with pytest.raises(KeyError):
        table[b"n-9"]
    assert table.get(b"n-9") is None
    assert table.get(b"n-9", "none") == "none"
    assert b"n-9" not in table
    assert store.lookups == 4


def test_a_table_with_a_default_gives_it_for_a_missing_key() -> None:
    _, table, _, _ = _app_and_table(default=int)
    assert table[b"n-9"] == 0


def test_a_read_in_an_event_looks_in_the_partition_of_that_event() -> None:
    app, table, _, _ = _app_and_table()
    with event_scope(_event(app, 3)):
        table[b"n-1"] = {"state": "sent"}
    with event_scope(_event(app, 5)):
        assert table.get(b"n-1") is None
    with event_scope(_event(app, 3)):
        assert table.get(b"n-1") == {"state": "sent"}


async def test_a_write_goes_to_the_store_and_the_changelog_as_the_same_bytes() -> None:
    app, table, store, sends = _app_and_table()
    value = {"state": "delivered", "held": [], "at": 1.5}
    with event_scope(_event(app, 6)):
        table[b"n-1"] = {"state": "sent"}
        table[b"n-1"] = value
        faust_record = table._record(b"n-1", value, table.value_serializer)
    await app.changelog_writes.written()
    [changes] = sends.sent
    assert list(changes.records) == [(table, 6)]
    record = changes.records[(table, 6)][b"n-1"]
    assert record == faust_record  # what Faust's own path would have sent
    assert (record.key, record.headers) == (b"n-1", ())
    assert json.loads(record.value or b"") == value
    assert store.partitions == {6: {b"n-1": record.value}}


def test_a_write_outside_an_event_is_refused_as_by_faust() -> None:
    _, table, store, _ = _app_and_table()
    with pytest.raises(TypeError, match="outside of stream iteration"):
        table[b"n-1"] = {"state": "sent"}
    assert store.partitions == {}


async def test_keys_other_than_bytes_take_fausts_path_to_the_same_store() -> None:
    app, table, store, sends = _app_and_table()
    with event_scope(_event(app, 2)):
        table["n-1"] = {"state": "sent"}
    assert table["n-1"] == {"state": "sent"}
    stored = store.partitions[2][b"n-1"]
    assert json.loads(stored) == {"state": "sent"}
    await app.changelog_writes.written()
    [changes] = sends.sent
    assert changes.records[(table, 2)][b"n-1"].value == stored


async def test_the_in_memory_store_takes_fausts_path() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    app.changelog_writes = ChangelogWrites(Sends())
    table = app.Table("deliveries", partitions=8, key_type=bytes)
    with event_scope(_event(app, 1)):
        table[b"n-1"] = {"state": "sent"}
    assert table[b"n-1"] == {"state": "sent"}
    assert b"n-1" in table
    assert table.get(b"n-2") is None
    await asyncio.wait_for(app.changelog_writes.written(), timeout=1)


def _changelog_message(table: DurableTable, value: bytes) -> Message:
    topic = table.changelog_topic.get_topic_name()
    return Message(topic, 4, 17, 0.0, 0, None, b"n-1", value, None)


async def test_a_serialized_stores_changelog_records_reach_recovery_as_their_bytes() -> None:
    app = create_faust_app(
        WorkerProcessSettings.model_validate({"worker": {"store": "rocksdb://"}})
    )
    table = app.Table("deliveries", partitions=8, key_type=bytes)
    stored = b'{"state":"sent"}'
    # Faust's recovery reads the changelog through a clone of the topic on its own queue.
    for topic in (table.changelog_topic, table.changelog_topic.clone_using_queue(asyncio.Queue())):
        event = await topic.decode(_changelog_message(table, stored), propagate=True)
        assert (event.key, event.value) == (b"n-1", stored)
    # Sends through the topic (Faust's own path, in transactions) still serialize the value.
    record = table._record(b"n-1", {"state": "sent"}, table.value_serializer)
    assert json.loads(record.value or b"") == {"state": "sent"}


async def test_the_in_memory_stores_changelog_records_are_decoded_for_it() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    table = app.Table("deliveries", partitions=8, key_type=bytes)
    message = _changelog_message(table, b'{"state":"sent"}')
    event = await table.changelog_topic.decode(message, propagate=True)
    assert (event.key, event.value) == (b"n-1", {"state": "sent"})
