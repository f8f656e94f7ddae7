"""What this worker holds of a table: keys per partition, and one key's entry (windows included).

A table's store does not say which partition a key belongs to (the in-memory store keeps
standby copies of other workers' partitions in the same dict), so keys are assigned the way
Faust's router assigns them: the serialized key hashed with Kafka's default partitioner
(murmur2) over the table's partitions. A windowed table stores `(key, (start, end))` pairs; the
key alone decides the partition, as for its lookups. Both scan the local store: operator views,
not a hot path.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any, cast

from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP, CollectionT

# Windows of a windowed table shown for one key, newest first.
RECENT_WINDOWS = 10

_partitioner = DefaultPartitioner()


def key_partition(serialized_key: bytes, partitions: int) -> int:
    everything = list(range(partitions))
    partition: int = _partitioner(serialized_key, everything, everything)
    return partition


def is_windowed(table: CollectionT) -> bool:
    return getattr(table, "window", None) is not None


def user_key(table: CollectionT, stored_key: Any) -> Any:
    """The key a caller asks for: without the window range in a windowed table."""
    if is_windowed(table) and isinstance(stored_key, tuple | list) and len(stored_key) == 2:
        return stored_key[0]
    return stored_key


def serialized(table: CollectionT, key: Any) -> bytes:
    """The bytes Faust's router hashes for `key` (see `faust.app.router.Router.key_store`)."""
    raw: bytes = table.changelog_topic.prepare_key(key, None)[0]
    return raw


def stored(table: CollectionT) -> Mapping[Any, Any]:
    """The table's local store (every `Table` has one; `CollectionT` does not declare it)."""
    data: Mapping[Any, Any] = cast(Any, table).data
    return data


def table_partitions(table: CollectionT, default: int) -> int:
    return int(table.partitions or default)


def count_by_partition(keys: Iterable[bytes], partitions: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for key in keys:
        partition = key_partition(key, partitions)
        counts[partition] = counts.get(partition, 0) + 1
    return counts


def local_partition_sizes(table: CollectionT, actives: Collection[TP]) -> dict[int, int]:
    """Stored entries per partition of `table` that this worker actively owns (zeros included)."""
    topic = table.changelog_topic.get_topic_name()
    owned = sorted(tp.partition for tp in actives if tp.topic == topic)
    if not owned:
        return {}
    partitions = table_partitions(table, max(owned) + 1)
    keys = (serialized(table, user_key(table, key)) for key in list(stored(table).keys()))
    counts = count_by_partition(keys, partitions)
    return {partition: counts.get(partition, 0) for partition in owned}


def window_range(stored_key: Any) -> tuple[float, float]:
    start, end = stored_key[1]
    return float(start), float(end)


def windowed_entry(
    table: CollectionT, key: Any, now_s: float | None = None, limit: int = RECENT_WINDOWS
) -> list[dict[str, Any]] | None:
    """The stored windows of `key`, newest first, the ones containing now marked `current`."""
    now = time.time() if now_s is None else now_s
    window = table.window
    current = {(float(s), float(e)) for s, e in window.ranges(now)} if window else set()
    windows = [
        (window_range(entry_key), value)
        for entry_key, value in list(stored(table).items())
        if user_key(table, entry_key) == key
    ]
    if not windows:
        return None
    windows.sort(key=lambda each: each[0], reverse=True)
    return [
        {"start": start, "end": end, "current": (start, end) in current, "value": value}
        for (start, end), value in windows[:limit]
    ]
