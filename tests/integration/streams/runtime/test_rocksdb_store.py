"""RocksDB stores over real files: a rebalance that takes no partition from a table runs no full
garbage collection for it (Faust ran one per table at every rebalance, ~0.4 s each on a loaded
worker's heap), and one that does closes the partition's database, which opens again."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types import TP

from streams.runtime.rocksdb_store import RocksDBStore
from streams.settings import Settings
from tests.integration.streams.runtime.rocksdb_tables import rocksdb_app, write


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> faust.App:
    return rocksdb_app(settings, tmp_path)


@pytest.fixture
def table(app: faust.App) -> Any:
    """A table with a key in partition 0, whose database is open."""
    table = app.Table("sends", partitions=2, key_type=bytes)
    write(app, table, 0, b"n-1", {"state": "sent"})
    return table


@pytest.fixture
def store(table: Any) -> RocksDBStore:
    store = table.data
    assert isinstance(store, RocksDBStore)
    return store


def _partition(table: Any, partition: int) -> TP:
    return TP(table.changelog_topic.get_topic_name(), partition)


@pytest.fixture
def full_collections() -> Iterator[list[int]]:
    """The full collections asked for while the test runs, one entry each (CPython's own are
    off meanwhile, so only explicit `gc.collect()` calls count)."""
    seen: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            seen.append(1)

    gc.disable()
    gc.callbacks.append(count)
    try:
        yield seen
    finally:
        gc.callbacks.remove(count)
        gc.enable()


async def test_a_rebalance_that_revokes_nothing_from_a_table_collects_no_garbage(
    table: Any, store: RocksDBStore, full_collections: list[int]
) -> None:
    store.revoke_partitions(table, set())
    store.revoke_partitions(table, {TP("another-table-changelog", 0), _partition(table, 1)})

    assert full_collections == []
    assert table[b"n-1"] == {"state": "sent"}


async def test_a_revoked_partitions_database_is_closed_and_opens_again(
    table: Any, store: RocksDBStore, full_collections: list[int]
) -> None:
    store.revoke_partitions(table, {_partition(table, 0)})

    assert full_collections == [1]
    assert 0 not in store._dbs
    # Its lock is released: opened again (as when the partition comes back), it has the key.
    store._db_for_partition(0)
    assert table[b"n-1"] == {"state": "sent"}


async def test_a_stop_after_every_database_was_dropped_collects_no_garbage(
    table: Any, store: RocksDBStore, full_collections: list[int]
) -> None:
    store.revoke_partitions(table, {_partition(table, 0)})
    full_collections.clear()

    await store.stop()

    assert full_collections == []
