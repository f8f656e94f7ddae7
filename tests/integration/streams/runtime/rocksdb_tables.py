"""An app whose tables keep RocksDB stores in a directory of the test's, and a write to one as an
agent makes it (in the scope of an event of the key's partition)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
from faust.types.tuples import Message

from streams.runtime import create_faust_app, event_scope
from streams.settings import Settings


def rocksdb_app(settings: Settings, data_dir: Path) -> faust.App:
    worker = settings.worker.model_copy(
        update={"store": "rocksdb://", "data_dir": str(data_dir), "web_port": 0}
    )
    return create_faust_app(settings.model_copy(update={"worker": worker}))


def write(app: faust.App, table: Any, partition: int, key: bytes, value: dict[str, Any]) -> None:
    message = Message("notifications.dispatch", partition, 0, 0.0, 0, None, key, b"", None)
    with event_scope(faust.Event(app, key, b"", None, message)):
        table[key] = value
