"""A changelog send (`ChangelogWrites`' `send`) that records what it was given and finishes
when told to."""

from __future__ import annotations

import asyncio

from streams.runtime.changelog_writes import BufferedChanges
from streams.runtime.records import OutgoingRecord


class RecordingSend:
    """A `send_changes` that records what it was given and finishes when told to."""

    def __init__(self) -> None:
        self.sent: list[dict[tuple[str, int], dict[bytes | None, OutgoingRecord]]] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.failure: Exception | None = None

    async def __call__(self, changes: BufferedChanges) -> None:
        self.sent.append(
            {
                (table.name, partition): dict(by_key)
                for (table, partition), by_key in changes.records.items()
            }
        )
        self.started.set()
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
