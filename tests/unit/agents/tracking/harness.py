"""The delivery tracker over fakes for Kafka, PostgreSQL and its tables, shared by its tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.retry import Backoff
from agents.tracking.state import Step, receipt_step
from agents.tracking.tracker import DeliveryTracker, Encode, Topics, Transitions
from schemas.notifications import NotificationReceiptEvent, NotificationStatusEvent
from streams.errors import ServiceUnavailableError
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord
from streams.stores.delivery_store import DeliveryValues, TransitionValues
from tests.unit.agents.batch_fakes import ScopeStack
from tests.unit.agents.delivery_factories import at, status_event
from tests.unit.fakes import FakeSink

TOPICS = Topics(status="p-notifications.status", receipts="p-notifications.receipts")


class FakeStore:
    def __init__(self, failures: int = 0) -> None:
        self.calls: list[tuple[list[DeliveryValues], list[TransitionValues]]] = []
        self.failures = failures

    async def write(
        self, deliveries: Sequence[DeliveryValues], transitions: Sequence[TransitionValues]
    ) -> int:
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailableError("postgresql", "down")
        self.calls.append((list(deliveries), list(transitions)))
        return len(deliveries) + len(transitions)


class CountingTable(dict[bytes, dict[str, Any]]):
    """A table that remembers its writes and, per write, the record in scope."""

    def __init__(self, scopes: ScopeStack[SourceRecord] | None = None) -> None:
        super().__init__()
        self.scopes = scopes or ScopeStack()
        self.writes: list[tuple[bytes, SourceRecord | None]] = []
        self.deletes: list[bytes] = []
        self.reads: list[bytes] = []
        # Per read, the record in scope: a store reads only that record's partition.
        self.read_scopes: list[tuple[bytes, SourceRecord | None]] = []
        self.broken = False

    def __setitem__(self, key: bytes, value: dict[str, Any]) -> None:
        if self.broken:
            raise OSError("store write failed")
        self.writes.append((key, self.scopes.current))
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        if self.broken:
            raise OSError("store write failed")
        self.deletes.append(key)
        super().__delitem__(key)

    def get(self, key: bytes, default: Any = None) -> Any:  # type: ignore[override]
        self.reads.append(key)
        self.read_scopes.append((key, self.scopes.current))
        return super().get(key, default)


class Harness:
    """A tracker over fakes: the sinks, store and tables are what a test reads afterwards."""

    def __init__(
        self,
        store: FakeStore | None = None,
        status_out: FakeSink | None = None,
        *,
        reports_out: FakeSink | None = None,
        encode: Encode = encode,
    ) -> None:
        self.scopes: ScopeStack[SourceRecord] = ScopeStack()
        self.table = CountingTable(self.scopes)
        self.held = CountingTable(self.scopes)
        self.store = store or FakeStore()
        self.status_out = status_out or FakeSink()
        self.reports_out = reports_out or FakeSink()
        self.dlq = {TOPICS.status: FakeSink(), TOPICS.receipts: FakeSink()}
        self.sleeps: list[float] = []
        self.transitions: list[tuple[SourceRecord, NotificationStatusEvent]] = []
        self.tracker: DeliveryTracker[SourceRecord] = DeliveryTracker(
            table=self.table,
            topics=TOPICS,
            decode_status=lambda raw: decode(raw, NotificationStatusEvent),
            decode_receipt=lambda raw: decode(raw, NotificationReceiptEvent),
            encode=encode,
            store=self.store,
            status_out=self.status_out,
            reports_out=self.reports_out,
            dead_letters=self.dlq,
            describe=lambda record: record,
            scope=self.scopes.scope,
            backoff=Backoff(initial_s=0.1, max_s=0.4),
            sleep=self.sleep,
            clock=lambda: at(100),
            transitions_out=self.collect_transitions,
            held=self.held,
        )

    async def collect_transitions(self, found: Transitions) -> None:
        self.transitions.extend(found)

    async def sleep(self, delay_s: float) -> None:
        self.sleeps.append(delay_s)


def record(topic: str, value: bytes, offset: int = 0) -> SourceRecord:
    return SourceRecord(topic, 0, offset, b"k", value)


def status(event: NotificationStatusEvent) -> SourceRecord:
    return record(TOPICS.status, encode(event))


def receipt(event: NotificationReceiptEvent) -> SourceRecord:
    return record(TOPICS.receipts, encode(event))


def receipt_step_of(source: SourceRecord) -> Step:
    """The step a receipt record folds to (or is held as)."""
    found = receipt_step(decode(source.value, NotificationReceiptEvent))
    assert found is not None, "a delivery receipt"
    return found[0]


def sent(notification_id: str, at_s: float, message_id: str | None = None) -> SourceRecord:
    """The `sent` status of `notification_id` through sendgrid, its message id as the receipt
    factory names it unless told otherwise."""
    return status(
        status_event(
            notification_id,
            "sent",
            at_s,
            attempt=1,
            provider="sendgrid",
            provider_message_id=message_id or f"msg-{notification_id}",
        )
    )


class FailingSink(FakeSink):
    """A publish that never returns: the worker dies in the middle of it."""

    async def send_all(self, records: Sequence[Any]) -> None:
        raise RuntimeError("worker killed while publishing")
