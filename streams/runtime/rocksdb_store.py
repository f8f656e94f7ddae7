"""Faust's RocksDB store, collecting garbage only when it let go of a database.

Faust closes a partition's database by dropping it, and runs a full `gc.collect()` after, so
that the database is gone (and its lock file released) before the partition is opened again.
It does so on every rebalance, for every table, whether or not the rebalance took a partition
from that table, and again at stop. With a worker's heap after a minute at 400 notifications/s
a full collection takes about 0.4 s of the event loop (`gc.callbacks`, `bench_notifications`),
and a worker has over a dozen tables: a rebalance stalled it for seconds, most of all the one after
another worker's crash, when the survivor loses no partition and only takes some over, and
should start on them at once.

Here a table's store collects only when it dropped a database (a partition it owned was
revoked), as Faust did then; a rebalance that revokes nothing from it, and a stop after every
database was already dropped, do no collection.
"""

from __future__ import annotations

from typing import Any

from faust.stores import rocksdb
from faust.types import TP, CollectionT


class RocksDBStore(rocksdb.Store):
    """Faust's RocksDB store; see the module docstring."""

    def revoke_partitions(self, table: CollectionT, tps: set[TP]) -> None:
        topics = table.changelog_topic.topics
        if any(tp.topic in topics and tp.partition in self._dbs for tp in tps):
            super().revoke_partitions(table, tps)

    async def stop(self) -> None:
        if self._dbs:
            await super().stop()


def store_class(found: Any) -> Any:
    """The store class to use for the one Faust's URL names: this one for RocksDB's."""
    return RocksDBStore if found is rocksdb.Store else found
