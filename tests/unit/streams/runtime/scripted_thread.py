"""Faust's consumer thread, scripted, for tests that run the consumer's own drain loop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from faust.types import TP


class ScriptedThread:
    """Each fetch returns the next of `batches`; once they are all fetched, the next fetch sets
    `stopped` (what a test hands the drain loop as its Fetcher's) and returns nothing."""

    def __init__(
        self, batches: Sequence[Mapping[TP, list[Any]]], assigned: set[TP], end: int
    ) -> None:
        self.batches = list(batches)
        self.assigned = assigned
        self.end = end
        self.stopped = asyncio.Event()

    async def getmany(
        self,
        active_partitions: Any,
        timeout: float,  # noqa: ASYNC109 - the consumer thread's signature
    ) -> Mapping[TP, list[Any]]:
        if not self.batches:
            self.stopped.set()
            return {}
        return self.batches.pop(0)

    def assignment(self) -> set[TP]:
        return self.assigned

    def highwater(self, tp: TP) -> int:
        return self.end
