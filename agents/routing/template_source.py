"""The route agent's templates: the live catalogue, current before every batch, and the first
load of the template files into an empty topic.

Before each batch the router reads `notifications.templates` to its end (one offsets request,
and the new records if any), so a version activated (acknowledged by Kafka) before a
notification is routed is the one it renders with. On the first batch, a topic that has never
held a record gets the files of `agents/routing/templates` as the first versions; two workers
doing so at once write the same records (same keys, same ids), which compaction folds into one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from agents.retry import Backoff, Sleep, retry_retriable
from schemas.templates import TemplateEvent
from streams.runtime import OutgoingRecord, RecordSink
from streams.templates.files import file_events
from streams.templates.live import Decode, LiveTemplates

log = logging.getLogger(__name__)


class TemplateSource:
    def __init__(
        self,
        live: LiveTemplates,
        decode: Decode,
        publish: RecordSink,
        encode: Callable[[BaseModel], bytes],
        directory: Path,
        clock: Callable[[], datetime],
        backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.live = live
        self._decode = decode
        self._publish = publish
        self._encode = encode
        self._directory = directory
        self._clock = clock
        self._backoff = backoff
        self._sleep = sleep
        self._loaded = False
        self._loading = asyncio.Lock()

    async def refresh(self) -> None:
        """Current to the topic's end; the files loaded first if the topic never had a record."""
        await self._read()
        if self._loaded:
            return
        async with self._loading:  # the start-up task and the first batch may both get here
            if not self._loaded:
                await self._load_files()

    async def _load_files(self) -> None:
        await self._read()
        if self.live.records == 0:
            events = file_events(self._directory, self._clock())
            await retry_retriable(
                lambda: self._publish.send_all([self._record(e) for e in events]),
                backoff=self._backoff,
                what="loading the template files",
                sleep=self._sleep,
            )
            log.info("loaded %d template versions from %s", len(events), self._directory)
            await self._read()
        self._loaded = True

    async def _read(self) -> None:
        await retry_retriable(
            lambda: self.live.refresh(self._decode),
            backoff=self._backoff,
            what="reading templates",
            sleep=self._sleep,
        )

    def _record(self, event: TemplateEvent) -> OutgoingRecord:
        return OutgoingRecord(key=event.payload.key.encode(), value=self._encode(event))
