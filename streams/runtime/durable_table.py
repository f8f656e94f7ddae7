"""The app's table class: changes durable in their changelog before their events are acknowledged,
and one store lookup per read.

Every change goes to the app's `ChangelogWrites` (`streams.runtime.changelog_writes`), which
buffers it and sends it once the agent is done with its batch (or within the flush interval);
`ack_events` acknowledges the batch once it is written.

Reads and writes of a `bytes` key in a serialized store (RocksDB) take a shorter path than
Faust's. Faust reads a key twice (`key in store`, then `store[key]`; a key not there is looked
for in every partition's database both times) and writes it by serializing the key and value
twice (once for the store, once for the changelog), each time through its serializer registry:
about 7 % of a worker's py-spy samples at 400 notifications/s. Here a read is one `_get` of the
store, a write one encoding of the value, used for both the store and the changelog record. A
`bytes` key is its own encoding in every Faust codec (the registry passes `bytes` through), and
which partition's database is read or written is decided by the store itself, as in Faust.
Other keys, the in-memory store and Kafka transactions take Faust's own path. RocksDB's store
is `streams.runtime.rocksdb_store`'s, which collects garbage only when a rebalance took a
partition from it.

What the short path leaves out are Faust's table sensors (`on_table_get`/`on_table_set`), which
the worker's metrics do not count.

A table made with `retention_s` forgets a key that long after its last change: its changelog
is compacted and deleted by time (`cleanup.policy=compact,delete`, `retention.ms`), so a fresh
worker's recovery reads only the keys changed within it, and its RocksDB store is opened with
RocksDB's TTL, whose compactions drop the entries written (or recovered) longer ago. A TTL store
keeps a write time beside every value, which a plain store cannot read and the other way round,
so it lives in directories of its own (`<table>-expiring-<partition>.db`): a worker that starts
with retention on for a table that had none recovers it from the changelog once.

The changelog records a worker reads back (a standby's, and every table's at recovery) are
handed to Faust's recovery undecoded when the store is a serialized one: RocksDB applies each
record's key and value bytes as they are, so Faust's decoding of them (the values' JSON,
through the serializer registry) was thrown away. The in-memory store keeps decoded keys and
values, and keeps Faust's decoding.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import faust
from faust import stores
from faust.stores.base import SerializedStore
from faust.types import FutureMessage, TopicT

from streams.runtime.changelog_writes import ChangelogWrites
from streams.runtime.records import OutgoingRecord
from streams.runtime.rocksdb_store import store_class
from streams.runtime.transactions import exactly_once
from streams.runtime.undecoded import Undecoded

log = logging.getLogger(__name__)

EXPIRING_SUFFIX = "-expiring"


class DurableTable(faust.Table):  # type: ignore[type-arg]  # faust's generics are untyped here
    """A Faust table whose changes the app's `ChangelogWrites` buffers, sends and waits for."""

    def __init__(self, *args: Any, retention_s: int | None = None, **kwargs: Any) -> None:
        """`retention_s`: how long after its last change a key is forgotten (None: never)."""
        if retention_s is not None and retention_s < 1:
            raise ValueError(f"retention_s must be at least 1 second, not {retention_s}")
        self.retention_s = retention_s
        super().__init__(*args, **kwargs)
        if retention_s is not None:
            # A dict of its own (Faust's RocksDB store pops what it reads from the one it gets).
            self.options = {**(self.options or {}), "ttl": retention_s}

    def __getitem__(self, key: Any) -> Any:
        store = self._short_path_store(key)
        if store is None:
            return super().__getitem__(key)
        raw = store._get(key)
        if raw is None:
            return self.__missing__(key)
        return store._decode_value(raw)

    def __contains__(self, key: object) -> bool:
        store = self._short_path_store(key)
        if store is None:
            return super().__contains__(key)
        return store._get(cast(bytes, key)) is not None  # bytes: the short path checked it

    def __setitem__(self, key: Any, value: Any) -> None:
        store = self._short_path_store(key)
        if store is None or self._in_transactions:
            super().__setitem__(key, value)
            return
        partition = self.partition_for_key(key)
        assert partition is not None  # only a table placed by the partitioner has none
        raw_value = store._encode_value(value)
        self._writes.buffered.add(self, partition, OutgoingRecord(key, raw_value, ()))
        store._set(key, raw_value)

    def on_key_set(self, key: Any, value: Any) -> None:
        partition = self._buffered_partition(key)
        if partition is None:
            super().on_key_set(key, value)
            return
        self._writes.buffered.add(self, partition, self._record(key, value, self.value_serializer))
        self._maybe_set_key_ttl(key, partition)

    def on_key_del(self, key: Any) -> None:
        partition = self._buffered_partition(key)
        if partition is None:
            super().on_key_del(key)
            return
        self._writes.buffered.add(self, partition, self._record(key, None, "raw"))
        self._maybe_del_key_ttl(key, partition)

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        """Faust's own path (a table placed by the partitioner, or in a transaction), tracked."""
        sent = super().send_changelog(*args, **kwargs)
        self._writes.track(cast(asyncio.Future[Any], sent))
        return sent

    def _new_changelog_topic(self, **kwargs: Any) -> TopicT:
        if self.schema is None and self._store_keeps_bytes:
            # The topic gives the schema the table's key and value types and codecs, for sends.
            self.schema = Undecoded()
        if self.retention_s is not None:
            kwargs |= {"deleting": True, "retention": float(self.retention_s)}
        return super()._new_changelog_topic(**kwargs)

    def _new_store_by_url(self, url: Any) -> Any:
        """Faust's own, with RocksDB's as `RocksDBStore`; with a retention, RocksDB's store is a
        TTL one (`options["ttl"]`), in directories of its own."""
        if self.retention_s is not None and urlsplit(str(url)).scheme == "rocksdb":
            url = f"rocksdb:{self.name}{EXPIRING_SUFFIX}"
            self._mention_plain_stores()
        return store_class(stores.by_url(url))(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )

    def _mention_plain_stores(self) -> None:
        """Say which directories a version without the retention left: no longer read (but by
        a rollback to that version), so the operator may delete them."""
        tabledir = Path(self.app.conf.tabledir)
        left = sorted(
            path.name
            for path in tabledir.glob(f"{self.name}-*.db")
            if path.name.removeprefix(f"{self.name}-").removesuffix(".db").isdigit()
        )
        if left:
            log.warning(
                "table %s keeps its keys %d s in %s%s-<partition>.db now; %s in %s were written"
                " without that retention and are no longer read (a rollback would read them)",
                self.name,
                self.retention_s,
                self.name,
                EXPIRING_SUFFIX,
                ", ".join(left),
                tabledir,
            )

    @property
    def _writes(self) -> ChangelogWrites:
        writes: ChangelogWrites = cast(Any, self.app).changelog_writes
        return writes

    def _short_path_store(self, key: object) -> SerializedStore[Any, Any] | None:
        """The store, when `key` is bytes and the store keeps bytes; else None."""
        if not isinstance(key, bytes) or not self._store_keeps_bytes:
            return None
        return cast(SerializedStore[Any, Any], self.data)

    @cached_property
    def _store_keeps_bytes(self) -> bool:
        """Whether the table's store is a serialized one (RocksDB), not the in-memory one."""
        return issubclass(stores.by_url(self._store or self.app.conf.store), SerializedStore)

    def _buffered_partition(self, key: Any) -> int | None:
        """The changelog partition of a change to buffer; None for Faust's own path."""
        if self._in_transactions:  # Kafka transactions: Faust's producer sends in them
            return None
        return self.partition_for_key(key)

    @cached_property
    def _in_transactions(self) -> bool:
        """Fixed when the app is made; read once, not from the settings at every change."""
        return exactly_once(self.app)

    def _record(self, key: Any, value: Any, value_serializer: Any) -> OutgoingRecord:
        topic = cast(faust.Topic, self.changelog_topic)  # the concrete class: its full signatures
        headers = topic.prepare_headers(None)
        raw_key, headers = topic.prepare_key(key, self.key_serializer, None, headers)
        raw_value, headers = topic.prepare_value(value, value_serializer, None, headers)
        return OutgoingRecord(raw_key, raw_value, _header_pairs(headers))


def _header_pairs(headers: Any) -> tuple[tuple[str, bytes], ...]:
    if not headers:
        return ()
    items: Iterable[tuple[str, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((str(name), bytes(value)) for name, value in items)
