"""A Faust schema that hands a consumed record's key and value over as the bytes Kafka holds.

Faust decodes every record it consumes through its serializer registry (codec lookups and
settings reads per record, then the codec itself) before anything reads it. Where the reader
wants the bytes anyway, that work is wasted: our raw topics (`streams.runtime.topics.RawBytes`,
about 15 % of the runtime's per-record floor in `scripts/bench_faust_floor.py`) and the
changelogs of tables in a serialized store (`streams.runtime.durable_table`). Only decoding is
skipped: what is sent through the schema is serialized with its types and codecs as usual.
"""

from __future__ import annotations

from typing import Any

import faust


class Undecoded(faust.Schema):  # type: ignore[type-arg]  # faust's generics are untyped here
    def loads_key(self, app: Any, message: Any, **_: Any) -> Any:
        return message.key

    def loads_value(self, app: Any, message: Any, **_: Any) -> Any:
        return message.value
