"""One batch of request_notifications, written against small protocols so fakes can test it.

`RequestBatch`: events keyed by something else than their user (auth, orders) -> the rules ->
requests on `notifications.requests`, re-keyed by user id, so that `route_notifications` gets
each user's requests in the partition that holds the user's contacts. Records that do not
decode go to their topic's dead letters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel

from agents.dead_letters import set_aside
from agents.retry import Backoff, Sleep
from agents.routing.route_batch import NotificationStats, send_records
from agents.routing.rules import CausingEvent, requests_for
from streams.errors import PoisonError
from streams.runtime import OutgoingRecord, RecordSink, SourceRecord

log = logging.getLogger(__name__)

E = TypeVar("E")


class RequestBatch(Generic[E]):
    """request_notifications: causing events -> notification requests keyed by user id."""

    def __init__(
        self,
        *,
        decoders: Mapping[str, Callable[[bytes | None], CausingEvent]],
        encode: Callable[[BaseModel], bytes],
        requests: RecordSink,
        dead_letters: Mapping[str, RecordSink],
        describe: Callable[[E], SourceRecord],
        clock: Callable[[], datetime],
        backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._decoders = decoders
        self._encode = encode
        self._requests = requests
        self._dead_letters = dead_letters
        self._describe = describe
        self._clock = clock
        self._backoff = backoff
        self._sleep = sleep
        self.stats = NotificationStats()

    async def process(self, batch: Sequence[E]) -> None:
        now = self._clock()
        out: list[OutgoingRecord] = []
        rejected: dict[str, list[OutgoingRecord]] = {}
        for item in batch:
            record = self._describe(item)
            try:
                event = self._decoders[record.topic](record.value)
            except PoisonError as exc:
                rejected.setdefault(record.topic, []).append(set_aside(record, exc))
                continue
            for request in requests_for(event, now=now):
                key = request.payload.user_id.encode()
                out.append(OutgoingRecord(key=key, value=self._encode(request)))
        for topic, records in rejected.items():
            await send_records(
                self._dead_letters[topic],
                records,
                self._backoff,
                self._sleep,
                f"dead-lettering {len(records)} records of {topic}",
                self.stats,
            )
            self.stats.dead_letters += len(records)
        await send_records(
            self._requests,
            out,
            self._backoff,
            self._sleep,
            f"sending {len(out)} notification requests",
            self.stats,
        )
        self.stats.batches += 1
        self.stats.events += len(batch)
        self.stats.requests += len(out)
