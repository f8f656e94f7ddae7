"""The template catalogue kept current from `notifications.templates`, in every process that
renders or serves templates (the worker's router, the API).

`refresh` reads the compacted topic to its end as of now and folds what is new: called before
the router routes a batch, and before the API answers about templates, so both see every write
Kafka acknowledged before the call. A record that does not decode is logged and skipped (the
topic is only written by this code; a bad record must not stop routing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from schemas.templates import TemplateEvent
from streams.errors import PoisonError
from streams.kafka.compacted_topic import TableRecord
from streams.templates.catalog import TemplateCatalog

log = logging.getLogger(__name__)


class TableSource(Protocol):
    async def read_to_end(self) -> Sequence[TableRecord]: ...

    async def close(self) -> None: ...


Decode = Callable[[bytes | None], TemplateEvent]


class LiveTemplates:
    def __init__(self, source: TableSource) -> None:
        self._source = source
        self.catalog = TemplateCatalog()
        self.records = 0
        self.skipped = 0

    async def refresh(self, decode: Decode) -> TemplateCatalog:
        """`decode` is the process's codec's (the API's is ready only once registered)."""
        for record in await self._source.read_to_end():
            self.records += 1
            try:
                event = decode(record.value)
            except PoisonError as exc:
                self.skipped += 1
                log.error(
                    "skipping template record %d/%d: %s", record.partition, record.offset, exc
                )
                continue
            self.catalog.apply(event)
        return self.catalog

    async def close(self) -> None:
        await self._source.close()
