"""What a batch processor is given besides its data: a per-record scope and a sleep, recorded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from streams.runtime import SourceRecord


class ScopeAndSleep:
    """`scope` notes each record's offset as it is handled; `sleep` notes the back-off delays
    instead of waiting them."""

    def __init__(self) -> None:
        self.scoped: list[int] = []
        self.sleeps: list[float] = []

    @contextmanager
    def scope(self, record: SourceRecord) -> Iterator[None]:
        self.scoped.append(record.offset)
        yield

    async def sleep(self, delay_s: float) -> None:
        self.sleeps.append(delay_s)
