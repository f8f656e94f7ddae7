"""A table with a retention over real RocksDB: a TTL store in directories of its own, whose
compactions drop what was written longer ago; a table without one keeps every key.

The changelog side (compacted and deleted by time) is declared in `changelog_specs`
(tests/unit/streams/runtime/test_app.py); here, the files the worker keeps.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from streams.runtime.durable_table import EXPIRING_SUFFIX
from streams.settings import Settings
from tests.integration.streams.runtime.rocksdb_tables import rocksdb_app, write


def _compact(table: Any, partition: int) -> None:
    """What RocksDB does on its own as writes accumulate (and at least every 30 days)."""
    table.data._db_for_partition(partition).compact_range(None, None)


def test_an_expiring_table_forgets_what_was_written_longer_ago(
    settings: Settings, tmp_path: Path
) -> None:
    app = rocksdb_app(settings, tmp_path)
    expiring = app.Table("sends", partitions=2, key_type=bytes, retention_s=2)
    kept = app.Table("routes", partitions=2, key_type=bytes)
    for table in (expiring, kept):
        write(app, table, 1, b"n-1", {"sent_at": "2026-12-06T00:00:00Z"})
        assert table[b"n-1"] == {"sent_at": "2026-12-06T00:00:00Z"}

    # Compacted until the key written first is gone (RocksDB's TTL counts whole seconds).
    deadline = time.monotonic() + 15
    while b"n-1" in expiring:
        assert time.monotonic() < deadline, "n-1 outlived its retention"
        time.sleep(0.2)
        _compact(expiring, 1)
    # A key written now is within the retention: the same compaction keeps it.
    write(app, expiring, 1, b"n-2", {"sent_at": "2026-12-06T00:00:02Z"})
    for table in (expiring, kept):
        _compact(table, 1)

    assert expiring[b"n-2"] == {"sent_at": "2026-12-06T00:00:02Z"}
    assert kept[b"n-1"] == {"sent_at": "2026-12-06T00:00:00Z"}
    # The TTL store keeps a write time beside each value: it has directories of its own, so a
    # store written without a retention is never opened as one (nor the other way round).
    names = {path.name for path in tmp_path.rglob("*.db")}
    assert f"sends{EXPIRING_SUFFIX}-1.db" in names
    assert "routes-1.db" in names
    assert "sends-1.db" not in names


def test_the_stores_written_without_the_retention_are_named_for_deletion(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An upgrade: the plain stores an earlier version wrote stay on disk, unread."""
    before = rocksdb_app(settings, tmp_path)
    plain = before.Table("sends", partitions=2, key_type=bytes)
    write(before, plain, 1, b"n-1", {"sent_at": "2026-12-06T00:00:00Z"})

    app = rocksdb_app(settings, tmp_path)
    expiring = app.Table("sends", partitions=2, key_type=bytes, retention_s=3600)
    with caplog.at_level(logging.WARNING, logger="streams.runtime.durable_table"):
        assert b"n-1" not in expiring  # the TTL store starts empty: recovered from Kafka

    (warning,) = [r.getMessage() for r in caplog.records if "no longer read" in r.getMessage()]
    assert "sends-1.db" in warning
    assert f"sends{EXPIRING_SUFFIX}" in warning
