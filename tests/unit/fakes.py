"""Fakes shared by the unit tests: Kafka's two producer faces and a clock.

The code under test takes these collaborators as arguments (the project does not patch with
`unittest.mock`), so a test passes one of these in and then reads what it recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.errors import ServiceUnavailableError
from streams.kafka.event_producer import RecordPosition
from streams.runtime import OutgoingRecord


class FakeSink:
    """A `streams.runtime.RecordSink`, the producer of one topic a batch's records go to.

    It keeps each acknowledged `send_all` call as one list in `calls`; `sent` is all of them in
    order. The first `failures` calls raise `ServiceUnavailableError` and keep nothing, as a send
    Kafka never acknowledged: the code under test is expected to retry it. Given a shared `log`,
    each acknowledged call also notes ``"sent <name>"`` there, so that a test can order the sends
    against other writes noted in the same log.
    """

    def __init__(self, failures: int = 0, *, log: list[str] | None = None, name: str = "") -> None:
        self.calls: list[list[OutgoingRecord]] = []
        self.failures = failures
        self.log = log
        self.name = name

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailableError("kafka", "away")
        self.calls.append(list(records))
        if self.log is not None:
            self.log.append(f"sent {self.name}")

    @property
    def sent(self) -> list[OutgoingRecord]:
        """Every acknowledged record, across calls, in the order it was sent."""
        return [record for call in self.calls for record in call]


class FakeSuppressionStore:
    """`SuppressionStore.replace`: keeps the view's rows per user, as the last write left them;
    notes ``"write view"`` in a shared `log`."""

    def __init__(self, *, log: list[str] | None = None) -> None:
        self.rows: dict[str, list[Any]] = {}
        self.writes = 0
        self.log = log

    async def replace(self, user_ids: Sequence[str], rows: Sequence[Any]) -> int:
        for user_id in user_ids:
            self.rows.pop(user_id, None)
        for row in rows:
            self.rows.setdefault(row.user_id, []).append(row)
        self.writes += 1
        if self.log is not None:
            self.log.append("write view")
        return len(rows)


class FakeProducer:
    """`streams.kafka.event_producer.EventProducer.send`: one record, answered by its position.

    Each acknowledged record is kept in `sent` as ``(topic, key, value)`` and answered at the next
    offset of partition 3 (not 0, so that a position not taken from the answer shows). Every send
    first yields to the event loop, as a real one waits for the broker, so that concurrent sends
    interleave. A send fails, keeping nothing, with `fail_with` when it is set, and with Kafka's
    missing acknowledgement when its value is one of `failing`.
    """

    PARTITION = 3

    def __init__(
        self, fail_with: Exception | None = None, *, failing: Collection[bytes] = ()
    ) -> None:
        self.fail_with = fail_with
        self.failing = set(failing)
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> RecordPosition:
        await asyncio.sleep(0)
        if self.fail_with is not None:
            raise self.fail_with
        if value in self.failing:
            raise ServiceUnavailableError("kafka", f"no ack for {value.decode()}")
        self.sent.append((topic, key, value))
        return RecordPosition(topic, self.PARTITION, len(self.sent) - 1)


@dataclass
class FakeClock:
    """A clock in seconds (`clock()`) that moves only when the test moves it (`now_s += …`) or
    the code under test sleeps on it: `sleep` notes the delay in `slept_s` and advances the clock
    by it at once, so that waits and back-offs run without taking time."""

    now_s: float = 0.0
    slept_s: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.slept_s.append(seconds)
        self.now_s += seconds


def plain_receipts_body(*states: str) -> dict[str, Any]:
    """A receipts body in our plain shape (`schemas.provider_receipts`), one receipt per state,
    for notification `n-<i>` and message `m-<i>`."""
    return {
        "receipts": [
            {
                "notification_id": f"n-{n}",
                "provider_message_id": f"m-{n}",
                "state": state,
                "occurred_at": "2026-11-22T09:00:00+00:00",
            }
            for n, state in enumerate(states)
        ]
    }
